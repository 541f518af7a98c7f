//! Groups a group aggregation spilled to disk, as runs per key group.
//!
//! A run is some of one key group's groups in key order, written as a
//! checkpoint chunk (`chunks.rs`'s batch layout) to a spill file, so that a
//! checkpoint copies an unstored run's bytes once and references it after.
//! Each group lives in exactly one place: in memory, or as one live row of
//! one run. A row of a group loaded back into memory is marked dead; the
//! runs of a key group therefore hold disjoint keys, and merging them is a
//! filter and a sort, never an accumulator merge.
//!
//! What stays in memory per run is what decides whether reading it can
//! find a key: its smallest and largest key (keys that grow, as auction
//! ids do, fall outside every older run) and a Bloom filter of its keys'
//! hashes, about 10 bits a group.

use datafusion::arrow::array::BooleanArray;
use fastbloom::BloomFilter;

use crate::checkpoint::chunk::{ChunkId, Stored, new_chunk_id};
use crate::checkpoint::live_rows;
use crate::error::{EngineError, Result};
use crate::runtime::exchange::KEY_GROUPS;
use crate::spill::SpilledBytes;

/// The false positive rate of a run's filter: a key not in the run reads
/// it once in a hundred lookups.
const FALSE_POSITIVES: f64 = 0.01;

/// One spilled, immutable batch of groups.
pub(super) struct Run {
    pub(super) file: SpilledBytes,
    pub(super) id: ChunkId,
    pub(super) stored: Stored,
    rows: usize,
    /// Which rows still hold their group (`None`: all of them).
    live: Option<Vec<bool>>,
    live_rows: usize,
    min: Box<[u8]>,
    max: Box<[u8]>,
    filter: BloomFilter,
}

impl Run {
    /// A run of `file`, whose rows have the encoded keys `keys` (sorted)
    /// with hashes `hashes`.
    pub(super) fn new<'k>(file: SpilledBytes, keys: impl ExactSizeIterator<Item = (&'k [u8], u64)>) -> Result<Self> {
        let rows = keys.len();
        let mut filter = BloomFilter::with_false_pos(FALSE_POSITIVES).expected_items(rows.max(1));
        let (mut min, mut max): (&[u8], &[u8]) = (&[], &[]);
        for (i, (key, hash)) in keys.enumerate() {
            if i == 0 {
                min = key;
            }
            max = key;
            filter.insert_hash(hash);
        }
        if rows == 0 {
            return Err(EngineError::State("an empty run of spilled groups".into()));
        }
        Ok(Self {
            file,
            id: new_chunk_id(),
            stored: Stored::No,
            rows,
            live: None,
            live_rows: rows,
            min: min.into(),
            max: max.into(),
            filter,
        })
    }

    /// Whether the group of `key` (hashed `hash`) may be in this run.
    #[inline]
    pub(super) fn may_hold(&self, key: &[u8], hash: u64) -> bool {
        key >= &self.min[..] && key <= &self.max[..] && self.filter.contains_hash(hash)
    }

    pub(super) fn is_live(&self, row: usize) -> bool {
        self.live.as_ref().is_none_or(|l| l[row])
    }

    /// Row `row`'s group went back into memory.
    pub(super) fn kill(&mut self, row: usize) {
        let live = self.live.get_or_insert_with(|| vec![true; self.rows]);
        if std::mem::replace(&mut live[row], false) {
            self.live_rows -= 1;
        }
    }

    /// More than half of its rows are dead: worth rewriting.
    pub(super) fn mostly_dead(&self) -> bool {
        self.live_rows * 2 < self.rows
    }

    /// Which rows are live, for a filter (`None`: all).
    pub(super) fn live_mask(&self) -> Option<BooleanArray> {
        self.live.as_ref().map(|l| BooleanArray::from(l.clone()))
    }

    /// The live rows as the checkpoint lists them: a bitmap, empty when
    /// all are live.
    pub(super) fn live_bitmap(&self) -> Vec<u8> {
        match &self.live {
            None => Vec::new(),
            Some(l) => live_rows::bitmap(l),
        }
    }

    /// Bytes in memory: the filter, the key range and the live flags.
    pub(super) fn memory(&self) -> usize {
        self.filter.num_bits() / 8 + self.min.len() + self.max.len() + self.live.as_ref().map_or(0, Vec::len)
    }
}

/// The live rows of a stored run of `rows` rows as its checkpoint's
/// bitmap lists them (empty: all); `None` when all are live. A bitmap of
/// the wrong length is damaged state.
pub(super) fn live_rows_of(bitmap: &[u8], rows: usize, name: &str) -> Result<Option<BooleanArray>> {
    if bitmap.is_empty() {
        return Ok(None);
    }
    let mask = live_rows::mask(bitmap, rows).ok_or_else(|| {
        EngineError::State(format!("{name}: a run of {rows} spilled groups lists {} bytes of live rows", bitmap.len()))
    })?;
    Ok(Some(mask))
}

/// Every key group's runs, oldest first.
pub(super) struct Runs {
    by_key_group: Vec<Vec<Run>>,
    count: usize,
    /// Runs read from disk to find a group.
    pub(super) reads: u64,
}

impl Default for Runs {
    fn default() -> Self {
        Self { by_key_group: (0..KEY_GROUPS).map(|_| Vec::new()).collect(), count: 0, reads: 0 }
    }
}

impl Runs {
    pub(super) fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub(super) fn of(&self, key_group: usize) -> &[Run] {
        &self.by_key_group[key_group]
    }

    pub(super) fn of_mut(&mut self, key_group: usize) -> &mut Vec<Run> {
        &mut self.by_key_group[key_group]
    }

    pub(super) fn push(&mut self, key_group: usize, run: Run) {
        self.by_key_group[key_group].push(run);
        self.count += 1;
    }

    /// Takes every run of a key group out (to merge them).
    pub(super) fn take(&mut self, key_group: usize) -> Vec<Run> {
        let runs = std::mem::take(&mut self.by_key_group[key_group]);
        self.count -= runs.len();
        runs
    }

    /// Drops the runs of a key group none of whose groups is left.
    pub(super) fn drop_dead(&mut self, key_group: usize) {
        let runs = &mut self.by_key_group[key_group];
        let before = runs.len();
        runs.retain(|r| r.live_rows > 0);
        self.count -= before - runs.len();
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (usize, &Run)> {
        self.by_key_group.iter().enumerate().flat_map(|(kg, runs)| runs.iter().map(move |r| (kg, r)))
    }

    /// Checkpoint `checkpoint` completed: runs sent with it are stored.
    pub(super) fn complete(&mut self, checkpoint: u64) {
        for run in self.by_key_group.iter_mut().flatten() {
            run.stored.completed(checkpoint);
        }
    }

    /// Groups held on disk.
    pub(super) fn live_rows(&self) -> usize {
        self.iter().map(|(_, r)| r.live_rows).sum()
    }

    /// Bytes on disk.
    pub(super) fn disk(&self) -> usize {
        self.iter().map(|(_, r)| r.file.bytes()).sum()
    }

    /// Bytes in memory to find spilled groups.
    pub(super) fn memory(&self) -> usize {
        self.iter().map(|(_, r)| r.memory()).sum()
    }
}
