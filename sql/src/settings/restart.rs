//! Flink's `restart-strategy.*` keys: what a durable job does when one of
//! its tasks fails. Unset, the strategy is Flink 2's default for a job with
//! checkpoints, exponential delay; a job without checkpoints never restarts
//! (starting it again would repeat its output).

use std::time::Duration;

use weir_engine::duration::parse_duration;
use weir_engine::runtime::restart::RestartStrategy;

/// The strategy's key.
pub const TYPE: &str = "restart-strategy.type";
pub const FIXED_ATTEMPTS: &str = "restart-strategy.fixed-delay.attempts";
pub const FIXED_DELAY: &str = "restart-strategy.fixed-delay.delay";
pub const RATE_MAX_FAILURES: &str = "restart-strategy.failure-rate.max-failures-per-interval";
pub const RATE_INTERVAL: &str = "restart-strategy.failure-rate.failure-rate-interval";
pub const RATE_DELAY: &str = "restart-strategy.failure-rate.delay";
pub const EXP_INITIAL: &str = "restart-strategy.exponential-delay.initial-backoff";
pub const EXP_MAX: &str = "restart-strategy.exponential-delay.max-backoff";
pub const EXP_MULTIPLIER: &str = "restart-strategy.exponential-delay.backoff-multiplier";
pub const EXP_RESET: &str = "restart-strategy.exponential-delay.reset-backoff-threshold";
pub const EXP_JITTER: &str = "restart-strategy.exponential-delay.jitter-factor";
pub const EXP_ATTEMPTS: &str = "restart-strategy.exponential-delay.attempts-before-reset-backoff";

/// The names Flink takes for each strategy (`restart-strategy.type`).
const NAMES: &[(&str, &[&str])] = &[
    ("none", &["none", "off", "disable"]),
    ("fixed-delay", &["fixed-delay", "fixeddelay"]),
    ("failure-rate", &["failure-rate", "failurerate"]),
    ("exponential-delay", &["exponential-delay", "exponentialdelay"]),
];

/// The canonical name of a strategy as written, if Flink knows it.
fn canonical(v: &str) -> Option<&'static str> {
    let v = v.trim().to_ascii_lowercase();
    NAMES
        .iter()
        .find(|(_, names)| names.contains(&v.as_str()))
        .map(|(name, _)| *name)
}

/// Checks `restart-strategy.type`.
pub fn check_type(v: &str) -> Result<(), String> {
    match canonical(v) {
        Some(_) => Ok(()),
        None => Err("expected none, fixed-delay, failure-rate or exponential-delay".into()),
    }
}

/// Checks an attempt or failure count: a positive integer of Java's `int`.
pub fn check_count(v: &str) -> Result<(), String> {
    match v.trim().parse::<u32>() {
        Ok(n) if (1..=i32::MAX as u32).contains(&n) => Ok(()),
        _ => Err(format!("expected an integer from 1 to {}", i32::MAX)),
    }
}

/// Checks the backoff multiplier: a number of at least 1.
pub fn check_multiplier(v: &str) -> Result<(), String> {
    match v.trim().parse::<f64>() {
        Ok(m) if m.is_finite() && m >= 1.0 => Ok(()),
        _ => Err("expected a number of at least 1".into()),
    }
}

/// Checks the jitter factor: a fraction from 0 to 1.
pub fn check_jitter(v: &str) -> Result<(), String> {
    match v.trim().parse::<f64>() {
        Ok(j) if (0.0..=1.0).contains(&j) => Ok(()),
        _ => Err("expected a number from 0 to 1".into()),
    }
}

/// The strategy the settings describe, read through `get` (values were
/// checked when set; defaults are Flink's).
pub fn strategy(get: impl Fn(&str) -> String) -> RestartStrategy {
    let duration = |k: &str| parse_duration(&get(k)).unwrap_or(Duration::from_secs(1));
    let count = |k: &str| get(k).trim().parse::<u32>().unwrap_or(1);
    match canonical(&get(TYPE)) {
        Some("none") => RestartStrategy::None,
        Some("fixed-delay") => RestartStrategy::FixedDelay {
            attempts: count(FIXED_ATTEMPTS),
            delay: duration(FIXED_DELAY),
        },
        Some("failure-rate") => RestartStrategy::FailureRate {
            max_failures: count(RATE_MAX_FAILURES),
            interval: duration(RATE_INTERVAL),
            delay: duration(RATE_DELAY),
        },
        _ => RestartStrategy::ExponentialDelay {
            initial: duration(EXP_INITIAL),
            max: duration(EXP_MAX),
            multiplier: get(EXP_MULTIPLIER).trim().parse().unwrap_or(1.5),
            reset_after: duration(EXP_RESET),
            jitter: get(EXP_JITTER).trim().parse().unwrap_or(0.1),
            attempts: count(EXP_ATTEMPTS),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;

    #[test]
    fn flinks_keys_make_the_strategy_and_bad_values_are_refused() {
        let mut s = Settings::default();
        assert_eq!(s.restart_strategy(), RestartStrategy::flink_default());
        s.set(TYPE, "fixeddelay").unwrap();
        s.set(FIXED_ATTEMPTS, "3").unwrap();
        s.set(FIXED_DELAY, "200 ms").unwrap();
        assert_eq!(
            s.restart_strategy(),
            RestartStrategy::FixedDelay {
                attempts: 3,
                delay: Duration::from_millis(200)
            }
        );
        s.set(TYPE, "failure-rate").unwrap();
        s.set(RATE_MAX_FAILURES, "4").unwrap();
        assert_eq!(
            s.restart_strategy(),
            RestartStrategy::FailureRate {
                max_failures: 4,
                interval: Duration::from_secs(60),
                delay: Duration::from_secs(1)
            }
        );
        s.set(TYPE, "off").unwrap();
        assert_eq!(s.restart_strategy(), RestartStrategy::None);
        for (key, value, expected) in [
            (TYPE, "sometimes", "expected none, fixed-delay"),
            (FIXED_ATTEMPTS, "0", "from 1 to"),
            (FIXED_DELAY, "soon", ""),
            (EXP_MULTIPLIER, "0.5", "at least 1"),
            (EXP_JITTER, "2", "from 0 to 1"),
        ] {
            let e = s.set(key, value).unwrap_err().to_string();
            assert!(
                e.contains(&format!("invalid value '{value}' for '{key}'")) && e.contains(expected),
                "{e}"
            );
        }
    }
}
