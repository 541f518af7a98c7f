//! A run: the oldest rows of one inner side of an interval or regular join,
//! spilled to a local file once the join outgrew its share of
//! `state.memory.budget`. The file is a checkpoint chunk exactly as
//! [`SideRows::encode`](super::sides::SideRows::encode) writes one (the
//! rows split by key group), so that a checkpoint copies it as it is, once,
//! and references it afterwards, and a restore reads it as any chunk.
//! Where each key group's part lies in the file is kept in memory: a probe
//! reads only the parts of its own rows' key groups.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::kernels::aggregate::{max, min};
use datafusion::arrow::compute::{cast, interleave_record_batch};
use datafusion::arrow::datatypes::{DataType, Int64Type, SchemaRef};
use datafusion::physical_plan::PhysicalExpr;

use crate::checkpoint::chunk::{ChunkId, ChunkWriter, Stored, new_chunk_id};
use crate::checkpoint::codec::{Decoder, Encoder};
use crate::error::{EngineError, Result, ResultExt};
use crate::join::sides::Held;
use crate::message::EventTime;
use crate::operators::evaluate::columns;
use crate::runtime::exchange::{KEY_GROUPS, key_groups};
use crate::spill::{SpilledBytes, StateBudget};

/// A part's key group is kept in a byte.
const _: () = assert!(KEY_GROUPS <= 256);

/// Spilled rows of one side, older than every batch the side holds in
/// memory.
pub(crate) struct Run {
    file: SpilledBytes,
    /// The chunk a checkpoint stores the run as.
    id: ChunkId,
    stored: Stored,
    /// The earliest and latest time of its rows (`EventTime::MIN`/`MAX` in
    /// a regular join): a probe skips a run its rows cannot meet, and the
    /// watermark drops it whole.
    earliest: EventTime,
    latest: EventTime,
    /// Its rows' smallest and largest key, for a join on one integer key.
    keys: KeyRange,
    /// Per part of the file, in order: its key group, and the bytes of its
    /// rows (where it starts follows). Five bytes a part: a small budget
    /// holds many runs' parts.
    groups: Box<[u8]>,
    lens: Box<[u32]>,
}

impl Run {
    /// Spills `batches` (rows of one side, joined on `keys`, with times
    /// `times`) to a new file of `budget`. `chunk`: the stored checkpoint
    /// chunk that holds exactly these rows, which the run then stands for
    /// (checkpoints go on referencing it); without one, the next
    /// checkpoint copies the file.
    pub fn write(
        batches: &[RecordBatch],
        keys: &[Arc<dyn PhysicalExpr>],
        times: (EventTime, EventTime),
        chunk: Option<Held>,
        budget: &StateBudget,
        hashes: &mut Vec<u64>,
    ) -> Result<Self> {
        if batches.is_empty() {
            return Err(EngineError::State("join state: spilling no rows".into()));
        }
        let mut w = budget.spill_writer()?;
        let (parts, key_range) = write_by_key_group(batches, keys, hashes, &mut |bytes| w.append(bytes))?;
        let file = w.finish()?;
        let (id, stored) = match chunk {
            Some(Held { id, pending: None }) => (id, Stored::Yes),
            _ => (new_chunk_id(), Stored::No),
        };
        let (groups, lens) = parts.into_iter().unzip::<_, _, Vec<u8>, Vec<u32>>();
        Ok(Self {
            file,
            id,
            stored,
            earliest: times.0,
            latest: times.1,
            keys: key_range,
            groups: groups.into(),
            lens: lens.into(),
        })
    }

    /// Merges `self` and the run after it, `next`, into one new run: fewer
    /// runs for a probe to read, and fewer parts' places in memory. Both
    /// files are chunks split by key group, and a chunk may hold several
    /// parts of one key group, so the merged file is their parts copied
    /// byte for byte, each key group's together (`self`'s first): nothing
    /// is decoded, and no more than a copy buffer is in memory.
    pub fn merge(&self, next: &Run, budget: &StateBudget) -> Result<Self> {
        let parts = self.groups.len() + next.groups.len();
        let mut w = budget.spill_writer()?;
        w.append(&(parts as u64).to_le_bytes())?;
        let (mut groups, mut lens) = (Vec::with_capacity(parts), Vec::with_capacity(parts));
        let mut present: Vec<u8> = self.groups.iter().chain(next.groups.iter()).copied().collect();
        present.sort_unstable();
        present.dedup();
        let runs = [(self, self.starts()), (next, next.starts())];
        for g in present {
            for (run, starts) in &runs {
                // Its parts of `g`, adjacent ones copied in one piece.
                let mut i = 0;
                while i < run.groups.len() {
                    if run.groups[i] != g {
                        i += 1;
                        continue;
                    }
                    let first = i;
                    while i < run.groups.len() && run.groups[i] == g {
                        groups.push(g);
                        lens.push(run.lens[i]);
                        i += 1;
                    }
                    w.copy_from(&run.file, starts[first], (starts[i] - starts[first]) as usize)?;
                }
            }
        }
        if w.bytes() + 8 != self.disk_bytes() + next.disk_bytes() {
            return Err(EngineError::State(format!(
                "join state: merging runs of {} and {} bytes wrote {}",
                self.disk_bytes(),
                next.disk_bytes(),
                w.bytes()
            )));
        }
        Ok(Self {
            file: w.finish()?,
            id: new_chunk_id(),
            stored: Stored::No,
            earliest: self.earliest.min(next.earliest),
            latest: self.latest.max(next.latest),
            keys: self.keys.union(next.keys),
            groups: groups.into(),
            lens: lens.into(),
        })
    }

    /// Where each part starts in the file (at its key group), then where
    /// the file ends.
    fn starts(&self) -> Vec<u64> {
        let mut at = 8;
        let mut starts = Vec::with_capacity(self.lens.len() + 1);
        for len in &self.lens {
            starts.push(at);
            at += 8 + u64::from(*len);
        }
        starts.push(at);
        starts
    }

    /// Lists the run in checkpoint `checkpoint`: referenced once a
    /// completed checkpoint stored it, else its file goes into `copies`, to
    /// be read off the task loop. Its chunk id.
    pub fn list(
        &mut self,
        checkpoint: u64,
        chunks: &mut ChunkWriter,
        copies: &mut Vec<(ChunkId, SpilledBytes)>,
    ) -> ChunkId {
        if self.stored == Stored::Yes {
            chunks.reference(self.id);
        } else {
            copies.push((self.id, self.file.clone()));
            self.stored.sent(checkpoint);
        }
        self.id
    }

    /// Checkpoint `checkpoint` completed.
    pub fn completed(&mut self, checkpoint: u64) {
        self.stored.completed(checkpoint);
    }

    /// The latest time of its rows.
    pub fn latest(&self) -> EventTime {
        self.latest
    }

    /// Whether it may hold rows with times within `[lo, hi]` and keys
    /// within `keys`.
    pub fn overlaps(&self, lo: EventTime, hi: EventTime, keys: KeyRange) -> bool {
        self.latest >= lo && self.earliest <= hi && self.keys.meets(keys)
    }

    /// Reads the parts of the key groups `wanted` marks, as rows of the
    /// side's `schema`.
    pub fn read(&self, wanted: &[bool], schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
        let mut batches = Vec::new();
        // The count of parts, then each part's key group and rows.
        let mut at = 8;
        for (group, len) in self.groups.iter().zip(&self.lens) {
            at += 8;
            if wanted.get(*group as usize).copied().unwrap_or(false) {
                batches.push(Decoder::batch_alone_of(&self.file.read_at(at, *len as usize)?, schema)?);
            }
            at += *len as u64;
        }
        Ok(batches)
    }

    /// Bytes of its file.
    pub fn disk_bytes(&self) -> usize {
        self.file.bytes()
    }

    /// Bytes it keeps in memory: where its parts are.
    pub fn memory(&self) -> usize {
        size_of::<Self>() + self.groups.len() + self.lens.len() * size_of::<u32>()
    }
}

/// Writes the rows of `batches`, joined on `keys`, as a chunk with one part
/// per key group (all the batches' rows of it: fewer, larger parts for a
/// probe to read), each part gathered from the batches and encoded right
/// before it goes to `out`: no more than one part is copied at a time.
/// Each part's key group and bytes (after its key group), and the rows'
/// key range.
fn write_by_key_group(
    batches: &[RecordBatch],
    keys: &[Arc<dyn PhysicalExpr>],
    hashes: &mut Vec<u64>,
    out: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<(Vec<(u8, u32)>, KeyRange)> {
    let ctx = || "join state: spilling".to_string();
    let fault = |what: &str| EngineError::State(format!("join state: spilling {what}"));
    // Each row's key group, then the rows (batch, row) in key group order.
    let (mut range, mut of_rows, mut counts) =
        (KeyRange::Empty, Vec::with_capacity(batches.len()), [0usize; KEY_GROUPS]);
    for batch in batches {
        let columns = columns(keys, batch).context(ctx)?;
        range = range.union(KeyRange::of(&columns)?);
        let groups = key_groups(&columns, batch.num_rows(), hashes)?;
        for g in &groups {
            *counts.get_mut(*g).ok_or_else(|| fault("a key group past the last"))? += 1;
        }
        // A byte a row: key groups fit one (`Run::groups`).
        of_rows.push(groups.into_iter().map(|g| g as u8).collect::<Vec<u8>>());
    }
    let mut next = [0usize; KEY_GROUPS];
    for g in 1..KEY_GROUPS {
        next[g] = next[g - 1] + counts[g - 1];
    }
    let rows = batches.iter().map(RecordBatch::num_rows).sum();
    let mut order = vec![(0u32, 0u32); rows];
    for (b, groups) in of_rows.iter().enumerate() {
        let b = u32::try_from(b).map_err(|_| fault("over 4G batches"))?;
        for (r, g) in groups.iter().enumerate() {
            order[next[*g as usize]] = (b, r as u32);
            next[*g as usize] += 1;
        }
    }
    drop(of_rows);
    let present = counts.iter().filter(|c| **c > 0).count();
    out(&(present as u64).to_le_bytes())?;
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    let (mut parts, mut e, mut at) = (Vec::with_capacity(present), Encoder::default(), 0);
    for (g, count) in counts.iter().enumerate().filter(|(_, c)| **c > 0) {
        let rows: Vec<(usize, usize)> = order[at..at + count].iter().map(|(b, r)| (*b as usize, *r as usize)).collect();
        at += count;
        let part = interleave_record_batch(&refs, &rows).context(ctx)?;
        e.bytes.clear();
        e.u64(g as u64);
        e.batch(&part)?;
        out(&e.bytes)?;
        let len = u32::try_from(e.bytes.len() - 8).map_err(|_| fault("a key group's rows of over 4 GB"))?;
        parts.push((g as u8, len));
    }
    Ok((parts, range))
}

/// The keys of a set of rows, for a join on one integer key (Nexmark's
/// auction ids grow: a new bid's auction is above every old auction run's,
/// and a new auction above every old bid run's keys). Other keys are not
/// compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyRange {
    /// Not one integer key.
    Unknown,
    /// Only NULL keys, which meet nothing.
    Empty,
    Within(i64, i64),
}

impl KeyRange {
    /// The range of the key columns `keys`.
    pub fn of(keys: &[ArrayRef]) -> Result<Self> {
        let [key] = keys else {
            return Ok(Self::Unknown);
        };
        if !key.data_type().is_integer() || matches!(key.data_type(), DataType::UInt64) {
            return Ok(Self::Unknown);
        }
        let key = cast(key, &DataType::Int64).context(|| "join keys".into())?;
        let key = key.as_primitive::<Int64Type>();
        Ok(match (min(key), max(key)) {
            (Some(lo), Some(hi)) => Self::Within(lo, hi),
            _ => Self::Empty,
        })
    }

    /// The range of the rows of both.
    pub fn union(self, other: KeyRange) -> KeyRange {
        match (self, other) {
            (Self::Unknown, _) | (_, Self::Unknown) => Self::Unknown,
            (Self::Empty, r) | (r, Self::Empty) => r,
            (Self::Within(a, b), Self::Within(c, d)) => Self::Within(a.min(c), b.max(d)),
        }
    }

    /// Whether rows of the two ranges may have equal keys.
    pub fn meets(self, other: KeyRange) -> bool {
        match (self, other) {
            (Self::Empty, _) | (_, Self::Empty) => false,
            (Self::Within(a, b), Self::Within(c, d)) => b >= c && a <= d,
            _ => true,
        }
    }
}
