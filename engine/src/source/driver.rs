//! One source subtask: reads its partitions, adds computed columns,
//! generates watermarks per partition (Flink's watermark push-down), and
//! accounts for the records its reader could not decode.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::error::Result;
use crate::message::{EventTime, Message, StreamBatch, WATERMARK_END, WATERMARK_MIN, now_ms};
use crate::metrics::{DropReason, OperatorMetrics};
use crate::source::watermark::PartitionWatermarks;
use crate::source::{BadRecord, SourceEvent, SourcePlan, SourceReader};
use crate::window::late::decode_errors_batch;

/// Turns a reader's events into the messages of a source subtask.
pub struct SourceDriver {
    plan: Arc<SourcePlan>,
    reader: Box<dyn SourceReader>,
    watermarks: PartitionWatermarks,
    emitted: EventTime,
    emitted_at: Instant,
    queue: VecDeque<Message>,
    done: bool,
    metrics: Arc<OperatorMetrics>,
}

impl SourceDriver {
    pub fn new(plan: Arc<SourcePlan>, reader: Box<dyn SourceReader>, metrics: Arc<OperatorMetrics>) -> Self {
        Self {
            plan,
            reader,
            watermarks: PartitionWatermarks::default(),
            emitted: WATERMARK_MIN,
            emitted_at: Instant::now(),
            queue: VecDeque::new(),
            done: false,
            metrics,
        }
    }

    /// The next message; `Message::End` once, after the final watermark.
    pub async fn next(&mut self) -> Result<Message> {
        loop {
            if let Some(m) = self.queue.pop_front() {
                return Ok(m);
            }
            if self.done {
                return Ok(Message::End);
            }
            match self.reader.next().await? {
                None => {
                    self.done = true;
                    // A bounded input that ended fires every window downstream.
                    self.queue.push_back(Message::Watermark(WATERMARK_END));
                }
                Some(SourceEvent::Batch { partition, batch }) => {
                    self.metrics
                        .rows_out
                        .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                    let data = match &self.plan.computed {
                        Some(p) => p.apply(&batch, "computed columns")?,
                        None => batch,
                    };
                    let mut batch = StreamBatch::new(data);
                    if let Some(wm) = &self.plan.watermark {
                        batch.row_watermarks =
                            self.watermarks.observe(wm, partition, &batch.data, wm.on_event)?;
                    }
                    if batch.num_rows() > 0 {
                        self.queue.push_back(Message::Data(batch));
                    }
                    self.maybe_emit_watermark();
                }
                Some(SourceEvent::PartitionEnd(partition)) => {
                    self.watermarks.end(partition);
                    self.maybe_emit_watermark();
                }
                Some(SourceEvent::BadRecords(records)) => self.on_bad_records(&records)?,
            }
        }
    }

    /// Counts and logs records the reader could not decode, so that none
    /// vanishes silently, and routes them to the side table if there is one.
    fn on_bad_records(&mut self, records: &[BadRecord]) -> Result<()> {
        self.metrics
            .add_dropped(DropReason::DecodeError, records.len() as u64);
        for r in records {
            tracing::warn!(
                table = %self.plan.table,
                location = %r.location,
                error = %r.error,
                record = %r.text,
                "skipped a record that cannot be decoded"
            );
        }
        if let Some(plan) = &self.plan.late_output
            && !records.is_empty()
        {
            let batch = decode_errors_batch(plan, records.len(), self.watermarks.combined(), now_ms())?;
            self.queue.push_back(Message::Late(batch));
        }
        Ok(())
    }

    fn maybe_emit_watermark(&mut self) {
        let Some(plan) = &self.plan.watermark else {
            return;
        };
        let wm = self.watermarks.combined();
        if wm <= self.emitted {
            return;
        }
        if plan.on_event || self.emitted_at.elapsed() >= plan.interval {
            self.emitted = wm;
            self.emitted_at = Instant::now();
            self.queue.push_back(Message::Watermark(wm));
        }
    }
}
