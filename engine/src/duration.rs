//! Durations as Flink's `TimeUtils.parseDuration` reads them: a number and
//! an optional unit (milliseconds when absent), e.g. `200 ms`, `10 s`,
//! `1 min`. Settings and connector options share this one parser.

use std::num::IntErrorKind;
use std::time::Duration;

/// Parses a Flink duration; the error says what is accepted. Durations are
/// held in nanoseconds as a `u64`, so one longer than about 584 years is
/// refused rather than wrapped.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let err = || "expected a duration like '200 ms', '5 s' or '1 min'".to_string();
    let too_long = || format!("too long a duration (at most {} days)", u64::MAX / NANOS_PER_DAY);
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let amount: u64 = t[..digits].parse().map_err(|e: std::num::ParseIntError| match e.kind() {
        IntErrorKind::PosOverflow => too_long(),
        _ => err(),
    })?;
    let nanos_per_unit: u64 = match t[digits..].trim().to_ascii_lowercase().as_str() {
        "ns" | "nano" | "nanos" | "nanosecond" | "nanoseconds" => 1,
        "us" | "µs" | "micro" | "micros" | "microsecond" | "microseconds" => 1_000,
        "" | "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => 1_000_000,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000_000_000,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000_000_000,
        "h" | "hour" | "hours" => 3_600_000_000_000,
        "d" | "day" | "days" => NANOS_PER_DAY,
        _ => return Err(err()),
    };
    amount
        .checked_mul(nanos_per_unit)
        .map(Duration::from_nanos)
        .ok_or_else(too_long)
}

const NANOS_PER_DAY: u64 = 86_400_000_000_000;

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

    #[test]
    fn overflowing_durations_are_refused_as_too_long() {
        let most = u64::MAX / NANOS_PER_DAY;
        assert_eq!(parse_duration(&format!("{most} d")), Ok(Duration::from_nanos(most * NANOS_PER_DAY)));
        for long in [format!("{} d", most + 1), "999999999999 d".into(), "99999999999999999999999 ms".into()] {
            let e = parse_duration(&long).unwrap_err();
            assert!(e.contains("too long") && e.contains(&most.to_string()), "{long}: {e}");
        }
    }
}
