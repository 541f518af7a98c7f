//! Chunks: immutable pieces of operator state, written to the store once
//! and referenced by every later checkpoint that still holds them.
//!
//! This is what makes checkpoints of large state incremental: an operator
//! whose state is mostly unchanged since the last checkpoint sends only the
//! new chunks' bytes and the ids of the old ones. The store keeps a chunk
//! while a retained checkpoint references it (`StateStore::prune`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use datafusion::arrow::array::RecordBatch;

use crate::checkpoint::codec::Encoder;
use crate::error::{EngineError, Result};
use crate::spill::{SpillTarget, SpilledBytes};

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

/// The bytes of a chunk to write: encoded in memory, or a spill file an
/// operator already wrote in the chunk's format. A spilled file is
/// streamed (or linked) into the store as it is, never read into memory
/// whole: the runs spilled since the last checkpoint may be larger than
/// the memory budget.
#[derive(Clone)]
pub enum ChunkBytes {
    Memory(Vec<u8>),
    File(SpilledBytes),
}

/// Bytes from which a batch written as a chunk of its own goes to a spill
/// file under the spilling backend ([`ChunkBytes::of_batch`]): what the
/// checkpoint store keeps as a file of its own too.
const FILE: usize = 64 << 10;

impl ChunkBytes {
    /// `batch` as a chunk of its own ([`Encoder::batch_alone`]'s bytes).
    /// With the spilling backend (`target`) it is compressed, as spill
    /// files are, and from [`FILE`] bytes written to a spill file of its
    /// own, which the store links: the chunks a checkpoint takes from
    /// memory are up to the subtask's share of the budget, and are then
    /// not all held encoded in memory until the store wrote them.
    pub fn of_batch(batch: &RecordBatch, target: Option<&SpillTarget>) -> Result<Self> {
        let Some(target) = target else {
            return Encoder::batch_alone(batch).map(Self::Memory);
        };
        let bytes = Encoder::batch_alone_compressed(batch)?;
        if bytes.len() < FILE {
            return Ok(Self::Memory(bytes));
        }
        target.spill(&bytes).map(Self::File)
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        match self {
            Self::Memory(bytes) => bytes.len(),
            Self::File(file) => file.bytes(),
        }
    }

    /// Whether it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes its bytes to `w`, a file's through a small buffer.
    pub fn write_to(&self, w: &mut dyn Write) -> std::io::Result<()> {
        match self {
            Self::Memory(bytes) => w.write_all(bytes),
            Self::File(file) => file.copy_to(w),
        }
    }

    /// Its bytes, a file's read whole (one chunk at a time: an upload to
    /// object storage, a restore test).
    pub fn read(&self) -> Result<Cow<'_, [u8]>> {
        match self {
            Self::Memory(bytes) => Ok(Cow::Borrowed(bytes)),
            Self::File(file) => file.read().map(Cow::Owned),
        }
    }

    /// Its bytes, owned.
    pub fn into_vec(self) -> Result<Vec<u8>> {
        match self {
            Self::Memory(bytes) => Ok(bytes),
            Self::File(file) => file.read(),
        }
    }
}

impl From<Vec<u8>> for ChunkBytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self::Memory(bytes)
    }
}

impl std::fmt::Debug for ChunkBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Memory(bytes) => write!(f, "Memory({} bytes)", bytes.len()),
            Self::File(file) => write!(f, "File({} bytes)", file.bytes()),
        }
    }
}

/// What operators hand over besides their state bytes at a checkpoint: the
/// chunks it references, and the bytes of those not yet known to be stored.
#[derive(Debug, Default, Clone)]
pub struct ChunkWriter {
    /// Chunks whose bytes this checkpoint writes.
    pub new: Vec<(ChunkId, ChunkBytes)>,
    /// Every chunk the task's state references, new or not.
    pub refs: Vec<ChunkId>,
    /// Bytes of new chunks the task's writer already put in the store
    /// (`checkpoint::snapshot`): counted in the checkpoint's size, no
    /// longer carried here.
    pub written: u64,
}

impl ChunkWriter {
    /// A chunk that must be written with this checkpoint.
    pub fn write(&mut self, id: ChunkId, bytes: impl Into<ChunkBytes>) {
        self.refs.push(id);
        self.new.push((id, bytes.into()));
    }

    /// A chunk that must be written with this checkpoint, whose bytes are
    /// those of a spill file.
    pub fn write_file(&mut self, id: ChunkId, file: SpilledBytes) {
        self.write(id, ChunkBytes::File(file));
    }

    /// A chunk a completed checkpoint already wrote.
    pub fn reference(&mut self, id: ChunkId) {
        self.refs.push(id);
    }

    /// Adds what `other` writes and references (an operator's snapshot
    /// job's, to its task's).
    pub fn append(&mut self, other: ChunkWriter) {
        self.new.extend(other.new);
        self.refs.extend(other.refs);
        self.written += other.written;
    }
}

/// A stored chunk whose bytes are read from its file when a restore asks
/// for them: a checkpoint of state larger than memory is restored one
/// chunk at a time, not read whole first. The store verified the file's
/// checksum when it read the checkpoint, so that a damaged one makes that
/// checkpoint damaged and recovery falls back; it is verified again here.
#[derive(Debug, Clone)]
pub struct ChunkFile {
    pub path: PathBuf,
    pub len: u64,
    pub crc: u32,
}

impl ChunkFile {
    /// The file's bytes if they are the ones written; else why not.
    pub(crate) fn read(&self) -> std::result::Result<Vec<u8>, String> {
        let bytes = std::fs::read(&self.path).map_err(|e| e.to_string())?;
        if bytes.len() as u64 != self.len || crc32fast::hash(&bytes) != self.crc {
            return Err(format!("{} bytes that fail the checksum of the {} written", bytes.len(), self.len));
        }
        Ok(bytes)
    }
}

/// The chunks of a checkpoint read back, by id: in memory, or in files
/// read when asked for.
#[derive(Debug, Default, Clone)]
pub struct ChunkMap {
    bytes: HashMap<ChunkId, Vec<u8>>,
    files: HashMap<ChunkId, ChunkFile>,
}

impl ChunkMap {
    /// The chunks a checkpoint writes, read back (spill files included):
    /// what a restore of that checkpoint would read from the store.
    pub fn of(new: impl IntoIterator<Item = (ChunkId, ChunkBytes)>) -> Result<Self> {
        let mut map = Self::default();
        map.extend(new)?;
        Ok(map)
    }

    /// Adds the chunks `new`, read back.
    pub fn extend(&mut self, new: impl IntoIterator<Item = (ChunkId, ChunkBytes)>) -> Result<()> {
        for (id, bytes) in new {
            self.bytes.insert(id, bytes.into_vec()?);
        }
        Ok(())
    }

    /// Adds chunk `id`.
    pub fn insert(&mut self, id: ChunkId, bytes: Vec<u8>) {
        self.bytes.insert(id, bytes);
    }

    /// Adds chunk `id`, to be read from `file` when asked for.
    pub fn insert_file(&mut self, id: ChunkId, file: ChunkFile) {
        self.files.insert(id, file);
    }

    /// Whether it has chunk `id`.
    pub fn contains(&self, id: ChunkId) -> bool {
        self.bytes.contains_key(&id) || self.files.contains_key(&id)
    }

    /// How many chunks it has.
    pub fn len(&self) -> usize {
        self.bytes.len() + self.files.len()
    }

    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The byte length of chunk `id`, without reading it.
    pub fn size(&self, id: ChunkId) -> Result<u64> {
        match (self.bytes.get(&id), self.files.get(&id)) {
            (Some(bytes), _) => Ok(bytes.len() as u64),
            (None, Some(file)) => Ok(file.len),
            (None, None) => Err(missing(id)),
        }
    }

    /// The bytes of chunk `id`; a checkpoint that references a chunk it
    /// does not have is damaged.
    pub fn get(&self, id: ChunkId) -> Result<Cow<'_, [u8]>> {
        match (self.bytes.get(&id), self.files.get(&id)) {
            (Some(bytes), _) => Ok(Cow::Borrowed(bytes)),
            (None, Some(file)) => file.read().map(Cow::Owned).map_err(|why| {
                EngineError::State(format!("state chunk {id:032x} ({}) is damaged: {why}", file.path.display()))
            }),
            (None, None) => Err(missing(id)),
        }
    }
}

fn missing(id: ChunkId) -> EngineError {
    EngineError::State(format!("state chunk {id:032x} is missing"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;
    use crate::checkpoint::codec::Decoder;
    use crate::spill::StateBackend;

    fn batch(rows: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        RecordBatch::try_new(
            schema,
            vec![Arc::new(Int64Array::from_iter_values((0..rows).map(|i| i * 7919 % 100_003)))],
        )
        .unwrap()
    }

    /// A batch as a chunk of its own: plain in memory without the spilling
    /// backend; with it compressed, and in a spill file once as large as
    /// the store keeps in a file; each reads back as the batch.
    #[test]
    fn a_batch_chunk_goes_to_a_file_only_when_large_and_spilling() {
        let dir = tempfile::tempdir().unwrap();
        let backend = StateBackend::spilling(1 << 30, &dir.path().join("spill")).unwrap();
        let target = backend.share("op", 0).unwrap().target();
        let (small, large) = (batch(1_000), batch(100_000));
        let cases = [
            (&small, None, false),
            (&large, None, false),
            (&small, Some(&target), false),
            (&large, Some(&target), true),
        ];
        for (b, target, file) in cases {
            let chunk = ChunkBytes::of_batch(b, target).unwrap();
            assert_eq!(
                matches!(chunk, ChunkBytes::File(_)),
                file,
                "{} rows, spilling: {}",
                b.num_rows(),
                target.is_some()
            );
            assert_eq!(&Decoder::batch_alone(&chunk.read().unwrap()).unwrap(), b);
            let plain = Encoder::batch_alone(b).unwrap().len();
            assert_eq!(
                chunk.len() < plain,
                target.is_some(),
                "compressed only when spilling: {} of {plain}",
                chunk.len()
            );
        }
    }
}
