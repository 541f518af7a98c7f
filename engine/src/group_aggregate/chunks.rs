//! Incremental checkpoints of a group aggregation.
//!
//! Groups' state is written as immutable chunks (`checkpoint::chunk`), each
//! of one key group: a checkpoint writes only the groups a row, a
//! retraction or a restore changed since the last one, as a new chunk per
//! key group, and lists the older chunks with a bitmap of their rows still
//! live (`written.rs` keeps where each group's row is and merges a key
//! group's chunks in tiers). A spilled group's run (`spill.rs`) is listed
//! the same way.
//!
//! The operator's state is [`WITH_RUNS`], the number of chunks, then each
//! chunk's key group, id and bitmap of live rows (empty: all of them). A
//! chunk is one Arrow batch: the key columns, each aggregate's accumulator
//! state columns, then the group's row count. State of the earlier layouts
//! still restores: [`CHUNKED`] (a chunk per key group, no bitmaps) and the
//! one before chunks (the number of key groups, then each key group and
//! its batch inline, same columns).

use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::row::Rows;
use datafusion::common::ScalarValue;

use super::spill::find_row;
use super::{Group, GroupAggregate, GroupAggregatePlan};
use crate::checkpoint::chunk::{ChunkBytes, ChunkId, ChunkMap, ChunkWriter, new_chunk_id};
use crate::checkpoint::codec::{Decoder, Encoder, decode_batch};
use crate::checkpoint::snapshot::{SnapshotJob, SnapshotOutput};
use crate::error::{EngineError, Result, ResultExt};
use crate::runtime::exchange::KEY_GROUPS;
use crate::spill::StateBudget;
use crate::spill::runs::live_rows_of_chunk;

/// The first number of the chunked layout; the inline layout before it
/// starts with a count of key groups, at most [`KEY_GROUPS`].
const CHUNKED: u64 = u64::MAX;

/// The first number of the chunked layout with runs of spilled groups.
const WITH_RUNS: u64 = u64::MAX - 1;

impl GroupAggregate {
    /// The snapshot of checkpoint `checkpoint`: the state (the chunk list)
    /// and, per key group, a chunk of the groups changed since the last
    /// checkpoint and of the chunks rewritten (`written.rs`), taken here as
    /// Arrow batches (the groups' boxed accumulators cannot leave the task
    /// loop); the job encodes them (as [`ChunkBytes::of_batch`] says for the
    /// backend) off the loop. The runs of spilled groups no completed
    /// checkpoint stored go as their files (the store links or streams
    /// them).
    pub(super) fn snapshot_job(&mut self, checkpoint: u64) -> Result<SnapshotJob> {
        let mut writer = ChunkWriter::default();
        let Self { written, groups, plan, converter, name, runs, budget, index, .. } = self;
        let target = budget.as_ref().map(StateBudget::target);
        let mut batches = Vec::new();
        for (kg, delta) in written.take_changes(groups, index).into_iter().enumerate() {
            if delta.groups.is_empty() {
                continue;
            }
            let delta = delta.finish();
            let batch = state_batch(plan, converter, name, groups, &delta.pairs())?;
            let id = new_chunk_id();
            batches.push((id, batch));
            written.add(kg, id, checkpoint, delta, groups);
        }
        let chunks = written.list();
        let mut e = Encoder::default();
        e.u64(WITH_RUNS);
        e.u64((chunks.len() + runs.iter().count()) as u64);
        for (kg, id, stored, live) in chunks {
            e.u64(kg as u64);
            e.bytes(&id.to_le_bytes());
            e.bytes(&live);
            if stored {
                writer.reference(id);
            }
        }
        runs.list(checkpoint, &mut writer, &mut e);
        Ok(Box::new(move || {
            for (id, batch) in batches {
                writer.write(id, ChunkBytes::of_batch(&batch, target.as_ref())?);
            }
            Ok(SnapshotOutput { state: Some(e.bytes), chunks: writer })
        }))
    }

    /// Restores every subtask's groups of the key groups `owns` says are
    /// this subtask's; `saved[i]` is the stored aggregate that aggregate `i`
    /// restores (`None`: an aggregate added since the savepoint, which starts
    /// empty for every restored group). Restored key groups are written
    /// anew at the next checkpoint: their chunks may come from a savepoint,
    /// outside the job's store.
    pub(super) fn restore_chunks(
        &mut self,
        states: &[&[u8]],
        chunks: &ChunkMap,
        owns: &dyn Fn(usize) -> bool,
        saved: &[Option<usize>],
    ) -> Result<()> {
        for state in states {
            for (kg, stored) in read_key_groups(&self.name, state)? {
                if !owns(kg) {
                    continue;
                }
                let batch = match stored {
                    KeyGroupState::Chunk { id, live } => live_rows_of_chunk(&chunks.get(id)?, live, &self.name)?,
                    KeyGroupState::Inline(bytes) => decode_batch(bytes)?,
                };
                self.restore_groups(&batch, kg, saved)?;
                self.keep_within_budget()?;
            }
        }
        Ok(())
    }

    /// Restores the groups of one key group's batch (see the module's
    /// layout).
    fn restore_groups(&mut self, batch: &RecordBatch, kg: usize, saved: &[Option<usize>]) -> Result<()> {
        let columns = self.state_columns(batch, saved)?;
        for r in 0..batch.num_rows() {
            self.load_group(&columns, r, kg as u32)?;
        }
        Ok(())
    }

    /// Checks a batch of stored groups against the plan; `saved[i]` is the
    /// stored aggregate that aggregate `i` restores.
    pub(super) fn state_columns(&self, batch: &RecordBatch, saved: &[Option<usize>]) -> Result<StateColumns> {
        let name = &self.name;
        let ctx = || format!("{name}: restoring");
        let n_keys = self.plan.grouping.key_schema.fields().len();
        let width = batch.num_columns();
        if width < n_keys + 1 {
            return Err(EngineError::State(format!("{name}: group state has {width} columns")));
        }
        let keys: Vec<ArrayRef> = batch.columns()[..n_keys].to_vec();
        let rows = if n_keys > 0 { Some(self.converter.convert_columns(&keys).context(ctx)?) } else { None };
        let state_columns = &batch.columns()[n_keys..width - 1];
        let Some(counts) = batch.column(width - 1).as_any().downcast_ref::<Int64Array>().cloned() else {
            return Err(EngineError::State(format!("{name}: group state has the wrong types")));
        };
        // A fresh accumulator's state has the columns of a stored one, of
        // the same types: accumulators downcast what they merge, and would
        // panic on damaged state of other types.
        let types: Vec<Vec<DataType>> = self
            .accumulators()?
            .iter_mut()
            .map(|a| a.state().map(|s| s.iter().map(ScalarValue::data_type).collect()))
            .collect::<datafusion::error::Result<_>>()
            .context(ctx)?;
        // The stored aggregates, in their order: each restored one's types.
        let mut stored: Vec<Option<&Vec<DataType>>> = vec![None; saved.iter().flatten().count()];
        for (t, from) in types.iter().zip(saved) {
            if let Some(slot) = from.and_then(|i| stored.get_mut(i)) {
                *slot = Some(t);
            }
        }
        let Some(stored) = stored.into_iter().collect::<Option<Vec<&Vec<DataType>>>>() else {
            return Err(EngineError::State(format!("{name}: the savepoint's aggregates do not map to this query's")));
        };
        if stored.iter().map(|t| t.len()).sum::<usize>() != state_columns.len() {
            return Err(EngineError::State(format!(
                "{name}: group state has {} aggregate columns",
                state_columns.len()
            )));
        }
        if !stored.iter().copied().flatten().zip(state_columns).all(|(t, c)| t.equals_datatype(c.data_type())) {
            return Err(EngineError::State(format!("{name}: group state has the wrong types")));
        }
        // Where each stored aggregate's columns start.
        let starts: Vec<usize> = stored.iter().scan(0, |at, t| Some(std::mem::replace(at, *at + t.len()))).collect();
        let ranges = types
            .iter()
            .zip(saved)
            .map(|(t, from)| from.and_then(|i| starts.get(i)).map(|at| *at..*at + t.len()))
            .collect();
        Ok(StateColumns { keys: rows, columns: state_columns.to_vec(), counts, ranges })
    }

    /// Makes group `r` of `columns` a group in memory, of key group `kg`.
    pub(super) fn load_group(&mut self, columns: &StateColumns, r: usize, kg: u32) -> Result<u32> {
        let g = self.new_group()?;
        let name = &self.name;
        let group = self.groups[g as usize].as_mut().expect("a new group exists");
        group.key_group = kg;
        for (acc, range) in group.accumulators.iter_mut().zip(&columns.ranges) {
            let Some(range) = range else {
                continue;
            };
            let slices: Vec<ArrayRef> = columns.columns[range.clone()].iter().map(|c| c.slice(r, 1)).collect();
            acc.merge_batch(&slices).context(|| format!("{name}: restoring"))?;
        }
        group.rows = columns.counts.value(r);
        let key: &[u8] = columns.keys.as_ref().map_or(&[], |rows| rows.row(r).data());
        // Restored and loaded groups are written anew: restored chunks may
        // come from a savepoint, outside the job's store.
        self.written.changed(group, g, key);
        self.index.insert(key.into(), g);
        // A restored group's idle time starts again.
        self.keep_key(g, key);
        if let Some(e) = &mut self.expiry {
            let now = e.now();
            e.touch(g, now);
        }
        Ok(g)
    }
}

/// A batch of stored groups, checked against the plan.
pub(super) struct StateColumns {
    /// The groups' encoded keys (none for a GROUP BY of no key), sorted.
    keys: Option<Rows>,
    /// The aggregates' state columns.
    columns: Vec<ArrayRef>,
    counts: Int64Array,
    /// Per aggregate of the plan, its state columns (`None`: an aggregate
    /// the state does not have, which starts empty).
    ranges: Vec<Option<Range<usize>>>,
}

impl StateColumns {
    /// The row of the group of `key`.
    pub(super) fn find(&self, key: &[u8]) -> Option<usize> {
        find_row(self.keys.as_ref()?, key)
    }
}

/// Where a part's state keeps one key group's groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyGroupState<'a> {
    /// In this chunk of the store (the chunked layout); of a run of
    /// spilled groups, `live` is a bitmap of its rows still holding their
    /// group (empty: all of them).
    Chunk { id: ChunkId, live: &'a [u8] },
    /// In the state itself, as an encoded batch (the layout before chunks).
    Inline(&'a [u8]),
}

/// Each key group a group aggregation part's `state` holds, and where its
/// groups are: the one reader of both layouts, for restoring and for
/// `weir_savepoint`'s sizes. `name` names the part in errors.
pub fn read_key_groups<'a>(name: &str, state: &'a [u8]) -> Result<Vec<(usize, KeyGroupState<'a>)>> {
    let key_group = |stored: u64| match usize::try_from(stored) {
        Ok(kg) if kg < KEY_GROUPS => Ok(kg),
        _ => Err(EngineError::State(format!("{name}: group state names key group {stored}"))),
    };
    let mut d = Decoder::new(state);
    let first = d.u64()?;
    let mut out = Vec::new();
    if first == CHUNKED || first == WITH_RUNS {
        for _ in 0..d.u64()? {
            let kg = key_group(d.u64()?)?;
            let id = <[u8; 16]>::try_from(d.bytes()?)
                .map(ChunkId::from_le_bytes)
                .map_err(|_| EngineError::State(format!("{name}: a malformed chunk id")))?;
            let live = if first == WITH_RUNS { d.bytes()? } else { &[] };
            out.push((kg, KeyGroupState::Chunk { id, live }));
        }
    } else {
        for _ in 0..first {
            let kg = key_group(d.u64()?)?;
            out.push((kg, KeyGroupState::Inline(d.bytes()?)));
        }
    }
    d.finish()?;
    Ok(out)
}

/// The state of the groups `members` lists (key, group), as one batch.
pub(super) fn state_batch(
    plan: &GroupAggregatePlan,
    converter: &datafusion::arrow::row::RowConverter,
    name: &str,
    groups: &mut [Option<Group>],
    members: &[(&[u8], u32)],
) -> Result<RecordBatch> {
    let ctx = || format!("{name}: snapshot");
    let mut fields: Vec<Field> =
        plan.grouping.key_schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
    let mut columns: Vec<ArrayRef> = if fields.is_empty() {
        Vec::new()
    } else {
        let parser = converter.parser();
        converter.convert_rows(members.iter().map(|(k, _)| parser.parse(k))).context(ctx)?
    };
    let mut states: Vec<Vec<Vec<ScalarValue>>> = vec![Vec::new(); plan.grouping.aggregates.len()];
    let mut rows = Vec::with_capacity(members.len());
    for (_, g) in members {
        let group = groups[*g as usize].as_mut().expect("indexed groups exist");
        for (a, acc) in group.accumulators.iter_mut().enumerate() {
            let s = acc.state().context(ctx)?;
            if states[a].is_empty() {
                states[a] = vec![Vec::with_capacity(members.len()); s.len()];
            }
            for (j, v) in s.into_iter().enumerate() {
                states[a][j].push(v);
            }
        }
        rows.push(group.rows);
    }
    for (a, cols) in states.into_iter().enumerate() {
        for (j, values) in cols.into_iter().enumerate() {
            let array = ScalarValue::iter_to_array(values).context(ctx)?;
            fields.push(Field::new(format!("a{a}_{j}"), array.data_type().clone(), true));
            columns.push(array);
        }
    }
    fields.push(Field::new("rows", DataType::Int64, false));
    columns.push(Arc::new(Int64Array::from(rows)));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).context(ctx)
}

/// One key group's groups as a checkpoint or savepoint of a group
/// aggregation holds them, for reading state as rows
/// (`weir_savepoint_rows`).
#[derive(Debug)]
pub struct KeyGroupRows {
    pub key_group: usize,
    /// The groups' key columns (none for a GROUP BY of no key), in the
    /// order of the keys' encoding.
    pub keys: Vec<ArrayRef>,
    /// Per aggregate of the plan, each group's current result, of the
    /// output column's type.
    pub values: Vec<ArrayRef>,
    pub rows: usize,
}

/// Reads the state of a group aggregation of `plan` (every subtask's
/// `states` and the chunks they reference) as a restore does — same
/// checks, both layouts — and evaluates each group's aggregates: one entry
/// per key group that holds groups, by key group.
pub fn decode_key_groups(
    plan: Arc<GroupAggregatePlan>,
    states: &[&[u8]],
    chunks: &ChunkMap,
) -> Result<Vec<KeyGroupRows>> {
    let metrics = crate::metrics::JobMetrics::default().register("GroupAggregate", 0);
    let mut op = GroupAggregate::new(plan, "GroupAggregate".into(), metrics, None)?;
    let all: Vec<Option<usize>> = (0..op.plan.grouping.aggregates.len()).map(Some).collect();
    op.restore_chunks(states, chunks, &|_| true, &all)?;
    let mut members: Vec<Vec<(Box<[u8]>, u32)>> = vec![Vec::new(); KEY_GROUPS];
    for (key, g) in &op.index {
        let kg = op.groups[*g as usize].as_ref().expect("indexed groups exist").key_group;
        members[kg as usize].push((key.clone(), *g));
    }
    let ctx = || "GroupAggregate: reading state".to_string();
    let mut out = Vec::new();
    for (key_group, mut groups) in members.into_iter().enumerate().filter(|(_, m)| !m.is_empty()) {
        groups.sort_unstable();
        let keys = if op.plan.grouping.key_schema.fields().is_empty() {
            Vec::new()
        } else {
            let parser = op.converter.parser();
            op.converter.convert_rows(groups.iter().map(|(k, _)| parser.parse(k))).context(ctx)?
        };
        let ids: Vec<u32> = groups.iter().map(|(_, g)| *g).collect();
        let evaluated = op.evaluate(&ids)?;
        let values = op.value_arrays(evaluated)?;
        out.push(KeyGroupRows { key_group, keys, values, rows: ids.len() });
    }
    Ok(out)
}
