//! One stateful part's saved state as rows, for `weir_savepoint_rows`
//! (Flink's State Processor API reads keyed state the same way: one row
//! per key, by operator id). A window aggregate gives a row per key group,
//! slice and group key; a group aggregate a row per key group and group
//! key; both with the aggregates' current values, as the operator's next
//! output would have them. Other kinds are refused by name.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, TimestampMillisecondArray, UInt64Array, new_empty_array};
use datafusion::arrow::compute::concat;
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};

use super::grouping::{AggregateLookup, rebuild};
use crate::checkpoint::store::Checkpoint;
use crate::error::{EngineError, Result, ResultExt};
use crate::group_aggregate::state_rows::state_rows as group_rows;
use crate::window::aggregate::{SavedWindowState, SliceKey};
use crate::window::groups::{Grouping, PartialState};

/// The kinds whose state can be read as rows.
const READABLE: &str = "WindowAggregate and GroupAggregate";

/// The state of part `state_id` of `cp` as rows.
pub fn state_rows(cp: &Checkpoint, state_id: &str, lookup: AggregateLookup) -> Result<RecordBatch> {
    let Some(manifest) = &cp.manifest else {
        return Err(EngineError::State(format!(
            "checkpoint {} was written before state had ids (state format 1): its state cannot be read by id",
            cp.id
        )));
    };
    let Some(part) = manifest.parts.iter().find(|p| p.id.as_str() == state_id) else {
        let ids: Vec<&str> = manifest.parts.iter().map(|p| p.id.as_str()).collect();
        return Err(EngineError::State(format!(
            "checkpoint {} has no state '{state_id}'; its state ids are: {}",
            cp.id,
            ids.join(", ")
        )));
    };
    let signature = part.signature.as_str();
    let states: Vec<&[u8]> = cp.tasks.keys().filter_map(|task| cp.part(task, state_id)).collect();
    let damaged = |e: EngineError| EngineError::State(format!("state of {state_id} in checkpoint {}: {e}", cp.id));
    match kind_of(state_id, signature) {
        Some("WindowAggregate") => {
            let grouping = rebuild(signature, lookup).map_err(damaged)?;
            window_rows(&grouping, &states, cp).map_err(damaged)
        }
        Some("GroupAggregate") => {
            let grouping = rebuild(signature, lookup).map_err(damaged)?;
            let retracting = signature.ends_with("; retracting");
            group_batch(grouping, retracting, &states, cp).map_err(damaged)
        }
        kind => Err(EngineError::State(format!(
            "{state_id} is {}: only {READABLE} state can be read as rows (weir_savepoint lists every part's size)",
            kind.map_or_else(|| "of a kind whose state has no row form".to_string(), |k| format!("a {k}"))
        ))),
    }
}

/// The kind of a part: a derived id names it (`WindowAggregate#0`); for
/// an id the user set, the signature's shape tells a window aggregate
/// (`TUMBLE(…); keys […]`) and a group aggregate (`keys […]; …`) apart.
fn kind_of<'a>(state_id: &'a str, signature: &str) -> Option<&'a str> {
    if let Some((kind, _)) = state_id.split_once('#') {
        return Some(kind);
    }
    let window = ["TUMBLE(", "HOP(", "CUMULATE("].iter().any(|w| signature.starts_with(w));
    if window && signature.contains("; keys [") {
        Some("WindowAggregate")
    } else if signature.starts_with("keys [")
        && (signature.ends_with("; appending") || signature.ends_with("; retracting"))
    {
        Some("GroupAggregate")
    } else {
        None
    }
}

/// A row per key group, slice and group key: the slice's chunks of every
/// task merged, as firing its windows would merge them.
fn window_rows(grouping: &Grouping, states: &[&[u8]], cp: &Checkpoint) -> Result<RecordBatch> {
    let mut by_slice: BTreeMap<(usize, SliceKey), Vec<PartialState>> = BTreeMap::new();
    for state in states {
        for (slice, refs) in SavedWindowState::decode(state)?.slices {
            for (group, id) in refs {
                let partial = SavedWindowState::chunk(&cp.chunks, id)?;
                grouping.check_state(&partial)?;
                by_slice.entry((group, slice)).or_default().push(partial);
            }
        }
    }
    let ctx = || "merging window state".to_string();
    let mut columns: Vec<Vec<ArrayRef>> =
        vec![Vec::new(); 3 + grouping.key_schema.fields().len() + grouping.aggregates.len()];
    for ((group, (start, first_end)), partials) in by_slice {
        let mut groups = grouping.new_groups().context(ctx)?;
        for partial in &partials {
            groups.merge(partial).context(ctx)?;
        }
        let (keys, values, rows) = groups.take_final().context(ctx)?;
        columns[0].push(Arc::new(UInt64Array::from_value(group as u64, rows)));
        columns[1].push(Arc::new(TimestampMillisecondArray::from_value(start, rows)));
        columns[2].push(Arc::new(TimestampMillisecondArray::from_value(first_end, rows)));
        for (i, c) in keys.into_iter().chain(values).enumerate() {
            columns[3 + i].push(c);
        }
    }
    let time = DataType::Timestamp(TimeUnit::Millisecond, None);
    let fields = [
        Field::new("key_group", DataType::UInt64, false),
        Field::new("slice_start", time.clone(), false),
        Field::new("first_window_end", time, false),
    ];
    batch_of(fields.into_iter().collect(), key_fields(grouping), aggregate_fields(grouping), columns)
}

/// A row per key group and group key, read by the group aggregate itself.
fn group_batch(grouping: Grouping, retracting: bool, states: &[&[u8]], cp: &Checkpoint) -> Result<RecordBatch> {
    let (keys, aggregates) = (key_fields(&grouping), aggregate_fields(&grouping));
    let mut columns: Vec<Vec<ArrayRef>> = vec![Vec::new(); 1 + keys.len() + aggregates.len()];
    for part in group_rows(grouping, retracting, states, &cp.chunks)? {
        columns[0].push(Arc::new(UInt64Array::from_value(part.key_group as u64, part.rows)));
        for (i, c) in part.keys.into_iter().chain(part.values).enumerate() {
            columns[1 + i].push(c);
        }
    }
    let fields = vec![Field::new("key_group", DataType::UInt64, false)];
    batch_of(fields, keys, aggregates, columns)
}

fn key_fields(grouping: &Grouping) -> Vec<Field> {
    grouping.key_schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect()
}

fn aggregate_fields(grouping: &Grouping) -> Vec<Field> {
    grouping.aggregates.iter().map(|c| c.function.field().as_ref().clone().with_nullable(true)).collect()
}

/// `fields` (the leading columns), then the keys and the aggregate
/// results, each column the concatenation of its pieces.
fn batch_of(
    mut fields: Vec<Field>,
    keys: Vec<Field>,
    aggregates: Vec<Field>,
    columns: Vec<Vec<ArrayRef>>,
) -> Result<RecordBatch> {
    fields.extend(keys);
    fields.extend(aggregates);
    unique_names(&mut fields);
    let ctx = || "building state rows".to_string();
    let arrays = fields
        .iter()
        .zip(columns)
        .map(|(f, pieces)| {
            if pieces.is_empty() {
                return Ok(new_empty_array(f.data_type()));
            }
            let refs: Vec<&dyn datafusion::arrow::array::Array> = pieces.iter().map(|a| a.as_ref()).collect();
            concat(&refs).context(ctx)
        })
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).context(ctx)
}

/// A key named like a fixed column (or like an aggregate) gets a suffix:
/// a table's column names are unique.
fn unique_names(fields: &mut [Field]) {
    for i in 0..fields.len() {
        let mut name = fields[i].name().clone();
        while fields[..i].iter().any(|f| f.name() == &name) {
            name.push('_');
        }
        if &name != fields[i].name() {
            fields[i] = fields[i].clone().with_name(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::kind_of;

    /// A derived id names its kind; a user's id (`UID` hint) is told by
    /// its signature's shape, and anything else has no row form.
    #[test]
    fn kinds_of_derived_and_user_ids() {
        assert_eq!(kind_of("TopN#2", "rows [a Int64]; …"), Some("TopN"));
        let window = "HOP(slide 1 s, size 2 s); keys [k Utf8]; aggregates [count(Int64)]";
        assert_eq!(kind_of("clicks", window), Some("WindowAggregate"));
        let group = "keys [k Utf8]; aggregates [sum(Int64)]; retracting";
        assert_eq!(kind_of("totals", group), Some("GroupAggregate"));
        assert_eq!(kind_of("sessions", "gap 1000 ms; rows [a Int64]; keys []; aggregates []"), None);
        assert_eq!(kind_of("ranked", "rows [a Int64]; partition [k]; order [v]"), None);
    }
}
