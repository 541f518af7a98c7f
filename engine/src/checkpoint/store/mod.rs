//! Where checkpoints are written: by default one sled database per job
//! under `state.dir` ([`sled`]), or, with `state.checkpoints.dir` set to an
//! `s3://`, `gs://`, `az://` or `file://` URL, objects under that URL
//! ([`object`]). A checkpoint is the state of every task, then a completion
//! record naming its tasks, with the job's state [`Manifest`]; only a
//! completed, intact checkpoint is ever restored. Large operator state lives
//! in chunks (`checkpoint::chunk`), shared by the checkpoints that
//! reference them.
//!
//! [`StateStore`] is the one surface the coordinator, recovery and jobs
//! use, whichever backend holds the bytes.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::checkpoint::chunk::{ChunkBytes, ChunkId, ChunkMap, ChunkWriter};
use crate::checkpoint::codec::{Decoder, Encoder};
use crate::checkpoint::identity::Manifest;
use crate::error::{EngineError, Result};

mod io;
mod large_values;
pub mod location;
pub mod object;
pub mod sled;

pub use location::Location;

/// Complete checkpoints kept; older ones are deleted.
const RETAINED: usize = 3;

/// How long writing a savepoint to object storage may take.
const EXPORT_DEADLINE: Duration = Duration::from_secs(600);

/// The state one task wrote for one checkpoint: named parts (the source's
/// positions, each operator, the sink's prepared output) and the chunks
/// they reference.
#[derive(Debug, Default, Clone)]
pub struct TaskState {
    pub parts: Vec<(String, Vec<u8>)>,
    pub chunks: ChunkWriter,
}

/// A checkpoint read back: the state of every task, by task key, and the
/// chunks they reference.
#[derive(Debug, Default, Clone)]
pub struct Checkpoint {
    pub id: u64,
    pub tasks: BTreeMap<String, TaskState>,
    pub chunks: ChunkMap,
    /// What wrote the state; `None` for a checkpoint of state format 1,
    /// whose completion record held the task count only.
    pub manifest: Option<Manifest>,
}

impl Checkpoint {
    /// A named part of a task's state.
    pub fn part(&self, task: &str, name: &str) -> Option<&[u8]> {
        self.tasks.get(task)?.parts.iter().find(|(n, _)| n == name).map(|(_, b)| b.as_slice())
    }
}

/// What recovery found: the checkpoint to resume from, and the newer
/// complete checkpoints that were skipped because they are damaged.
#[derive(Debug, Default)]
pub struct Recovery {
    pub checkpoint: Option<Checkpoint>,
    pub damaged: Vec<u64>,
}

/// The checkpoints of one job (or one savepoint), in sled or on object
/// storage.
#[derive(Debug, Clone)]
pub enum StateStore {
    Sled(sled::SledStore),
    Object(object::ObjectStateStore),
}

impl StateStore {
    /// Opens (or creates) a sled store in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        sled::SledStore::open(dir).map(Self::Sled)
    }

    /// Opens the store at `location`: sled for a local path, objects for a
    /// URL. `deadline` bounds the writing of one checkpoint to object
    /// storage (the checkpoint timeout): an unreachable store abandons the
    /// checkpoint rather than hold the next one back.
    pub fn open_at(location: &Location, deadline: Duration) -> Result<Self> {
        match location {
            Location::Local(dir) => Self::open(dir),
            Location::Url(url) => object::ObjectStateStore::open(url, deadline).map(Self::Object),
        }
    }

    /// Records one task's state for `checkpoint`, taking it so that its
    /// bytes are written without a copy. Sled writes it at once, off the
    /// runtime's threads; object storage keeps it in memory until
    /// [`Self::complete`] uploads the checkpoint, so that nothing here
    /// waits on the network.
    pub async fn put(self: &Arc<Self>, checkpoint: u64, task: &str, state: TaskState) -> Result<()> {
        match &**self {
            Self::Sled(s) => {
                let (s, task) = (s.clone(), task.to_string());
                self.write_blocking(checkpoint, "writing a task state", move || s.put(checkpoint, &task, state)).await
            }
            Self::Object(s) => {
                s.put(checkpoint, task, state);
                Ok(())
            }
        }
    }

    /// Writes the new chunks (`new`) of one task's part of `checkpoint`:
    /// its writer does, off the task loop, before it acknowledges. What the
    /// part references (`refs`) is recorded first, so that a clean-up of an
    /// older checkpoint running meanwhile keeps these chunks. Returns the
    /// bytes written.
    pub async fn put_chunks(
        self: &Arc<Self>,
        checkpoint: u64,
        task: &str,
        refs: &[ChunkId],
        new: Vec<(ChunkId, ChunkBytes)>,
    ) -> Result<u64> {
        let bytes = new.iter().map(|(_, b)| b.len() as u64).sum();
        match &**self {
            Self::Sled(s) => {
                let (s, task, refs) = (s.clone(), task.to_string(), refs.to_vec());
                let put = move || s.put_chunks(checkpoint, &task, &refs, &new);
                self.write_blocking(checkpoint, "writing chunks", put).await?;
            }
            Self::Object(s) => s.put_chunks(checkpoint, refs, new).await?,
        }
        Ok(bytes)
    }

    /// Runs sled's `write` (`doing` it for `checkpoint`) on a blocking
    /// thread. The store is held until the write returns, even if the
    /// caller awaiting it is aborted: stopping an attempt waits for every
    /// holder to let go before the next one opens the store.
    async fn write_blocking(
        self: &Arc<Self>,
        checkpoint: u64,
        doing: &str,
        write: impl FnOnce() -> Result<()> + Send + 'static,
    ) -> Result<()> {
        let held = Arc::clone(self);
        let write = move || {
            let _held = held;
            write()
        };
        tokio::task::spawn_blocking(write)
            .await
            .map_err(|e| EngineError::State(format!("checkpoint {checkpoint}: {doing} ended abnormally: {e}")))?
    }

    /// Marks `checkpoint` complete once its `tasks` states are durable,
    /// recording the `manifest` of the job that wrote them, and deletes
    /// checkpoints no longer needed.
    pub async fn complete(&self, checkpoint: u64, tasks: usize, manifest: &Manifest) -> Result<()> {
        match self {
            Self::Sled(s) => s.complete(checkpoint, tasks, manifest).await,
            Self::Object(s) => s.complete(checkpoint, tasks, manifest).await,
        }
    }

    /// Why the store can write nothing more until it is opened again, with
    /// where it is: a sled store after a failed write (a full disk), whose
    /// every later checkpoint would fail too. `None` while it can write; an
    /// object store's failed request says nothing about the next.
    pub fn broken(&self) -> Option<(&Path, &std::io::Error)> {
        match self {
            Self::Sled(s) => s.broken().map(|e| (s.dir(), e)),
            Self::Object(_) => None,
        }
    }

    /// The newest complete checkpoint, or `None`.
    pub fn latest_id(&self) -> Result<Option<u64>> {
        match self {
            Self::Sled(s) => s.latest_id(),
            Self::Object(s) => s.latest_id(),
        }
    }

    /// The newest complete checkpoint that reads back intact; a torn or
    /// partial one is skipped, with a warning, for the one before it.
    pub fn restore(&self) -> Result<Recovery> {
        self.restore_before(u64::MAX)
    }

    /// [`Self::restore`] among the checkpoints older than `id`: the state
    /// of checkpoint `id` read back but could not be decoded.
    pub fn restore_before(&self, id: u64) -> Result<Recovery> {
        match self {
            Self::Sled(s) => s.restore_before(id),
            Self::Object(s) => s.restore_before_blocking(id),
        }
    }

    /// Deletes every checkpoint after `id`, complete or not: a job resumed
    /// from `id` numbers its next checkpoints from there, and must not find
    /// a stale task state of an earlier run under a reused number.
    pub fn truncate_after(&self, id: u64) -> Result<()> {
        match self {
            Self::Sled(s) => s.truncate_after(id),
            Self::Object(s) => s.truncate_after_blocking(id),
        }
    }

    /// Complete checkpoint `id`, checked like [`Self::restore`]'s.
    pub fn read(&self, id: u64) -> Result<Checkpoint> {
        match self {
            Self::Sled(s) => s.read(id),
            Self::Object(s) => s.read_blocking(id),
        }
    }

    /// Copies complete checkpoint `id` into a new store at `target` (a
    /// directory, or a URL passed as a path, see [`Location::from_path`]):
    /// a savepoint, which outlives the job and can start another.
    pub async fn export(&self, id: u64, target: &Path) -> Result<()> {
        let cp = match self {
            Self::Sled(s) => s.read(id)?,
            Self::Object(s) => s.read_async(id).await?,
        };
        let manifest = cp.manifest.as_ref().ok_or_else(|| {
            EngineError::Incompatible(format!(
                "checkpoint {id} is of state format 1: it cannot be saved for a newer Weir"
            ))
        })?;
        let target = Arc::new(Self::open_at(&Location::from_path(target)?, EXPORT_DEADLINE)?);
        let tasks = cp.tasks.len();
        for (task, mut state) in cp.tasks {
            for chunk in std::mem::take(&mut state.chunks.refs) {
                state.chunks.write(chunk, cp.chunks.get(chunk)?.into_owned());
            }
            target.put(id, &task, state).await?;
        }
        target.complete(id, tasks, manifest).await
    }
}

/// A value with its CRC32 in front.
fn checked(body: &[u8]) -> Vec<u8> {
    let mut value = crc32fast::hash(body).to_le_bytes().to_vec();
    value.extend_from_slice(body);
    value
}

/// The body of a [`checked`] value, if it is intact.
fn verified(value: &[u8]) -> Option<&[u8]> {
    let (sum, body) = value.split_at_checked(4)?;
    (crc32fast::hash(body).to_le_bytes() == sum).then_some(body)
}

/// A task's list of referenced chunks, as stored.
fn encode_refs(refs: &[ChunkId]) -> Vec<u8> {
    refs.iter().flat_map(|id| id.to_le_bytes()).collect()
}

/// The chunk ids of an [`encode_refs`] list; `None` when its length is not
/// a whole number of ids.
fn decode_refs(body: &[u8]) -> Option<Vec<ChunkId>> {
    if !body.len().is_multiple_of(16) {
        return None;
    }
    let mut ids = Vec::with_capacity(body.len() / 16);
    for c in body.chunks_exact(16) {
        ids.push(u128::from_le_bytes(c.try_into().ok()?));
    }
    Some(ids)
}

/// A task's named parts, as stored: their count, then each one's name and
/// bytes, length-prefixed.
fn write_parts(w: &mut dyn std::io::Write, parts: &[(String, Vec<u8>)]) -> std::io::Result<()> {
    w.write_all(&(parts.len() as u64).to_le_bytes())?;
    for (name, bytes) in parts {
        for b in [name.as_bytes(), bytes] {
            w.write_all(&(b.len() as u64).to_le_bytes())?;
            w.write_all(b)?;
        }
    }
    Ok(())
}

/// [`write_parts`] into `e`.
fn encode_parts(e: &mut Encoder, parts: &[(String, Vec<u8>)]) {
    write_parts(&mut e.bytes, parts).expect("writing into a Vec cannot fail");
}

/// The parts [`write_parts`] wrote, from `d`.
fn decode_parts(d: &mut Decoder) -> Result<Vec<(String, Vec<u8>)>> {
    let n = d.u64()?;
    let mut parts = Vec::new();
    for _ in 0..n {
        let name = String::from_utf8_lossy(d.bytes()?).into_owned();
        parts.push((name, d.bytes()?.to_vec()));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests;
