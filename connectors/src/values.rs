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
    s.trim()
        .parse::<u64>()
        .map_err(|_| "expected a non-negative integer".into())
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

/// Sizes as Flink's `MemorySize.parse` reads them: binary units, bytes when
/// no unit is given, e.g. `128MB`, `64 kb`, `1048576`.
pub(crate) fn memory_size(s: &str) -> Result<u64, String> {
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

/// Splits `"  12 min "` into `(12, "min")`.
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
        assert_eq!(memory_size("128MB"), Ok(128 << 20));
        assert_eq!(memory_size("64 kb"), Ok(64 << 10));
        assert_eq!(memory_size("1000"), Ok(1000));
        assert!(memory_size("0").is_err());
        assert!(memory_size("12 parsecs").is_err());
    }

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
