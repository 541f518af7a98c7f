//! Updating Top-N and deduplication: each batch ranks its rows into their
//! partitions and emits the changes to the ranks it touched (Flink's
//! `AppendOnlyTopNFunction` and `RetractableTopNFunction`).

use std::sync::Arc;

use super::operator::{Changes, Rank};
use super::ranked::Entry;
use crate::changelog::{self, RowKind};
use crate::error::{Result, ResultExt};
use crate::message::StreamBatch;
use crate::operator::Collector;

impl Rank {
    pub(super) fn on_updating_batch(&mut self, batch: &StreamBatch, out: &mut Collector) -> Result<()> {
        let (data, kinds) = changelog::split(&batch.data);
        // Over appends, only the rows still kept after the batch are
        // encoded whole; a changelog's retractions compare whole rows.
        let (keys, sorts) = self.encode_keys(&data)?;
        self.load_spilled(&data, keys.as_ref())?;
        let rows = match kinds {
            Some(_) => {
                Some(self.rows.convert_columns(data.columns()).context(|| format!("{}: encoding rows", self.name))?)
            }
            None => None,
        };
        let capacity = self.plan.capacity();
        let last = self.plan.last as usize;
        let batch_no = self.next_batch();
        let mut touched: Vec<(u32, Vec<Entry>)> = Vec::new();
        let mut inserted: Vec<(u32, u64, u32)> = Vec::new();
        let placeholder: Arc<[u8]> = Arc::from(Vec::new());
        let mut missing = 0;
        // Partitions the batch made, with a row of each (under a budget).
        let mut fresh: Vec<(u32, u32)> = Vec::new();
        let budgeted = self.budget.is_some();
        for r in 0..data.num_rows() {
            let p = self.partition_of(keys.as_ref().map_or(&[], |k| k.row(r).data()));
            let part = self.partition(p);
            if part.touched != batch_no {
                if budgeted && part.touched == 0 && part.ranked.is_empty() {
                    fresh.push((p, r as u32));
                }
                part.touched = batch_no;
                let before = part.ranked.top(last);
                touched.push((p, before));
            }
            let sort = sorts.as_ref().map_or(&[][..], |s| s.row(r).data());
            if let (Some(kinds), Some(rows)) = (&kinds, &rows)
                && kinds.get(r).retracts()
            {
                // A row it does not rank (never came, or state TTL dropped
                // its partition) takes back nothing, and is counted.
                if !self.partition(p).ranked.retract(sort, rows.row(r).data()) {
                    missing += 1;
                }
                continue;
            }
            let seq = self.next_arrival();
            let ranked = &mut self.partition(p).ranked;
            if !ranked.enters(sort, seq, capacity) {
                continue;
            }
            match &rows {
                Some(rows) => ranked.insert(sort, seq, Arc::from(rows.row(r).data()), capacity),
                None => {
                    ranked.insert(sort, seq, Arc::clone(&placeholder), capacity);
                    inserted.push((p, seq, r as u32));
                }
            }
        }
        self.fill(&data, sorts.as_ref(), &inserted)?;
        self.set_key_groups(&data, &fresh)?;
        let mut withdrawn = Changes::default();
        let mut added = Changes::default();
        for (p, before) in touched {
            let after: Vec<Entry> = self.partition(p).ranked.top(last);
            self.diff(&before, &after, &mut withdrawn, &mut added);
            if self.partition(p).ranked.is_empty() {
                self.drop_partition(p);
            }
        }
        withdrawn.append(added);
        self.metrics.add_dropped(crate::metrics::DropReason::ExpiredState, missing);
        self.emit(withdrawn, out)
    }

    /// The changes from a partition's kept ranks `before` to `after`.
    pub(super) fn diff(&self, before: &[Entry], after: &[Entry], withdrawn: &mut Changes, added: &mut Changes) {
        let kept = self.kept();
        fn at(rows: &[Entry], k: usize) -> Option<(u64, &Arc<[u8]>)> {
            rows.get(k).map(|(seq, row)| (*seq, row))
        }
        if self.plan.number {
            for k in kept {
                let rank = k as u64 + 1;
                match (at(before, k), at(after, k)) {
                    (Some((b, _)), Some((a, _))) if a == b => {}
                    (Some((_, b)), Some((_, a))) => {
                        withdrawn.push(b, rank, RowKind::UpdateBefore);
                        added.push(a, rank, RowKind::UpdateAfter);
                    }
                    (Some((_, b)), None) => withdrawn.push(b, rank, RowKind::Delete),
                    (None, Some((_, a))) => added.push(a, rank, RowKind::Insert),
                    (None, None) => {}
                }
            }
            return;
        }
        let range = |rows: &'_ [Entry]| -> Vec<Entry> {
            rows.get(kept.start..kept.end.min(rows.len())).unwrap_or(&[]).to_vec()
        };
        let (before, after) = (range(before), range(after));
        let gone: Vec<&Entry> = before.iter().filter(|b| !after.iter().any(|a| a.0 == b.0)).collect();
        let new: Vec<&Entry> = after.iter().filter(|a| !before.iter().any(|b| a.0 == b.0)).collect();
        // A Top-1 replaces its row: an update, as Flink's deduplication.
        let replaced = kept.len() == 1 && gone.len() == 1 && new.len() == 1;
        for (_, row) in gone {
            withdrawn.push(row, kept.start as u64 + 1, if replaced { RowKind::UpdateBefore } else { RowKind::Delete });
        }
        for (_, row) in new {
            added.push(row, kept.start as u64 + 1, if replaced { RowKind::UpdateAfter } else { RowKind::Insert });
        }
    }
}
