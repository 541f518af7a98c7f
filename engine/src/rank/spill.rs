//! A Top-N or deduplication over its share of `state.memory.budget` (the
//! spilling backend): the partitions no batch touched for longest go to
//! disk as runs (`spill/runs.rs`, keyed by the encoded partition key), and
//! a row of a spilled partition loads it back before its batch is ranked,
//! so that its changes are those it would have made in memory.
//!
//! Updating rankings (Top-N and deduplication over a stream, whose
//! partitions live for ever) spill their partitions' rows; keep-first
//! deduplication by event time spills the keys whose first row has left,
//! with its time (a later row of such a key loads it back, and is a
//! duplicate or late). Only keyed rankings without a state TTL spill (an
//! expiring partition would need its idle time on disk); a window Top-N's
//! windows bound its state.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use datafusion::arrow::array::{Int64Array, RecordBatch, UInt32Array, UInt64Array};
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::row::{RowConverter, Rows};

use super::RankMode;
use super::operator::{Partition, Rank};
use crate::checkpoint::chunk::{ChunkId, ChunkMap, ChunkWriter, new_chunk_id};
use crate::checkpoint::codec::{Decoder, Encoder};
use crate::error::{EngineError, Result, ResultExt};
use crate::message::EventTime;
use crate::partition_keys::PartitionKeys;
use crate::runtime::exchange::{KEY_GROUPS, key_groups};
use crate::spill::StateBudget;
use crate::spill::runs::{Coldest, NEVER, Run, Runs, live_rows_of_chunk, to_evict};

/// What a partition costs beyond its rows and key: its slot, the index's
/// copy of the key, and allocator overhead.
const PARTITION_OVERHEAD: usize = size_of::<Option<Partition>>() + size_of::<(Box<[u8]>, u32)>() + 48;

/// A block of a run read back: its rows, their encoded partition keys, and
/// the run's number of its first row.
type Block = (RecordBatch, Rows, usize);

impl Rank {
    /// Bytes of state in memory, estimated from a sample of partitions
    /// (walking millions of them per batch would cost more than ranking):
    /// their rows, keys and slots; the tables at their capacity; what
    /// finds spilled partitions.
    pub(super) fn held_bytes(&self) -> usize {
        let (own, tables) = self.resident_bytes();
        own + tables + self.runs.memory()
    }

    /// The partitions' own bytes, estimated from a sample, and the tables'.
    pub(super) fn resident_bytes(&self) -> (usize, usize) {
        const SAMPLE: usize = 64;
        let live = self.index.len();
        let (n, bytes) = self
            .index
            .values()
            .take(SAMPLE)
            .filter_map(|p| self.partitions[*p as usize].as_ref())
            .fold((0, 0), |(n, b), p| (n + 1, b + p.ranked.bytes() + p.key.len() * 2 + PARTITION_OVERHEAD));
        let tables = self.index.capacity() * (size_of::<(Box<[u8]>, u32)>() + 1)
            + self.partitions.capacity() * size_of::<Option<Partition>>()
            + self.free.capacity() * size_of::<u32>();
        (bytes * live / n.max(1), tables)
    }

    /// Spills the coldest partitions once the state outgrew the subtask's
    /// share: after each batch (its changes already emitted) and each
    /// restored part.
    pub(super) fn keep_within_budget(&mut self) -> Result<()> {
        let Some(mut budget) = self.budget.take() else {
            return Ok(());
        };
        let held = self.held_bytes();
        let result = if budget.fits(held) { Ok(()) } else { self.spill_coldest(&mut budget, held) };
        self.budget = Some(budget);
        result
    }

    /// Writes the partitions touched longest ago as one run per key group,
    /// enough of them that the subtask then holds about half of `held`.
    fn spill_coldest(&mut self, budget: &mut StateBudget, held: usize) -> Result<()> {
        let partitions = &self.partitions;
        let holds_keys = self.runs_hold_keys();
        // A keep-first partition spills once its first row has left, as its
        // key and time; one still waiting for the watermark stays.
        let touched = |p: &u32| {
            partitions[*p as usize].as_ref().map_or(0, |p| {
                match !holds_keys || (p.ranked.is_empty() && p.emitted.is_some()) {
                    true => p.touched,
                    false => NEVER,
                }
            })
        };
        let mut stamps: Vec<u64> = self.index.values().map(touched).collect();
        let count = stamps.len();
        let (own, tables) = self.resident_bytes();
        if count == 0 || own == 0 {
            budget.spilled(held, held);
            return Ok(());
        }
        let evict = to_evict(held, self.runs.memory() + tables, own, count);
        let mut coldest = Coldest::new(&mut stamps, evict);
        let mut cold = |p: &u32| coldest.takes(touched(p));
        // Per key group, each cold partition with its key's first bytes:
        // sorting compares those first, without reading the key.
        let mut members: Vec<Vec<(u64, u32)>> = vec![Vec::new(); KEY_GROUPS];
        for (key, p) in self.index.extract_if(|_, p| cold(p)) {
            let kg = self.partitions[p as usize].as_ref().map_or(0, |part| part.key_group as usize);
            members[kg].push((prefix(&key), p));
        }
        let mut written = 0;
        for (kg, mut cold) in members.into_iter().enumerate() {
            if cold.is_empty() {
                continue;
            }
            cold.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| self.key(a.1).cmp(self.key(b.1))));
            let spilled: Vec<u32> = cold.into_iter().map(|(_, p)| p).collect();
            let batch = match holds_keys {
                true => self.done_batch(&spilled)?,
                false => self.kept_batch(&spilled)?,
            };
            let Self { index, runs, keys, partitions, .. } = &mut *self;
            let row_keys: Vec<&[u8]> = spilled
                .iter()
                .filter_map(|p| partitions[*p as usize].as_ref())
                .flat_map(|part| std::iter::repeat_n(&part.key[..], if holds_keys { 1 } else { part.ranked.len() }))
                .collect();
            written += write_run(runs, keys, holds_keys, index.hasher(), kg, &batch, &row_keys, budget)?;
            self.spilled_partitions += spilled.len();
            for p in spilled {
                self.partitions[p as usize] = None;
                self.free.push(p);
            }
        }
        // The index shrinks with the partitions it lost (the slots stay, for
        // the partitions to come).
        self.index.shrink_to_fit();
        self.metrics.spilled_bytes.fetch_add(written as u64, Ordering::Relaxed);
        budget.spilled(held, self.held_bytes());
        Ok(())
    }

    fn key(&self, p: u32) -> &[u8] {
        self.partitions[p as usize].as_ref().map_or(&[], |part| &part.key)
    }

    /// The rows the partitions `parts` hold, in that order and each
    /// partition's best first, with their arrival numbers: the layout of
    /// checkpoints and runs.
    pub(super) fn kept_batch(&self, parts: &[u32]) -> Result<RecordBatch> {
        let rows = parts.iter().filter_map(|p| self.partitions[*p as usize].as_ref()).flat_map(|p| p.ranked.entries());
        kept_rows(&self.rows, &self.plan.input_schema, rows, &self.name)
    }

    /// The keys of the partitions `parts` whose first row has left, with
    /// its time (keep-first): columns `k0`, `k1`, …, then `emitted`.
    pub(super) fn done_batch(&self, parts: &[u32]) -> Result<RecordBatch> {
        let done = parts
            .iter()
            .filter_map(|p| self.partitions[*p as usize].as_ref())
            .filter_map(|p| p.emitted.map(|t| (&p.key[..], t)));
        done_rows(&self.keys, done, &self.name)
    }

    /// Whether runs hold keys whose first row has left (keep-first by
    /// event time) rather than ranked rows.
    fn runs_hold_keys(&self) -> bool {
        matches!(self.plan.mode, RankMode::FirstByEventTime { .. })
    }

    /// Makes the rows of a run (or a chunk listed with runs) partitions in
    /// memory again.
    fn restore_spilled(&mut self, batch: &RecordBatch) -> Result<()> {
        match self.runs_hold_keys() {
            true => self.restore_done(batch),
            false => self.restore_rows(batch),
        }
    }

    /// Sets the key group of the partitions `fresh` lists with a row of
    /// `data` that made them, as the exchange hashes their keys: runs and
    /// checkpoints are split by key group.
    pub(super) fn set_key_groups(&mut self, data: &RecordBatch, fresh: &[(u32, u32)]) -> Result<()> {
        if fresh.is_empty() {
            return Ok(());
        }
        let picks = UInt32Array::from_iter_values(fresh.iter().map(|f| f.1));
        let rows = take_record_batch(data, &picks).context(|| format!("{}: partition keys", self.name))?;
        let columns = self.keys.columns(&rows)?;
        let kgs = key_groups(&columns, rows.num_rows(), &mut self.hashes)?;
        for ((p, _), kg) in fresh.iter().zip(kgs) {
            if let Some(part) = self.partitions[*p as usize].as_mut() {
                part.key_group = kg as u8;
            }
        }
        Ok(())
    }

    /// Loads back the spilled partitions of the rows of `data` (partition
    /// keys encoded as `keys`) that are not in memory, before it is ranked.
    pub(super) fn load_spilled(&mut self, data: &RecordBatch, keys: Option<&Rows>) -> Result<()> {
        let Some(keys) = keys.filter(|_| !self.runs.is_empty()) else {
            return Ok(());
        };
        let missing: Vec<u32> =
            (0..keys.num_rows()).filter(|r| !self.index.contains_key(keys.row(*r).data())).map(|r| r as u32).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let rows = take_record_batch(data, &UInt32Array::from(missing.clone()))
            .context(|| format!("{}: partition keys", self.name))?;
        let kgs = key_groups(&self.keys.columns(&rows)?, rows.num_rows(), &mut self.hashes)?;
        let mut read: HashMap<(ChunkId, usize), Block> = HashMap::new();
        let mut loaded = [false; KEY_GROUPS];
        for (r, kg) in missing.iter().zip(kgs) {
            let key = keys.row(*r as usize).data();
            if self.index.contains_key(key) {
                continue; // an earlier row of the batch loaded it
            }
            let Some(found) = self.find_spilled(kg, key, &mut read)? else {
                continue;
            };
            let (batch, _, first_row) = &read[&(self.runs.of(kg)[found.run].id, found.block)];
            let (part, first_row) = (batch.slice(found.rows.start, found.rows.len()), *first_row);
            self.restore_spilled(&part)?;
            let run = &mut self.runs.of_mut(kg)[found.run];
            for row in found.rows {
                run.kill(first_row + row);
            }
            self.spilled_partitions = self.spilled_partitions.saturating_sub(1);
            loaded[kg] = true;
        }
        self.runs.reads += read.len() as u64;
        for kg in (0..KEY_GROUPS).filter(|kg| loaded[*kg]) {
            self.runs.drop_dead(kg);
        }
        Ok(())
    }

    /// Where the live rows of the spilled partition of `key` are, if it is
    /// spilled. Runs are searched newest first, their blocks read into
    /// `read` as needed.
    fn find_spilled(
        &self,
        kg: usize,
        key: &[u8],
        read: &mut HashMap<(ChunkId, usize), Block>,
    ) -> Result<Option<Found>> {
        let hash = self.index.hasher().hash_one(key);
        for (i, run) in self.runs.of(kg).iter().enumerate().rev() {
            let Some(block) = run.block_of(key, hash) else {
                continue;
            };
            if let Entry::Vacant(slot) = read.entry((run.id, block)) {
                let (batch, first_row) = run.read_block(block)?;
                let keys = run_keys(&self.keys, self.runs_hold_keys(), &batch)?;
                slot.insert((batch, keys, first_row));
            }
            let (_, keys, first_row) = &read[&(run.id, block)];
            let start = partition_point(keys, |k| k < key);
            let end = partition_point(keys, |k| k <= key);
            if start == end {
                continue;
            }
            // Dead rows: the partition was loaded back and then emptied; a
            // key has live rows in one run at most, and none in older ones.
            return Ok(run.is_live(first_row + start).then_some(Found { run: i, block, rows: start..end }));
        }
        Ok(None)
    }

    /// Lists the state's chunks for checkpoint `checkpoint` (see
    /// `state.rs`): with `rows`, the rows in memory per key group, captured
    /// here (their rows shared, not copied) to be written off the task loop
    /// under the ids listed; and the runs, whose files go to `writer` until a
    /// completed checkpoint stored them.
    pub(super) fn encode_chunks(
        &mut self,
        checkpoint: u64,
        rows: bool,
        writer: &mut ChunkWriter,
        e: &mut Encoder,
    ) -> Result<Vec<CapturedRows>> {
        let mut captured: Vec<CapturedRows> = Vec::new();
        let mut of_key_group: [Option<usize>; KEY_GROUPS] = [None; KEY_GROUPS];
        for part in self.partitions.iter().flatten().filter(|_| rows) {
            let at = *of_key_group[part.key_group as usize].get_or_insert_with(|| {
                captured.push(CapturedRows { key_group: part.key_group, id: new_chunk_id(), rows: Vec::new() });
                captured.len() - 1
            });
            captured[at].rows.extend(part.ranked.entries().map(|(q, r)| (q, Arc::clone(r))));
        }
        e.u64((captured.len() + self.runs.iter().count()) as u64);
        for c in &captured {
            e.u64(c.key_group as u64);
            e.bytes(&c.id.to_le_bytes());
            e.bytes(&[]);
        }
        self.runs.list(checkpoint, writer, e);
        Ok(captured)
    }

    /// Restores the rows of the chunks a state lists (see `state.rs`) of
    /// the key groups `owns` says are this subtask's, spilling as it goes.
    pub(super) fn restore_chunks(
        &mut self,
        d: &mut Decoder,
        chunks: &ChunkMap,
        owns: &dyn Fn(usize) -> bool,
    ) -> Result<()> {
        for _ in 0..d.u64()? {
            let kg = d.u64()?;
            let id = <[u8; 16]>::try_from(d.bytes()?)
                .map(ChunkId::from_le_bytes)
                .map_err(|_| EngineError::State(format!("{}: a malformed chunk id", self.name)))?;
            let live = d.bytes()?;
            let kg = usize::try_from(kg)
                .ok()
                .filter(|kg| *kg < KEY_GROUPS)
                .ok_or_else(|| EngineError::State(format!("{}: ranked rows name key group {kg}", self.name)))?;
            if owns(kg) {
                let batch = live_rows_of_chunk(&chunks.get(id)?, live, &self.name)?;
                self.restore_spilled(&batch)?;
                self.keep_within_budget()?;
            }
        }
        Ok(())
    }

    /// Blocks read from disk to find spilled partitions.
    #[cfg(test)]
    pub(super) fn spilled_reads(&self) -> u64 {
        self.runs.reads
    }
}

/// One key group's rows in memory at a barrier, to be written as the chunk
/// `id`.
pub(super) struct CapturedRows {
    pub(super) key_group: u8,
    pub(super) id: ChunkId,
    pub(super) rows: Vec<(u64, Arc<[u8]>)>,
}

/// Rows in the row format of `converter` (the ranked input's columns)
/// with their arrival numbers, as one batch: the input's columns, then
/// `arrival`.
pub(super) fn kept_rows<'r>(
    converter: &RowConverter,
    input: &Schema,
    rows: impl Iterator<Item = (u64, &'r Arc<[u8]>)>,
    name: &str,
) -> Result<RecordBatch> {
    let ctx = || format!("{name}: snapshot");
    let (seqs, rows): (Vec<u64>, Vec<&Arc<[u8]>>) = rows.unzip();
    let parser = converter.parser();
    let mut columns = converter.convert_rows(rows.iter().map(|r| parser.parse(r))).context(ctx)?;
    columns.push(Arc::new(UInt64Array::from(seqs)));
    let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("arrival", DataType::UInt64, false));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).context(ctx)
}

/// Keys whose first row has left, encoded by `keys`, with its time, as
/// one batch: columns `k0`, `k1`, …, then `emitted`.
pub(super) fn done_rows<'k>(
    keys: &PartitionKeys,
    done: impl Iterator<Item = (&'k [u8], EventTime)>,
    name: &str,
) -> Result<RecordBatch> {
    let (keys_of, times): (Vec<&[u8]>, Vec<EventTime>) = done.unzip();
    let (mut columns, mut fields) = keys.decode(keys_of.into_iter())?;
    fields.push(Field::new("emitted", DataType::Int64, false));
    columns.push(Arc::new(Int64Array::from(times)));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).context(|| format!("{name}: snapshot"))
}

/// Spills `batch`, rows of partitions of key group `kg` with the encoded
/// partition keys `keys` (a row each, sorted), as a new run of `runs`, and
/// merges the key group's runs as their tiers say; the bytes written.
#[allow(clippy::too_many_arguments)]
fn write_run(
    runs: &mut Runs,
    partition_keys: &PartitionKeys,
    holds_keys: bool,
    hasher: &impl BuildHasher,
    kg: usize,
    batch: &RecordBatch,
    keys: &[&[u8]],
    budget: &StateBudget,
) -> Result<usize> {
    let run = Run::write(batch, keys, hasher, budget)?;
    let written = run.file.bytes();
    let encode = |b: &RecordBatch| run_keys(partition_keys, holds_keys, b);
    Ok(written + runs.add(kg, run, &encode, hasher, budget)?)
}

/// The encoded partition keys of a run's rows: evaluated over ranked rows,
/// or (`holds_keys`) encoded from a keep-first run's key columns.
fn run_keys(keys: &PartitionKeys, holds_keys: bool, batch: &RecordBatch) -> Result<Rows> {
    let rows = match holds_keys {
        true => keys.encode_columns(batch.columns().get(..keys.len()).unwrap_or_default())?,
        false => keys.encode(batch)?,
    };
    rows.ok_or_else(|| EngineError::State("spilled rows of a ranking without PARTITION BY".into()))
}

/// A spilled partition's rows: in which run of its key group, which block
/// of the run, and which rows of the block.
struct Found {
    run: usize,
    block: usize,
    rows: std::ops::Range<usize>,
}

/// The first 8 bytes of an encoded key as a number that orders as they
/// do (zeros after a shorter key, which orders first as it should).
fn prefix(key: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let n = key.len().min(8);
    bytes[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(bytes)
}

/// The first row of `rows` (sorted) for which `pred` is false.
fn partition_point(rows: &Rows, pred: impl Fn(&[u8]) -> bool) -> usize {
    let (mut lo, mut hi) = (0, rows.num_rows());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if pred(rows.row(mid).data()) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}
