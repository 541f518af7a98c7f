//! Durations written the way Flink's configuration writes them:
//! `200 ms`, `10 s`, `1 min`, `2 h`, `1 d`, or a bare number of milliseconds.

use std::time::Duration;

/// Parses a Flink duration string; the error says what is accepted.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (expected e.g. '200 ms', '10 s', '1 min')"))?;
    let ms = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => 1,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000,
        "min" | "m" | "minute" | "minutes" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        u => return Err(format!("unknown time unit '{u}' in '{text}' (use ms, s, min, h or d)")),
    };
    n.checked_mul(ms)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("duration '{text}' is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flink_forms() {
        assert_eq!(parse_duration("200 ms").unwrap(), Duration::from_millis(200));
        assert_eq!(parse_duration("10 s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("1min").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("ten s").is_err());
        assert!(parse_duration("5 fortnights").is_err());
    }
}
