//! Keyed state spilled in key order: runs, as an LSM tree keeps its
//! sorted files, for operators that look a key up again at any time (a
//! group aggregate's groups, a ranking's partitions).
//!
//! A run is some of one key group's keys with their rows, in key order
//! (a key's rows adjacent), written as a checkpoint chunk — one compressed
//! Arrow batch per block of about [`BLOCK_ROWS`] rows — to a spill file,
//! so that a checkpoint copies an unstored run's bytes once and references
//! it after. Each key lives in exactly one place: in memory, or as live
//! rows of one run. Rows of a key loaded back into memory are marked dead;
//! the runs of a key group therefore hold disjoint keys, and merging them
//! is a filter and a sort, never a merge of values.
//!
//! What stays in memory per run decides whether and where reading it can
//! find a key: its smallest and largest key (keys that grow, as auction
//! ids do, fall outside every older run), a Bloom filter of its keys'
//! hashes (about 10 bits a key) and each block's first key, so that a
//! lookup reads one block, not the run.
//!
//! A key group's runs merge in size tiers (the newest two while the older
//! holds at most twice the newer's live rows), so that a key group of `n`
//! spills keeps about `log2(n)` runs and a row is rewritten about that many
//! times; a run mostly dead is rewritten alone.

use std::hash::BuildHasher;

use datafusion::arrow::array::{BooleanArray, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{concat_batches, filter_record_batch, take_record_batch};
use datafusion::arrow::row::Rows;
use fastbloom::BloomFilter;

use super::{SpilledBytes, StateBudget};
use crate::checkpoint::chunk::{ChunkId, ChunkWriter, Stored, new_chunk_id};
use crate::checkpoint::codec::{Decoder, Encoder};
use crate::checkpoint::live_rows;
use crate::error::{EngineError, Result, ResultExt};
use crate::runtime::exchange::KEY_GROUPS;

/// The false positive rate of a run's filter: a key not in the run reads
/// one of its blocks once in a hundred lookups.
const FALSE_POSITIVES: f64 = 0.01;

/// Rows of a block, at least (a key's rows are not split between blocks):
/// what a lookup decodes.
pub(crate) const BLOCK_ROWS: usize = 1024;

/// Where a block is in its run's file.
struct Block {
    offset: u64,
    len: u32,
    /// Its first row's number in the run.
    first_row: u32,
    first_key: Box<[u8]>,
}

/// One spilled, immutable run of keys.
pub(crate) struct Run {
    pub(crate) file: SpilledBytes,
    pub(crate) id: ChunkId,
    pub(crate) stored: Stored,
    rows: usize,
    /// Which rows still hold their key (`None`: all of them).
    live: Option<Vec<bool>>,
    live_rows: usize,
    max: Box<[u8]>,
    filter: BloomFilter,
    blocks: Box<[Block]>,
    /// Bytes of the filter, the key range and the block index: read for
    /// the budget after every batch, so counted once.
    index_bytes: usize,
}

impl Run {
    /// Spills `batch`, whose rows have the encoded keys `keys` (sorted, a
    /// key's rows adjacent), as a new run hashing keys with `hasher`.
    pub(crate) fn write(
        batch: &RecordBatch,
        keys: &[&[u8]],
        hasher: &impl BuildHasher,
        budget: &StateBudget,
    ) -> Result<Self> {
        let rows = batch.num_rows();
        let Some(last) = keys.last() else {
            return Err(EngineError::State("spilling a run of no keys".into()));
        };
        if keys.len() != rows {
            return Err(EngineError::State(format!("a run of {rows} rows with {} keys", keys.len())));
        }
        let mut filter = BloomFilter::with_false_pos(FALSE_POSITIVES).expected_items(rows);
        let mut previous: Option<&[u8]> = None;
        for key in keys {
            if previous != Some(*key) {
                filter.insert_hash(hasher.hash_one(*key));
            }
            previous = Some(key);
        }
        let mut writer = budget.spill_writer()?;
        let mut blocks = Vec::with_capacity(rows / BLOCK_ROWS + 1);
        let mut start = 0;
        while start < rows {
            let mut end = (start + BLOCK_ROWS).min(rows);
            while end < rows && keys[end] == keys[end - 1] {
                end += 1;
            }
            let bytes = Encoder::batch_alone_compressed(&batch.slice(start, end - start))?;
            let len = u32::try_from(bytes.len())
                .map_err(|_| EngineError::State(format!("a spilled block of {} bytes", bytes.len())))?;
            blocks.push(Block {
                offset: writer.bytes() as u64,
                len,
                first_row: start as u32,
                first_key: keys[start].into(),
            });
            writer.append(&bytes)?;
            start = end;
        }
        let index_bytes = filter.num_bits() / 8
            + last.len()
            + blocks.iter().map(|b| b.first_key.len() + size_of::<Block>()).sum::<usize>();
        Ok(Self {
            file: writer.finish()?,
            id: new_chunk_id(),
            stored: Stored::No,
            rows,
            live: None,
            live_rows: rows,
            max: (*last).into(),
            filter,
            blocks: blocks.into(),
            index_bytes,
        })
    }

    /// The block that holds the rows of `key` (hashed `hash`), if this
    /// run may hold it.
    #[inline]
    pub(crate) fn block_of(&self, key: &[u8], hash: u64) -> Option<usize> {
        let min = &self.blocks.first()?.first_key[..];
        if key < min || key > &self.max[..] || !self.filter.contains_hash(hash) {
            return None;
        }
        Some(self.blocks.partition_point(|b| &b.first_key[..] <= key) - 1)
    }

    /// Block `block`'s rows, and the run's number of its first row.
    pub(crate) fn read_block(&self, block: usize) -> Result<(RecordBatch, usize)> {
        let b = &self.blocks[block];
        let batch = Decoder::batch_alone(&self.file.read_at(b.offset, b.len as usize)?)?;
        Ok((batch, b.first_row as usize))
    }

    /// The live rows, read back whole.
    pub(crate) fn read_live(&self) -> Result<RecordBatch> {
        let batch = concat_blocks(&Decoder::batches_alone(&self.file.read()?)?)?;
        match &self.live {
            None => Ok(batch),
            Some(l) => filter_record_batch(&batch, &BooleanArray::from(l.clone()))
                .context(|| "reading spilled state".to_string()),
        }
    }

    pub(crate) fn is_live(&self, row: usize) -> bool {
        self.live.as_ref().is_none_or(|l| l[row])
    }

    /// Row `row`'s key went back into memory.
    pub(crate) fn kill(&mut self, row: usize) {
        let live = self.live.get_or_insert_with(|| vec![true; self.rows]);
        if std::mem::replace(&mut live[row], false) {
            self.live_rows -= 1;
        }
    }

    /// More than half of its rows are dead: worth rewriting.
    fn mostly_dead(&self) -> bool {
        self.live_rows * 2 < self.rows
    }

    /// The live rows as the checkpoint lists them: a bitmap, empty when
    /// all are live.
    pub(crate) fn live_bitmap(&self) -> Vec<u8> {
        match &self.live {
            None => Vec::new(),
            Some(l) => live_rows::bitmap(l),
        }
    }

    /// Bytes in memory: the filter, the block index and the live flags.
    fn memory(&self) -> usize {
        self.index_bytes + self.live.as_ref().map_or(0, Vec::len)
    }
}

/// A run's blocks (or any chunk's batches) as one batch.
fn concat_blocks(batches: &[RecordBatch]) -> Result<RecordBatch> {
    let Some(first) = batches.first() else {
        return Err(EngineError::State("a spilled run of no blocks".into()));
    };
    concat_batches(&first.schema(), batches).context(|| "reading spilled state".to_string())
}

/// A stored chunk of keyed rows (a run, or a chunk of one batch) with its
/// checkpoint's bitmap of live rows (empty: all), as one batch of the live
/// rows. A bitmap of the wrong length is damaged state.
pub(crate) fn live_rows_of_chunk(bytes: &[u8], bitmap: &[u8], name: &str) -> Result<RecordBatch> {
    let batch = concat_blocks(&Decoder::batches_alone(bytes)?)?;
    if bitmap.is_empty() {
        return Ok(batch);
    }
    let rows = batch.num_rows();
    let mask = live_rows::mask(bitmap, rows).ok_or_else(|| {
        EngineError::State(format!("{name}: a run of {rows} spilled rows lists {} bytes of live rows", bitmap.len()))
    })?;
    filter_record_batch(&batch, &mask).context(|| format!("{name}: restoring spilled state"))
}

/// How many of `count` keys in memory to spill so that an operator holding
/// `held` bytes then holds about half: `fixed` bytes stay whatever it
/// spills (its tables, what finds spilled keys), `own` are the keys' own.
pub(crate) fn to_evict(held: usize, fixed: usize, own: usize, count: usize) -> usize {
    let keep_bytes = (held / 2).saturating_sub(fixed);
    let keep = (keep_bytes as u128 * count as u128 / own.max(1) as u128) as usize;
    count - keep.min(count.saturating_sub(1))
}

/// The stamp of a key that must not spill (a keep-first row waiting for
/// the watermark).
pub(crate) const NEVER: u64 = u64::MAX;

/// The keys to spill: the `evict` touched longest ago, by the batch that
/// last touched each (its stamp).
pub(crate) struct Coldest {
    cutoff: u64,
    /// Keys touched in the cutoff batch still to take.
    ties: usize,
}

impl Coldest {
    /// Of the keys stamped `stamps` (reordered), the `evict` oldest, at
    /// least one.
    pub(crate) fn new(stamps: &mut [u64], evict: usize) -> Self {
        if stamps.is_empty() {
            return Self { cutoff: 0, ties: 0 };
        }
        let evict = evict.clamp(1, stamps.len());
        let cutoff = *stamps.select_nth_unstable(evict - 1).1;
        let ties = evict - stamps.iter().filter(|s| **s < cutoff).count();
        Self { cutoff, ties }
    }

    /// Whether the key stamped `stamp` spills: those touched before the
    /// cutoff batch, and as many of those touched in it as make up the
    /// count; never one stamped [`NEVER`]. Asked once per key.
    pub(crate) fn takes(&mut self, stamp: u64) -> bool {
        stamp < self.cutoff
            || (stamp == self.cutoff && stamp != NEVER && self.ties > 0 && {
                self.ties -= 1;
                true
            })
    }
}

/// Every key group's runs, oldest first.
pub(crate) struct Runs {
    by_key_group: Vec<Vec<Run>>,
    count: usize,
    /// Blocks read from disk to find a key.
    pub(crate) reads: u64,
}

impl Default for Runs {
    fn default() -> Self {
        Self { by_key_group: (0..KEY_GROUPS).map(|_| Vec::new()).collect(), count: 0, reads: 0 }
    }
}

impl Runs {
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub(crate) fn of(&self, key_group: usize) -> &[Run] {
        &self.by_key_group[key_group]
    }

    pub(crate) fn of_mut(&mut self, key_group: usize) -> &mut Vec<Run> {
        &mut self.by_key_group[key_group]
    }

    /// Adds a new run of `key_group`, then merges its runs as the tiers
    /// say (see the module doc): `keys` encodes a batch's keys, `hasher`
    /// hashes them. The bytes the merges wrote.
    pub(crate) fn add(
        &mut self,
        key_group: usize,
        run: Run,
        keys: &dyn Fn(&RecordBatch) -> Result<Rows>,
        hasher: &impl BuildHasher,
        budget: &StateBudget,
    ) -> Result<usize> {
        self.by_key_group[key_group].push(run);
        self.count += 1;
        let mut written = 0;
        loop {
            self.drop_dead(key_group);
            let runs = &self.by_key_group[key_group];
            let n = runs.len();
            let take = if let Some(dead) = runs.iter().position(Run::mostly_dead) {
                dead..dead + 1
            } else if n >= 2 && runs[n - 2].live_rows <= 2 * runs[n - 1].live_rows {
                n - 2..n
            } else {
                return Ok(written);
            };
            let merged = merge(&runs[take.clone()], keys, hasher, budget)?;
            let runs = &mut self.by_key_group[key_group];
            // The merged runs go (their files with the last holder).
            runs.drain(take.clone());
            self.count -= take.len();
            if let Some(run) = merged {
                written += run.file.bytes();
                self.by_key_group[key_group].insert(take.start, run);
                self.count += 1;
            }
        }
    }

    /// Lists every run in a checkpoint's state (key group, chunk id,
    /// bitmap of live rows) and hands its file to `writer` until a
    /// completed checkpoint stored it; later ones reference it.
    pub(crate) fn list(&mut self, checkpoint: u64, writer: &mut ChunkWriter, e: &mut Encoder) {
        for (kg, runs) in self.by_key_group.iter_mut().enumerate() {
            for run in runs {
                e.u64(kg as u64);
                e.bytes(&run.id.to_le_bytes());
                e.bytes(&run.live_bitmap());
                if run.stored == Stored::Yes {
                    writer.reference(run.id);
                } else {
                    writer.write_file(run.id, run.file.clone());
                    run.stored.sent(checkpoint);
                }
            }
        }
    }

    /// Drops the runs of a key group none of whose keys is left.
    pub(crate) fn drop_dead(&mut self, key_group: usize) {
        let runs = &mut self.by_key_group[key_group];
        let before = runs.len();
        runs.retain(|r| r.live_rows > 0);
        self.count -= before - runs.len();
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &Run)> {
        self.by_key_group.iter().enumerate().flat_map(|(kg, runs)| runs.iter().map(move |r| (kg, r)))
    }

    /// Checkpoint `checkpoint` completed: runs sent with it are stored.
    pub(crate) fn complete(&mut self, checkpoint: u64) {
        for run in self.by_key_group.iter_mut().flatten() {
            run.stored.completed(checkpoint);
        }
    }

    /// Rows held on disk.
    pub(crate) fn live_rows(&self) -> usize {
        self.iter().map(|(_, r)| r.live_rows).sum()
    }

    /// Bytes on disk.
    pub(crate) fn disk(&self) -> usize {
        self.iter().map(|(_, r)| r.file.bytes()).sum()
    }

    /// Bytes in memory to find spilled keys.
    pub(crate) fn memory(&self) -> usize {
        self.iter().map(|(_, r)| r.memory()).sum()
    }
}

/// The live rows of `runs` (of one key group, so disjoint keys) as one new
/// run in key order; `None` when none is live.
fn merge(
    runs: &[Run],
    keys: &dyn Fn(&RecordBatch) -> Result<Rows>,
    hasher: &impl BuildHasher,
    budget: &StateBudget,
) -> Result<Option<Run>> {
    let batches = runs.iter().map(Run::read_live).collect::<Result<Vec<_>>>()?;
    let merged = concat_blocks(&batches)?;
    if merged.num_rows() == 0 {
        return Ok(None);
    }
    let rows = keys(&merged)?;
    let mut order: Vec<u32> = (0..merged.num_rows() as u32).collect();
    // Stable: a key's rows keep their order.
    order.sort_by(|a, b| rows.row(*a as usize).cmp(&rows.row(*b as usize)));
    let sorted = take_record_batch(&merged, &UInt32Array::from(order.clone()))
        .context(|| "merging spilled state".to_string())?;
    let sorted_keys: Vec<&[u8]> = order.iter().map(|r| rows.row(*r as usize).data()).collect();
    Run::write(&sorted, &sorted_keys, hasher, budget).map(Some)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Array, AsArray, Int64Array};
    use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema};
    use datafusion::arrow::row::{RowConverter, SortField};
    use datafusion::common::hash_utils::RandomState;

    use super::*;
    use crate::spill::StateBackend;

    fn batch(keys: &[i64]) -> RecordBatch {
        let values: Vec<i64> = keys.iter().map(|k| k * 10).collect();
        let schema =
            Schema::new(vec![Field::new("k", DataType::Int64, false), Field::new("v", DataType::Int64, false)]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![Arc::new(Int64Array::from(keys.to_vec())), Arc::new(Int64Array::from(values))],
        )
        .unwrap()
    }

    fn encode(b: &RecordBatch) -> Result<Rows> {
        let c = RowConverter::new(vec![SortField::new(DataType::Int64)]).unwrap();
        Ok(c.convert_columns(&b.columns()[..1]).unwrap())
    }

    fn spill(runs: &mut Runs, keys: &[i64], hasher: &RandomState, budget: &StateBudget) -> usize {
        let b = batch(keys);
        let rows = encode(&b).unwrap();
        let refs: Vec<&[u8]> = (0..rows.num_rows()).map(|r| rows.row(r).data()).collect();
        let run = Run::write(&b, &refs, hasher, budget).unwrap();
        runs.add(0, run, &encode, hasher, budget).unwrap()
    }

    /// `key` encoded, and its hash.
    fn key_of(key: i64, hasher: &RandomState) -> (Vec<u8>, u64) {
        let k = encode(&batch(&[key])).unwrap().row(0).data().to_vec();
        let hash = hasher.hash_one(&k[..]);
        (k, hash)
    }

    /// The rows of `key` a lookup finds in a key group's runs.
    fn lookup(runs: &Runs, key: i64, hasher: &RandomState) -> Vec<i64> {
        let (k, hash) = key_of(key, hasher);
        let mut found = Vec::new();
        for run in runs.of(0) {
            let Some(block) = run.block_of(&k, hash) else { continue };
            let (b, first) = run.read_block(block).unwrap();
            let rows = encode(&b).unwrap();
            for r in 0..b.num_rows() {
                if rows.row(r).data() == &k[..] && run.is_live(first + r) {
                    found.push(b.column(1).as_primitive::<Int64Type>().value(r));
                }
            }
        }
        found
    }

    /// Keys spread over blocks stay findable, with every row of a key
    /// (a key's rows are never split between blocks), and dead rows are
    /// not found.
    #[test]
    fn a_key_is_found_in_its_block() {
        let dir = tempfile::tempdir().unwrap();
        let backend = StateBackend::spilling(1 << 20, &dir.path().join("spill")).unwrap();
        let budget = backend.share("r", 0).unwrap();
        let hasher = RandomState::with_seed(1);
        let mut keys: Vec<i64> = (0..5000).map(|k| k / 3 * 2).collect();
        keys.sort();
        let mut runs = Runs::default();
        spill(&mut runs, &keys, &hasher, &budget);
        let run = &runs.of(0)[0];
        assert!(run.blocks.len() >= 4, "{} blocks", run.blocks.len());
        for key in [0, 2, 682, 3330] {
            assert_eq!(lookup(&runs, key, &hasher), vec![key * 10; 3], "key {key}");
        }
        for key in [1, 681, 3333, -5, 100_000] {
            assert!(lookup(&runs, key, &hasher).is_empty(), "key {key}");
        }
        let (key, hash) = key_of(682, &hasher);
        let run = &mut runs.of_mut(0)[0];
        let (b, first) = run.read_block(run.block_of(&key, hash).unwrap()).unwrap();
        let col = b.column(0).as_primitive::<Int64Type>();
        for r in (0..b.num_rows()).filter(|r| col.value(*r) == 682) {
            run.kill(first + r);
        }
        assert!(lookup(&runs, 682, &hasher).is_empty());
        assert_eq!(runs.live_rows(), 4997);
    }

    /// Runs merge in tiers: a key group of many spills keeps few runs,
    /// every live row once, in key order; merges write a few times what
    /// was spilled, not its square.
    #[test]
    fn runs_merge_in_tiers() {
        let dir = tempfile::tempdir().unwrap();
        let backend = StateBackend::spilling(1 << 20, &dir.path().join("spill")).unwrap();
        let budget = backend.share("r", 0).unwrap();
        let hasher = RandomState::with_seed(1);
        let mut runs = Runs::default();
        let (mut spilled, mut merged) = (0, 0);
        for s in 0..64i64 {
            let keys: Vec<i64> = (0..100).map(|i| i * 64 + s).collect();
            merged += spill(&mut runs, &keys, &hasher, &budget);
            spilled += runs.of(0).last().unwrap().file.bytes();
            assert!(runs.of(0).len() <= 8, "{} runs after {} spills", runs.of(0).len(), s + 1);
        }
        assert!(merged < 8 * spilled, "merges wrote {merged} bytes for {spilled} spilled");
        let mut all: Vec<i64> = Vec::new();
        for run in runs.of(0) {
            let b = run.read_live().unwrap();
            let col = b.column(0).as_primitive::<Int64Type>();
            let keys: Vec<i64> = col.values().to_vec();
            assert!(keys.windows(2).all(|w| w[0] <= w[1]), "a run out of key order");
            all.extend(keys);
        }
        all.sort();
        assert_eq!(all, (0..6400).collect::<Vec<i64>>());
        for key in [0, 63, 6399] {
            assert_eq!(lookup(&runs, key, &hasher), vec![key * 10]);
        }
    }

    /// A run mostly loaded back is rewritten with its live rows alone, and
    /// a run of no live row is dropped.
    #[test]
    fn dead_rows_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let backend = StateBackend::spilling(1 << 20, &dir.path().join("spill")).unwrap();
        let budget = backend.share("r", 0).unwrap();
        let hasher = RandomState::with_seed(1);
        let mut runs = Runs::default();
        spill(&mut runs, &(0..30).collect::<Vec<_>>(), &hasher, &budget);
        for r in 0..20 {
            runs.of_mut(0)[0].kill(r);
        }
        spill(&mut runs, &(100..103).collect::<Vec<_>>(), &hasher, &budget);
        let sizes: Vec<usize> = runs.of(0).iter().map(|r| r.rows).collect();
        assert_eq!(sizes, vec![10, 3], "the mostly dead run was not rewritten alone");
        for r in 0..10 {
            runs.of_mut(0)[0].kill(r);
        }
        runs.drop_dead(0);
        assert_eq!(runs.of(0).len(), 1);
        let b = live_rows_of_chunk(&runs.of(0)[0].file.read().unwrap(), &[], "t").unwrap();
        assert_eq!(b.column(0).len(), 3);
    }
}
