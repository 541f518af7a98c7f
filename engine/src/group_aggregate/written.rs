//! Where each group's state was last checkpointed, so that a checkpoint
//! writes only the groups changed since the one before.
//!
//! A checkpoint writes the changed groups of each key group as one new
//! chunk, and lists every older chunk with a bitmap of its rows that are
//! still their group's state: a changed group's row in an older chunk is
//! dead once its new row is written, and a group that left memory (its
//! rows retracted, expired or spilled) kills its row at once. So the work
//! at a barrier follows the groups that changed, not the state's size.
//!
//! Chunks of a key group merge in size tiers, as runs do: a new chunk takes
//! in the live rows of the newest older one while that holds at most twice
//! its rows, and a chunk whose dead rows outnumber its live ones is
//! rewritten; a key group keeps about log2 of its checkpoints' chunks and
//! a row is rewritten about as often. A chunk sent with a checkpoint that
//! has not completed when the next one starts is written again by it (its
//! rows, still live, join the changed ones): the bytes are not kept to be
//! sent again.

use datafusion::arrow::array::{Array, LargeBinaryArray, LargeBinaryBuilder};

use crate::checkpoint::chunk::{ChunkId, Stored};
use crate::checkpoint::live_rows;
use crate::runtime::exchange::KEY_GROUPS;

use super::{Group, Index};

/// Where a group's state is: the chunk's slot and the row in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Place {
    slot: u32,
    row: u32,
}

/// A chunk written by a checkpoint.
#[derive(Debug)]
struct Chunk {
    key_group: usize,
    /// When it was written: the later, the larger.
    seq: u64,
    id: ChunkId,
    stored: Stored,
    /// Per row: its group, and whether the row is still the group's state.
    groups: Vec<u32>,
    live: Vec<bool>,
    live_count: usize,
    /// The rows' encoded keys: a rewrite of its live rows needs them (a
    /// group's key is otherwise only in the index).
    keys: LargeBinaryArray,
}

/// Groups with their encoded keys, in the same order: those of one key
/// group a checkpoint writes as a new chunk, or those changed since the
/// last checkpoint.
#[derive(Debug, Default)]
pub(super) struct Delta {
    pub(super) groups: Vec<u32>,
    keys: LargeBinaryBuilder,
}

impl Delta {
    fn push(&mut self, g: u32, key: &[u8]) {
        self.groups.push(g);
        self.keys.append_value(key);
    }

    /// The groups and keys, to be read.
    pub(super) fn finish(mut self) -> Members {
        Members { groups: self.groups, keys: self.keys.finish() }
    }

    fn memory(&self) -> usize {
        self.groups.capacity() * size_of::<u32>()
            + self.keys.values_slice().len()
            + size_of_val(self.keys.offsets_slice())
    }
}

/// A finished [`Delta`].
#[derive(Debug)]
pub(super) struct Members {
    pub(super) groups: Vec<u32>,
    keys: LargeBinaryArray,
}

impl Members {
    /// Each group with its key.
    pub(super) fn pairs(&self) -> Vec<(&[u8], u32)> {
        self.keys.iter().flatten().zip(self.groups.iter().copied()).collect()
    }
}

/// The chunks of a group aggregation's checkpoints and the groups changed
/// since the last one.
#[derive(Debug, Default)]
pub(super) struct Written {
    slots: Vec<Option<Chunk>>,
    free: Vec<u32>,
    /// The next chunk's `seq`.
    seq: u64,
    /// Groups changed since the last checkpoint, each with its key when it
    /// changed; a group freed and made again meanwhile is listed again, and
    /// its latest entry is the one taken.
    changed: Delta,
    /// Whether a checkpoint was taken: until then every group is new and
    /// none is listed (the first checkpoint finds them in the index), so
    /// that a job without checkpoints keeps no second copy of its keys.
    tracking: bool,
}

impl Written {
    /// Group `g` (of key `key`) changed.
    #[inline]
    pub(super) fn changed(&mut self, group: &mut Group, g: u32, key: &[u8]) {
        if !group.changed {
            group.changed = true;
            if self.tracking {
                self.changed.push(g, key);
            }
        }
    }

    /// Drops the entries of groups no longer changed (freed, or listed
    /// again later) once the list is over twice the `live` groups: without
    /// checkpoints nothing else would, and a spill frees many at once.
    pub(super) fn trim(&mut self, groups: &[Option<Group>], live: usize) {
        if self.changed.groups.len() <= 2 * live + 64 {
            return;
        }
        let mut seen = vec![false; groups.len()];
        let mut kept: Vec<usize> = Vec::new();
        for (i, g) in self.changed.groups.iter().enumerate().rev() {
            let g = *g as usize;
            if !std::mem::replace(&mut seen[g], true) && groups[g].as_ref().is_some_and(|group| group.changed) {
                kept.push(i);
            }
        }
        let old = std::mem::take(&mut self.changed).finish();
        for i in kept.into_iter().rev() {
            self.changed.push(old.groups[i], old.keys.value(i));
        }
    }

    /// `group` left memory: its row is dead.
    pub(super) fn forget(&mut self, group: &Group) {
        if let Some(place) = group.written {
            self.kill(place);
        }
    }

    fn kill(&mut self, place: Place) {
        if let Some(chunk) = &mut self.slots[place.slot as usize] {
            let live = &mut chunk.live[place.row as usize];
            chunk.live_count -= *live as usize;
            *live = false;
        }
    }

    /// Per key group, the groups the checkpoint now taken writes: at the
    /// first, every group of `index`; then those changed since the last
    /// one, and the live rows of the chunks it rewrites (see the module's
    /// doc), which it drops.
    pub(super) fn take_changes(&mut self, groups: &mut [Option<Group>], index: &Index) -> Vec<Delta> {
        let mut deltas: Vec<Delta> = (0..KEY_GROUPS).map(|_| Delta::default()).collect();
        if !std::mem::replace(&mut self.tracking, true) {
            for (key, g) in index {
                if let Some(group) = groups[*g as usize].as_mut() {
                    group.changed = false;
                    deltas[group.key_group as usize].push(*g, key);
                }
            }
            return deltas;
        }
        // Chunks no completed checkpoint stored are written again.
        for slot in 0..self.slots.len() {
            if self.slots[slot].as_ref().is_some_and(|c| c.stored != Stored::Yes) {
                self.rewrite(slot, groups, &mut deltas);
            }
        }
        let changed = std::mem::take(&mut self.changed).finish();
        for (i, g) in changed.groups.iter().enumerate().rev() {
            let Some(group) = groups[*g as usize].as_mut().filter(|group| group.changed) else {
                continue;
            };
            group.changed = false;
            if let Some(place) = group.written.take() {
                self.kill(place);
            }
            deltas[group.key_group as usize].push(*g, changed.keys.value(i));
        }
        // Newest first, per key group.
        let mut by_key_group: Vec<Vec<(u64, usize)>> = vec![Vec::new(); KEY_GROUPS];
        for (slot, chunk) in self.slots.iter().enumerate() {
            if let Some(chunk) = chunk {
                by_key_group[chunk.key_group].push((chunk.seq, slot));
            }
        }
        for (kg, mut slots) in by_key_group.into_iter().enumerate() {
            slots.sort_unstable_by(|a, b| b.cmp(a));
            let mut tiering = true;
            for (_, slot) in slots {
                let Some(chunk) = &self.slots[slot] else { continue };
                let (live, rows) = (chunk.live_count, chunk.live.len());
                tiering &= live <= 2 * deltas[kg].groups.len();
                if tiering || live < rows - live {
                    self.rewrite(slot, groups, &mut deltas);
                }
            }
        }
        deltas
    }

    /// Drops the chunk in `slot`, its live rows' groups joining `deltas`.
    fn rewrite(&mut self, slot: usize, groups: &mut [Option<Group>], deltas: &mut [Delta]) {
        let Some(chunk) = self.slots[slot].take() else { return };
        self.free.push(slot as u32);
        let slot = slot as u32;
        for (row, g) in chunk.groups.iter().enumerate().filter(|(row, _)| chunk.live[*row]) {
            let place = Place { slot, row: row as u32 };
            if let Some(group) = groups[*g as usize].as_mut().filter(|group| group.written == Some(place)) {
                group.written = None;
                // A changed group is written with the changed ones.
                if !group.changed {
                    deltas[chunk.key_group].push(*g, chunk.keys.value(row));
                }
            }
        }
    }

    /// `delta`'s groups were written as chunk `id` of `key_group`, sent
    /// with `checkpoint`.
    pub(super) fn add(
        &mut self,
        key_group: usize,
        id: ChunkId,
        checkpoint: u64,
        delta: Members,
        groups: &mut [Option<Group>],
    ) {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        for (row, g) in delta.groups.iter().enumerate() {
            if let Some(group) = groups[*g as usize].as_mut() {
                group.written = Some(Place { slot, row: row as u32 });
            }
        }
        let rows = delta.groups.len();
        let mut stored = Stored::No;
        stored.sent(checkpoint);
        self.seq += 1;
        self.slots[slot as usize] = Some(Chunk {
            key_group,
            seq: self.seq,
            id,
            stored,
            groups: delta.groups,
            live: vec![true; rows],
            live_count: rows,
            keys: delta.keys,
        });
    }

    /// Every chunk, by key group: its key group, id, whether it was sent
    /// by a completed checkpoint, and the bitmap of its live rows (empty:
    /// all of them).
    pub(super) fn list(&self) -> Vec<(usize, ChunkId, bool, Vec<u8>)> {
        let mut out: Vec<_> = self
            .slots
            .iter()
            .flatten()
            .map(|c| {
                let bitmap = if c.live_count == c.live.len() { Vec::new() } else { live_rows::bitmap(&c.live) };
                (c.key_group, c.id, c.stored == Stored::Yes, bitmap)
            })
            .collect();
        out.sort_by_key(|c| c.0);
        out
    }

    /// Checkpoint `checkpoint` completed: the chunks sent with it are
    /// stored.
    pub(super) fn complete(&mut self, checkpoint: u64) {
        for chunk in self.slots.iter_mut().flatten() {
            chunk.stored.completed(checkpoint);
        }
    }

    /// Bytes in memory: each chunk's rows' groups, flags and keys, and the
    /// changed groups.
    pub(super) fn memory(&self) -> usize {
        let chunks: usize = self
            .slots
            .iter()
            .flatten()
            .map(|c| c.groups.capacity() * size_of::<u32>() + c.live.capacity() + c.keys.get_array_memory_size())
            .sum();
        chunks + self.slots.capacity() * size_of::<Option<Chunk>>() + self.changed.memory()
    }
}
