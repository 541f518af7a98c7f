//! A group aggregation over its share of `state.memory.budget` (the
//! spilling backend): the least recently touched half of its groups go to
//! disk as runs (`spill/runs.rs`), and a row of a spilled group loads it back
//! before the batch is aggregated, so that its change is a `-U`/`+U` of
//! the result it had, exactly as if it had stayed in memory.
//!
//! Only groups without a state TTL spill (an expiring group would need its
//! idle time on disk), and only keyed ones (a GROUP BY of no key is one
//! group).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::BuildHasher;
use std::sync::atomic::Ordering;

use datafusion::arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use datafusion::arrow::row::Rows;
use datafusion::logical_expr::Accumulator;

use super::GroupAggregate;
use super::chunks::{StateColumns, state_batch};
use crate::checkpoint::chunk::ChunkId;
use crate::error::{Result, ResultExt};
use crate::runtime::exchange::KEY_GROUPS;
use crate::spill::StateBudget;
use crate::spill::runs::{Coldest, Run, to_evict};

/// What an allocation takes besides its bytes, about: glibc's chunk
/// header, and rounding up to 16 bytes.
const ALLOCATION: usize = 16;

impl GroupAggregate {
    /// Bytes of state in memory, estimated: the groups' own and their
    /// tables' ([`Self::resident_bytes`]), and what finds spilled groups.
    pub(super) fn held_bytes(&self) -> usize {
        let (own, tables) = self.resident_bytes();
        own + tables + self.runs.memory()
    }

    /// The groups' own bytes, estimated from a sample of groups (walking
    /// every accumulator of a large state per batch would cost more than
    /// the aggregation): keys and accumulators, each allocation with its
    /// allocator's overhead. And the tables' bytes at their capacity (the
    /// index, the slots, the touch stamps, the free slots), which do not
    /// shrink as groups spill. Counting keys and accumulators alone missed
    /// a third of Nexmark q4's group aggregate (heaptrack at 100M events).
    fn resident_bytes(&self) -> (usize, usize) {
        const SAMPLE: usize = 64;
        let groups = self.index.len();
        let (n, bytes) = self.index.iter().take(SAMPLE).fold((0, 0), |(n, b), (key, g)| {
            let accumulators = self.groups[*g as usize].as_ref().map_or(0, |g| {
                g.accumulators.iter().map(|a| a.size() + ALLOCATION).sum::<usize>()
                    + g.accumulators.capacity() * size_of::<Box<dyn Accumulator>>()
                    + ALLOCATION
            });
            (n + 1, b + key.len() + ALLOCATION + accumulators)
        });
        let tables = self.index.capacity() * (size_of::<(Box<[u8]>, u32)>() + 1)
            + self.groups.capacity() * size_of::<Option<super::Group>>()
            + self.touched_in.capacity() * size_of::<(u64, u32)>()
            + self.free.capacity() * size_of::<u32>()
            + self.written.memory();
        (bytes * groups / n.max(1), tables)
    }

    /// Spills the coldest groups once the state outgrew the subtask's
    /// share: after each batch (its output already emitted) and each
    /// restored chunk.
    pub(super) fn keep_within_budget(&mut self) -> Result<()> {
        let Some(mut budget) = self.budget.take() else {
            return Ok(());
        };
        let held = self.held_bytes();
        let result = if budget.fits(held) { Ok(()) } else { self.spill_coldest(&mut budget, held) };
        self.budget = Some(budget);
        result
    }

    /// Writes the groups touched longest ago as one run per key group,
    /// enough of them that the subtask then holds about half of `held`
    /// (what finds spilled groups stays in memory).
    fn spill_coldest(&mut self, budget: &mut StateBudget, held: usize) -> Result<()> {
        let touched_in = &self.touched_in;
        let mut stamps: Vec<u64> = self.index.values().map(|g| touched_in[*g as usize].0).collect();
        let groups = stamps.len();
        let (own, tables) = self.resident_bytes();
        if groups == 0 || own == 0 {
            budget.spilled(held, held);
            return Ok(());
        }
        let evict = to_evict(held, self.runs.memory() + tables, own, groups);
        let mut coldest = Coldest::new(&mut stamps, evict);
        let mut cold = |g: &u32| coldest.takes(touched_in[*g as usize].0);
        let mut members: Vec<Vec<(Box<[u8]>, u32)>> = vec![Vec::new(); KEY_GROUPS];
        for (key, g) in self.index.extract_if(|_, g| cold(g)) {
            let kg = self.groups[g as usize].as_ref().map_or(0, |group| group.key_group as usize);
            members[kg].push((key, g));
        }
        let mut written = 0;
        for (kg, mut spilled) in members.into_iter().enumerate() {
            if spilled.is_empty() {
                continue;
            }
            spilled.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            let refs: Vec<(&[u8], u32)> = spilled.iter().map(|(k, g)| (&k[..], *g)).collect();
            let batch = state_batch(&self.plan, &self.converter, &self.name, &mut self.groups, &refs)?;
            let keys: Vec<&[u8]> = refs.iter().map(|(k, _)| *k).collect();
            written += self.write_run(kg, &batch, &keys, budget)?;
            for (_, g) in &spilled {
                self.free_group(*g);
            }
        }
        self.written.trim(&self.groups, self.index.len());
        self.metrics.spilled_bytes.fetch_add(written as u64, Ordering::Relaxed);
        budget.spilled(held, self.held_bytes());
        Ok(())
    }

    /// Spills `batch`, the state of groups of key group `kg` with the
    /// encoded keys `keys` (in its order, sorted), as a new run, and merges
    /// the key group's runs as their tiers say; the bytes written.
    fn write_run(&mut self, kg: usize, batch: &RecordBatch, keys: &[&[u8]], budget: &StateBudget) -> Result<usize> {
        let Self { index, runs, converter, plan, name, .. } = self;
        let run = Run::write(batch, keys, index.hasher(), budget)?;
        let written = run.file.bytes();
        let n_keys = plan.grouping.key_schema.fields().len();
        let encode = |b: &RecordBatch| {
            converter.convert_columns(&b.columns()[..n_keys]).context(|| format!("{name}: merging spilled groups"))
        };
        Ok(written + runs.add(kg, run, &encode, index.hasher(), budget)?)
    }

    /// Loads back the spilled groups of the batch's keys (`keys`, encoded
    /// as `rows`) that are not in memory, before it is aggregated.
    pub(super) fn load_spilled(&mut self, keys: &[ArrayRef], rows: &Rows) -> Result<()> {
        if self.runs.is_empty() {
            return Ok(());
        }
        let missing: Vec<u32> =
            (0..rows.num_rows()).filter(|r| !self.index.contains_key(rows.row(*r).data())).map(|r| r as u32).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let kgs = self.key_groups_of(keys, UInt32Array::from(missing.clone()))?;
        // Blocks read for this batch, by run and block.
        let mut read: HashMap<(ChunkId, usize), Block> = HashMap::new();
        let mut loaded = [false; KEY_GROUPS];
        for (r, kg) in missing.iter().zip(kgs) {
            let key = rows.row(*r as usize).data();
            if self.index.contains_key(key) {
                continue; // an earlier row of the batch loaded it
            }
            let Some((run, block, row)) = self.find_spilled(kg, key, &mut read)? else {
                continue;
            };
            let (columns, first_row) = &read[&(self.runs.of(kg)[run].id, block)];
            let first_row = *first_row;
            self.load_group(columns, row, kg as u32)?;
            self.runs.of_mut(kg)[run].kill(first_row + row);
            loaded[kg] = true;
        }
        self.runs.reads += read.len() as u64;
        for kg in (0..KEY_GROUPS).filter(|kg| loaded[*kg]) {
            self.runs.drop_dead(kg);
        }
        Ok(())
    }

    /// The run (index in its key group's), block and row in the block
    /// holding the group of `key`, if it is spilled; runs are searched
    /// newest first, and the blocks read into `read` as needed.
    fn find_spilled(
        &self,
        kg: usize,
        key: &[u8],
        read: &mut HashMap<(ChunkId, usize), Block>,
    ) -> Result<Option<(usize, usize, usize)>> {
        let hash = self.index.hasher().hash_one(key);
        for (i, run) in self.runs.of(kg).iter().enumerate().rev() {
            let Some(block) = run.block_of(key, hash) else {
                continue;
            };
            if let Entry::Vacant(slot) = read.entry((run.id, block)) {
                let (batch, first_row) = run.read_block(block)?;
                let all: Vec<Option<usize>> = (0..self.plan.grouping.aggregates.len()).map(Some).collect();
                slot.insert((self.state_columns(&batch, &all)?, first_row));
            }
            let (columns, first_row) = &read[&(run.id, block)];
            let Some(row) = columns.find(key) else {
                continue;
            };
            // A dead row's group was loaded back and then emptied: a key
            // has one live row at most, and none in older runs.
            return Ok(run.is_live(first_row + row).then_some((i, block, row)));
        }
        Ok(None)
    }

    /// Runs read from disk to find spilled groups.
    #[cfg(test)]
    pub(super) fn spilled_reads(&self) -> u64 {
        self.runs.reads
    }
}

/// A block of a run read back: its groups, and the run's number of its
/// first row.
type Block = (StateColumns, usize);

/// The row of `rows` (sorted) equal to `key`.
pub(super) fn find_row(rows: &Rows, key: &[u8]) -> Option<usize> {
    let (mut lo, mut hi) = (0, rows.num_rows());
    while lo < hi {
        let mid = (lo + hi) / 2;
        match rows.row(mid).data().cmp(key) {
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
            std::cmp::Ordering::Equal => return Some(mid),
        }
    }
    None
}
