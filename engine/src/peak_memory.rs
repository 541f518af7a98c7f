//! The peak resident memory of this process, which `weir bench` and the
//! cargo benches report per case (each case runs in a child process of its
//! own, so that the peak is that case's).

/// Peak resident set of this process, in KiB (Linux's `VmHWM`; 0 where
/// `/proc` does not tell).
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|kib| kib.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}
