//! Sizes as Flink's `MemorySize.parse` reads them: binary units, bytes when
//! no unit is given, e.g. `128MB`, `64 kb`, `1048576`. Settings
//! (`state.memory.budget`) and connector options share this one parser.

/// Parses a Flink memory size into bytes; the error says what is accepted.
/// Zero is refused: no size Weir reads means "nothing".
pub fn parse_memory_size(s: &str) -> Result<u64, String> {
    let err = || "expected a size like '128MB', '64 kb' or '1048576' (bytes)".to_string();
    let (amount, unit) = split_number(s).ok_or_else(err)?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" | "bytes" => 0,
        "k" | "kb" | "kibibytes" => 10,
        "m" | "mb" | "mebibytes" => 20,
        "g" | "gb" | "gibibytes" => 30,
        "t" | "tb" | "tebibytes" => 40,
        _ => return Err(err()),
    };
    match amount.checked_mul(1 << shift) {
        Some(n) if n > 0 => Ok(n),
        _ => Err(err()),
    }
}

/// Splits `"  12 mb "` into `(12, "mb")`.
fn split_number(s: &str) -> Option<(u64, &str)> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let amount = s[..digits].parse().ok()?;
    Some((amount, s[digits..].trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_in_flink_notation() {
        assert_eq!(parse_memory_size("128MB"), Ok(128 << 20));
        assert_eq!(parse_memory_size("64 kb"), Ok(64 << 10));
        assert_eq!(parse_memory_size("2 gb"), Ok(2 << 30));
        assert_eq!(parse_memory_size("1000"), Ok(1000));
        assert!(parse_memory_size("0").is_err());
        assert!(parse_memory_size("12 parsecs").is_err());
        assert!(parse_memory_size("99999999999 tb").is_err());
    }
}
