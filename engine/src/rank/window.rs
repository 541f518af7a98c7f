//! Window Top-N: a window's ranks leave once, when the watermark passes its
//! end. Over a window aggregation with `ALLOWED LATENESS`, the window stays
//! until the lateness has passed too: a re-fired result replaces its
//! group's row (the rows' key is the aggregation's), and the ranks it
//! changed leave as updates.

use std::sync::Arc;

use datafusion::arrow::array::Array;

use super::operator::{Changes, Rank, time_column};
use super::ranked::Entry;
use crate::changelog::RowKind;
use crate::error::Result;
use crate::message::{EventTime, StreamBatch, WATERMARK_MIN};
use crate::metrics::DropReason;
use crate::operator::Collector;
use crate::window::late::LateRows;

impl Rank {
    pub(super) fn on_window_batch(
        &mut self,
        batch: &StreamBatch,
        end_column: usize,
        lateness: i64,
        out: &mut Collector,
    ) -> Result<()> {
        let data = &batch.data;
        let ends = time_column(data, end_column, &self.name)?;
        let (keys, sorts) = self.encode_keys(data)?;
        let upserts = self.encode_upserts(data)?;
        let capacity = self.plan.capacity();
        let last = self.plan.last as usize;
        let mut inserted: Vec<(u32, u64, u32)> = Vec::new();
        let mut touched: Vec<(u32, Vec<Entry>)> = Vec::new();
        let placeholder: Arc<[u8]> = Arc::from(Vec::new());
        let row_wm = batch.row_watermarks.as_ref().map(|w| w.values());
        let mut late = LateRows::default();
        let batch_no = self.next_batch();
        for r in 0..data.num_rows() {
            let wm = row_wm.map_or(self.watermark, |w| w[r].max(self.watermark));
            if ends.is_null(r) {
                late.push(r, DropReason::InvalidEventTime, wm);
                continue;
            }
            let end = ends.value(r);
            if wm != WATERMARK_MIN && end.saturating_sub(1).saturating_add(lateness) <= wm {
                late.push(r, DropReason::Late, wm);
                continue;
            }
            let p = self.partition_of(keys.as_ref().map_or(&[], |k| k.row(r).data()));
            let part = self.partition(p);
            if part.ranked.is_empty() && !part.fired {
                self.timers.insert((end, p));
            }
            let part = self.partition(p);
            // A fired window's changed ranks leave as updates.
            if part.fired && part.touched != batch_no {
                part.touched = batch_no;
                touched.push((p, part.ranked.top(last)));
            }
            let sort = sorts.as_ref().map_or(&[][..], |s| s.row(r).data());
            let seq = self.next_arrival();
            let part = self.partition(p);
            if let Some(upserts) = &upserts
                && let Some((old_sort, old_seq)) =
                    part.by_key.get_or_insert_default().insert(upserts.row(r).data().into(), (sort.into(), seq))
            {
                part.ranked.remove(&old_sort, old_seq);
            }
            if part.ranked.enters(sort, seq, capacity) {
                part.ranked.insert(sort, seq, Arc::clone(&placeholder), capacity);
                inserted.push((p, seq, r as u32));
            }
        }
        self.fill(data, sorts.as_ref(), &inserted)?;
        let mut withdrawn = Changes::default();
        let mut added = Changes::default();
        for (p, before) in touched {
            let after = self.partition(p).ranked.top(last);
            self.diff(&before, &after, &mut withdrawn, &mut added);
        }
        withdrawn.append(added);
        self.emit(withdrawn, out)?;
        late.report(self.plan.late_output.as_deref(), &self.metrics, data, out)
    }

    /// Emits the ranks of window partition `p`, whose end `end` the
    /// watermark passed; keeps it for its lateness, if any.
    pub(super) fn fire_window(&mut self, p: u32, end: EventTime, lateness: i64, now: &mut Changes) {
        let kept = self.kept();
        let top: Vec<Entry> = self.partition(p).ranked.top(kept.end);
        for (k, (_, row)) in top.iter().enumerate().skip(kept.start) {
            now.push(row, k as u64 + 1, RowKind::Insert);
        }
        match lateness {
            0 => self.drop_partition(p),
            _ => {
                self.partition(p).fired = true;
                self.expiry.insert((end.saturating_add(lateness), p));
            }
        }
    }

    /// Drops the fired windows whose lateness the watermark `wm` passed.
    pub(super) fn expire_windows(&mut self, wm: EventTime) {
        while let Some(&(until, p)) = self.expiry.first() {
            if until.saturating_sub(1) > wm {
                break;
            }
            self.expiry.pop_first();
            self.drop_partition(p);
        }
    }
}
