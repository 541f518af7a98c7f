//! One subtask of an event-time temporal join: left rows wait for the
//! watermark, right rows become versions, and each waiting left row is
//! joined with its key's version at its time once the watermark passes it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, PrimitiveArray, RecordBatch, UInt32Array, new_null_array,
};
use datafusion::arrow::compute::kernels::aggregate::min;
use datafusion::arrow::compute::kernels::cmp::lt_eq;
use datafusion::arrow::compute::{
    cast, concat_batches, filter_record_batch, not, sort_to_indices, take, take_record_batch,
};
use datafusion::arrow::datatypes::{DataType, TimestampMillisecondType};
use datafusion::arrow::row::{RowConverter, Rows, SortField};

use super::TemporalJoinPlan;
use super::versions::Versions;
use crate::changelog::{self, RowKind};
use crate::checkpoint::chunk::{ChunkMap, ChunkWriter};
use crate::error::{EngineError, Result, ResultExt};
use crate::message::{EventTime, StreamBatch, WATERMARK_MIN};
use crate::metrics::{DropReason, OperatorMetrics};
use crate::operator::{Collector, Operator, StateSize};
use crate::operators::evaluate::columns;
use crate::window::late::LateRows;

/// Left rows waiting for the watermark, with the earliest of their times
/// (a batch is looked at only once the watermark reaches it).
pub(super) struct Waiting {
    pub(super) rows: RecordBatch,
    pub(super) earliest: EventTime,
}

/// A subtask of an event-time temporal join.
pub struct TemporalJoin {
    pub(super) plan: Arc<TemporalJoinPlan>,
    pub(super) name: String,
    metrics: Arc<OperatorMetrics>,
    pub(super) watermark: EventTime,
    /// Encodes join keys (as the left keys' types: both sides' keys are
    /// compared as one), and whole right rows.
    keys: RowConverter,
    key_types: Vec<DataType>,
    pub(super) rows: RowConverter,
    pub(super) versions: Versions,
    pub(super) waiting: Vec<Waiting>,
}

impl TemporalJoin {
    pub fn new(plan: Arc<TemporalJoinPlan>, name: String, metrics: Arc<OperatorMetrics>) -> Result<Self> {
        let ctx = || format!("{name}: encoding keys and rows");
        let key_types = plan
            .left_keys
            .iter()
            .map(|e| e.data_type(&plan.left_schema))
            .collect::<datafusion::error::Result<Vec<_>>>()
            .context(ctx)?;
        let keys = RowConverter::new(key_types.iter().cloned().map(SortField::new).collect()).context(ctx)?;
        let fields = plan.right_schema.fields().iter().map(|f| SortField::new(f.data_type().clone())).collect();
        let rows = RowConverter::new(fields).context(ctx)?;
        Ok(Self {
            plan,
            name,
            metrics,
            watermark: WATERMARK_MIN,
            keys,
            key_types,
            rows,
            versions: Versions::default(),
            waiting: Vec::new(),
        })
    }

    /// The keys of `batch` (rows of one side) encoded, and which rows have
    /// a NULL in them (which equal nothing).
    pub(super) fn encode_keys(&self, side: usize, batch: &RecordBatch) -> Result<(Rows, Vec<bool>)> {
        let ctx = || format!("{}: join keys", self.name);
        let exprs = if side == 0 { &self.plan.left_keys } else { &self.plan.right_keys };
        let mut cols = columns(exprs, batch).context(ctx)?;
        for (c, t) in cols.iter_mut().zip(&self.key_types) {
            if c.data_type() != t {
                *c = cast(c, t).context(ctx)?;
            }
        }
        let mut null = vec![false; batch.num_rows()];
        for c in cols.iter().filter(|c| c.null_count() > 0) {
            for (r, n) in null.iter_mut().enumerate() {
                *n |= c.is_null(r);
            }
        }
        Ok((self.keys.convert_columns(&cols).context(ctx)?, null))
    }

    /// Holds left rows, but counts and drops those behind the watermark
    /// (late: the versions they needed may be gone) or without a time.
    fn add_left(&mut self, batch: &StreamBatch, out: &mut Collector) -> Result<()> {
        let data = &batch.data;
        let times = time_column(data, self.plan.left_time, &self.name)?;
        let row_wm = batch.row_watermarks.as_ref().map(|w| w.values());
        let mut late = LateRows::default();
        for r in 0..data.num_rows() {
            let wm = row_wm.map_or(self.watermark, |w| w[r].max(self.watermark));
            if times.is_null(r) {
                late.push(r, DropReason::InvalidEventTime, wm);
            } else if times.value(r) < wm {
                late.push(r, DropReason::Late, wm);
            }
        }
        late.report(None, &self.metrics, data, out)?;
        let rows = match late.rows.is_empty() {
            true => data.clone(),
            false => {
                let mut keep = vec![true; data.num_rows()];
                for r in &late.rows {
                    keep[*r as usize] = false;
                }
                filter_record_batch(data, &BooleanArray::from(keep)).context(|| format!("{}: late rows", self.name))?
            }
        };
        let times = time_column(&rows, self.plan.left_time, &self.name)?;
        if let Some(earliest) = min(times) {
            self.waiting.push(Waiting { rows, earliest });
        }
        Ok(())
    }

    /// Adds the versions in `data` (right rows); `deleted` says, per row,
    /// whether it is a deletion, or `None` for a row that is no version.
    pub(super) fn add_versions(&mut self, data: &RecordBatch, deleted: impl Fn(usize) -> Option<bool>) -> Result<()> {
        let (keys, null) = self.encode_keys(1, data)?;
        let times = time_column(data, self.plan.right_time, &self.name)?;
        let rows = self.rows.convert_columns(data.columns()).context(|| format!("{}: encoding versions", self.name))?;
        for (r, null) in null.into_iter().enumerate() {
            let Some(deleted) = deleted(r) else { continue };
            if null || times.is_null(r) {
                continue;
            }
            self.versions.insert(keys.row(r).data(), times.value(r), deleted, rows.row(r).data());
        }
        Ok(())
    }

    /// Joins and emits the waiting left rows the watermark has passed, in
    /// time order; then drops the versions no later row can need.
    fn fire(&mut self, out: &mut Collector) -> Result<()> {
        let ctx = || format!("{}: firing", self.name);
        let wm = self.watermark;
        let mut ready = Vec::new();
        for w in std::mem::take(&mut self.waiting) {
            if w.earliest > wm {
                self.waiting.push(w);
                continue;
            }
            let times = time_column(&w.rows, self.plan.left_time, &self.name)?;
            let due = lt_eq(times, &PrimitiveArray::<TimestampMillisecondType>::new_scalar(wm)).context(ctx)?;
            if due.true_count() == w.rows.num_rows() {
                ready.push(w.rows);
                continue;
            }
            ready.push(filter_record_batch(&w.rows, &due).context(ctx)?);
            let rest = filter_record_batch(&w.rows, &not(&due).context(ctx)?).context(ctx)?;
            if let Some(earliest) = min(time_column(&rest, self.plan.left_time, &self.name)?) {
                self.waiting.push(Waiting { rows: rest, earliest });
            }
        }
        if !ready.is_empty() {
            let ready = concat_batches(&self.plan.left_schema, &ready).context(ctx)?;
            let order = sort_to_indices(ready.column(self.plan.left_time), None, None).context(ctx)?;
            let ready = take_record_batch(&ready, &order).context(ctx)?;
            let joined = self.join(&ready)?;
            self.metrics.rows_out.fetch_add(joined.num_rows() as u64, Ordering::Relaxed);
            out.batch(StreamBatch::new(joined));
        }
        self.versions.expire(wm);
        Ok(())
    }

    /// Each of `left`'s rows with its key's version at its time.
    fn join(&self, left: &RecordBatch) -> Result<RecordBatch> {
        let ctx = || format!("{}: joining", self.name);
        let (keys, null) = self.encode_keys(0, left)?;
        let times = time_column(left, self.plan.left_time, &self.name)?;
        let mut left_rows: Vec<u32> = Vec::with_capacity(left.num_rows());
        let mut right_rows: Vec<Option<u32>> = Vec::with_capacity(left.num_rows());
        let mut found: Vec<&[u8]> = Vec::with_capacity(left.num_rows());
        for (r, null) in null.into_iter().enumerate() {
            let version = match null {
                true => None,
                false => self.versions.at(keys.row(r).data(), times.value(r)),
            };
            match version {
                Some(row) => {
                    left_rows.push(r as u32);
                    right_rows.push(Some(found.len() as u32));
                    found.push(row);
                }
                None if self.plan.outer => {
                    left_rows.push(r as u32);
                    right_rows.push(None);
                }
                None => {}
            }
        }
        let parser = self.rows.parser();
        let right = self.rows.convert_rows(found.iter().map(|b| parser.parse(b))).context(ctx)?;
        let left = take_record_batch(left, &UInt32Array::from(left_rows)).context(ctx)?;
        let mut out: Vec<ArrayRef> = left.columns().to_vec();
        if found.len() == right_rows.len() {
            out.extend(right);
        } else if found.is_empty() {
            out.extend(right.iter().map(|c| new_null_array(c.data_type(), right_rows.len())));
        } else {
            let spread = UInt32Array::from(right_rows);
            for c in &right {
                out.push(take(c.as_ref(), &spread, None).context(ctx)?);
            }
        }
        RecordBatch::try_new(Arc::clone(&self.plan.output_schema), out).context(ctx)
    }
}

/// The rowtime column `column` of `batch`.
pub(super) fn time_column<'a>(
    batch: &'a RecordBatch,
    column: usize,
    name: &str,
) -> Result<&'a PrimitiveArray<TimestampMillisecondType>> {
    batch
        .column(column)
        .as_any()
        .downcast_ref::<PrimitiveArray<TimestampMillisecondType>>()
        .ok_or_else(|| EngineError::Plan(format!("{name}: column {column} is not a TIMESTAMP(3)")))
}

impl Operator for TemporalJoin {
    fn name(&self) -> &str {
        &self.name
    }

    fn on_batch(&mut self, _batch: StreamBatch, _out: &mut Collector) -> Result<()> {
        Err(crate::operator::side_required(&self.name))
    }

    fn on_input(&mut self, input: usize, batch: StreamBatch, out: &mut Collector) -> Result<()> {
        self.metrics.rows_in.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        if input == 0 {
            return self.add_left(&batch, out);
        }
        if !self.plan.right_changelog {
            return self.add_versions(&batch.data, |_| Some(false));
        }
        let (data, kinds) = changelog::split(&batch.data);
        self.add_versions(&data, |r| match kinds.as_ref().map_or(RowKind::Insert, |k| k.get(r)) {
            RowKind::Insert | RowKind::UpdateAfter => Some(false),
            RowKind::Delete => Some(true),
            RowKind::UpdateBefore => None,
        })
    }

    fn on_watermark(&mut self, watermark: EventTime, out: &mut Collector) -> Result<()> {
        if watermark > self.watermark {
            self.watermark = watermark;
            self.fire(out)?;
        }
        out.watermark(watermark);
        Ok(())
    }

    fn snapshot(&mut self, _checkpoint: u64, _chunks: &mut ChunkWriter) -> Result<Option<Vec<u8>>> {
        self.encode_state().map(Some)
    }

    fn restore(&mut self, states: &[&[u8]], _chunks: &ChunkMap, owns: &dyn Fn(usize) -> bool) -> Result<()> {
        self.decode_state(states, owns)
    }

    fn state_size(&self) -> StateSize {
        let waiting: usize = self.waiting.iter().map(|w| w.rows.get_array_memory_size()).sum();
        StateSize { bytes: self.versions.bytes() + waiting, keys: Some(self.versions.keys()), spilled: 0 }
    }
}
