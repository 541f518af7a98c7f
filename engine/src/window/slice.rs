//! One slice of a window aggregate and how it checkpoints incrementally.
//!
//! A slice folds rows into `live` groups. A checkpoint moves them out as
//! partial states split by key group, each an immutable chunk: the next
//! checkpoint writes only the chunks made since the last completed one (the
//! groups updated since then) and references the others. Chunks of the same
//! key group are merged again once the newer ones hold as many rows as the
//! oldest (or there are many), so memory and the work of firing stay within
//! about twice the state's size while unchanged state is never rewritten.

use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::Array;

use crate::checkpoint::chunk::{ChunkId, ChunkMap, ChunkWriter, Stored, new_chunk_id};
use crate::checkpoint::codec::{Decoder, Encoder};
use crate::error::{EngineError, Result, ResultExt};
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
    state: PartialState,
    /// `None` until a checkpoint splits the part by key group.
    chunk: Option<PartChunk>,
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
    /// Bytes held: the live groups and the partial states taken out.
    pub fn size(&self) -> usize {
        let arrays = |p: &Part| {
            p.state.keys.iter().chain(p.state.states.iter().flatten()).map(|a| a.get_array_memory_size()).sum::<usize>()
        };
        self.live.size() + self.parts.iter().map(arrays).sum::<usize>()
    }

    /// Groups held: the live ones and those of the partial states taken
    /// out (a key in both counts twice until they are merged).
    pub fn groups(&self) -> usize {
        self.live.len() + self.parts.iter().map(|p| p.state.rows).sum::<usize>()
    }

    pub fn new(grouping: &Grouping, name: &str) -> Result<Self> {
        Ok(Self {
            live: grouping.new_groups().context(|| format!("{name}: creating accumulators"))?,
            parts: Vec::new(),
            in_flight: None,
            key_groups: KeyGroupSet::default(),
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

    /// Moves the live groups into the slice's parts.
    pub fn flush(&mut self, name: &str) -> Result<()> {
        if !self.live.is_empty() {
            let state = self.live.take_state().context(|| format!("{name}: taking partial state"))?;
            self.parts.push(Part { state, chunk: None });
        }
        Ok(())
    }

    /// Every group of the slice as partial states, to merge into a window.
    pub fn partial_states(&mut self, name: &str) -> Result<impl Iterator<Item = &PartialState>> {
        self.flush(name)?;
        Ok(self.parts.iter().map(|p| &p.state))
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
        self.flush(name)?;
        self.parts = write_parts(std::mem::take(&mut self.parts), grouping, name, checkpoint, e, chunks, hashes)?;
        Ok(())
    }

    /// The slice's state for checkpoint `checkpoint`, to be written off the
    /// task loop: its live groups are moved into its parts (the
    /// accumulators' state arrays, not re-encoded), whose arrays the
    /// capture shares; later rows fold into new live groups and parts, so
    /// they never reach it.
    pub fn capture(&mut self, name: &str, checkpoint: u64) -> Result<CapturedSlice> {
        // The previous checkpoint ended (the coordinator starts one only then)
        // even if its completion has not reached the operator yet.
        self.adopt_written();
        self.flush(name)?;
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
    /// as they were.
    fn adopt_written(&mut self) {
        if let Some(in_flight) = self.in_flight.take()
            && let Some(written) = in_flight.written.get()
        {
            let later = self.parts.split_off(in_flight.parts.min(self.parts.len()));
            self.parts = written.clone();
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
            self.parts.push(Part { state, chunk: Some(PartChunk { group, id, stored: Stored::No }) });
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
    let mut chunk = Decoder::new(chunks.get(id)?);
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
        for (group, state) in part.state.split_by_key_group(hashes)? {
            let chunk = PartChunk { group, id: new_chunk_id(), stored: Stored::No };
            split.push(Part { state, chunk: Some(chunk) });
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
                let mut bytes = Encoder::default();
                part.state.encode(&mut bytes)?;
                chunks.write(chunk.id, bytes.bytes);
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
        let newer: usize = parts.iter().skip(1).map(|p| p.state.rows).sum();
        if parts.len() == 1 || (parts.len() <= MAX_CHUNKS_PER_GROUP && newer < parts[0].state.rows) {
            out.extend(parts);
            continue;
        }
        let mut merged = grouping.new_groups().context(|| format!("{name}: compacting window state"))?;
        for part in &parts {
            merged.merge(&part.state).context(|| format!("{name}: compacting window state"))?;
        }
        let state = merged.take_state().context(|| format!("{name}: compacting window state"))?;
        let chunk = PartChunk { group, id: new_chunk_id(), stored: Stored::No };
        out.push(Part { state, chunk: Some(chunk) });
    }
    Ok(out)
}
