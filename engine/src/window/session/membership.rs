//! Which buffered rows belong to which sessions: each row's key id and
//! event time, computed again for a batch read back from a spill file, and
//! the lookups firing and purging make.

use std::collections::{BTreeSet, HashMap};

use datafusion::arrow::array::{ArrayRef, AsArray, RecordBatch, TimestampMillisecondArray};
use datafusion::arrow::datatypes::TimestampMillisecondType;
use datafusion::physical_plan::aggregates::group_values::GroupValues;

use super::SessionAggregatePlan;
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

/// Sessions given as (end, key, start), by key: (start, end) in order.
pub(super) fn by_key(sessions: &BTreeSet<(EventTime, u32, EventTime)>) -> HashMap<u32, Vec<(EventTime, EventTime)>> {
    let mut m: HashMap<u32, Vec<(EventTime, EventTime)>> = HashMap::new();
    for (e, k, s) in sessions {
        m.entry(*k).or_default().push((*s, *e));
    }
    for list in m.values_mut() {
        list.sort_unstable();
    }
    m
}

/// The session of `key` among `by_key` that a row at `ts` is in, if one.
/// A key's sessions are disjoint and sorted: the one starting last at or
/// before `ts` is the only candidate.
pub(super) fn in_session(
    by_key: &HashMap<u32, Vec<(EventTime, EventTime)>>,
    key: u32,
    ts: EventTime,
) -> Option<(EventTime, EventTime)> {
    let list = by_key.get(&key)?;
    let at = list.partition_point(|(s, _)| *s <= ts).checked_sub(1)?;
    let (s, e) = list[at];
    (ts < e).then_some((s, e))
}
