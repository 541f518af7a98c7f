//! Chunks: immutable pieces of operator state, written to the store once
//! and referenced by every later checkpoint that still holds them.
//!
//! This is what makes checkpoints of large state incremental: an operator
//! whose state is mostly unchanged since the last checkpoint sends only the
//! new chunks' bytes and the ids of the old ones. The store keeps a chunk
//! while a retained checkpoint references it (`StateStore::prune`).

use std::collections::HashMap;

use crate::error::{EngineError, Result};

/// A chunk's name: random, so that ids never meet across runs, rescaled
/// subtasks or checkpoint ids reused after a fallback.
pub type ChunkId = u128;

/// A fresh chunk id.
pub fn new_chunk_id() -> ChunkId {
    rand::random()
}

/// Whether an operator's chunk is in the store. A chunk is sent with every
/// checkpoint until one that carries it completes (an abandoned checkpoint
/// may have lost it), then only referenced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stored {
    No,
    /// Sent first with this checkpoint, which has not completed yet.
    SentIn(u64),
    Yes,
}

impl Stored {
    /// The chunk's bytes go with `checkpoint`.
    pub(crate) fn sent(&mut self, checkpoint: u64) {
        if *self == Self::No {
            *self = Self::SentIn(checkpoint);
        }
    }

    /// `checkpoint` completed: a chunk sent with it, or first with an
    /// abandoned one before it and sent again since, is stored.
    pub(crate) fn completed(&mut self, checkpoint: u64) {
        if matches!(*self, Self::SentIn(c) if c <= checkpoint) {
            *self = Self::Yes;
        }
    }
}

/// What operators hand over besides their state bytes at a checkpoint: the
/// chunks it references, and the bytes of those not yet known to be stored.
#[derive(Debug, Default, Clone)]
pub struct ChunkWriter {
    /// Chunks whose bytes this checkpoint writes.
    pub new: Vec<(ChunkId, Vec<u8>)>,
    /// Every chunk the task's state references, new or not.
    pub refs: Vec<ChunkId>,
    /// Bytes of new chunks the task's writer already put in the store
    /// (`checkpoint::snapshot`): counted in the checkpoint's size, no
    /// longer carried here.
    pub written: u64,
}

impl ChunkWriter {
    /// A chunk that must be written with this checkpoint.
    pub fn write(&mut self, id: ChunkId, bytes: Vec<u8>) {
        self.refs.push(id);
        self.new.push((id, bytes));
    }

    /// A chunk a completed checkpoint already wrote.
    pub fn reference(&mut self, id: ChunkId) {
        self.refs.push(id);
    }
}

/// The chunks of a checkpoint read back, by id.
#[derive(Debug, Default, Clone)]
pub struct ChunkMap(pub HashMap<ChunkId, Vec<u8>>);

impl ChunkMap {
    /// The bytes of chunk `id`; a checkpoint that references a chunk it does
    /// not have is damaged.
    pub fn get(&self, id: ChunkId) -> Result<&[u8]> {
        self.0
            .get(&id)
            .map(Vec::as_slice)
            .ok_or_else(|| EngineError::State(format!("state chunk {id:032x} is missing")))
    }
}
