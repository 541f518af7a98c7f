//! Durations as Flink's `TimeUtils.parseDuration` reads them: a number and
//! an optional unit (milliseconds when absent), e.g. `200 ms`, `10 s`,
//! `1 min`. Settings and connector options share this one parser.

use std::time::Duration;

/// Parses a Flink duration; the error says what is accepted.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let err = || "expected a duration like '200 ms', '5 s' or '1 min'".to_string();
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let amount: u64 = t[..digits].parse().map_err(|_| err())?;
    let nanos_per_unit: u64 = match t[digits..].trim().to_ascii_lowercase().as_str() {
        "ns" | "nano" | "nanos" | "nanosecond" | "nanoseconds" => 1,
        "us" | "µs" | "micro" | "micros" | "microsecond" | "microseconds" => 1_000,
        "" | "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => 1_000_000,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000_000_000,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000_000_000,
        "h" | "hour" | "hours" => 3_600_000_000_000,
        "d" | "day" | "days" => 86_400_000_000_000,
        _ => return Err(err()),
    };
    amount
        .checked_mul(nanos_per_unit)
        .map(Duration::from_nanos)
        .ok_or_else(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flink_forms() {
        assert_eq!(parse_duration("200 ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("5 s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1min"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("250"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("ten s").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }
}
