//! Keep-first deduplication by event time: a key's earliest row leaves,
//! append-only, once the watermark passes it; no earlier row can come then.

use std::sync::Arc;

use datafusion::arrow::array::Array;

use super::operator::{Changes, Rank, time_column};
use super::ranked::Ranked;
use crate::changelog::RowKind;
use crate::error::Result;
use crate::message::{StreamBatch, WATERMARK_MIN};
use crate::metrics::DropReason;
use crate::operator::Collector;
use crate::window::late::LateRows;

impl Rank {
    pub(super) fn on_first_batch(&mut self, batch: &StreamBatch, time: usize, out: &mut Collector) -> Result<()> {
        let data = &batch.data;
        let times = time_column(data, time, &self.name)?;
        let (keys, sorts, rows) = self.encode(data)?;
        self.load_spilled(data, keys.as_ref())?;
        let batch_no = self.next_batch();
        // Partitions the batch made, with a row of each (under a budget).
        let mut fresh: Vec<(u32, u32)> = Vec::new();
        let budgeted = self.budget.is_some();
        let row_wm = batch.row_watermarks.as_ref().map(|w| w.values());
        let mut late = LateRows::default();
        let mut now = Changes::default();
        for r in 0..data.num_rows() {
            // With per-row watermarks, first rows leave between the rows
            // that pass them, as Flink's on-event watermarks would.
            if let Some(w) = row_wm
                && w[r] > self.watermark
            {
                self.watermark = w[r];
                self.fire(w[r], &mut now);
            }
            let wm = self.watermark;
            if times.is_null(r) {
                late.push(r, DropReason::InvalidEventTime, wm);
                continue;
            }
            let t = times.value(r);
            let p = self.partition_of(keys.as_ref().map_or(&[], |k| k.row(r).data()));
            let part = self.partition(p);
            if budgeted && part.touched == 0 && part.emitted.is_none() && part.ranked.is_empty() {
                fresh.push((p, r as u32));
            }
            part.touched = batch_no;
            if let Some(first) = self.partition(p).emitted {
                // A later row of the key is a duplicate; an earlier one
                // came after the watermark made the first row final.
                if t < first {
                    late.push(r, DropReason::Late, wm);
                }
                continue;
            }
            let sort = sorts.as_ref().map_or(&[][..], |s| s.row(r).data());
            let seq = self.next_arrival();
            let part = self.partition(p);
            if !part.ranked.enters(sort, seq, Some(1)) {
                continue;
            }
            part.ranked.insert(sort, seq, Arc::from(rows.row(r).data()), Some(1));
            let before = part.pending.replace(t);
            if let Some(b) = before {
                self.timers.remove(&(b, p));
            }
            // Behind the watermark nothing earlier can come: it is final.
            if wm != WATERMARK_MIN && t <= wm {
                self.fire_first(p, &mut now);
            } else {
                self.timers.insert((t, p));
            }
        }
        self.set_key_groups(data, &fresh)?;
        self.emit(now, out)?;
        late.report(self.plan.late_output.as_deref(), &self.metrics, data, out)
    }

    /// Emits a partition's first row and keeps only its time.
    pub(super) fn fire_first(&mut self, p: u32, now: &mut Changes) {
        let part = self.partition(p);
        if let Some((_, row)) = part.ranked.top(1).first() {
            now.push(row, 1, RowKind::Insert);
        }
        part.emitted = part.pending.take();
        part.ranked = Ranked::default();
    }
}
