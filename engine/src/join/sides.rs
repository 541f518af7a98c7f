//! What both streaming joins share: which rows are late, and the rows of
//! each side held as state, written to checkpoints by key group.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use std::sync::atomic::Ordering;

use datafusion::arrow::compute::{filter_record_batch, take_record_batch};
use datafusion::arrow::datatypes::{SchemaRef, TimestampMillisecondType};
use datafusion::physical_plan::PhysicalExpr;

use crate::checkpoint::chunk::{ChunkId, ChunkMap, ChunkWriter, new_chunk_id};
use crate::checkpoint::codec::{Decoder, Encoder};
use crate::error::{EngineError, Result, ResultExt};
use crate::message::{EventTime, StreamBatch};
use crate::metrics::{DropReason, OperatorMetrics};
use crate::operators::evaluate::columns;
use crate::runtime::exchange::{key_groups, rows_by_key_group};

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

/// Rows of one side of a join, held until they can no longer match.
#[derive(Default)]
pub(crate) struct SideRows {
    batches: Vec<RecordBatch>,
    /// Per batch (always as long as `batches`): the checkpoint chunk that holds it, once one was written
    /// (regular and interval joins hold batches across many checkpoints,
    /// which then reference the chunk instead of writing the rows again).
    chunks: Vec<Option<Held>>,
}

/// The chunk a held batch was written to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Held {
    id: ChunkId,
    /// The checkpoint that wrote it, until that checkpoint completes.
    pending: Option<u64>,
}

impl SideRows {
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// Bytes of the rows held.
    pub fn bytes(&self) -> usize {
        self.batches.iter().map(RecordBatch::get_array_memory_size).sum()
    }

    /// The rows held.
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
        self.batches.push(batch);
        self.chunks.push(chunk);
    }

    /// Empties the side: its batches with their chunks.
    pub fn take(&mut self) -> Vec<(RecordBatch, Option<Held>)> {
        std::mem::take(&mut self.batches).into_iter().zip(std::mem::take(&mut self.chunks)).collect()
    }

    /// Writes the side for checkpoint `checkpoint` incrementally: batches
    /// that a completed checkpoint stored are referenced; the others go
    /// into one new chunk (split by key group, as [`SideRows::encode`]).
    /// `e` gets the ids of the chunks the side is made of.
    pub fn snapshot(
        &mut self,
        keys: &[Arc<dyn PhysicalExpr>],
        checkpoint: u64,
        chunks: &mut ChunkWriter,
        e: &mut Encoder,
        hashes: &mut Vec<u64>,
    ) -> Result<()> {
        let fresh: Vec<usize> =
            (0..self.batches.len()).filter(|i| !matches!(self.chunks[*i], Some(Held { pending: None, .. }))).collect();
        let mut ids: Vec<ChunkId> = Vec::new();
        for held in self.chunks.iter().flatten() {
            if held.pending.is_none() && !ids.contains(&held.id) {
                ids.push(held.id);
                chunks.reference(held.id);
            }
        }
        if !fresh.is_empty() {
            let id = new_chunk_id();
            let side =
                SideRows { batches: fresh.iter().map(|i| self.batches[*i].clone()).collect(), chunks: Vec::new() };
            let mut bytes = Encoder::default();
            side.encode(keys, &mut bytes, hashes)?;
            chunks.write(id, bytes.bytes);
            ids.push(id);
            for i in fresh {
                self.chunks[i] = Some(Held { id, pending: Some(checkpoint) });
            }
        }
        e.u64(ids.len() as u64);
        for id in ids {
            e.bytes(&id.to_le_bytes());
        }
        Ok(())
    }

    /// Checkpoint `checkpoint` completed: the chunks it wrote are stored.
    pub fn checkpoint_complete(&mut self, checkpoint: u64) {
        for held in self.chunks.iter_mut().flatten() {
            if held.pending.is_some_and(|c| c <= checkpoint) {
                held.pending = None;
            }
        }
    }

    /// Adds the rows of the chunks [`SideRows::snapshot`] listed, for the
    /// key groups `owns` keeps; rows of the side's `schema`.
    pub fn restore(
        &mut self,
        d: &mut Decoder,
        chunks: &ChunkMap,
        schema: &SchemaRef,
        owns: &dyn Fn(usize) -> bool,
    ) -> Result<()> {
        for _ in 0..d.u64()? {
            let id = ChunkId::from_le_bytes(
                d.bytes()?
                    .try_into()
                    .map_err(|_| EngineError::State("join state: a chunk id is not 16 bytes".into()))?,
            );
            let mut chunk = Decoder::new(chunks.get(id)?);
            self.decode(&mut chunk, schema, owns)?;
            chunk.finish()?;
        }
        Ok(())
    }

    /// Writes the rows split by the key group of `keys` (evaluated on each
    /// batch), so that a restore at another parallelism takes its own.
    pub fn encode(&self, keys: &[Arc<dyn PhysicalExpr>], e: &mut Encoder, hashes: &mut Vec<u64>) -> Result<()> {
        let mut parts = Vec::new();
        for batch in &self.batches {
            let key_columns = columns(keys, batch).context(|| "join state: evaluating keys".into())?;
            let groups = key_groups(&key_columns, batch.num_rows(), hashes)?;
            for (g, idx) in rows_by_key_group(&groups) {
                parts.push((g, take_record_batch(batch, &idx).context(|| "join state: splitting".into())?));
            }
        }
        e.u64(parts.len() as u64);
        for (g, batch) in &parts {
            e.u64(*g as u64);
            e.batch(batch)?;
        }
        Ok(())
    }

    /// Adds the rows [`SideRows::encode`] wrote for the key groups `owns`
    /// keeps; rows of the side's `schema`.
    pub fn decode(&mut self, d: &mut Decoder, schema: &SchemaRef, owns: &dyn Fn(usize) -> bool) -> Result<()> {
        for _ in 0..d.u64()? {
            let group = d.u64()? as usize;
            let batch = d.batch_of(schema)?;
            if owns(group) {
                self.push(batch);
            }
        }
        Ok(())
    }
}
