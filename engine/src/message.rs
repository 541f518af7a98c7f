//! What flows between tasks: data batches and control events.

use std::time::{SystemTime, UNIX_EPOCH};

use datafusion::arrow::array::{Array, BooleanArray, Int64Array, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{filter, filter_record_batch, take, take_record_batch};

use crate::error::{Result, ResultExt};

/// Event time in milliseconds since the Unix epoch (Flink's `TIMESTAMP(3)`).
pub type EventTime = i64;

/// The watermark before any event has been seen.
pub const WATERMARK_MIN: EventTime = i64::MIN;
/// The watermark a bounded input sends when it ends: it fires every window.
pub const WATERMARK_END: EventTime = i64::MAX;

/// Processing time in the unit of event time, for the `arrived_at` column
/// of the late-data side table.
pub fn now_ms() -> EventTime {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// A batch of rows on its way through a job.
///
/// `row_watermarks` exists only with `'scan.watermark.emit.strategy' =
/// 'on-event'`: for every row it holds the source watermark in force just
/// before that row was read, so that an operator downstream decides lateness
/// exactly as Flink's per-record watermarks would, whatever the batch size.
/// Operators that drop or reorder rows apply the same selection to it.
#[derive(Debug, Clone)]
pub struct StreamBatch {
    pub data: RecordBatch,
    pub row_watermarks: Option<Int64Array>,
}

impl StreamBatch {
    /// A batch without per-row watermarks (periodic watermarks).
    pub fn new(data: RecordBatch) -> Self {
        Self {
            data,
            row_watermarks: None,
        }
    }

    pub fn num_rows(&self) -> usize {
        self.data.num_rows()
    }

    /// Keeps the rows where `mask` is true, in rows and watermarks alike.
    pub fn filter(&self, mask: &BooleanArray) -> Result<Self> {
        let data = filter_record_batch(&self.data, mask).context(|| "filter".into())?;
        let row_watermarks = match &self.row_watermarks {
            Some(w) => Some(downcast_i64(filter(w, mask).context(|| "filter".into())?)),
            None => None,
        };
        Ok(Self {
            data,
            row_watermarks,
        })
    }

    /// Picks rows by index, in rows and watermarks alike.
    pub fn take(&self, indices: &UInt32Array) -> Result<Self> {
        let data = take_record_batch(&self.data, indices).context(|| "take".into())?;
        let row_watermarks = match &self.row_watermarks {
            Some(w) => Some(downcast_i64(take(w, indices, None).context(|| "take".into())?)),
            None => None,
        };
        Ok(Self {
            data,
            row_watermarks,
        })
    }

    /// `data`, whose row `i` comes from this batch's row `from[i]`: each
    /// row keeps the watermark of the row it comes from.
    pub fn derived(&self, data: RecordBatch, from: &UInt32Array) -> Result<Self> {
        let row_watermarks = match &self.row_watermarks {
            Some(w) => Some(downcast_i64(take(w, from, None).context(|| "take".into())?)),
            None => None,
        };
        Ok(Self { data, row_watermarks })
    }

    /// Replaces the row data (same number of rows), keeping the watermarks.
    pub fn with_data(&self, data: RecordBatch) -> Self {
        debug_assert_eq!(data.num_rows(), self.data.num_rows());
        Self {
            data,
            row_watermarks: self.row_watermarks.clone(),
        }
    }
}

fn downcast_i64(a: std::sync::Arc<dyn Array>) -> Int64Array {
    a.as_any()
        .downcast_ref::<Int64Array>()
        .cloned()
        .expect("watermark column is Int64 by construction")
}

/// A message on a channel between two tasks.
#[derive(Debug, Clone)]
pub enum Message {
    /// Rows.
    Data(StreamBatch),
    /// No row with an event time at or before this will follow from this
    /// input (only ever moves forward on one channel).
    Watermark(EventTime),
    /// Checkpoint `n`: everything before it belongs to the checkpoint,
    /// everything after to the next.
    Barrier(u64),
    /// The input has no rows for now (all its partitions are idle): it
    /// holds no watermark back until it sends rows or a watermark again.
    Idle,
    /// The input has ended; nothing follows.
    End,
    /// Rows for the stage's `LATE DATA INTO` table, made by a source (records
    /// it could not decode). Never sent on a channel: the task that produced
    /// it writes it to its own late-data sink, as operators' late rows are.
    Late(RecordBatch),
}
