//! Parsers for option values in Flink's notation (durations, memory sizes,
//! booleans, single characters). Each returns what was expected on failure.

/// `'rows-per-second'` and the like: zero is meaningless there.
pub(crate) fn positive_integer(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected a positive integer".into()),
    }
}

/// Counts where zero is a valid (if unusual) request.
pub(crate) fn non_negative_integer(s: &str) -> Result<u64, String> {
    s.trim().parse::<u64>().map_err(|_| "expected a non-negative integer".into())
}

/// Flink accepts `true` / `false` in any case.
pub(crate) fn boolean(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("expected 'true' or 'false'".into()),
    }
}

/// A CSV delimiter or quote: one ASCII character, or `\t` written as in
/// Flink's documentation (SQL string literals have no escapes).
pub(crate) fn ascii_char(s: &str) -> Result<u8, String> {
    match s.as_bytes() {
        [b] if b.is_ascii() => Ok(*b),
        b"\\t" => Ok(b'\t'),
        _ => Err("expected a single ASCII character (or '\\t' for a tab)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_and_flags() {
        assert_eq!(ascii_char(";"), Ok(b';'));
        assert_eq!(ascii_char("\\t"), Ok(b'\t'));
        assert!(ascii_char(";;").is_err());
        assert!(ascii_char("é").is_err());
        assert_eq!(boolean("TRUE"), Ok(true));
        assert!(boolean("yes").is_err());
        assert_eq!(positive_integer("10"), Ok(10));
        assert!(positive_integer("0").is_err());
        assert!(positive_integer("-1").is_err());
        assert_eq!(non_negative_integer("0"), Ok(0));
    }
}
