//! A run: the oldest rows of one inner side of an interval or regular join,
//! spilled to a local file once the join outgrew its share of
//! `state.memory.budget`. The file is a checkpoint chunk as
//! [`SideRows::encode`](super::sides::SideRows::encode) writes one (the
//! rows split by key group; its batches compressed, as spill files' are),
//! so that a checkpoint copies it as it is, once, and references it
//! afterwards, and a restore reads it as any chunk.
//! Where each key group's part lies in the file is kept in memory: a probe
//! reads only the parts of its own rows' key groups. For a join on one
//! integer key the rows are also sorted by key and cut into blocks of about
//! [`BLOCK`](super::run_order::BLOCK) bytes (`run_order.rs`), each split by key group, and a probe reads only the
//! blocks its keys meet (Nexmark q4's probes meet one block of a run).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::kernels::aggregate::{max, min};
use datafusion::arrow::compute::{cast, interleave_record_batch};
use datafusion::arrow::datatypes::{DataType, Int64Type, SchemaRef};
use datafusion::physical_plan::PhysicalExpr;

use crate::checkpoint::chunk::{ChunkId, ChunkWriter, Stored, new_chunk_id};
use crate::checkpoint::codec::{Decoder, Encoder};
use crate::error::{EngineError, Result, ResultExt};
use crate::join::run_order::{At, RunOrder};
use crate::join::sides::Held;
use crate::message::EventTime;
use crate::operators::evaluate::columns;
use crate::runtime::exchange::{KEY_GROUPS, key_groups};
use crate::spill::{SpilledBytes, StateBudget};

/// Bytes of adjacent parts a probe reads at once, at most (a part larger
/// than that is read alone): fewer reads, and little memory.
const READ: u64 = 4 << 20;

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
    /// Per block of adjacent parts, in file order: its first part, and the
    /// range of its rows' keys (one block of unknown range unless the join
    /// is on one integer key).
    blocks: Box<[(u32, KeyRange)]>,
}

impl Run {
    /// Spills `batches` (rows of one side, joined on `keys`, with times
    /// `times`) to a new file of `budget`. `chunk`: the stored checkpoint
    /// chunk that holds exactly these rows, which the run then stands for
    /// (checkpoints go on referencing it); without one, the next
    /// checkpoint writes the file.
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
        let (parts, blocks, key_range) = write_blocks(batches, keys, hashes, &mut |bytes| w.append(bytes))?;
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
            blocks: blocks.into(),
        })
    }

    /// Merges `self` and the run after it, `next`, into one new run: fewer
    /// runs for a probe to read, and fewer parts' places in memory. Both
    /// files are chunks split by key group, and a chunk may hold several
    /// parts of one key group, so the merged file is their parts copied
    /// byte for byte: nothing is decoded, and no more than a copy buffer is
    /// in memory. Runs of unknown key ranges get each key group's parts
    /// together (`self`'s first), so that a probe reads them at once;
    /// runs in blocks by key keep their blocks, `self`'s then `next`'s.
    pub fn merge(&self, next: &Run, budget: &StateBudget) -> Result<Self> {
        let parts = self.groups.len() + next.groups.len();
        let mut w = budget.spill_writer()?;
        w.append(&(parts as u64).to_le_bytes())?;
        let (mut groups, mut lens) = (Vec::with_capacity(parts), Vec::with_capacity(parts));
        let unknown = |r: &Run| matches!(*r.blocks, [(_, KeyRange::Unknown)]);
        let blocks = if unknown(self) && unknown(next) {
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
            vec![(0, KeyRange::Unknown)]
        } else {
            let mut blocks = self.blocks.to_vec();
            let shift = self.groups.len() as u32;
            blocks.extend(next.blocks.iter().map(|(first, keys)| (first + shift, *keys)));
            for run in [self, next] {
                w.copy_from(&run.file, 8, run.disk_bytes() - 8)?;
                groups.extend_from_slice(&run.groups);
                lens.extend_from_slice(&run.lens);
            }
            blocks
        };
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
            blocks: blocks.into(),
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
    /// completed checkpoint stored it, else written as its file (which the
    /// store links: nothing is read). Its chunk id.
    pub fn list(&mut self, checkpoint: u64, chunks: &mut ChunkWriter) -> ChunkId {
        if self.stored == Stored::Yes {
            chunks.reference(self.id);
        } else {
            chunks.write_file(self.id, self.file.clone());
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

    /// Hands `each` the parts of the key groups `wanted` marks in the
    /// blocks whose keys meet `keys`, as rows of the side's `schema`, one
    /// at a time: a probe joins each and lets it go. Adjacent such parts
    /// are read together, up to [`READ`] bytes at once. The parts and the
    /// reads.
    pub fn read_each(
        &self,
        wanted: &[bool],
        keys: KeyRange,
        schema: &SchemaRef,
        each: &mut dyn FnMut(RecordBatch) -> Result<()>,
    ) -> Result<(usize, usize)> {
        let mut want = vec![false; self.groups.len()];
        for (b, (first, _)) in self.blocks.iter().enumerate().filter(|(_, (_, range))| range.meets(keys)) {
            let end = self.blocks.get(b + 1).map_or(self.groups.len(), |(next, _)| *next as usize);
            let first = *first as usize;
            for (w, g) in want[first..end].iter_mut().zip(&self.groups[first..end]) {
                *w = wanted.get(*g as usize).copied().unwrap_or(false);
            }
        }
        let starts = self.starts();
        let (mut i, mut parts, mut reads) = (0, 0, 0);
        while i < want.len() {
            if !want[i] {
                i += 1;
                continue;
            }
            let first = i;
            i += 1;
            while i < want.len() && want[i] && starts[i + 1] - starts[first] <= READ {
                i += 1;
            }
            let bytes = self.file.read_at(starts[first], (starts[i] - starts[first]) as usize)?;
            for part in first..i {
                // A part is its key group, then its rows.
                let at = (starts[part] - starts[first]) as usize + 8;
                each(Decoder::batch_alone_of(&bytes[at..at + self.lens[part] as usize], schema)?)?;
            }
            (parts, reads) = (parts + i - first, reads + 1);
        }
        Ok((parts, reads))
    }

    /// Bytes of its file.
    pub fn disk_bytes(&self) -> usize {
        self.file.bytes()
    }

    /// Bytes it keeps in memory: where its parts are.
    pub fn memory(&self) -> usize {
        size_of::<Self>()
            + self.groups.len()
            + self.lens.len() * size_of::<u32>()
            + self.blocks.len() * size_of::<(u32, KeyRange)>()
    }
}

/// Writes the rows of `batches`, joined on `keys`, as a chunk of blocks
/// each split by key group (one part per key group of the block, gathered
/// from all the batches: fewer, larger parts for a probe to read), each
/// part gathered and encoded right before it goes to `out`: no more than
/// one part is copied at a time. The blocks are [`RunOrder`]'s. Each part's key group and bytes (after its key group), each
/// block's first part and key range, and the rows' key range.
#[allow(clippy::type_complexity)]
fn write_blocks(
    batches: &[RecordBatch],
    keys: &[Arc<dyn PhysicalExpr>],
    hashes: &mut Vec<u64>,
    out: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<(Vec<(u8, u32)>, Vec<(u32, KeyRange)>, KeyRange)> {
    let ctx = || "join state: spilling".to_string();
    let fault = |what: &str| EngineError::State(format!("join state: spilling {what}"));
    let (mut range, mut of_rows, mut key_columns) =
        (KeyRange::Empty, Vec::with_capacity(batches.len()), Vec::with_capacity(batches.len()));
    for batch in batches {
        let columns = columns(keys, batch).context(ctx)?;
        range = range.union(KeyRange::of(&columns)?);
        // A byte a row: key groups fit one (`Run::groups`).
        of_rows.push(key_groups(&columns, batch.num_rows(), hashes)?.into_iter().map(|g| g as u8).collect::<Vec<u8>>());
        key_columns.push(columns);
    }
    let order = RunOrder::new(batches, &key_columns, range)?;
    drop(key_columns);
    let group = |(b, r): &At| of_rows[*b as usize][*r as usize];
    // The parts are counted first: the count comes before them.
    let mut count = 0;
    order.blocks(&mut |rows, _| {
        rows.sort_by_key(group);
        count += rows.chunk_by(|a, b| group(a) == group(b)).count();
        Ok(())
    })?;
    out(&(count as u64).to_le_bytes())?;
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    let (mut parts, mut firsts, mut e) = (Vec::with_capacity(count), Vec::new(), Encoder::compressing());
    order.blocks(&mut |rows, keys| {
        firsts.push((parts.len() as u32, keys));
        rows.sort_by_key(group);
        for part in rows.chunk_by(|a, b| group(a) == group(b)) {
            let g = group(&part[0]);
            let at: Vec<(usize, usize)> = part.iter().map(|(b, r)| (*b as usize, *r as usize)).collect();
            let part = interleave_record_batch(&refs, &at).context(ctx)?;
            e.bytes.clear();
            e.u64(u64::from(g));
            e.batch(&part)?;
            out(&e.bytes)?;
            let len = u32::try_from(e.bytes.len() - 8).map_err(|_| fault("a key group's rows of over 4 GB"))?;
            parts.push((g, len));
        }
        Ok(())
    })?;
    Ok((parts, firsts, range))
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
