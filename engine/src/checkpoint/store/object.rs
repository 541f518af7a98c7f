//! Checkpoints on object storage (`state.checkpoints.dir` = `s3://…`,
//! `gs://…`, `az://…`, `file:///…`), through the `object_store` crate.
//!
//! Layout under the job's location:
//!
//! - `chunks/<chunk id>`: one chunk of operator state, CRC32 in front;
//!   immutable (a chunk written again holds the same bytes).
//! - `checkpoints/<id>/tasks/<task>`: one task's state (its chunk list and
//!   parts), CRC32 in front.
//! - `checkpoints/<id>/_COMPLETE`: the manifest (task names, the job's
//!   state manifest), CRC32 in front, written last and only if absent
//!   (`PutMode::Create`). A checkpoint is complete iff its manifest exists,
//!   and restorable iff everything it names reads back intact.
//!
//! Each task's writer uploads the chunks it made, `PARALLEL` at a time
//! ([`ObjectStateStore::put_chunks`], `checkpoint::snapshot`), before it
//! acknowledges; the coordinator hands over task states as they are
//! acknowledged ([`ObjectStateStore::put`] keeps them in memory), and
//! completing the checkpoint uploads any chunks still carried (a finished
//! task's, a savepoint's), then the task states, then the manifest, all
//! within the checkpoint timeout: a failed or slow upload abandons that
//! checkpoint (sinks commit only completed ones), never the job.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutPayload};
use url::Url;

use super::{
    Checkpoint, RETAINED, Recovery, TaskState, decode_parts, decode_refs, encode_parts, encode_refs, io, verified,
};
use crate::checkpoint::chunk::{ChunkBytes, ChunkId, ChunkMap, ChunkWriter};
use crate::checkpoint::codec::{Decoder, Encoder};
use crate::checkpoint::identity::Manifest;
use crate::error::{EngineError, Result};

/// Requests in flight at once when uploading, reading or deleting.
const PARALLEL: usize = 8;

/// The name of a checkpoint's manifest.
const COMPLETE: &str = "_COMPLETE";

/// Why a checkpoint could not be read: its objects are missing or damaged
/// (recovery falls back to the one before), or the store could not be
/// reached (recovery fails rather than skip intact state).
enum Fault {
    Damaged(String),
    Unreachable(EngineError),
}

impl From<Fault> for EngineError {
    fn from(f: Fault) -> Self {
        match f {
            Fault::Damaged(why) => EngineError::State(why),
            Fault::Unreachable(e) => e,
        }
    }
}

/// The checkpoints of one job (or a savepoint) on object storage.
#[derive(Debug, Clone)]
pub struct ObjectStateStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn ObjectStore>,
    root: ObjectPath,
    url: Url,
    /// How long completing one checkpoint may take.
    deadline: Duration,
    /// Task states handed over and not yet uploaded, by checkpoint.
    pending: Mutex<BTreeMap<u64, BTreeMap<String, TaskState>>>,
    /// The complete checkpoints, once listed.
    complete: Mutex<Option<BTreeSet<u64>>>,
    /// The chunks each complete checkpoint references, as far as known.
    refs: Mutex<BTreeMap<u64, HashSet<ChunkId>>>,
    /// The chunks tasks' writers reference in checkpoints not complete
    /// yet, by checkpoint: a clean-up running meanwhile keeps them.
    uploading: Mutex<BTreeMap<u64, HashSet<ChunkId>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `payload` with its CRC32 in front, without copying it.
fn checked_payload(body: Bytes) -> PutPayload {
    let sum = Bytes::copy_from_slice(&crc32fast::hash(&body).to_le_bytes());
    PutPayload::from_iter([sum, body])
}

impl ObjectStateStore {
    /// The store at `url`; nothing is read until needed.
    pub fn open(url: &Url, deadline: Duration) -> Result<Self> {
        let (store, root) = super::location::object_store(url)?;
        Ok(Self::with_store(store, root, url.clone(), deadline))
    }

    /// The store under `root` of `store` (tests use in-memory and local
    /// stores this way).
    pub fn with_store(store: Arc<dyn ObjectStore>, root: ObjectPath, url: Url, deadline: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                root,
                url,
                deadline,
                pending: Mutex::default(),
                complete: Mutex::default(),
                refs: Mutex::default(),
                uploading: Mutex::default(),
            }),
        }
    }

    /// Keeps one task's state of `checkpoint` for [`Self::complete`].
    pub fn put(&self, checkpoint: u64, task: &str, state: TaskState) {
        lock(&self.inner.pending).entry(checkpoint).or_default().insert(task.to_string(), state);
    }

    /// Uploads the new chunks of one task's part of `checkpoint`,
    /// [`PARALLEL`] at a time within the deadline (a task's writer does,
    /// off the task loop). What the part references is registered first,
    /// so that a clean-up running meanwhile keeps it.
    pub async fn put_chunks(&self, checkpoint: u64, refs: &[ChunkId], new: Vec<(ChunkId, ChunkBytes)>) -> Result<()> {
        lock(&self.inner.uploading).entry(checkpoint).or_default().extend(refs.iter().copied());
        let inner = Arc::clone(&self.inner);
        io::run(async move {
            let chunks = new.into_iter().map(|(id, bytes)| (inner.chunk_path(id), bytes)).collect();
            let deadline = inner.deadline;
            tokio::time::timeout(deadline, inner.put_all(chunks)).await.map_err(|_| {
                EngineError::State(format!(
                    "checkpoint {checkpoint}: writing its chunks to {} took longer than {deadline:?}",
                    inner.url
                ))
            })?
        })
        .await
    }

    /// Uploads `checkpoint` (chunks, task states, then the manifest) within
    /// the deadline, then deletes what no retained checkpoint needs.
    pub async fn complete(&self, checkpoint: u64, tasks: usize, manifest: &Manifest) -> Result<()> {
        let states = {
            let mut pending = lock(&self.inner.pending);
            let later = pending.split_off(&(checkpoint + 1));
            let states = pending.remove(&checkpoint).unwrap_or_default();
            // Older entries belong to abandoned checkpoints.
            *pending = later;
            states
        };
        if states.len() != tasks {
            return Err(EngineError::State(format!(
                "checkpoint {checkpoint} has {} task states of {tasks}",
                states.len()
            )));
        }
        let inner = Arc::clone(&self.inner);
        let manifest = manifest.encode();
        io::run(async move {
            let deadline = inner.deadline;
            tokio::time::timeout(deadline, inner.upload(checkpoint, states, manifest)).await.map_err(|_| {
                EngineError::State(format!(
                    "checkpoint {checkpoint}: writing it to {} took longer than {deadline:?}",
                    inner.url
                ))
            })??;
            // The checkpoint is complete and durable: a failed clean-up
            // leaves garbage for the next one to collect, nothing worse.
            match tokio::time::timeout(deadline, inner.prune(checkpoint)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(checkpoint, error = %e, "old checkpoints could not be deleted"),
                Err(_) => tracing::warn!(checkpoint, "deleting old checkpoints timed out"),
            }
            Ok(())
        })
        .await
    }

    /// The newest complete checkpoint, or `None`; known without a request
    /// once the store has been read or written.
    pub fn latest_id(&self) -> Result<Option<u64>> {
        if let Some(ids) = lock(&self.inner.complete).as_ref() {
            return Ok(ids.last().copied());
        }
        let inner = Arc::clone(&self.inner);
        io::block(async move { Ok(inner.complete_ids().await?.last().copied()) })
    }

    /// The newest complete checkpoint older than `id` that reads back
    /// intact, waiting from synchronous code. An unreachable store is an
    /// error, not a damaged checkpoint.
    pub fn restore_before_blocking(&self, id: u64) -> Result<Recovery> {
        let inner = Arc::clone(&self.inner);
        io::block(async move { inner.restore_before(id).await })
    }

    /// Checkpoint `id`, waiting from synchronous code.
    pub fn read_blocking(&self, id: u64) -> Result<Checkpoint> {
        let inner = Arc::clone(&self.inner);
        io::block(async move { Ok(inner.read(id).await?) })
    }

    /// Checkpoint `id`.
    pub async fn read_async(&self, id: u64) -> Result<Checkpoint> {
        let inner = Arc::clone(&self.inner);
        io::run(async move { Ok(inner.read(id).await?) }).await
    }

    /// Deletes every checkpoint after `id`, waiting from synchronous code.
    pub fn truncate_after_blocking(&self, id: u64) -> Result<()> {
        let inner = Arc::clone(&self.inner);
        io::block(async move { inner.delete_checkpoints(|c| c > id).await })
    }

    /// Deletes every object of the store: its job finished.
    pub async fn clear(&self) -> Result<()> {
        let inner = Arc::clone(&self.inner);
        io::run(async move {
            let objects: Vec<_> = inner
                .store
                .list(Some(&inner.root))
                .map_ok(|meta| meta.location)
                .try_collect()
                .await
                .map_err(|e| inner.unreachable("listing the job's state", e))?;
            *lock(&inner.complete) = Some(BTreeSet::new());
            lock(&inner.refs).clear();
            inner.delete_all(objects).await
        })
        .await
    }

    /// Deletes every checkpoint up to `id`: those of a run that finished
    /// (see `runtime::recovery`), which the next run must not resume.
    pub fn discard_through_blocking(&self, id: u64) -> Result<()> {
        let inner = Arc::clone(&self.inner);
        io::block(async move { inner.delete_checkpoints(|c| c <= id).await })
    }
}

impl Inner {
    fn chunk_path(&self, id: ChunkId) -> ObjectPath {
        self.root.clone().join("chunks").clone().join(format!("{id:032x}"))
    }

    fn checkpoints(&self) -> ObjectPath {
        self.root.clone().join("checkpoints")
    }

    fn checkpoint_path(&self, id: u64) -> ObjectPath {
        self.checkpoints().clone().join(format!("{id:020}"))
    }

    fn task_path(&self, id: u64, task: &str) -> ObjectPath {
        self.checkpoint_path(id).clone().join("tasks").clone().join(task)
    }

    fn unreachable(&self, doing: &str, e: object_store::Error) -> EngineError {
        EngineError::State(format!("{doing} at {}: {e}", self.url))
    }

    /// The object at `path`, `None` if there is none.
    async fn get(&self, path: &ObjectPath) -> Result<Option<Bytes>> {
        let read = async { self.store.get(path).await?.bytes().await };
        match read.await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.unreachable(&format!("reading {path}"), e)),
        }
    }

    async fn delete(&self, path: &ObjectPath) -> Result<()> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.unreachable(&format!("deleting {path}"), e)),
        }
    }

    async fn delete_all(&self, paths: Vec<ObjectPath>) -> Result<()> {
        stream::iter(paths).map(|p| async move { self.delete(&p).await }).buffer_unordered(PARALLEL).try_collect().await
    }

    /// Writes `objects`, [`PARALLEL`] at a time.
    /// Uploads `objects`, [`PARALLEL`] at a time; a spill file is read
    /// when its upload starts, so that at most that many are in memory.
    async fn put_all(&self, objects: Vec<(ObjectPath, ChunkBytes)>) -> Result<()> {
        stream::iter(objects)
            .map(|(path, bytes)| async move {
                let body = match bytes {
                    ChunkBytes::Memory(bytes) => bytes,
                    file => tokio::task::spawn_blocking(move || file.into_vec()).await.map_err(|e| {
                        EngineError::State(format!("reading spilled state for {path}: ended abnormally: {e}"))
                    })??,
                };
                let put = self.store.put(&path, checked_payload(Bytes::from(body))).await;
                put.map(drop).map_err(|e| self.unreachable(&format!("writing {path}"), e))
            })
            .buffer_unordered(PARALLEL)
            .try_collect()
            .await
    }

    async fn upload(&self, id: u64, mut states: BTreeMap<String, TaskState>, manifest: Vec<u8>) -> Result<()> {
        let mut chunks = HashMap::new();
        let mut refs = HashSet::new();
        for state in states.values_mut() {
            refs.extend(state.chunks.refs.iter().copied());
            for (chunk, bytes) in std::mem::take(&mut state.chunks.new) {
                chunks.entry(chunk).or_insert(bytes);
            }
        }
        let chunks = chunks.into_iter().map(|(chunk, bytes)| (self.chunk_path(chunk), bytes)).collect();
        self.put_all(chunks).await?;
        let tasks = states
            .iter()
            .map(|(task, state)| {
                let mut e = Encoder::default();
                e.bytes(&encode_refs(&state.chunks.refs));
                encode_parts(&mut e, &state.parts);
                (self.task_path(id, task), ChunkBytes::Memory(e.bytes))
            })
            .collect();
        self.put_all(tasks).await?;
        let mut record = Encoder::default();
        record.u64(states.len() as u64);
        record.bytes(&manifest);
        for task in states.keys() {
            record.bytes(task.as_bytes());
        }
        let path = self.checkpoint_path(id).clone().join(COMPLETE);
        match self.store.put_opts(&path, checked_payload(Bytes::from(record.bytes)), PutMode::Create.into()).await {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
                return Err(EngineError::State(format!(
                    "checkpoint {id} at {} is already complete: another run of the job writes there",
                    self.url
                )));
            }
            Err(e) => return Err(self.unreachable(&format!("writing {path}"), e)),
        }
        lock(&self.refs).insert(id, refs);
        lock(&self.complete).get_or_insert_with(BTreeSet::new).insert(id);
        // What writers registered for this checkpoint is now in its refs;
        // what they registered for older ones belongs to abandoned ones.
        lock(&self.uploading).retain(|c, _| *c > id);
        Ok(())
    }

    /// Every object under `checkpoints/`, by checkpoint id, and whether
    /// the checkpoint has its manifest.
    async fn list_checkpoints(&self) -> Result<BTreeMap<u64, (Vec<ObjectPath>, bool)>> {
        let base = self.checkpoints();
        let objects: Vec<_> =
            self.store.list(Some(&base)).try_collect().await.map_err(|e| self.unreachable("listing checkpoints", e))?;
        let mut found: BTreeMap<u64, (Vec<ObjectPath>, bool)> = BTreeMap::new();
        for meta in objects {
            let named = meta.location.prefix_match(&base).and_then(|mut parts| {
                let id = parts.next()?.as_ref().parse::<u64>().ok()?;
                let is_manifest = parts.next().is_some_and(|p| p.as_ref() == COMPLETE) && parts.next().is_none();
                Some((id, is_manifest))
            });
            let Some((id, is_manifest)) = named else { continue };
            let entry = found.entry(id).or_default();
            entry.1 |= is_manifest;
            entry.0.push(meta.location);
        }
        Ok(found)
    }

    async fn complete_ids(&self) -> Result<BTreeSet<u64>> {
        if let Some(ids) = lock(&self.complete).as_ref() {
            return Ok(ids.clone());
        }
        let ids: BTreeSet<u64> =
            self.list_checkpoints().await?.into_iter().filter(|(_, (_, done))| *done).map(|(id, _)| id).collect();
        *lock(&self.complete) = Some(ids.clone());
        Ok(ids)
    }

    /// Deletes the checkpoints whose id `doomed` picks, each one's manifest
    /// first so that a half-deleted checkpoint is never complete.
    async fn delete_checkpoints(&self, doomed: impl Fn(u64) -> bool) -> Result<()> {
        let listing = self.list_checkpoints().await?;
        let mut manifests = Vec::new();
        let mut rest = Vec::new();
        for (id, (paths, _)) in listing.into_iter().filter(|(id, _)| doomed(*id)) {
            for path in paths {
                match path.filename() == Some(COMPLETE) {
                    true => manifests.push(path),
                    false => rest.push(path),
                }
            }
            lock(&self.refs).remove(&id);
        }
        self.delete_all(manifests).await?;
        if let Some(ids) = lock(&self.complete).as_mut() {
            ids.retain(|id| !doomed(*id));
        }
        self.delete_all(rest).await
    }

    /// The retained checkpoints (the last [`RETAINED`] complete ones) stay;
    /// older ones go, and then every chunk none of the retained references
    /// (mark and sweep). Abandoned checkpoints go once older than both the
    /// retained ones and `latest`.
    async fn prune(&self, latest: u64) -> Result<()> {
        let listing = self.list_checkpoints().await?;
        let complete: Vec<u64> = listing.iter().filter(|(_, (_, done))| *done).map(|(id, _)| *id).collect();
        let keep_from = complete.iter().rev().nth(RETAINED - 1).copied().unwrap_or(0);
        let cutoff = keep_from.min(latest);
        self.delete_checkpoints(|id| id < cutoff || (id < keep_from && complete.contains(&id))).await?;
        // Chunks are listed before what keeps them is gathered: a task's
        // writer may be uploading meanwhile, having registered its chunks
        // (`uploading`) first, so a chunk listed here is known to be kept.
        let chunks: Vec<_> = self
            .store
            .list(Some(&self.root.clone().join("chunks")))
            .try_collect()
            .await
            .map_err(|e| self.unreachable("listing chunks", e))?;
        let mut live: HashSet<ChunkId> = lock(&self.uploading).values().flatten().copied().collect();
        for id in complete.iter().filter(|id| **id >= keep_from) {
            match self.refs_of(*id).await {
                Ok(refs) => live.extend(refs),
                // A damaged checkpoint cannot be restored: it keeps nothing.
                Err(Fault::Damaged(_)) => {}
                // Unknown references: sweep nothing.
                Err(Fault::Unreachable(e)) => return Err(e),
            }
        }
        let dead = chunks
            .into_iter()
            .filter(|meta| {
                let id = meta.location.filename().and_then(|f| u128::from_str_radix(f, 16).ok());
                !id.is_some_and(|id| live.contains(&id))
            })
            .map(|meta| meta.location)
            .collect();
        self.delete_all(dead).await
    }

    /// The chunks checkpoint `id` references.
    async fn refs_of(&self, id: u64) -> std::result::Result<HashSet<ChunkId>, Fault> {
        if let Some(refs) = lock(&self.refs).get(&id) {
            return Ok(refs.clone());
        }
        let (_, names) = self.read_manifest(id).await?;
        let mut refs = HashSet::new();
        for task in &names {
            refs.extend(self.read_task(id, task).await?.chunks.refs);
        }
        lock(&self.refs).insert(id, refs.clone());
        Ok(refs)
    }

    async fn read_manifest(&self, id: u64) -> std::result::Result<(Manifest, Vec<String>), Fault> {
        let value = self
            .get(&self.checkpoint_path(id).clone().join(COMPLETE))
            .await
            .map_err(Fault::Unreachable)?
            .ok_or_else(|| Fault::Damaged(format!("checkpoint {id} has no manifest")))?;
        let damaged = |why: String| Fault::Damaged(format!("checkpoint {id}: its manifest {why}"));
        let body = verified(&value).ok_or_else(|| damaged("fails its checksum".into()))?;
        let decode = || -> Result<(Manifest, Vec<String>)> {
            let mut d = Decoder::new(body);
            let tasks = d.u64()?;
            let manifest = Manifest::decode(d.bytes()?)?;
            let mut names = Vec::new();
            for _ in 0..tasks {
                names.push(String::from_utf8_lossy(d.bytes()?).into_owned());
            }
            d.finish()?;
            Ok((manifest, names))
        };
        decode().map_err(|e| damaged(format!("cannot be decoded: {e}")))
    }

    async fn read_task(&self, id: u64, task: &str) -> std::result::Result<TaskState, Fault> {
        let damaged = |what: &str| Fault::Damaged(format!("checkpoint {id}: the state of {task} is {what}"));
        let value =
            self.get(&self.task_path(id, task)).await.map_err(Fault::Unreachable)?.ok_or_else(|| damaged("missing"))?;
        let body = verified(&value).ok_or_else(|| damaged("damaged (it fails its checksum)"))?;
        let decode = || -> Result<Option<TaskState>> {
            let mut d = Decoder::new(body);
            let Some(refs) = decode_refs(d.bytes()?) else {
                return Ok(None);
            };
            let parts = decode_parts(&mut d)?;
            d.finish()?;
            Ok(Some(TaskState { parts, chunks: ChunkWriter { refs, ..ChunkWriter::default() } }))
        };
        decode().ok().flatten().ok_or_else(|| damaged("malformed"))
    }

    async fn read(&self, id: u64) -> std::result::Result<Checkpoint, Fault> {
        let (manifest, names) = self.read_manifest(id).await?;
        let tasks: Vec<(String, TaskState)> = stream::iter(names)
            .map(|task| async move { self.read_task(id, &task).await.map(|state| (task, state)) })
            .buffered(PARALLEL)
            .try_collect()
            .await?;
        let wanted: HashSet<ChunkId> = tasks.iter().flat_map(|(_, s)| s.chunks.refs.iter().copied()).collect();
        let read: Vec<(ChunkId, Vec<u8>)> = stream::iter(wanted)
            .map(|chunk| async move {
                let value = self.get(&self.chunk_path(chunk)).await.map_err(Fault::Unreachable)?;
                let body = value.as_deref().and_then(verified).ok_or_else(|| {
                    Fault::Damaged(format!("checkpoint {id}: state chunk {chunk:032x} is missing or damaged"))
                })?;
                Ok::<_, Fault>((chunk, body.to_vec()))
            })
            .buffer_unordered(PARALLEL)
            .try_collect()
            .await?;
        let mut chunks = ChunkMap::default();
        for (chunk, bytes) in read {
            chunks.insert(chunk, bytes);
        }
        Ok(Checkpoint { id, tasks: tasks.into_iter().collect(), chunks, manifest: Some(manifest) })
    }

    async fn restore_before(&self, before: u64) -> Result<Recovery> {
        let mut damaged = Vec::new();
        for id in self.complete_ids().await?.into_iter().rev().filter(|c| *c < before) {
            match self.read(id).await {
                Ok(cp) => {
                    return Ok(Recovery { checkpoint: Some(cp), damaged });
                }
                Err(Fault::Damaged(why)) => {
                    tracing::warn!(checkpoint = id, error = %why, "checkpoint is damaged; falling back to the previous one");
                    damaged.push(id);
                }
                Err(Fault::Unreachable(e)) => return Err(e),
            }
        }
        Ok(Recovery { checkpoint: None, damaged })
    }
}

/// What the store-agnostic tests need to reach inside.
#[cfg(test)]
impl ObjectStateStore {
    pub(super) async fn test_corrupt(&self, checkpoint: u64, task: &str) {
        let path = self.inner.task_path(checkpoint, task);
        let mut v = self.inner.get(&path).await.unwrap().unwrap().to_vec();
        let last = v.len() - 1;
        v[last] ^= 0xff;
        self.inner.store.put(&path, v.into()).await.unwrap();
    }

    pub(super) async fn test_chunk_ids(&self) -> Vec<ChunkId> {
        let listed: Vec<_> =
            self.inner.store.list(Some(&self.inner.root.clone().join("chunks"))).try_collect().await.unwrap();
        let mut ids: Vec<ChunkId> =
            listed.iter().map(|m| u128::from_str_radix(m.location.filename().unwrap(), 16).unwrap()).collect();
        ids.sort();
        ids
    }

    pub(super) async fn test_remove_chunk(&self, id: ChunkId) {
        self.inner.store.delete(&self.inner.chunk_path(id)).await.unwrap();
    }

    pub(super) async fn test_complete_ids(&self) -> Vec<u64> {
        self.inner.list_checkpoints().await.unwrap().into_iter().filter(|(_, (_, d))| *d).map(|(id, _)| id).collect()
    }
}
