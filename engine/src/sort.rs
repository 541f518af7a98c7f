//! `ORDER BY` on a stream, as Flink allows it: ascending on the rowtime
//! first (then any other columns). Rows wait until the watermark passes
//! their time, then leave sorted: no row can come before them any more.
//! A row already behind the watermark when it arrives cannot be put in
//! order and is dropped as late, as Flink's `RowTimeSortOperator` does.
//! One subtask sees every row (the order is global); its state is the
//! rows still waiting, written whole at each checkpoint.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::compute::{concat_batches, filter_record_batch, lexsort_to_indices, not, take_record_batch};
use datafusion::arrow::datatypes::{SchemaRef, TimestampMillisecondType};
use datafusion::physical_expr::PhysicalSortExpr;

use crate::checkpoint::chunk::{ChunkMap, ChunkWriter};
use crate::checkpoint::codec::{Decoder, Encoder};
use crate::checkpoint::identity::typed_columns;
use crate::error::{EngineError, Result, ResultExt};
use crate::message::{EventTime, StreamBatch, WATERMARK_MIN};
use crate::metrics::{DropReason, OperatorMetrics};
use crate::operator::{Collector, Operator, StateSize};
use crate::plan::{OperatorContext, OperatorSpec, StateGrowth, StateShape};

/// An `ORDER BY rowtime [, …]` of a stream.
#[derive(Debug)]
pub struct TimeSortPlan {
    /// The rowtime column, the first sort key.
    pub time_column: usize,
    /// Every sort key, the rowtime ascending first.
    pub order: Vec<PhysicalSortExpr>,
    pub schema: SchemaRef,
}

impl OperatorSpec for TimeSortPlan {
    fn name(&self) -> String {
        "TimeSort".into()
    }

    fn explain(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let order: Vec<String> = self.order.iter().map(|o| o.to_string()).collect();
        writeln!(f, "  TimeSort: [{}] as the watermark passes", order.join(", "))
    }

    fn instantiate(self: Arc<Self>, name: String, cx: &OperatorContext) -> Result<Box<dyn Operator>> {
        let metrics = cx.register(&name);
        Ok(Box::new(TimeSort { plan: self, name, waiting: Vec::new(), watermark: WATERMARK_MIN, metrics }))
    }

    /// The rows waiting for the watermark.
    fn state(&self) -> Option<StateShape> {
        let order: Vec<String> = self.order.iter().map(|o| o.to_string()).collect();
        let signature = format!("rows {}; order {}", typed_columns(&self.schema), order.join(", "));
        Some(StateShape { kind: "TimeSort", signature, growth: StateGrowth::Bounded })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The sorting subtask.
pub struct TimeSort {
    plan: Arc<TimeSortPlan>,
    name: String,
    /// Rows ahead of the watermark, in arrival order.
    waiting: Vec<RecordBatch>,
    watermark: EventTime,
    metrics: Arc<OperatorMetrics>,
}

impl TimeSort {
    /// Whether each row's time is after `bound` (a NULL time never is).
    fn after(&self, batch: &RecordBatch, bound: impl Fn(usize) -> EventTime) -> Result<BooleanArray> {
        let times = batch.column(self.plan.time_column);
        let times = times
            .as_primitive_opt::<TimestampMillisecondType>()
            .ok_or_else(|| EngineError::Plan(format!("{}: the rowtime is not a TIMESTAMP(3)", self.name)))?;
        Ok((0..times.len()).map(|i| Some(times.is_valid(i) && times.value(i) > bound(i))).collect())
    }
}

impl Operator for TimeSort {
    fn name(&self) -> &str {
        &self.name
    }

    fn on_batch(&mut self, batch: StreamBatch, _out: &mut Collector) -> Result<()> {
        let watermark = self.watermark;
        // With per-row watermarks, the one in force when each row was read.
        let keep = match &batch.row_watermarks {
            Some(w) => self.after(&batch.data, |i| watermark.max(w.value(i)))?,
            None => self.after(&batch.data, |_| watermark)?,
        };
        let kept = filter_record_batch(&batch.data, &keep).context(|| format!("{}: buffering", self.name))?;
        let late = batch.num_rows() - kept.num_rows();
        if late > 0 {
            self.metrics.add_dropped(DropReason::Late, late as u64);
        }
        if kept.num_rows() > 0 {
            self.waiting.push(kept);
        }
        Ok(())
    }

    fn on_watermark(&mut self, watermark: EventTime, out: &mut Collector) -> Result<()> {
        self.watermark = self.watermark.max(watermark);
        if !self.waiting.is_empty() {
            let ctx = || format!("{}: sorting", self.name);
            let all = concat_batches(&self.plan.schema, &self.waiting).context(ctx)?;
            let later = self.after(&all, |_| watermark)?;
            let ready = filter_record_batch(&all, &not(&later).context(ctx)?).context(ctx)?;
            let waiting = filter_record_batch(&all, &later).context(ctx)?;
            self.waiting = if waiting.num_rows() > 0 { vec![waiting] } else { Vec::new() };
            if ready.num_rows() > 0 {
                let columns = self
                    .plan
                    .order
                    .iter()
                    .map(|o| o.evaluate_to_sort_column(&ready))
                    .collect::<datafusion::error::Result<Vec<_>>>()
                    .context(ctx)?;
                let order = lexsort_to_indices(&columns, None).context(ctx)?;
                out.batch(StreamBatch::new(take_record_batch(&ready, &order).context(ctx)?));
            }
        }
        out.watermark(watermark);
        Ok(())
    }

    fn state_size(&self) -> StateSize {
        StateSize { bytes: self.waiting.iter().map(|b| b.get_array_memory_size()).sum(), keys: None, spilled: 0 }
    }

    fn snapshot(&mut self, _checkpoint: u64, _chunks: &mut ChunkWriter) -> Result<Option<Vec<u8>>> {
        let mut e = Encoder::default();
        e.i64(self.watermark);
        e.u64(self.waiting.len() as u64);
        for b in &self.waiting {
            e.batch(b)?;
        }
        Ok(Some(e.bytes))
    }

    fn restore(&mut self, states: &[&[u8]], _chunks: &ChunkMap, _owns: &dyn Fn(usize) -> bool) -> Result<()> {
        let mut watermark = None::<EventTime>;
        for state in states {
            let mut d = Decoder::new(state);
            let w = d.i64()?;
            watermark = Some(watermark.map_or(w, |m| m.min(w)));
            for _ in 0..d.u64()? {
                self.waiting.push(d.batch_of(&self.plan.schema)?);
            }
            d.finish()?;
        }
        if let Some(w) = watermark {
            self.watermark = w;
        }
        Ok(())
    }
}
