//! Which buffered rows belong to which sessions: each row's key id and
//! event time, computed again for a batch read back from a spill file, and
//! the lookups firing and purging make.

use std::collections::BTreeSet;

use datafusion::arrow::array::{ArrayRef, AsArray, RecordBatch, TimestampMillisecondArray};
use datafusion::arrow::datatypes::TimestampMillisecondType;
use datafusion::physical_plan::aggregates::group_values::GroupValues;

use super::{KeySessions, SessionAggregatePlan};
use crate::error::{EngineError, Result, ResultExt};
use crate::message::EventTime;
use crate::window::aggregate::evaluate_input;

/// The times of `sessions` (as (end, key, start)) rows can have: a row at
/// `ts` makes its session end no earlier than `ts + gap`, so the rows of a
/// session `[s, e)` are at `s..=e - gap`.
pub(super) fn span(sessions: &BTreeSet<(EventTime, u32, EventTime)>, gap: i64) -> (EventTime, EventTime) {
    let lo = sessions.iter().map(|(_, _, s)| *s).min().unwrap_or(EventTime::MAX);
    let hi = sessions.last().map_or(EventTime::MIN, |(e, _, _)| e.saturating_sub(gap));
    (lo, hi)
}

/// The event time column of `batch`.
pub(super) fn event_times<'a>(
    plan: &SessionAggregatePlan,
    batch: &'a RecordBatch,
    name: &str,
) -> Result<&'a TimestampMillisecondArray> {
    batch
        .column(plan.aggregation.time_column)
        .as_primitive_opt::<TimestampMillisecondType>()
        .ok_or_else(|| EngineError::Plan(format!("{name}: event time is not TIMESTAMP(3)")))
}

/// The group-key id of each row of `batch` (interned in `key_ids`; one key
/// without key columns), and the key columns.
pub(super) fn key_ids_of(
    plan: &SessionAggregatePlan,
    key_ids: &mut Option<Box<dyn GroupValues>>,
    ids: &mut Vec<usize>,
    batch: &RecordBatch,
    name: &str,
) -> Result<(Vec<u32>, Vec<ArrayRef>)> {
    let key_cols = evaluate_input(&plan.aggregation.grouping, batch, name)?.keys;
    match key_ids {
        Some(k) => k.intern(&key_cols, ids).context(|| format!("{name}: keys"))?,
        None => {
            ids.clear();
            ids.resize(batch.num_rows(), 0);
        }
    }
    Ok((ids.iter().map(|i| *i as u32).collect(), key_cols))
}

/// The key id and time of each row of a buffered batch read back from a
/// spill file: its keys were interned when it arrived, so they get the same
/// ids again. A row without a time never joined a session.
pub(super) fn resolve_rows(
    plan: &SessionAggregatePlan,
    key_ids: &mut Option<Box<dyn GroupValues>>,
    ids: &mut Vec<usize>,
    batch: &RecordBatch,
    name: &str,
) -> Result<(Vec<u32>, Vec<EventTime>)> {
    let times = event_times(plan, batch, name)?.iter().map(Option::unwrap_or_default).collect();
    Ok((key_ids_of(plan, key_ids, ids, batch, name)?.0, times))
}

/// The sessions a firing or purging reads the rows of, among the open
/// sessions by key: looked up through those, so that firing every session
/// at the end of the input builds no second map of them all.
pub(super) struct Chosen<'a> {
    /// The open sessions of each key, disjoint and sorted.
    pub open: &'a [KeySessions],
    /// The chosen ones, as (end, key, start).
    pub sessions: &'a BTreeSet<(EventTime, u32, EventTime)>,
    /// `Some(except)` when `sessions` are every open session ending no
    /// later than the last of them but those in `except` (the sessions a
    /// watermark fires or purges): whether a session is chosen is then a
    /// comparison of its end, not a lookup in `sessions`.
    pub all_ending_by_except: Option<&'a BTreeSet<(EventTime, u32, EventTime)>>,
}

impl Chosen<'_> {
    /// The chosen session of `key` that a row at `ts` is in, if one. A
    /// key's sessions are disjoint and sorted: the one starting last at or
    /// before `ts` is the only candidate.
    pub fn session_of(&self, key: u32, ts: EventTime) -> Option<(EventTime, EventTime)> {
        let list = self.open.get(key as usize)?;
        let at = list.partition_point(|(s, _)| *s <= ts).checked_sub(1)?;
        let (s, e) = list[at];
        if ts >= e {
            return None;
        }
        let chosen = match self.all_ending_by_except {
            Some(except) => self.sessions.last().is_some_and(|last| e <= last.0) && !except.contains(&(e, key, s)),
            None => self.sessions.contains(&(e, key, s)),
        };
        chosen.then_some((s, e))
    }
}
