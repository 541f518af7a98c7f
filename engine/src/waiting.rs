//! Rows waiting for the watermark. Operators that take a key's rows in
//! event-time order (OVER windows, MATCH_RECOGNIZE) hold each row until the
//! watermark passes its time: only then can no earlier row of its key come.
//! A row already behind the watermark when it arrives cannot be put in
//! order: it is late, as in Flink.

use datafusion::arrow::array::{Array, AsArray, BooleanArray, RecordBatch, TimestampMillisecondArray};
use datafusion::arrow::compute::{concat_batches, filter_record_batch, not};
use datafusion::arrow::datatypes::{SchemaRef, TimestampMillisecondType};

use crate::error::{EngineError, Result, ResultExt};
use crate::message::{EventTime, StreamBatch, WATERMARK_MIN};
use crate::metrics::DropReason;
use crate::window::late::LateRows;

/// The rows of one operator subtask that wait for the watermark.
pub struct WaitingRows {
    schema: SchemaRef,
    time_column: usize,
    batches: Vec<RecordBatch>,
}

impl WaitingRows {
    /// Rows of `schema` whose event time is `time_column` (TIMESTAMP(3)).
    pub fn new(schema: SchemaRef, time_column: usize) -> Self {
        Self {
            schema,
            time_column,
            batches: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Bytes of the rows waiting, for `weir.memory`.
    pub fn bytes(&self) -> usize {
        self.batches.iter().map(|b| b.get_array_memory_size()).sum()
    }

    /// The event times of `data`'s rows.
    pub fn times<'b>(&self, data: &'b RecordBatch, name: &str) -> Result<&'b TimestampMillisecondArray> {
        let c = data.column(self.time_column);
        c.as_primitive_opt::<TimestampMillisecondType>().ok_or_else(|| {
            EngineError::Plan(format!(
                "{name}: time column has type {}, expected TIMESTAMP(3)",
                c.data_type()
            ))
        })
    }

    /// Keeps the rows of `batch` that can still be put in order under the
    /// operator's `watermark` (or a row's own, with per-row watermarks);
    /// the others go into `late`, with why.
    pub fn admit(&mut self, batch: &StreamBatch, watermark: EventTime, late: &mut LateRows, name: &str) -> Result<()> {
        let data = &batch.data;
        let times = self.times(data, name)?;
        let row_wm = batch.row_watermarks.as_ref().map(|w| w.values());
        let mut keep = Vec::with_capacity(data.num_rows());
        for r in 0..data.num_rows() {
            let wm = row_wm.map_or(watermark, |w| w[r].max(watermark));
            let usable = match times.is_null(r) {
                true => {
                    late.push(r, DropReason::InvalidEventTime, wm);
                    false
                }
                false if wm != WATERMARK_MIN && times.value(r) <= wm => {
                    late.push(r, DropReason::Late, wm);
                    false
                }
                false => true,
            };
            keep.push(usable);
        }
        let kept = filter_record_batch(data, &BooleanArray::from(keep)).context(|| format!("{name}: late rows"))?;
        self.push(kept);
        Ok(())
    }

    /// Adds rows that wait (restored ones, or rows already checked).
    pub fn push(&mut self, rows: RecordBatch) {
        if rows.num_rows() > 0 {
            self.batches.push(rows);
        }
    }

    /// Takes the waiting rows the watermark `wm` passed.
    pub fn ready(&mut self, wm: EventTime, name: &str) -> Result<RecordBatch> {
        let ctx = || format!("{name}: waiting rows");
        let waiting = concat_batches(&self.schema, &std::mem::take(&mut self.batches)).context(ctx)?;
        let times = self.times(&waiting, name)?;
        let passed: BooleanArray = times.iter().map(|t| Some(t.is_some_and(|t| t <= wm))).collect();
        let rest = filter_record_batch(&waiting, &not(&passed).context(ctx)?).context(ctx)?;
        self.push(rest);
        filter_record_batch(&waiting, &passed).context(ctx)
    }

    /// Every waiting row, for a checkpoint.
    pub fn all(&self, name: &str) -> Result<RecordBatch> {
        concat_batches(&self.schema, &self.batches).context(|| format!("{name}: waiting rows"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use std::sync::Arc;

    #[test]
    fn rows_wait_until_the_watermark_passes_them_and_late_ones_are_set_aside() {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        )]));
        let batch = |ts: Vec<Option<i64>>| {
            StreamBatch::new(
                RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(TimestampMillisecondArray::from(ts))]).unwrap(),
            )
        };
        let mut w = WaitingRows::new(Arc::clone(&schema), 0);
        let mut late = LateRows::default();
        w.admit(&batch(vec![Some(5), Some(20), None, Some(10)]), 9, &mut late, "t")
            .unwrap();
        assert_eq!(
            late.rows,
            vec![0, 2],
            "5 is behind the watermark 9, the NULL has no time"
        );
        assert_eq!(w.ready(10, "t").unwrap().num_rows(), 1);
        assert_eq!(w.ready(19, "t").unwrap().num_rows(), 0);
        assert_eq!(w.all("t").unwrap().num_rows(), 1);
        assert_eq!(w.ready(20, "t").unwrap().num_rows(), 1);
        assert!(w.is_empty());
    }
}
