//! Restart strategies (Flink's `restart-strategy.*`): whether a job whose
//! task failed is started again from its latest complete checkpoint, and
//! after how long.
//!
//! The strategy only decides; `runtime::supervisor` tears the failed
//! attempt down and starts the next. One rule is Weir's own: a failure of
//! the query or its data (not of a system outside Weir) that comes back
//! word for word, from the same checkpoint, with no checkpoint completed
//! in between, is not tried again — the same record or the same division
//! by zero would fail the same way forever, which in Flink loops until the
//! attempts run out (with its default exponential delay, never).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::error::ErrorKind;

/// How a job's failures are answered.
#[derive(Debug, Clone, PartialEq)]
pub enum RestartStrategy {
    /// `none`: the first failure fails the job.
    None,
    /// `fixed-delay`: up to `attempts` restarts, `delay` apart.
    FixedDelay { attempts: u32, delay: Duration },
    /// `failure-rate`: restarts `delay` apart while no more than
    /// `max_failures` failures fall within any `interval`.
    FailureRate {
        max_failures: u32,
        interval: Duration,
        delay: Duration,
    },
    /// `exponential-delay`: restarts after a backoff that grows by
    /// `multiplier` from `initial` up to `max`, give or take `jitter` (a
    /// fraction of it); back to `initial` once the job ran `reset_after`
    /// without failing; the job fails after `attempts` restarts without
    /// such a reset.
    ExponentialDelay {
        initial: Duration,
        max: Duration,
        multiplier: f64,
        reset_after: Duration,
        jitter: f64,
        attempts: u32,
    },
}

impl RestartStrategy {
    /// Flink 2's default when checkpointing is on: exponential delay from
    /// 1 s to 1 min, ×1.5, reset after 1 h, jitter 0.1, and Java's
    /// `Integer.MAX_VALUE` attempts (unlimited in practice).
    pub fn flink_default() -> Self {
        RestartStrategy::ExponentialDelay {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            multiplier: 1.5,
            reset_after: Duration::from_secs(3600),
            jitter: 0.1,
            attempts: i32::MAX as u32,
        }
    }

    /// The strategy's name as `restart-strategy.type` spells it.
    pub fn name(&self) -> &'static str {
        match self {
            RestartStrategy::None => "none",
            RestartStrategy::FixedDelay { .. } => "fixed-delay",
            RestartStrategy::FailureRate { .. } => "failure-rate",
            RestartStrategy::ExponentialDelay { .. } => "exponential-delay",
        }
    }
}

/// One failure, as the strategy weighs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    pub kind: ErrorKind,
    /// The checkpoint the failed attempt had started from (0: none).
    pub restored_from: u64,
    /// Whether a checkpoint completed during the failed attempt.
    pub progressed: bool,
}

/// What to do about a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Start the job again after this long.
    Restart(Duration),
    /// Fail the job; why no restart (appended to the cause).
    GiveUp(String),
}

/// A job's restart history under its strategy.
#[derive(Debug)]
pub struct Restarts {
    strategy: RestartStrategy,
    /// Restarts so far (all of them, for `weir.jobs`).
    pub count: u32,
    /// Restarts since the exponential backoff was last reset.
    since_reset: u32,
    backoff: Duration,
    /// When recent failures happened (failure-rate).
    failures: VecDeque<Instant>,
    last_failure: Option<(Instant, Failure)>,
}

impl Restarts {
    pub fn new(strategy: RestartStrategy) -> Self {
        let backoff = match &strategy {
            RestartStrategy::ExponentialDelay { initial, .. } => *initial,
            _ => Duration::ZERO,
        };
        Self {
            strategy,
            count: 0,
            since_reset: 0,
            backoff,
            failures: VecDeque::new(),
            last_failure: None,
        }
    }

    /// Weighs `failure`, which happened at `now` in an attempt that ran
    /// since `started`, and counts the restart it decides.
    pub fn decide(&mut self, failure: Failure, now: Instant, started: Instant) -> Decision {
        let repeated = self.last_failure.as_ref().is_some_and(|(_, last)| {
            failure.kind != ErrorKind::External
                && !failure.progressed
                && last.message == failure.message
                && last.restored_from == failure.restored_from
        });
        self.last_failure = Some((now, failure));
        if repeated {
            return Decision::GiveUp(
                "it failed the same way again from the same checkpoint, so restarting cannot help".into(),
            );
        }
        let decision = match &self.strategy {
            RestartStrategy::None => Decision::GiveUp("restart-strategy.type is none".into()),
            RestartStrategy::FixedDelay { attempts, delay } => match self.count < *attempts {
                true => Decision::Restart(*delay),
                false => Decision::GiveUp(format!(
                    "restart-strategy fixed-delay allows {attempts} restart{}, all used",
                    plural(*attempts)
                )),
            },
            RestartStrategy::FailureRate {
                max_failures,
                interval,
                delay,
            } => {
                self.failures.push_back(now);
                while self
                    .failures
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > *interval)
                {
                    self.failures.pop_front();
                }
                match self.failures.len() as u64 <= u64::from(*max_failures) {
                    true => Decision::Restart(*delay),
                    false => Decision::GiveUp(format!(
                        "{} failures within {} ms, restart-strategy failure-rate allows {max_failures}",
                        self.failures.len(),
                        interval.as_millis()
                    )),
                }
            }
            RestartStrategy::ExponentialDelay {
                initial,
                max,
                multiplier,
                reset_after,
                jitter,
                attempts,
            } => {
                if now.duration_since(started) >= *reset_after {
                    self.backoff = *initial;
                    self.since_reset = 0;
                }
                if self.since_reset >= *attempts {
                    Decision::GiveUp(format!(
                        "restart-strategy exponential-delay allows {attempts} restart{} before a reset, all used",
                        plural(*attempts)
                    ))
                } else {
                    let delay = jittered(self.backoff, *jitter);
                    self.backoff = self.backoff.mul_f64(multiplier.max(1.0)).min(*max);
                    self.since_reset += 1;
                    Decision::Restart(delay)
                }
            }
        };
        if matches!(decision, Decision::Restart(_)) {
            self.count += 1;
        }
        decision
    }
}

fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `backoff` moved by up to `jitter` of itself either way, so that jobs
/// failing together (a broker down) do not all retry at the same instant.
fn jittered(backoff: Duration, jitter: f64) -> Duration {
    if jitter <= 0.0 || backoff.is_zero() {
        return backoff;
    }
    let factor = 1.0 + jitter.min(1.0) * (rand::random::<f64>() * 2.0 - 1.0);
    backoff.mul_f64(factor.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(message: &str, kind: ErrorKind, restored_from: u64, progressed: bool) -> Failure {
        Failure {
            message: message.into(),
            kind,
            restored_from,
            progressed,
        }
    }

    fn external(n: u64) -> Failure {
        failure("broker down", ErrorKind::External, n, false)
    }

    #[test]
    fn fixed_delay_restarts_its_attempts_then_gives_up() {
        let mut r = Restarts::new(RestartStrategy::FixedDelay {
            attempts: 2,
            delay: Duration::from_millis(30),
        });
        let t = Instant::now();
        assert_eq!(
            r.decide(external(0), t, t),
            Decision::Restart(Duration::from_millis(30))
        );
        assert_eq!(
            r.decide(external(1), t, t),
            Decision::Restart(Duration::from_millis(30))
        );
        let Decision::GiveUp(why) = r.decide(external(2), t, t) else {
            panic!("a third restart")
        };
        assert!(why.contains("allows 2 restarts"), "{why}");
        assert_eq!(r.count, 2);
        let mut none = Restarts::new(RestartStrategy::None);
        assert!(matches!(none.decide(external(0), t, t), Decision::GiveUp(w) if w.contains("none")));
    }

    /// More than `max_failures` within the interval fails the job; failures
    /// spread wider apart restart for ever.
    #[test]
    fn failure_rate_counts_failures_within_the_interval() {
        let interval = Duration::from_secs(10);
        let strategy = RestartStrategy::FailureRate {
            max_failures: 2,
            interval,
            delay: Duration::ZERO,
        };
        let t = Instant::now();
        let mut spread = Restarts::new(strategy.clone());
        for i in 0..10 {
            let now = t + Duration::from_secs(6 * i);
            assert_eq!(
                spread.decide(external(i), now, now),
                Decision::Restart(Duration::ZERO),
                "failure {i}"
            );
        }
        let mut close = Restarts::new(strategy);
        assert!(matches!(close.decide(external(0), t, t), Decision::Restart(_)));
        assert!(matches!(
            close.decide(external(1), t + Duration::from_secs(4), t),
            Decision::Restart(_)
        ));
        let third = close.decide(external(2), t + Duration::from_secs(8), t);
        assert!(
            matches!(&third, Decision::GiveUp(w) if w.contains("3 failures within 10000 ms")),
            "{third:?}"
        );
    }

    /// The backoff grows by the multiplier up to the maximum, within the
    /// jitter, and starts over after a long enough run.
    #[test]
    fn exponential_delay_grows_caps_and_resets() {
        let strategy = RestartStrategy::ExponentialDelay {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(400),
            multiplier: 2.0,
            reset_after: Duration::from_secs(60),
            jitter: 0.0,
            attempts: 5,
        };
        let mut r = Restarts::new(strategy);
        let t = Instant::now();
        let delays: Vec<Decision> = (0..5).map(|i| r.decide(external(i), t, t)).collect();
        let ms = |m| Decision::Restart(Duration::from_millis(m));
        assert_eq!(delays, vec![ms(100), ms(200), ms(400), ms(400), ms(400)]);
        assert!(matches!(r.decide(external(5), t, t), Decision::GiveUp(w) if w.contains("allows 5 restarts")));
        let later = t + Duration::from_secs(120);
        assert_eq!(
            r.decide(external(6), later, t + Duration::from_secs(30)),
            ms(100),
            "a run of a minute resets"
        );
        let mut jittery = Restarts::new(RestartStrategy::flink_default());
        for i in 0..20 {
            let Decision::Restart(d) = jittery.decide(external(i), t, t) else {
                panic!("unlimited attempts")
            };
            assert!(d <= Duration::from_secs(66), "{d:?}");
        }
    }

    /// A failure of the data or query that repeats from the same
    /// checkpoint without progress is not tried a third time; one outside
    /// Weir, or one after a checkpoint completed, is.
    #[test]
    fn the_same_failure_without_progress_is_not_retried() {
        let mut r = Restarts::new(RestartStrategy::FixedDelay {
            attempts: 100,
            delay: Duration::ZERO,
        });
        let t = Instant::now();
        let bad = |progressed| failure("a bad record at in.json:7", ErrorKind::User, 3, progressed);
        assert!(matches!(r.decide(bad(false), t, t), Decision::Restart(_)));
        assert!(
            matches!(r.decide(bad(true), t, t), Decision::Restart(_)),
            "a checkpoint completed in between"
        );
        let again = r.decide(bad(false), t, t);
        assert!(
            matches!(&again, Decision::GiveUp(w) if w.contains("same way again")),
            "{again:?}"
        );
        let mut outside = Restarts::new(RestartStrategy::FixedDelay {
            attempts: 100,
            delay: Duration::ZERO,
        });
        for _ in 0..5 {
            assert!(matches!(outside.decide(external(3), t, t), Decision::Restart(_)));
        }
    }
}
