//! Which event times are valid: SQL.md's `'watermark.min-valid-time'` and
//! `'watermark.max-future'`. Invalid times neither move nor hold back the
//! watermark, and their rows go to the late-data side table (or are counted)
//! with reason `invalid_event_time`.

use crate::message::{EventTime, now_ms};

/// 2000-01-01T00:00:00Z, the default earliest valid event time.
pub const DEFAULT_MIN_VALID: EventTime = 946_684_800_000;
/// One hour, the default tolerance for event times ahead of the wall clock.
pub const DEFAULT_MAX_FUTURE_MS: i64 = 3_600_000;

/// The range of event times a table accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTimeValidity {
    /// Earliest valid event time.
    pub min_valid: EventTime,
    /// How far ahead of the wall clock an event time may be.
    pub max_future_ms: i64,
}

impl Default for EventTimeValidity {
    fn default() -> Self {
        Self {
            min_valid: DEFAULT_MIN_VALID,
            max_future_ms: DEFAULT_MAX_FUTURE_MS,
        }
    }
}

impl EventTimeValidity {
    /// The bounds in force now: `[min_valid, wall clock + max_future]`.
    pub fn bounds_now(&self) -> (EventTime, EventTime) {
        (self.min_valid, now_ms().saturating_add(self.max_future_ms))
    }
}
