//! A window TVF whose rows are used as they are (not aggregated): adds
//! `window_start`, `window_end` and `window_time` to every row, one row per
//! window it belongs to (so a hopping window repeats rows).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, TimestampMillisecondArray, UInt32Array};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimestampMillisecondType};

use crate::error::{EngineError, Result, ResultExt};
use crate::message::StreamBatch;
use crate::operator::{Collector, Operator};
use crate::window::spec::WindowSpec;

/// What a window-assigning subtask needs.
#[derive(Debug)]
pub struct WindowAssignPlan {
    pub window: WindowSpec,
    pub time_column: usize,
    /// Input columns plus the three window columns.
    pub schema: SchemaRef,
}

/// Adds window columns (rows with a NULL event time belong to no window and
/// are left out, as in Flink).
pub struct WindowAssign {
    plan: Arc<WindowAssignPlan>,
    name: String,
}

impl WindowAssign {
    pub fn new(plan: Arc<WindowAssignPlan>, name: String) -> Self {
        Self { plan, name }
    }
}

impl Operator for WindowAssign {
    fn name(&self) -> &str {
        &self.name
    }

    fn on_batch(&mut self, batch: StreamBatch, out: &mut Collector) -> Result<()> {
        let times = batch.data.column(self.plan.time_column);
        let times = times
            .as_primitive_opt::<TimestampMillisecondType>()
            .ok_or_else(|| EngineError::Plan(format!("{}: event time is not TIMESTAMP(3)", self.name)))?;
        let w = self.plan.window;
        let mut rows: Vec<u32> = Vec::with_capacity(batch.num_rows());
        let mut starts: Vec<i64> = Vec::with_capacity(batch.num_rows());
        let mut ends: Vec<i64> = Vec::with_capacity(batch.num_rows());
        for i in 0..times.len() {
            if times.is_null(i) {
                continue;
            }
            let ts = times.value(i);
            for end in w.window_ends_of_slice(w.slice_start(ts)) {
                rows.push(i as u32);
                starts.push(w.window_start(end));
                ends.push(end);
            }
        }
        let expanded = batch.take(&UInt32Array::from(rows))?;
        let end = TimestampMillisecondArray::from(ends);
        // The window's time is an instant; its bounds are shown on the
        // clock the windows are aligned to.
        let tz = match self.plan.schema.fields().last().map(|f| f.data_type()) {
            Some(DataType::Timestamp(_, tz)) => tz.clone(),
            _ => None,
        };
        let time = end.unary::<_, TimestampMillisecondType>(|e| e - 1).with_timezone_opt(tz);
        let (start, end) = match w.local_shift {
            0 => (TimestampMillisecondArray::from(starts), end),
            shift => (TimestampMillisecondArray::from(starts).unary(|s| s + shift), end.unary(|e| e + shift)),
        };
        let mut columns: Vec<ArrayRef> = expanded.data.columns().to_vec();
        columns.push(Arc::new(start));
        columns.push(Arc::new(end));
        columns.push(Arc::new(time));
        let data = RecordBatch::try_new(Arc::clone(&self.plan.schema), columns)
            .context(|| format!("{}: building batch", self.name))?;
        out.batch(expanded.with_data(data));
        Ok(())
    }
}
