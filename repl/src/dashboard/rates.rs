//! Rates and shares from cumulative counters. The engine counts rows and
//! nanoseconds since a task started; the dashboard shows what happened
//! between two samples, as Flink's web UI does (rows/s, the share of the
//! last interval spent backpressured). A job's restart starts its counters
//! again from zero: an interval in which one went backwards says nothing,
//! and is skipped.

/// At most this share of an interval backpressured is OK (Flink's bounds).
const LOW: f64 = 0.10;
/// Beyond this share the backpressure is HIGH.
const HIGH: f64 = 0.50;

/// Per second, how much a counter grew from `before` to `now` over
/// `seconds`; `None` when it went backwards (a reset) or no time passed.
pub fn rate(before: u64, now: u64, seconds: f64) -> Option<f64> {
    (now >= before && seconds > 0.0).then(|| (now - before) as f64 / seconds)
}

/// The share of the interval from `before` to `now` (a task's elapsed
/// nanoseconds) spent in one state, whose nanoseconds went from
/// `part_before` to `part_now`; `None` on a reset or an empty interval.
pub fn share(part_before: u64, part_now: u64, before: u64, now: u64) -> Option<f64> {
    if now <= before || part_now < part_before {
        return None;
    }
    Some(((part_now - part_before) as f64 / (now - before) as f64).clamp(0.0, 1.0))
}

/// How backpressured a share is: `ok`, `low` or `high`.
pub fn level(backpressured: Option<f64>) -> &'static str {
    match backpressured {
        Some(b) if b > HIGH => "high",
        Some(b) if b > LOW => "low",
        Some(_) => "ok",
        None => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_skip_resets_and_empty_intervals() {
        assert_eq!(rate(100, 400, 2.0), Some(150.0));
        assert_eq!(rate(0, 0, 1.0), Some(0.0));
        // A restart set the counter back: no rate for that interval.
        assert_eq!(rate(400, 10, 1.0), None);
        assert_eq!(rate(1, 2, 0.0), None);
    }

    #[test]
    fn shares_are_of_the_interval_not_of_the_task_life() {
        // 10 s busy of the first 10 s, then 0.9 s backpressured of the next 1 s.
        assert_eq!(share(0, 900, 10_000, 11_000), Some(0.9));
        assert_eq!(share(900, 100, 11_000, 500), None);
        assert_eq!(share(5, 5, 7, 7), None);
        // Clocks read one after the other can overshoot slightly.
        assert_eq!(share(0, 1_001, 0, 1_000), Some(1.0));
    }

    #[test]
    fn levels_follow_flinks_bounds() {
        assert_eq!(level(Some(0.0)), "ok");
        assert_eq!(level(Some(0.10)), "ok");
        assert_eq!(level(Some(0.11)), "low");
        assert_eq!(level(Some(0.50)), "low");
        assert_eq!(level(Some(0.51)), "high");
        assert_eq!(level(None), "unknown");
    }
}
