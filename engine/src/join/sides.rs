//! What both streaming joins share: which rows are late, and the rows of
//! each side held as state, written to checkpoints by key group.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use std::sync::atomic::Ordering;

use datafusion::arrow::compute::{filter_record_batch, take_record_batch};
use datafusion::arrow::datatypes::{SchemaRef, TimestampMillisecondType};
use datafusion::physical_plan::PhysicalExpr;

use crate::checkpoint::chunk::{ChunkId, ChunkWriter, new_chunk_id};
use crate::checkpoint::codec::{Decoder, Encoder};
use crate::error::{EngineError, Result, ResultExt};
use crate::join::runs::Run;
use crate::message::{EventTime, StreamBatch};
use crate::metrics::{DropReason, OperatorMetrics};
use crate::operators::evaluate::columns;
use crate::runtime::exchange::{key_groups, rows_by_key_group};
use crate::spill::{SpillTarget, StateBudget};

/// The event-time column `column` of `batch`, as milliseconds.
pub(crate) fn times<'a>(
    batch: &'a RecordBatch,
    column: usize,
    name: &str,
) -> Result<&'a datafusion::arrow::array::PrimitiveArray<TimestampMillisecondType>> {
    batch
        .column(column)
        .as_primitive_opt::<TimestampMillisecondType>()
        .ok_or_else(|| EngineError::Plan(format!("{name}: column {column} is not a TIMESTAMP(3)")))
}

/// Which rows are still usable: their time (shifted by `offset`) is after
/// the watermark in force when they were read — the row's own with per-row
/// watermarks, else the operator's. Rows without a time are never usable.
pub(crate) fn usable(
    batch: &StreamBatch,
    column: usize,
    offset: i64,
    watermark: EventTime,
    name: &str,
) -> Result<BooleanArray> {
    let t = times(&batch.data, column, name)?;
    let rows = batch.num_rows();
    Ok(match &batch.row_watermarks {
        Some(w) => (0..rows)
            .map(|i| Some(t.is_valid(i) && t.value(i).saturating_add(offset) > watermark.max(w.value(i))))
            .collect(),
        None => (0..rows).map(|i| Some(t.is_valid(i) && t.value(i).saturating_add(offset) > watermark)).collect(),
    })
}

/// Counts `batch` in and keeps its [`usable`] rows; the others are counted
/// as late and dropped.
pub(crate) fn drop_late(
    batch: &StreamBatch,
    column: usize,
    offset: i64,
    watermark: EventTime,
    name: &str,
    metrics: &OperatorMetrics,
) -> Result<RecordBatch> {
    let rows = batch.num_rows();
    metrics.rows_in.fetch_add(rows as u64, Ordering::Relaxed);
    let keep = usable(batch, column, offset, watermark, name)?;
    let kept = filter_record_batch(&batch.data, &keep).context(|| format!("{name}: late rows"))?;
    metrics.add_dropped(DropReason::Late, (rows - kept.num_rows()) as u64);
    Ok(kept)
}

/// A side whose runs no probe reads merges them only past this many (each
/// keeps its file open); a side whose runs probes read keeps few anyway.
const MAX_RUNS: usize = 32;

/// Runs merge in tiers: two adjacent runs merge while the older is at most
/// this many times the newer, so each run is over twice the size of the
/// next newer one. A side of `n` spills then has about log2(n) runs, and a
/// row is rewritten about log2(n) times (a fixed number of runs rewrites
/// the older runs at every merge: quadratic in the spills, 63 times the
/// rows at 1,300 spills).
const TIER: usize = 2;

/// Rows of one side of a join, held until they can no longer match.
/// Under a state budget, the oldest rows of an inner side are spilled as
/// runs (`runs.rs`), all older than every batch held in memory.
#[derive(Default)]
pub(crate) struct SideRows {
    batches: Vec<RecordBatch>,
    /// Per batch (always as long as `batches`): the checkpoint chunk that holds it, once one was written
    /// (regular and interval joins hold batches across many checkpoints,
    /// which then reference the chunk instead of writing the rows again).
    chunks: Vec<Option<Held>>,
    /// Bytes of `batches`, kept as they change: a budget checks them after
    /// every batch and every restored part.
    bytes: usize,
    /// The spilled rows, oldest first.
    runs: Vec<Run>,
    /// Whether probes read parts of the runs since the side last spilled.
    probed: bool,
}

/// The chunk a held batch was written to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Held {
    pub(super) id: ChunkId,
    /// The checkpoint that wrote it, until that checkpoint completes.
    pub(super) pending: Option<u64>,
}

impl SideRows {
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// Bytes of the rows held in memory.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The rows held in memory.
    pub fn batches(&self) -> &[RecordBatch] {
        &self.batches
    }

    /// The rows held, for a join that is done with them.
    pub fn into_batches(self) -> Vec<RecordBatch> {
        self.batches
    }

    /// Holds a batch not written to any checkpoint yet.
    pub fn push(&mut self, batch: RecordBatch) {
        self.push_held(batch, None);
    }

    /// Holds a batch again, with the chunk it was written to (from
    /// [`SideRows::take`]); `None` when its rows changed.
    pub fn push_held(&mut self, batch: RecordBatch, chunk: Option<Held>) {
        self.bytes += batch.get_array_memory_size();
        self.batches.push(batch);
        self.chunks.push(chunk);
    }

    /// Empties the side: its batches with their chunks.
    pub fn take(&mut self) -> Vec<(RecordBatch, Option<Held>)> {
        self.bytes = 0;
        std::mem::take(&mut self.batches).into_iter().zip(std::mem::take(&mut self.chunks)).collect()
    }

    /// Writes the side for checkpoint `checkpoint` incrementally: its runs
    /// first (each is a chunk: referenced once stored, else written as its
    /// file), then the batches held in memory: those a completed checkpoint
    /// stored are referenced, the others go into one new chunk (split by
    /// key group, as [`SideRows::encode`]), whose rows are returned to be
    /// encoded off the task loop ([`FreshRows::write`]). `e` gets the ids
    /// of the chunks the side is made of, oldest rows first.
    pub fn snapshot(
        &mut self,
        keys: &[Arc<dyn PhysicalExpr>],
        checkpoint: u64,
        chunks: &mut ChunkWriter,
        e: &mut Encoder,
    ) -> Option<FreshRows> {
        let fresh: Vec<usize> =
            (0..self.batches.len()).filter(|i| !matches!(self.chunks[*i], Some(Held { pending: None, .. }))).collect();
        let mut ids: Vec<ChunkId> = Vec::new();
        for run in &mut self.runs {
            ids.push(run.list(checkpoint, chunks));
        }
        for held in self.chunks.iter().flatten() {
            if held.pending.is_none() && !ids.contains(&held.id) {
                ids.push(held.id);
                chunks.reference(held.id);
            }
        }
        let rows = (!fresh.is_empty()).then(|| {
            let id = new_chunk_id();
            ids.push(id);
            let batches = fresh.iter().map(|i| self.batches[*i].clone()).collect();
            for i in fresh {
                self.chunks[i] = Some(Held { id, pending: Some(checkpoint) });
            }
            FreshRows { id, batches, keys: keys.to_vec() }
        });
        e.u64(ids.len() as u64);
        for id in ids {
            e.bytes(&id.to_le_bytes());
        }
        rows
    }

    /// Checkpoint `checkpoint` completed: the chunks it wrote are stored.
    pub fn checkpoint_complete(&mut self, checkpoint: u64) {
        for held in self.chunks.iter_mut().flatten() {
            if held.pending.is_some_and(|c| c <= checkpoint) {
                held.pending = None;
            }
        }
        for run in &mut self.runs {
            run.completed(checkpoint);
        }
    }

    /// The ids of the chunks [`SideRows::snapshot`] listed, oldest rows
    /// first; each is read with [`SideRows::decode_each`].
    pub fn chunk_ids(d: &mut Decoder) -> Result<Vec<ChunkId>> {
        (0..d.u64()?)
            .map(|_| {
                d.bytes()?
                    .try_into()
                    .map(ChunkId::from_le_bytes)
                    .map_err(|_| EngineError::State("join state: a chunk id is not 16 bytes".into()))
            })
            .collect()
    }

    /// Writes the rows split by the key group of `keys` (evaluated on each
    /// batch), so that a restore at another parallelism takes its own.
    pub fn encode(&self, keys: &[Arc<dyn PhysicalExpr>], e: &mut Encoder, hashes: &mut Vec<u64>) -> Result<()> {
        encode_parts(&self.batches, keys, e, hashes, &mut |_| Ok(()))
    }

    /// Adds the rows [`SideRows::encode`] wrote for the key groups `owns`
    /// keeps; rows of the side's `schema`.
    pub fn decode(&mut self, d: &mut Decoder, schema: &SchemaRef, owns: &dyn Fn(usize) -> bool) -> Result<()> {
        Self::decode_each(d, schema, owns, &mut |batch| {
            self.push(batch);
            Ok(())
        })
    }

    /// Hands `each` the parts [`SideRows::encode`] wrote for the key groups
    /// `owns` keeps, one at a time: a restore under a budget spills between
    /// them.
    pub fn decode_each(
        d: &mut Decoder,
        schema: &SchemaRef,
        owns: &dyn Fn(usize) -> bool,
        each: &mut dyn FnMut(RecordBatch) -> Result<()>,
    ) -> Result<()> {
        for _ in 0..d.u64()? {
            let group = d.u64()? as usize;
            let batch = d.batch_of(schema)?;
            if owns(group) {
                each(batch)?;
            }
        }
        Ok(())
    }

    /// The spilled rows, oldest first.
    pub fn runs(&self) -> &[Run] {
        &self.runs
    }

    /// Spills the first `n` batches held in memory as one run; `times` is
    /// the earliest and latest time of their rows. The bytes written. A
    /// batch still held that was written to the same chunk as a spilled one
    /// is written again at the next checkpoint, so that no chunk listed
    /// holds rows of a run.
    pub fn spill_front(
        &mut self,
        n: usize,
        keys: &[Arc<dyn PhysicalExpr>],
        times: (EventTime, EventTime),
        budget: &StateBudget,
        hashes: &mut Vec<u64>,
    ) -> Result<usize> {
        let mut held = self.take().into_iter();
        let spilled: Vec<(RecordBatch, Option<Held>)> = held.by_ref().take(n).collect();
        let ids: Vec<ChunkId> = spilled.iter().filter_map(|(_, h)| h.map(|h| h.id)).collect();
        // The chunk the run can stand for: every batch of it is spilled, and
        // only those.
        let kept: Vec<(RecordBatch, Option<Held>)> = held.collect();
        let chunk = match spilled.first().and_then(|(_, h)| *h) {
            Some(h) if ids.len() == spilled.len() && ids.iter().all(|id| *id == h.id) => Some(h),
            _ => None,
        };
        let chunk = chunk.filter(|h| !kept.iter().any(|(_, k)| k.is_some_and(|k| k.id == h.id)));
        for (batch, h) in kept {
            self.push_held(batch, h.filter(|h| !ids.contains(&h.id)));
        }
        let batches: Vec<RecordBatch> = spilled.into_iter().map(|(b, _)| b).collect();
        let run = Run::write(&batches, keys, times, chunk, budget, hashes)?;
        let written = run.disk_bytes();
        self.runs.push(run);
        Ok(written)
    }

    /// Notes that a probe read parts of the side's runs: merging them pays.
    pub fn probed(&mut self) {
        self.probed = true;
    }

    /// Merges the side's runs in tiers ([`TIER`]) if probes read parts of
    /// its runs since it last spilled (fewer runs then mean fewer reads per
    /// probe; runs no probe reads, as Nexmark q7's bids, are not worth
    /// rewriting), or while it has more than [`MAX_RUNS`] (merging the
    /// adjacent pair smallest together when the tiers hold). A merge copies
    /// the files' bytes (`Run::merge`), so its size needs no limit. The
    /// bytes written.
    pub fn merge_runs(&mut self, budget: &StateBudget) -> Result<usize> {
        let probed = std::mem::take(&mut self.probed);
        let mut written = 0;
        while let Some(i) = self.to_merge(probed) {
            let merged = self.runs[i].merge(&self.runs[i + 1], budget)?;
            written += merged.disk_bytes();
            self.runs.splice(i..i + 2, [merged]);
        }
        Ok(written)
    }

    /// The first of the two adjacent runs [`SideRows::merge_runs`] merges
    /// next, if any: the newest pair out of tier, or, past [`MAX_RUNS`]
    /// with every pair in tier, the pair smallest together.
    fn to_merge(&self, probed: bool) -> Option<usize> {
        let (n, bytes) = (self.runs.len(), |i: usize| self.runs[i].disk_bytes());
        if !probed && n <= MAX_RUNS {
            return None;
        }
        let out_of_tier = (0..n.saturating_sub(1)).rev().find(|i| bytes(*i) <= TIER * bytes(i + 1));
        out_of_tier.or_else(|| (n > MAX_RUNS).then(|| (0..n - 1).min_by_key(|i| bytes(*i) + bytes(i + 1))).flatten())
    }

    /// Drops the oldest runs while `gone` says none of their rows can meet
    /// a row to come (their files are deleted once no checkpoint being
    /// written reads them).
    pub fn drop_runs(&mut self, gone: impl Fn(&Run) -> bool) {
        let n = self.runs.iter().take_while(|r| gone(r)).count();
        self.runs.drain(..n);
    }
}

/// The rows of a side no checkpoint stored yet, taken at a barrier (shared,
/// not copied), and the chunk they go into.
#[derive(Clone)]
pub(crate) struct FreshRows {
    id: ChunkId,
    batches: Vec<RecordBatch>,
    keys: Vec<Arc<dyn PhysicalExpr>>,
}

impl FreshRows {
    /// Encodes the rows into their chunk, split by key group: into a spill
    /// file of `target` when the join spills (compressed, a part at a time:
    /// up to the join's share of rows would otherwise be encoded into
    /// memory and held there until the store wrote them; the store links
    /// the file), else into memory.
    pub fn write(self, target: Option<&SpillTarget>, chunks: &mut ChunkWriter) -> Result<()> {
        let mut hashes = Vec::new();
        let Some(target) = target else {
            let mut e = Encoder::default();
            encode_parts(&self.batches, &self.keys, &mut e, &mut hashes, &mut |_| Ok(()))?;
            chunks.write(self.id, e.bytes);
            return Ok(());
        };
        let mut w = target.writer()?;
        let mut e = Encoder::compressing();
        encode_parts(&self.batches, &self.keys, &mut e, &mut hashes, &mut |e| {
            w.append(&e.bytes)?;
            e.bytes.clear();
            Ok(())
        })?;
        chunks.write_file(self.id, w.finish()?);
        Ok(())
    }
}

/// Writes `batches` split by the key group of `keys`: a count, then each
/// part's key group and rows, a part per batch and key group, each taken
/// from its batch right before it is encoded (one part copied at a time).
fn encode_parts(
    batches: &[RecordBatch],
    keys: &[Arc<dyn PhysicalExpr>],
    e: &mut Encoder,
    hashes: &mut Vec<u64>,
    flush: &mut dyn FnMut(&mut Encoder) -> Result<()>,
) -> Result<()> {
    let mut split = Vec::with_capacity(batches.len());
    for batch in batches {
        let key_columns = columns(keys, batch).context(|| "join state: evaluating keys".into())?;
        split.push(rows_by_key_group(&key_groups(&key_columns, batch.num_rows(), hashes)?));
    }
    e.u64(split.iter().map(Vec::len).sum::<usize>() as u64);
    for (batch, parts) in batches.iter().zip(split) {
        for (g, idx) in parts {
            e.u64(g as u64);
            e.batch(&take_record_batch(batch, &idx).context(|| "join state: splitting".into())?)?;
            flush(e)?;
        }
    }
    flush(e)
}
