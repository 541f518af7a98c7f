//! An interval or regular join within its share of `state.memory.budget`
//! (the spilling backend): once its rows outgrow the share, the oldest
//! batches of an inner side are spilled as a run (`join/runs.rs`), and a
//! new row of the other side meets them after the rows in memory, reading
//! only the runs its time can meet and, of those, only its key groups'
//! parts.
//!
//! Only inner sides spill, of joins with keys and without a state TTL: an
//! outer side marks which of its held rows met a partner, and a TTL counts
//! the held batches, both in memory (docs/state.md).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::compute::kernels::aggregate::{max, min};

use super::IntervalJoin;
use crate::error::{Result, ResultExt};
use crate::join::index::{KeyIndex, Reach};
use crate::join::runs::{KeyRange, Run};
use crate::join::sides::times;
use crate::message::EventTime;
use crate::operators::evaluate::columns;
use crate::runtime::exchange::{KEY_GROUPS, key_groups};
use crate::spill::StateBudget;

impl IntervalJoin {
    /// With the spilling backend, the subtask's share of the budget; kept
    /// only when one of its sides can spill.
    pub fn with_budget(mut self, budget: Option<StateBudget>) -> Self {
        let spec = &self.plan.spec;
        let spills = self.keyed() && self.arrivals.is_none() && (0..2).any(|s| !spec.outer(s));
        self.budget = budget.filter(|_| spills);
        self
    }

    /// Bytes held in memory: the rows, the indexes, and where the runs'
    /// parts are.
    pub(super) fn held_bytes(&self) -> usize {
        self.spillable_bytes() + self.sides.iter().flat_map(|s| s.runs()).map(Run::memory).sum::<usize>()
    }

    /// Bytes held in memory that spilling frees: the rows and the indexes.
    /// The budget bounds these: where the runs' parts are cannot spill, and
    /// counting it made a small share spill every new batch as a run of its
    /// own once the runs' places alone passed the share.
    pub(crate) fn spillable_bytes(&self) -> usize {
        self.sides.iter().map(|s| s.bytes()).sum::<usize>() + self.index.iter().map(KeyIndex::bytes).sum::<usize>()
    }

    /// Bytes of the runs' files.
    pub(super) fn spilled_bytes(&self) -> usize {
        self.sides.iter().flat_map(|s| s.runs()).map(Run::disk_bytes).sum()
    }

    /// Spills once the subtask holds more than its share: after each batch
    /// (its output already emitted) and each restored part.
    pub(super) fn keep_within_budget(&mut self) -> Result<()> {
        let Some(mut budget) = self.budget.take() else {
            return Ok(());
        };
        let result = self.spill_oldest(&mut budget);
        self.budget = Some(budget);
        result
    }

    /// When over the share, spills the oldest batches of the inner side
    /// holding more, until the subtask holds half as much as it did and no
    /// more than its share (or has nothing left to spill).
    fn spill_oldest(&mut self, budget: &mut StateBudget) -> Result<()> {
        let held = self.spillable_bytes();
        if budget.fits(held) {
            return Ok(());
        }
        let (mut holds, mut written) = (held, 0);
        while holds > held / 2 || !budget.fits(holds) {
            let spec = &self.plan.spec;
            let Some(side) = (0..2)
                .filter(|s| !spec.outer(*s) && !self.sides[*s].batches().is_empty())
                .max_by_key(|s| self.sides[*s].bytes())
            else {
                break;
            };
            written += self.spill_front(side, holds.saturating_sub(held / 2), budget)?;
            holds = self.spillable_bytes();
        }
        self.metrics.spilled_bytes.fetch_add(written as u64, Ordering::Relaxed);
        tracing::debug!(operator = %self.name, parts_read = self.parts_read, "join runs' parts read by probes so far");
        budget.spilled(held, holds);
        Ok(())
    }

    /// Spills the oldest batches of `side` that free about `need` bytes
    /// (at least one) as a run, then merges runs in tiers
    /// (`SideRows::merge_runs`); the bytes written. The side's index is let
    /// go, rebuilt over the rest at the next probe.
    fn spill_front(&mut self, side: usize, need: usize, budget: &StateBudget) -> Result<usize> {
        let batches = self.sides[side].batches();
        let (mut n, mut freed) = (0, self.index[side].bytes());
        while n < batches.len() && (n == 0 || freed < need) {
            freed += batches[n].get_array_memory_size();
            n += 1;
        }
        let times = match self.plan.bounds {
            Some(b) => {
                let mut earliest = EventTime::MAX;
                for batch in &batches[..n] {
                    earliest = earliest.min(min(times(batch, b.time[side], &self.name)?).unwrap_or(EventTime::MAX));
                }
                (earliest, self.latest[side][..n].iter().copied().max().unwrap_or(EventTime::MIN))
            }
            None => (EventTime::MIN, EventTime::MAX),
        };
        let keys = self.plan.spec.keys(side);
        let mut written = self.sides[side].spill_front(n, &keys, times, budget, &mut self.hashes)?;
        written += self.sides[side].merge_runs(budget)?;
        self.latest[side].drain(..n);
        self.index[side] = KeyIndex::default();
        Ok(written)
    }

    /// Joins `batch`, arriving on `input`, with the other side's runs its
    /// rows can meet: by time (an interval join's bounds) and key range (a
    /// join on one integer key), then by key group (only those parts are
    /// read). Marks the probe rows that met
    /// one in `matched` (an outer probe side's).
    pub(super) fn probe_runs(
        &mut self,
        input: usize,
        batch: &RecordBatch,
        matched: &mut [bool],
    ) -> Result<Vec<RecordBatch>> {
        let other = 1 - input;
        if self.sides[other].runs().is_empty() {
            return Ok(Vec::new());
        }
        // The times of the other side's rows this batch can meet, and the
        // batch's latest time.
        let (lo, hi, latest) = match self.plan.bounds {
            Some(b) => {
                let t = times(batch, b.time[input], &self.name)?;
                let (Some(first), Some(last)) = (min(t), max(t)) else {
                    return Ok(Vec::new());
                };
                match input {
                    0 => (first.saturating_add(b.lower), last.saturating_add(b.upper), last),
                    _ => (first.saturating_sub(b.upper), last.saturating_sub(b.lower), last),
                }
            }
            None => (EventTime::MIN, EventTime::MAX, EventTime::MAX),
        };
        let keys = columns(&self.plan.spec.keys(input), batch).context(|| format!("{}: join keys", self.name))?;
        let range = KeyRange::of(&keys)?;
        let mut wanted = vec![false; KEY_GROUPS];
        for g in key_groups(&keys, batch.num_rows(), &mut self.hashes)? {
            wanted[g] = true;
        }
        let schema = Arc::clone(self.side_schema(other));
        // The batch is indexed once, and each part read meets it: no index
        // over the run's rows, which are many more.
        let (mut index, probe) = (KeyIndex::default(), std::slice::from_ref(batch));
        let (mut joined, mut read) = (Vec::new(), 0);
        let (spec, name) = (&self.plan.spec, &self.name);
        let latest = [latest];
        // The spilled part probes the batch.
        let reach = self.plan.bounds.map(|b| Reach { range: b.reachable_from(other), latest: &latest });
        for run in self.sides[other].runs().iter().filter(|r| r.overlaps(lo, hi, range)) {
            read += run
                .read_each(&wanted, range, &schema, &mut |part| {
                    let Some(j) = index.join_pairs(spec, other, &part, probe, reach, name)? else {
                        return Ok(());
                    };
                    for (_, row) in &j.held {
                        if let Some(m) = matched.get_mut(*row) {
                            *m = true;
                        }
                    }
                    joined.push(j.rows);
                    Ok(())
                })?
                .0;
        }
        if read > 0 {
            self.parts_read += read as u64;
            self.sides[other].probed();
        }
        // One batch, not one per part that met the batch.
        Ok(match joined.len() {
            0 | 1 => joined,
            _ => vec![concat_batches(&spec.output_schema, &joined).context(|| format!("{name}: joining runs"))?],
        })
    }

    /// Runs each side spilled, for tests.
    #[cfg(test)]
    pub(crate) fn runs(&self) -> [usize; 2] {
        [self.sides[0].runs().len(), self.sides[1].runs().len()]
    }

    /// Bytes of each side's runs, for tests.
    #[cfg(test)]
    pub(crate) fn spilled_per_side(&self) -> [usize; 2] {
        [0, 1].map(|s| self.sides[s].runs().iter().map(Run::disk_bytes).sum())
    }

    /// Parts of runs probes read, for tests.
    #[cfg(test)]
    pub(crate) fn parts_read(&self) -> u64 {
        self.parts_read
    }
}
