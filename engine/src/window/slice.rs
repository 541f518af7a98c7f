//! One slice of a window aggregate and how it checkpoints incrementally.
//!
//! A slice folds rows into `live` groups. A checkpoint moves them out as
//! partial states split by key group, each an immutable chunk: the next
//! checkpoint writes only the chunks made since the last completed one (the
//! groups updated since then) and references the others. Chunks of the same
//! key group are merged again once the newer ones hold as many rows as the
//! oldest (or there are many), so memory and the work of firing stay within
//! about twice the state's size while unchanged state is never rewritten.
//!
//! With the spilling backend (`crate::spill`) parts are split by key group
//! as soon as they leave `live`, and a slice over its budget writes its
//! parts to local files in the chunks' encoding ([`Slice::spill`]): a
//! checkpoint copies a spilled part's bytes or references its chunk, and a
//! window fires one key group at a time, reading back only that group's
//! parts.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{Array, ArrayRef};

use crate::checkpoint::chunk::{ChunkBytes, ChunkId, ChunkMap, ChunkWriter, Stored, new_chunk_id};
use crate::checkpoint::codec::{Decoder, Encoder};
use crate::error::{EngineError, Result, ResultExt};
use crate::spill::{SpilledBytes, StateBudget};
use crate::window::groups::{EvaluatedInput, Grouping, Groups, PartialState};
use crate::window::pending::{KeyGroupSet, key_groups_of_new_groups};

/// More chunks than this in one key group of a slice are merged into one.
const MAX_CHUNKS_PER_GROUP: usize = 8;

/// The key group and chunk of a part that a checkpoint split off.
#[derive(Debug, Clone, Copy)]
struct PartChunk {
    group: usize,
    id: ChunkId,
    stored: Stored,
}

/// A partial state taken out of `live`.
#[derive(Clone)]
struct Part {
    held: Held,
    /// `None` until a checkpoint splits the part by key group.
    chunk: Option<PartChunk>,
}

/// Where a part's partial states are.
#[derive(Clone)]
enum Held {
    Memory(PartialState),
    /// Spilled: the bytes [`PartialState::encode`] writes, which are also
    /// the part's chunk.
    Disk {
        file: SpilledBytes,
        rows: usize,
    },
}

impl Held {
    fn rows(&self) -> usize {
        match self {
            Held::Memory(state) => state.rows,
            Held::Disk { rows, .. } => *rows,
        }
    }

    /// Bytes it holds in memory.
    fn memory(&self) -> usize {
        match self {
            Held::Memory(p) => {
                p.keys.iter().chain(p.states.iter().flatten()).map(|a| a.get_array_memory_size()).sum::<usize>()
            }
            Held::Disk { .. } => 0,
        }
    }

    /// Bytes it holds on disk.
    fn disk(&self) -> usize {
        match self {
            Held::Memory(_) => 0,
            Held::Disk { file, .. } => file.bytes(),
        }
    }

    /// The partial states, read back if spilled.
    fn state(&self) -> Result<Cow<'_, PartialState>> {
        match self {
            Held::Memory(state) => Ok(Cow::Borrowed(state)),
            Held::Disk { file, .. } => decode(&file.read()?).map(Cow::Owned),
        }
    }

    /// The part's chunk: its encoded partial states, or the file that
    /// holds them.
    fn encoded(&self) -> Result<ChunkBytes> {
        match self {
            Held::Memory(state) => {
                let mut bytes = Encoder::default();
                state.encode(&mut bytes)?;
                Ok(ChunkBytes::Memory(bytes.bytes))
            }
            Held::Disk { file, .. } => Ok(ChunkBytes::File(file.clone())),
        }
    }
}

/// The groups of one slice.
pub(crate) struct Slice {
    pub live: Groups,
    /// Partial states already taken out of `live` (for a window that fired,
    /// or a checkpoint); windows holding this slice merge them again.
    parts: Vec<Part>,
    /// The asynchronous snapshot of the latest checkpoint, until it
    /// completes or a newer one starts.
    in_flight: Option<InFlight>,
    /// The key groups of the slice's groups (`weir.pending_windows`).
    key_groups: KeyGroupSet,
    /// Whether parts are split by key group as they leave `live`, so that
    /// they can be spilled and fired one key group at a time.
    spills: bool,
}

/// A slice's parts as a checkpoint's barrier found them, split, compacted
/// and encoded off the task loop ([`CapturedSlice::write`]).
struct InFlight {
    checkpoint: u64,
    /// How many of the slice's parts the barrier found (later ones were
    /// added since, and are not in the checkpoint).
    parts: usize,
    /// The parts as written: once the checkpoint completes they replace
    /// the first `parts`, so that the next checkpoint references them.
    written: Arc<OnceLock<Vec<Part>>>,
}

/// What [`Slice::capture`] took: immutable arrays shared with the slice.
pub(crate) struct CapturedSlice {
    parts: Vec<Part>,
    checkpoint: u64,
    written: Arc<OnceLock<Vec<Part>>>,
}

impl CapturedSlice {
    /// Writes the captured parts as [`Slice::snapshot`] writes a slice's:
    /// the chunk ids to `e`, the chunks not yet stored to `chunks`.
    pub fn write(
        self,
        grouping: &Grouping,
        name: &str,
        e: &mut Encoder,
        chunks: &mut ChunkWriter,
        hashes: &mut Vec<u64>,
    ) -> Result<()> {
        let parts = write_parts(self.parts, grouping, name, self.checkpoint, e, chunks, hashes)?;
        // Set once: this is the only writer of this checkpoint's slot.
        let _ = self.written.set(parts);
        Ok(())
    }
}

impl Slice {
    /// Bytes held in memory: the live groups and the partial states taken
    /// out and not spilled.
    pub fn size(&self) -> usize {
        self.live.size() + self.parts.iter().map(|p| p.held.memory()).sum::<usize>()
    }

    /// Bytes spilled to disk.
    pub fn spilled(&self) -> usize {
        self.parts.iter().map(|p| p.held.disk()).sum()
    }

    /// Groups held: the live ones and those of the partial states taken
    /// out (a key in several counts more than once until they are merged).
    pub fn groups(&self) -> usize {
        self.live.len() + self.parts.iter().map(|p| p.held.rows()).sum::<usize>()
    }

    /// An empty slice; with `spills`, its parts are split by key group as
    /// they leave `live` ([`Slice::spill`]).
    pub fn new(grouping: &Grouping, name: &str, spills: bool) -> Result<Self> {
        Ok(Self {
            live: grouping.new_groups().context(|| format!("{name}: creating accumulators"))?,
            parts: Vec::new(),
            in_flight: None,
            key_groups: KeyGroupSet::default(),
            spills,
        })
    }

    /// The key groups the slice holds groups of.
    pub fn key_groups(&self) -> KeyGroupSet {
        self.key_groups
    }

    /// Folds rows into the live groups, and notes the key groups of the
    /// groups they add: one hash per new group (none once the slice holds
    /// every key group), so a group seen before costs nothing. Whether the
    /// slice gained a key group.
    pub fn update(&mut self, input: &EvaluatedInput, rows: usize, name: &str, hashes: &mut Vec<u64>) -> Result<bool> {
        let before = self.live.len();
        self.live.update(input, rows).context(|| format!("{name}: aggregating"))?;
        if self.key_groups.is_full() || self.live.len() == before {
            return Ok(false);
        }
        let new = key_groups_of_new_groups(self.live.row_groups(), before, self.live.len(), &input.keys, hashes, name)?;
        let mut added = false;
        for g in new {
            added |= self.key_groups.insert(g);
        }
        Ok(added)
    }

    /// True when every group of the slice is still in `live`.
    pub fn is_only_live(&self) -> bool {
        self.parts.is_empty()
    }

    /// Moves the live groups into the slice's parts, split by key group
    /// if the slice spills. Parts are only ever appended (or replaced in
    /// place by [`Slice::spill`]), so that the writer of a checkpoint in
    /// flight finds the ones it captured first.
    fn flush(&mut self, name: &str, hashes: &mut Vec<u64>) -> Result<()> {
        if self.live.is_empty() {
            return Ok(());
        }
        let state = self.live.take_state().context(|| format!("{name}: taking partial state"))?;
        if !self.spills {
            self.parts.push(Part { held: Held::Memory(state), chunk: None });
            return Ok(());
        }
        for (group, state) in state.split_by_key_group(hashes)? {
            let chunk = PartChunk { group, id: new_chunk_id(), stored: Stored::No };
            self.parts.push(Part { held: Held::Memory(state), chunk: Some(chunk) });
        }
        Ok(())
    }

    /// Merges every group of the slice into `window`.
    pub fn merge_into(&mut self, window: &mut Groups, name: &str, hashes: &mut Vec<u64>) -> Result<()> {
        self.flush(name, hashes)?;
        for part in &self.parts {
            let state = part.held.state()?;
            window.merge(&state).context(|| format!("{name}: merging window state"))?;
        }
        Ok(())
    }

    /// Empties the slice into final values by folding its parts into the
    /// live groups: a tumbling window's only slice fires without building
    /// a second table of every group, so a checkpoint that split the slice
    /// costs one merge of what it captured, not a re-aggregation of all.
    pub fn into_final(mut self, name: &str) -> Result<(Vec<ArrayRef>, Vec<ArrayRef>, usize)> {
        for part in &self.parts {
            let state = part.held.state()?;
            self.live.merge(&state).context(|| format!("{name}: merging window state"))?;
        }
        self.live.take_final().context(|| format!("{name}: taking final values"))
    }

    /// Moves the live groups into parts split by key group, for
    /// [`Slice::merge_key_group`] (the slice must spill).
    pub fn flush_by_key_group(&mut self, name: &str, hashes: &mut Vec<u64>) -> Result<()> {
        debug_assert!(self.spills, "only a slice that spills keeps its parts split by key group");
        self.flush(name, hashes)
    }

    /// Merges the groups of key group `group` into `window`, reading back
    /// the parts of it that were spilled (after
    /// [`Slice::flush_by_key_group`]).
    pub fn merge_key_group(&self, group: usize, window: &mut Groups, name: &str) -> Result<()> {
        for part in &self.parts {
            let of_group = match &part.chunk {
                Some(chunk) => chunk.group == group,
                None => return Err(EngineError::State(format!("{name}: window state not split by key group"))),
            };
            if of_group {
                let state = part.held.state()?;
                window.merge(&state).context(|| format!("{name}: merging window state"))?;
            }
        }
        Ok(())
    }

    /// Writes every part held in memory to a spill file of `budget` (the
    /// live groups first become parts, and new ones, without the old
    /// ones' allocations, take their place): the slice then holds nothing
    /// in memory until rows arrive again. Returns the bytes written.
    pub fn spill(
        &mut self,
        budget: &StateBudget,
        grouping: &Grouping,
        name: &str,
        hashes: &mut Vec<u64>,
    ) -> Result<usize> {
        let mut written = 0;
        self.flush(name, hashes)?;
        self.live = grouping.new_groups().context(|| format!("{name}: creating accumulators"))?;
        for part in &mut self.parts {
            if let Held::Memory(state) = &part.held {
                let rows = part.held.rows();
                let mut bytes = Encoder::compressing();
                state.encode(&mut bytes)?;
                let file = budget.spill(&bytes.bytes)?;
                written += file.bytes();
                part.held = Held::Disk { file, rows };
            }
        }
        Ok(written)
    }

    /// Writes the slice's state for checkpoint `checkpoint`: the chunk ids
    /// to `e`, the chunks not yet stored to `chunks`.
    pub fn snapshot(
        &mut self,
        grouping: &Grouping,
        name: &str,
        checkpoint: u64,
        e: &mut Encoder,
        chunks: &mut ChunkWriter,
        hashes: &mut Vec<u64>,
    ) -> Result<()> {
        self.adopt_written();
        self.flush(name, hashes)?;
        self.parts = write_parts(std::mem::take(&mut self.parts), grouping, name, checkpoint, e, chunks, hashes)?;
        Ok(())
    }

    /// The slice's state for checkpoint `checkpoint`, to be written off the
    /// task loop: its live groups are moved into its parts (the
    /// accumulators' state arrays, not re-encoded), whose arrays the
    /// capture shares; later rows fold into new live groups and parts, so
    /// they never reach it.
    pub fn capture(&mut self, name: &str, checkpoint: u64, hashes: &mut Vec<u64>) -> Result<CapturedSlice> {
        // The previous checkpoint ended (the coordinator starts one only then)
        // even if its completion has not reached the operator yet.
        self.adopt_written();
        self.flush(name, hashes)?;
        let written = Arc::new(OnceLock::new());
        self.in_flight = Some(InFlight { checkpoint, parts: self.parts.len(), written: Arc::clone(&written) });
        Ok(CapturedSlice { parts: self.parts.clone(), checkpoint, written })
    }

    /// Checkpoint `checkpoint` completed: the chunks written with it (or
    /// with an abandoned one before it, and written again since) are stored.
    pub fn checkpoint_complete(&mut self, checkpoint: u64) {
        if self.in_flight.as_ref().is_some_and(|f| f.checkpoint <= checkpoint) {
            self.adopt_written();
        }
        for chunk in self.parts.iter_mut().filter_map(|p| p.chunk.as_mut()) {
            chunk.stored.completed(checkpoint);
        }
    }

    /// Takes the parts the writer of the checkpoint in flight wrote in
    /// place of those it captured: the same groups, split by key group,
    /// their chunks sent with that checkpoint. Later checkpoints then
    /// reference those chunks (or send them again, same ids and bytes, if
    /// that checkpoint was abandoned) instead of splitting the groups into
    /// new chunks every time. A writer that never finished leaves the parts
    /// as they were. A part spilled since it was captured stays spilled:
    /// the writer wrote the same chunk from memory.
    fn adopt_written(&mut self) {
        if let Some(in_flight) = self.in_flight.take()
            && let Some(written) = in_flight.written.get()
        {
            let later = self.parts.split_off(in_flight.parts.min(self.parts.len()));
            let spilled: std::collections::HashMap<ChunkId, Held> = self
                .parts
                .drain(..)
                .filter_map(|p| match (p.chunk, &p.held) {
                    (Some(chunk), Held::Disk { .. }) => Some((chunk.id, p.held)),
                    _ => None,
                })
                .collect();
            self.parts = written
                .iter()
                .map(|p| match p.chunk.and_then(|c| spilled.get(&c.id)) {
                    Some(held) => Part { held: held.clone(), chunk: p.chunk },
                    None => p.clone(),
                })
                .collect();
            self.parts.extend(later);
        }
    }

    /// Restores the chunks `refs` lists (read by [`read_chunk_refs`]),
    /// keeping the key groups `owns` says are this subtask's. The chunks are
    /// written again at the next checkpoint: they may come from a savepoint,
    /// outside the job's store (or, with `added` — see
    /// [`Grouping::adding_aggregates`] — of a query with fewer aggregates).
    pub fn restore(
        &mut self,
        grouping: &Grouping,
        refs: &[(usize, ChunkId)],
        chunks: &ChunkMap,
        owns: &dyn Fn(usize) -> bool,
        added: Option<&[Option<usize>]>,
    ) -> Result<()> {
        for &(group, id) in refs.iter().filter(|(group, _)| owns(*group)) {
            self.key_groups.insert(group);
            let mut state = read_chunk(chunks, id)?;
            if let Some(saved) = added {
                state = grouping.adding_aggregates(state, saved)?;
            }
            grouping.check_state(&state)?;
            self.parts
                .push(Part { held: Held::Memory(state), chunk: Some(PartChunk { group, id, stored: Stored::No }) });
        }
        Ok(())
    }
}

/// Reads the chunks one slice's state references, as [`Slice::snapshot`]
/// writes them: (key group, chunk id) each. One reader for restoring a
/// slice and for inspecting a savepoint (`checkpoint::inspect`).
pub(crate) fn read_chunk_refs(d: &mut Decoder) -> Result<Vec<(usize, ChunkId)>> {
    let mut refs = Vec::new();
    for _ in 0..d.u64()? {
        let group = d.u64()? as usize;
        let id = <[u8; 16]>::try_from(d.bytes()?)
            .map(ChunkId::from_le_bytes)
            .map_err(|_| EngineError::State("window state has a malformed chunk id".into()))?;
        refs.push((group, id));
    }
    Ok(refs)
}

/// The partial states chunk `id` holds, as [`Slice::snapshot`] wrote them.
pub(crate) fn read_chunk(chunks: &ChunkMap, id: ChunkId) -> Result<PartialState> {
    decode(&chunks.get(id)?)
}

/// The partial states of a chunk's bytes (stored, or spilled).
fn decode(bytes: &[u8]) -> Result<PartialState> {
    let mut chunk = Decoder::new(bytes);
    let state = PartialState::decode(&mut chunk)?;
    chunk.finish()?;
    Ok(state)
}

/// Splits `parts` by key group into chunks (those not split yet), compacts
/// them, and writes them: the chunk ids to `e`, the chunks not yet stored
/// to `chunks` (marked sent in `checkpoint`). Returns the parts as written.
fn write_parts(
    parts: Vec<Part>,
    grouping: &Grouping,
    name: &str,
    checkpoint: u64,
    e: &mut Encoder,
    chunks: &mut ChunkWriter,
    hashes: &mut Vec<u64>,
) -> Result<Vec<Part>> {
    let mut split = Vec::with_capacity(parts.len());
    for part in parts {
        if part.chunk.is_some() {
            split.push(part);
            continue;
        }
        for (group, state) in part.held.state()?.split_by_key_group(hashes)? {
            let chunk = PartChunk { group, id: new_chunk_id(), stored: Stored::No };
            split.push(Part { held: Held::Memory(state), chunk: Some(chunk) });
        }
    }
    let mut parts = compact(split, grouping, name)?;
    e.u64(parts.len() as u64);
    for part in &mut parts {
        let chunk = part.chunk.as_mut().expect("split above");
        e.u64(chunk.group as u64);
        e.bytes(&chunk.id.to_le_bytes());
        match chunk.stored {
            Stored::Yes => chunks.reference(chunk.id),
            Stored::No | Stored::SentIn(_) => {
                chunks.write(chunk.id, part.held.encoded()?);
                chunk.stored.sent(checkpoint);
            }
        }
    }
    Ok(parts)
}

/// Merges the chunks of a key group once the newer ones hold as many rows
/// as the oldest, or there are too many: the merged chunk is new.
fn compact(parts: Vec<Part>, grouping: &Grouping, name: &str) -> Result<Vec<Part>> {
    let mut by_group: std::collections::BTreeMap<usize, Vec<Part>> = std::collections::BTreeMap::new();
    for part in parts {
        by_group.entry(part.chunk.expect("split before compaction").group).or_default().push(part);
    }
    let mut out = Vec::new();
    for (group, parts) in by_group {
        let newer: usize = parts.iter().skip(1).map(|p| p.held.rows()).sum();
        if parts.len() == 1 || (parts.len() <= MAX_CHUNKS_PER_GROUP && newer < parts[0].held.rows()) {
            out.extend(parts);
            continue;
        }
        let mut merged = grouping.new_groups().context(|| format!("{name}: compacting window state"))?;
        for part in &parts {
            let state = part.held.state()?;
            merged.merge(&state).context(|| format!("{name}: compacting window state"))?;
        }
        let state = merged.take_state().context(|| format!("{name}: compacting window state"))?;
        let chunk = PartChunk { group, id: new_chunk_id(), stored: Stored::No };
        out.push(Part { held: Held::Memory(state), chunk: Some(chunk) });
    }
    Ok(out)
}
