//! What both streaming joins share: which rows are late, and the rows of
//! each side held as state, written to checkpoints by key group.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use std::sync::atomic::Ordering;

use datafusion::arrow::compute::{filter_record_batch, take_record_batch};
use datafusion::arrow::datatypes::TimestampMillisecondType;
use datafusion::physical_plan::PhysicalExpr;

use crate::checkpoint::codec::{Decoder, Encoder};
use crate::error::{EngineError, Result, ResultExt};
use crate::message::{EventTime, StreamBatch};
use crate::metrics::{DropReason, OperatorMetrics};
use crate::runtime::exchange::{key_groups, rows_by_key_group};

/// The event-time column `column` of `batch`, as milliseconds.
pub(crate) fn times<'a>(batch: &'a RecordBatch, column: usize, name: &str) -> Result<&'a datafusion::arrow::array::PrimitiveArray<TimestampMillisecondType>> {
    batch
        .column(column)
        .as_primitive_opt::<TimestampMillisecondType>()
        .ok_or_else(|| EngineError::Plan(format!("{name}: column {column} is not a TIMESTAMP(3)")))
}

/// Which rows are still usable: their time (shifted by `offset`) is after
/// the watermark in force when they were read — the row's own with per-row
/// watermarks, else the operator's. Rows without a time are never usable.
pub(crate) fn usable(batch: &StreamBatch, column: usize, offset: i64, watermark: EventTime, name: &str) -> Result<BooleanArray> {
    let t = times(&batch.data, column, name)?;
    let rows = batch.num_rows();
    Ok(match &batch.row_watermarks {
        Some(w) => (0..rows)
            .map(|i| Some(t.is_valid(i) && t.value(i).saturating_add(offset) > watermark.max(w.value(i))))
            .collect(),
        None => (0..rows)
            .map(|i| Some(t.is_valid(i) && t.value(i).saturating_add(offset) > watermark))
            .collect(),
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
    pub batches: Vec<RecordBatch>,
}

impl SideRows {
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// Writes the rows split by the key group of `keys` (evaluated on each
    /// batch), so that a restore at another parallelism takes its own.
    pub fn encode(&self, keys: &[Arc<dyn PhysicalExpr>], e: &mut Encoder, hashes: &mut Vec<u64>) -> Result<()> {
        let mut parts = Vec::new();
        for batch in &self.batches {
            let key_columns: Vec<ArrayRef> = keys
                .iter()
                .map(|k| k.evaluate(batch).and_then(|v| v.into_array(batch.num_rows())))
                .collect::<datafusion::error::Result<_>>()
                .context(|| "join state: evaluating keys".into())?;
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
    /// keeps.
    pub fn decode(&mut self, d: &mut Decoder, owns: &dyn Fn(usize) -> bool) -> Result<()> {
        for _ in 0..d.u64()? {
            let group = d.u64()? as usize;
            let batch = d.batch()?;
            if owns(group) {
                self.batches.push(batch);
            }
        }
        Ok(())
    }
}
