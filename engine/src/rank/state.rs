//! A ranking's checkpoint: the rows every partition holds, with their
//! arrival numbers, and (keep-first by event time) the keys whose first
//! row has left, with its time — as Arrow batches per key group, so that
//! a job restores at another parallelism. Partition and sort keys are
//! computed again from the rows on restore. At the barrier a snapshot
//! only captures the rows (shared: a row never changes) and copies the
//! keys; its job encodes them off the task loop, so that a large ranking
//! does not stop its stream for the encoding.
//!
//! Under a state budget (`spill.rs`) the state ends with a list of chunks
//! (count, then each one's key group, id and bitmap of live rows, empty
//! for all): the spilled runs, written once and then referenced, and for
//! an updating ranking also its rows in memory, one chunk per key group
//! written anew, instead of inline. A keep-first ranking's runs hold keys
//! whose first row has left, in the layout of its inline keys. State
//! without that list (the in-memory backend's, and before runs) restores
//! as before.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, LargeBinaryArray, LargeBinaryBuilder, RecordBatch};
use datafusion::arrow::datatypes::{Int64Type, UInt64Type};

use datafusion::arrow::row::{RowConverter, SortField};

use super::RankMode;
use super::operator::Rank;
use super::spill::{CapturedRows, done_rows, kept_rows};
use crate::checkpoint::chunk::{ChunkBytes, ChunkMap, ChunkWriter};
use crate::checkpoint::codec::{Decoder, Encoder};
use crate::checkpoint::snapshot::{SnapshotJob, SnapshotOutput};
use crate::error::{EngineError, Result, ResultExt};
use crate::message::{EventTime, WATERMARK_MIN};
use crate::runtime::exchange::key_groups;
use crate::spill::StateBudget;

/// Rows a snapshot's job encodes at a time (few in tests, so that their
/// checkpoints hold several slices).
const SLICE: usize = if cfg!(test) { 64 } else { 1 << 18 };

/// What a checkpoint takes from a ranking at its barrier, encoded by the
/// snapshot's job off the task loop: the rows, shared (a row never
/// changes), and the keys whose first row has left, copied end to end.
struct Capture {
    watermark: EventTime,
    arrivals: u64,
    /// The rows written inline, with their arrival numbers.
    rows: Vec<(u64, Arc<[u8]>)>,
    /// The keys whose first row has left, and that row's time.
    done_keys: LargeBinaryArray,
    done_times: Vec<EventTime>,
    /// Under a budget: the list of chunks, encoded, and the rows it lists
    /// that are written anew.
    list: Vec<u8>,
    chunks: Vec<CapturedRows>,
}

impl Capture {
    fn done(&self) -> impl Iterator<Item = (&[u8], EventTime)> {
        self.done_keys.iter().flatten().zip(self.done_times.iter().copied())
    }
}

impl Rank {
    /// The snapshot of checkpoint `checkpoint`: what the state holds is
    /// captured here, at the barrier, and encoded by the returned job, with
    /// the runs' files (and, under a budget, the rows in memory) written to
    /// its chunks.
    pub(super) fn snapshot_job(&mut self, checkpoint: u64) -> Result<SnapshotJob> {
        let mut chunks = ChunkWriter::default();
        let mut capture = self.capture(checkpoint, &mut chunks)?;
        let plan = Arc::clone(&self.plan);
        let name = self.name.clone();
        let keys = self.keys.again(&plan.input_schema)?;
        let fields = plan.input_schema.fields().iter().map(|f| SortField::new(f.data_type().clone())).collect();
        let rows = RowConverter::new(fields).context(|| format!("{name}: snapshot"))?;
        let target = self.budget.as_ref().map(StateBudget::target);
        Ok(Box::new(move || {
            let input = &plan.input_schema;
            let mut e = Encoder::default();
            e.i64(capture.watermark);
            e.u64(capture.arrivals);
            // A slice at a time from the end, each slice's rows let go once
            // encoded: no second copy of the whole state.
            let mut held = std::mem::take(&mut capture.rows);
            e.slices_by_key_group(std::iter::from_fn(|| {
                let slice = held.split_off(held.len().checked_sub(1)? / SLICE * SLICE);
                Some(kept_rows(&rows, input, slice.iter().map(|(q, r)| (*q, r)), &name).and_then(|kept| {
                    let keys = keys.columns(&kept)?;
                    Ok((kept, keys))
                }))
            }))?;
            let done: Vec<(&[u8], EventTime)> = capture.done().collect();
            e.slices_by_key_group(done.chunks(SLICE).map(|slice| {
                let done = done_rows(&keys, slice.iter().copied(), &name)?;
                let keys = done.columns()[..keys.len()].to_vec();
                Ok((done, keys))
            }))?;
            e.bytes.extend_from_slice(&capture.list);
            for c in capture.chunks {
                let batch = kept_rows(&rows, input, c.rows.iter().map(|(q, r)| (*q, r)), &name)?;
                chunks.write(c.id, ChunkBytes::of_batch(&batch, target.as_ref())?);
            }
            Ok(SnapshotOutput { state: Some(e.bytes), chunks })
        }))
    }

    /// Takes the state for checkpoint `checkpoint` (see the module's
    /// layout), with the runs' files to `writer`. Under a budget an
    /// updating ranking's rows are chunks, listed after the rest;
    /// keep-first keeps its rows (those waiting for the watermark) and
    /// keys inline.
    fn capture(&mut self, checkpoint: u64, writer: &mut ChunkWriter) -> Result<Capture> {
        let budgeted = self.budget.is_some();
        let rows_as_chunks = budgeted && matches!(self.plan.mode, RankMode::Updating { .. });
        let inline = self.partitions.iter().flatten().filter(|_| !rows_as_chunks);
        let rows = inline.clone().flat_map(|p| p.ranked.entries().map(|(q, r)| (q, Arc::clone(r)))).collect();
        let (mut done_keys, mut done_times) = (LargeBinaryBuilder::new(), Vec::new());
        for (key, t) in inline.filter_map(|p| p.emitted.map(|t| (&p.key, t))) {
            done_keys.append_value(key);
            done_times.push(t);
        }
        let mut list = Encoder::default();
        let chunks = match budgeted {
            true => self.encode_chunks(checkpoint, rows_as_chunks, writer, &mut list)?,
            false => Vec::new(),
        };
        Ok(Capture {
            watermark: self.watermark,
            arrivals: self.arrivals,
            rows,
            done_keys: done_keys.finish(),
            done_times,
            list: list.bytes,
            chunks,
        })
    }

    pub(super) fn decode_state(
        &mut self,
        states: &[&[u8]],
        chunks: &ChunkMap,
        owns: &dyn Fn(usize) -> bool,
    ) -> Result<()> {
        // The slowest subtask's watermark: no row is late that was not.
        let mut watermark = None::<EventTime>;
        for state in states {
            let mut d = Decoder::new(state);
            let w = d.i64()?;
            watermark = Some(watermark.map_or(w, |m| m.min(w)));
            self.arrivals = self.arrivals.max(d.u64()?);
            for _ in 0..d.u64()? {
                let key_group = d.u64()? as usize;
                let batch = d.batch()?;
                if owns(key_group) {
                    self.restore_rows(&batch)?;
                    self.keep_within_budget()?;
                }
            }
            for _ in 0..d.u64()? {
                let key_group = d.u64()? as usize;
                let batch = d.batch()?;
                if owns(key_group) {
                    self.restore_done(&batch)?;
                }
            }
            if !d.at_end() {
                self.restore_chunks(&mut d, chunks, owns)?;
            }
            d.finish()?;
        }
        self.watermark = watermark.unwrap_or(WATERMARK_MIN);
        // Windows the watermark has fired wait out their lateness.
        if let RankMode::Window { lateness, .. } = self.plan.mode
            && lateness > 0
        {
            let wm = self.watermark;
            let fired: Vec<(EventTime, u32)> = self
                .timers
                .iter()
                .copied()
                .filter(|(end, _)| wm != WATERMARK_MIN && end.saturating_sub(1) <= wm)
                .collect();
            for (end, p) in fired {
                self.timers.remove(&(end, p));
                self.partition(p).fired = true;
                self.expiry.insert((end.saturating_add(lateness), p));
            }
        }
        Ok(())
    }

    pub(super) fn restore_rows(&mut self, batch: &RecordBatch) -> Result<()> {
        let name = self.name.clone();
        let input = Arc::clone(&self.plan.input_schema);
        let width = input.fields().len();
        let damaged = || EngineError::State(format!("{name}: ranked rows have other columns than the query's"));
        if batch.num_columns() != width + 1
            || !input.fields().iter().zip(batch.columns()).all(|(f, c)| f.data_type().equals_datatype(c.data_type()))
        {
            return Err(damaged());
        }
        let seqs = batch.column(width).as_primitive_opt::<UInt64Type>().ok_or_else(damaged)?.clone();
        let data = RecordBatch::try_new(input, batch.columns()[..width].to_vec()).map_err(|_| damaged())?;
        let (keys, sorts, rows) = self.encode(&data)?;
        let upserts = self.encode_upserts(&data)?;
        let times = match self.plan.mode {
            RankMode::Window { end_column: c, .. } | RankMode::FirstByEventTime { time_column: c } => Some(
                data.column(c)
                    .as_primitive_opt::<datafusion::arrow::datatypes::TimestampMillisecondType>()
                    .ok_or_else(damaged)?
                    .clone(),
            ),
            RankMode::Updating { .. } => None,
        };
        let key_groups = match self.budget.is_some() {
            true => Some(key_groups(&self.keys.columns(&data)?, data.num_rows(), &mut self.hashes)?),
            false => None,
        };
        for r in 0..data.num_rows() {
            let p = self.partition_of(keys.as_ref().map_or(&[], |k| k.row(r).data()));
            if let Some(kgs) = &key_groups {
                self.partition(p).key_group = kgs[r] as u8;
            }
            let sort = sorts.as_ref().map_or(&[][..], |s| s.row(r).data());
            let fresh = self.partition(p).ranked.is_empty();
            self.partition(p).ranked.insert(sort, seqs.value(r), Arc::from(rows.row(r).data()), None);
            if let Some(upserts) = &upserts {
                self.partition(p)
                    .by_key
                    .get_or_insert_default()
                    .insert(upserts.row(r).data().into(), (sort.into(), seqs.value(r)));
            }
            let Some(times) = &times else { continue };
            if times.is_null(r) {
                return Err(damaged());
            }
            let t = times.value(r);
            if fresh {
                self.timers.insert((t, p));
            }
            if let RankMode::FirstByEventTime { .. } = self.plan.mode {
                self.partition(p).pending = Some(t);
            }
        }
        Ok(())
    }

    pub(super) fn restore_done(&mut self, batch: &RecordBatch) -> Result<()> {
        let name = self.name.clone();
        let damaged = || EngineError::State(format!("{name}: deduplicated keys have other columns than the query's"));
        let n = batch.num_columns();
        let times = batch.column(n - 1).as_primitive_opt::<Int64Type>().ok_or_else(damaged)?.clone();
        if n != self.keys.len() + 1 {
            return Err(damaged());
        }
        let keys = self.keys.encode_columns(&batch.columns()[..n - 1]).map_err(|_| damaged())?;
        let key_groups = match self.budget.is_some() {
            true => Some(key_groups(&batch.columns()[..n - 1], batch.num_rows(), &mut self.hashes)?),
            false => None,
        };
        for r in 0..batch.num_rows() {
            let p = self.partition_of(keys.as_ref().map_or(&[], |k| k.row(r).data()));
            let part = self.partition(p);
            part.emitted = Some(times.value(r));
            if let Some(kgs) = &key_groups {
                part.key_group = kgs[r] as u8;
            }
        }
        Ok(())
    }
}
