//! Checkpoints in one sled database per job under `state.dir`: the
//! default store. Task states, their chunk lists and the chunks are trees
//! keyed by checkpoint and task; a completion record (task count and
//! manifest, CRC32-checked) marks a checkpoint complete once the states
//! are flushed. Values too large for sled's cache are files beside it
//! ([`super::large_values`]).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use super::large_values::{Failed, LargeValues, Lazy};
use super::{
    Checkpoint, RETAINED, Recovery, TaskState, checked, decode_parts, decode_refs, encode_refs, verified, write_parts,
};
use crate::checkpoint::chunk::{ChunkBytes, ChunkId, ChunkMap, ChunkWriter};
use crate::checkpoint::codec::{Decoder, Encoder};
use crate::checkpoint::identity::Manifest;
use crate::error::{EngineError, Result};

fn err(context: &str) -> impl FnOnce(sled::Error) -> EngineError + '_ {
    move |e| EngineError::State(format!("{context}: {e}"))
}

const STATES: &str = "states";
const REFS: &str = "refs";
const CHUNKS: &str = "chunks";

fn state_key(checkpoint: u64, task: &str) -> Vec<u8> {
    format!("{checkpoint:020}/{task}").into_bytes()
}

/// The task count and manifest of a completion record; `None` when it is
/// damaged. A record of exactly 8 bytes is format 1's (the task count
/// alone, unchecked): its checkpoint has no manifest.
fn completion(value: &[u8]) -> Option<Result<(u64, Option<Manifest>)>> {
    if let Ok(legacy) = <[u8; 8]>::try_from(value) {
        return Some(Ok((u64::from_le_bytes(legacy), None)));
    }
    let mut d = Decoder::new(verified(value)?);
    let read = (|| {
        let tasks = d.u64()?;
        let manifest = Manifest::decode(d.bytes()?)?;
        d.finish()?;
        Ok((tasks, Some(manifest)))
    })();
    Some(read)
}

/// How long opening a store waits for another holder's lock to go: a
/// flusher thread ends within its flush interval (500 ms by default), and
/// another process holding the store does not let go at all.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// The memory sled may keep of the pages it read and wrote. Its default
/// (1 GiB) let the small chunks every checkpoint writes fill the process's
/// memory beside the state it checkpoints (264 MB at the peak of Nexmark
/// q11 at 200M events under a 1 GB state budget); a checkpoint is written
/// once and read back only on restore, so a small cache costs nothing.
const CACHE: u64 = 64 << 20;

/// Whether sled refused to open a store because another holder has its
/// lock: sled 0.34 reports the `flock` failure (WouldBlock) as an I/O error
/// of kind `Other` with this message, so the message is all there is.
fn is_locked(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.kind() == std::io::ErrorKind::Other
        && io.to_string().starts_with("could not acquire lock"))
}

/// Whether opening a store failed for the system's reason (a full disk,
/// no permission, a read-only filesystem) rather than for what the store
/// holds: such a store is not damaged, and is not set aside
/// (`runtime::recovery`); the job fails until the system is put right.
fn of_the_system(io: &std::io::Error) -> bool {
    use std::io::ErrorKind::{PermissionDenied, ReadOnlyFilesystem, StorageFull};
    matches!(io.kind(), StorageFull | PermissionDenied | ReadOnlyFilesystem)
}

/// The I/O error `io` as the system reported it. sled 0.34 fails every
/// write after a failed one with a copy of that error whose message is the
/// original's debug form (`Os { code: 28, kind: StorageFull, message: "No
/// space left on device" }`): the OS error is rebuilt from its code, so
/// that the message reads as the system's (`No space left on device (os
/// error 28)`). Any other error is kept as it is.
fn as_the_system_said(io: std::io::Error) -> std::io::Error {
    if io.raw_os_error().is_some() {
        return io;
    }
    let code = io.to_string().strip_prefix("Os { code: ").and_then(|rest| rest.split(',').next()?.parse().ok());
    code.map_or(io, std::io::Error::from_raw_os_error)
}

/// The checkpoints of one job in sled.
#[derive(Debug, Clone)]
pub struct SledStore {
    db: sled::Db,
    states: sled::Tree,
    /// Per state key: the chunks that task state references.
    refs: sled::Tree,
    chunks: sled::Tree,
    /// The ids of the chunks in `chunks`, which a clean-up lists: listing
    /// them from the tree read every page of it, values and all, through
    /// sled's cache at every checkpoint (240 MB of a job's memory for
    /// Nexmark q11's small session chunks at 200M events). Shared by the
    /// clones that tasks' snapshot writers hold.
    chunk_ids: Arc<Mutex<HashSet<ChunkId>>>,
    complete: sled::Tree,
    /// The values of `states`, `refs` and `chunks` too large for sled.
    values: LargeValues,
    /// Where the store is, for the errors of its writes.
    dir: PathBuf,
    /// The I/O error of the first write that failed (a full disk): sled
    /// 0.34 then fails every later write of this `Db` with it, even once
    /// the disk has room, so the store must be opened again. Shared by the
    /// clones that tasks' snapshot writers hold.
    broken: Arc<OnceLock<std::io::Error>>,
}

impl SledStore {
    /// Opens (or creates) the store in `dir`. sled's lock on a store this
    /// process let go of is released only when that store's background
    /// flusher thread ends (its drop does not wait for it): a lock held
    /// is tried again for up to [`LOCK_WAIT`] before it is an error.
    pub fn open(dir: &Path) -> Result<Self> {
        let started = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(5);
        let db = loop {
            match sled::Config::new().path(dir).cache_capacity(CACHE).open() {
                Ok(db) => break db,
                Err(e) if is_locked(&e) && started.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(std::time::Duration::from_millis(100));
                }
                Err(sled::Error::Io(io)) if of_the_system(&io) => {
                    return Err(EngineError::Io {
                        context: format!("cannot open state in {}", dir.display()),
                        source: io,
                    });
                }
                Err(e) => return Err(EngineError::State(format!("cannot open state in {}: {e}", dir.display()))),
            }
        };
        let tree = |name: &str| db.open_tree(name).map_err(err("opening state"));
        let (states, refs, chunks, complete) = (tree(STATES)?, tree(REFS)?, tree(CHUNKS)?, tree("complete")?);
        let values = LargeValues::new(dir);
        let (mut chunk_ids, mut strays) = (HashSet::new(), Vec::new());
        for key in chunks.iter().keys() {
            let key = key.map_err(err("opening state"))?;
            match <[u8; 16]>::try_from(key.as_ref()) {
                Ok(id) => chunk_ids.insert(u128::from_be_bytes(id)),
                Err(_) => {
                    strays.push(key);
                    false
                }
            };
        }
        let chunk_ids = Arc::new(Mutex::new(chunk_ids));
        let store = Self {
            db,
            states,
            refs,
            chunks,
            chunk_ids,
            complete,
            values,
            dir: dir.to_path_buf(),
            broken: Arc::default(),
        };
        // A key of another length is no chunk any checkpoint references.
        for key in strays {
            store.values.remove(&store.chunks, CHUNKS, &key).map_err(store.failed("opening state"))?;
        }
        store.values.sweep(&store.trees()).map_err(|source| EngineError::Io {
            context: format!("cannot open state in {}: deleting values no checkpoint keeps", dir.display()),
            source,
        })?;
        Ok(store)
    }

    /// The trees whose values may be files, by name.
    fn trees(&self) -> [(&'static str, &sled::Tree); 3] {
        [(STATES, &self.states), (REFS, &self.refs), (CHUNKS, &self.chunks)]
    }

    /// The error of a write while `doing` it: an I/O error names the
    /// store's directory (the disk that is full) and is recorded, as after
    /// it this store writes nothing more ([`Self::broken`]).
    fn write_err<'a>(&'a self, doing: &'a str) -> impl FnOnce(sled::Error) -> EngineError + 'a {
        move |e| match e {
            sled::Error::Io(source) => {
                let source = as_the_system_said(source);
                let _ = self.broken.set(std::io::Error::new(source.kind(), source.to_string()));
                EngineError::Io { context: format!("{doing} in {}", self.dir.display()), source }
            }
            e => err(doing)(e),
        }
    }

    /// The error of writing or deleting a value while `doing` it, as
    /// [`Self::write_err`] for sled's.
    fn failed<'a>(&'a self, doing: &'a str) -> impl FnOnce(Failed) -> EngineError + 'a {
        move |e| match e {
            Failed::Sled(e) => self.write_err(doing)(e),
            Failed::Io(source) => EngineError::Io { context: format!("{doing} in {}", self.dir.display()), source },
        }
    }

    /// The directory the store is in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Why this store can write nothing more until it is opened again: the
    /// I/O error of its first failed write (sled keeps failing after one).
    pub fn broken(&self) -> Option<&std::io::Error> {
        self.broken.get()
    }

    /// Records one task's state for `checkpoint`, with checksums: its new
    /// chunks, the ids of all chunks it references, then its parts,
    /// written from the parts themselves.
    pub fn put(&self, checkpoint: u64, task: &str, state: TaskState) -> Result<()> {
        let TaskState { parts, chunks } = state;
        self.put_chunks(checkpoint, task, &chunks.refs, &chunks.new)?;
        drop(chunks);
        let key = state_key(checkpoint, task);
        self.values
            .insert(&self.states, STATES, &key, &|w| write_parts(w, &parts))
            .map_err(self.failed("writing state"))
    }

    /// Writes the chunks `new` of one task's part of `checkpoint`, after
    /// the list `refs` of every chunk the part references: a clean-up
    /// ([`Self::prune`]) lists the chunks before the lists, so that it
    /// never takes a chunk whose list it has not seen for garbage.
    pub fn put_chunks(
        &self,
        checkpoint: u64,
        task: &str,
        refs: &[ChunkId],
        new: &[(ChunkId, ChunkBytes)],
    ) -> Result<()> {
        let refs = encode_refs(refs);
        let key = state_key(checkpoint, task);
        self.values.insert(&self.refs, REFS, &key, &|w| w.write_all(&refs)).map_err(self.failed("writing state"))?;
        for (id, bytes) in new {
            let write = |w: &mut dyn std::io::Write| bytes.write_to(w);
            let file = match bytes {
                ChunkBytes::File(file) => Some(file.path()?),
                ChunkBytes::Memory(_) => None,
            };
            self.values
                .insert_from(&self.chunks, CHUNKS, &id.to_be_bytes(), &write, file)
                .map_err(self.failed("writing state"))?;
            self.chunk_ids.lock().unwrap_or_else(|p| p.into_inner()).insert(*id);
        }
        Ok(())
    }

    /// Marks `checkpoint` complete once its `tasks` states are durable,
    /// recording the `manifest` of the job that wrote them, and deletes
    /// checkpoints no longer needed.
    pub async fn complete(&self, checkpoint: u64, tasks: usize, manifest: &Manifest) -> Result<()> {
        let values = self.values.clone();
        let synced = tokio::task::spawn_blocking(move || values.sync()).await.map_err(|e| {
            EngineError::State(format!("checkpoint {checkpoint}: syncing state files ended abnormally: {e}"))
        })?;
        synced.map_err(|source| EngineError::Io {
            context: format!("syncing state in {}", self.dir.display()),
            source,
        })?;
        self.db.flush_async().await.map_err(self.write_err("flushing state"))?;
        let mut record = Encoder::default();
        record.u64(tasks as u64);
        record.bytes(&manifest.encode());
        self.complete
            .insert(format!("{checkpoint:020}"), checked(&record.bytes))
            .map_err(self.write_err("completing a checkpoint"))?;
        self.db.flush_async().await.map_err(self.write_err("flushing state"))?;
        // The checkpoint is complete and durable: a failed clean-up (a
        // full disk) leaves garbage for the next one to collect, nothing
        // worse, as on object storage. Failing the checkpoint instead
        // would hold back the sinks' commit of output a restore commits.
        if let Err(e) = self.prune(checkpoint) {
            tracing::warn!(checkpoint, error = %e, "old checkpoints could not be deleted");
        }
        Ok(())
    }

    /// Deletes the checkpoints before the retained ones, then the chunks no
    /// remaining checkpoint references (mark and sweep).
    fn prune(&self, latest: u64) -> Result<()> {
        let ids = self.complete_ids()?;
        let keep_from = ids.iter().rev().nth(RETAINED - 1).copied().unwrap_or(0);
        for id in ids.iter().filter(|id| **id < keep_from) {
            self.complete.remove(format!("{id:020}")).map_err(self.write_err("pruning state"))?;
        }
        // States of older checkpoints, complete or abandoned.
        let cutoff = format!("{:020}/", keep_from.min(latest));
        for (name, tree) in [(STATES, &self.states), (REFS, &self.refs)] {
            for key in tree.range(..cutoff.as_bytes()).keys() {
                let key = key.map_err(err("pruning state"))?;
                self.values.remove(tree, name, &key).map_err(self.failed("pruning state"))?;
            }
        }
        // Chunks are listed before the lists that keep them: a task's
        // writer may be adding both meanwhile (`put_chunks` writes the list
        // first), and a chunk listed here has its list in place already.
        let stored: Vec<ChunkId> = self.chunk_ids.lock().unwrap_or_else(|p| p.into_inner()).iter().copied().collect();
        let mut live = HashSet::new();
        for entry in self.refs.iter() {
            let (key, value) = entry.map_err(err("pruning state"))?;
            // A damaged list keeps nothing alive; its checkpoint cannot be
            // restored anyway.
            if let Some(refs) = self.values.body(REFS, &key, &value).as_deref().and_then(decode_refs) {
                live.extend(refs);
            }
        }
        for id in stored.into_iter().filter(|id| !live.contains(id)) {
            self.values.remove(&self.chunks, CHUNKS, &id.to_be_bytes()).map_err(self.failed("pruning state"))?;
            self.chunk_ids.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        }
        Ok(())
    }

    fn complete_ids(&self) -> Result<Vec<u64>> {
        let mut ids = Vec::new();
        for key in self.complete.iter().keys() {
            let key = key.map_err(err("reading state"))?;
            if let Some(id) = std::str::from_utf8(&key).ok().and_then(|k| k.parse().ok()) {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// The newest complete checkpoint, or `None`.
    pub fn latest_id(&self) -> Result<Option<u64>> {
        Ok(self.complete_ids()?.last().copied())
    }

    /// The newest complete checkpoint older than `id` that reads back
    /// intact; a torn or partial one is skipped, with a warning.
    pub fn restore_before(&self, id: u64) -> Result<Recovery> {
        let mut damaged = Vec::new();
        for id in self.complete_ids()?.into_iter().rev().filter(|c| *c < id) {
            match self.read(id) {
                Ok(cp) => {
                    return Ok(Recovery { checkpoint: Some(cp), damaged });
                }
                Err(e) => {
                    tracing::warn!(checkpoint = id, error = %e, "checkpoint is damaged; falling back to the previous one");
                    damaged.push(id);
                }
            }
        }
        Ok(Recovery { checkpoint: None, damaged })
    }

    /// Deletes every checkpoint after `id`, complete or not: a job resumed
    /// from `id` numbers its next checkpoints from there, and must not find
    /// a stale task state of an earlier run under a reused number.
    pub fn truncate_after(&self, id: u64) -> Result<()> {
        let from = format!("{:020}", id + 1);
        for key in self.complete.range(from.as_bytes()..).keys() {
            self.complete.remove(key.map_err(err("truncating state"))?).map_err(self.write_err("truncating state"))?;
        }
        for (name, tree) in [(STATES, &self.states), (REFS, &self.refs)] {
            for key in tree.range(from.as_bytes()..).keys() {
                let key = key.map_err(err("truncating state"))?;
                self.values.remove(tree, name, &key).map_err(self.failed("truncating state"))?;
            }
        }
        self.db.flush().map_err(self.write_err("flushing state"))?;
        Ok(())
    }

    /// Complete checkpoint `id`, checked like [`Self::restore_before`]'s.
    pub fn read(&self, id: u64) -> Result<Checkpoint> {
        let record = self.complete.get(format!("{id:020}")).map_err(err("reading state"))?;
        let (expected, manifest) = record
            .as_deref()
            .and_then(completion)
            .transpose()?
            .ok_or_else(|| EngineError::State(format!("checkpoint {id} has no valid completion record")))?;
        let prefix = format!("{id:020}/");
        let mut tasks = BTreeMap::new();
        let mut chunks = ChunkMap::default();
        for entry in self.states.scan_prefix(prefix.as_bytes()) {
            let (key, value) = entry.map_err(err("reading state"))?;
            let task = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
            let body = self
                .values
                .body(STATES, &key, &value)
                .ok_or_else(|| EngineError::State(format!("checkpoint {id}: state of {task} fails its checksum")))?;
            let mut d = Decoder::new(&body);
            let parts = decode_parts(&mut d)?;
            d.finish()?;
            let refs = self.refs.get(&key).map_err(err("reading state"))?;
            let refs = refs.and_then(|v| decode_refs(&self.values.body(REFS, &key, &v)?)).ok_or_else(|| {
                EngineError::State(format!("checkpoint {id}: the chunk list of {task} is missing or damaged"))
            })?;
            for chunk in &refs {
                if chunks.contains(*chunk) {
                    continue;
                }
                let chunk_key = chunk.to_be_bytes();
                let value = self.chunks.get(chunk_key).map_err(err("reading state"))?;
                let body = value.as_deref().and_then(|v| self.values.verified_lazily(CHUNKS, &chunk_key, v));
                match body {
                    Some(Lazy::Bytes(bytes)) => chunks.insert(*chunk, bytes.to_vec()),
                    Some(Lazy::File(file)) => chunks.insert_file(*chunk, file),
                    None => {
                        return Err(EngineError::State(format!(
                            "checkpoint {id}: state chunk {chunk:032x} of {task} is missing or damaged"
                        )));
                    }
                }
            }
            let chunks = ChunkWriter { refs, ..ChunkWriter::default() };
            tasks.insert(task, TaskState { parts, chunks });
        }
        if tasks.len() as u64 != expected {
            return Err(EngineError::State(format!(
                "checkpoint {id} has {} task states, its completion record says {expected}",
                tasks.len()
            )));
        }
        Ok(Checkpoint { id, tasks, chunks, manifest })
    }
}

/// What the store-agnostic tests (`store::tests`) need to reach inside.
#[cfg(test)]
impl SledStore {
    pub(super) fn test_corrupt(&self, checkpoint: u64, task: &str) {
        let key = state_key(checkpoint, task);
        let mut v = self.states.get(&key).unwrap().unwrap().to_vec();
        let last = v.len() - 1;
        v[last] ^= 0xff;
        self.states.insert(key, v).unwrap();
    }

    pub(super) fn test_chunk_ids(&self) -> Vec<crate::checkpoint::chunk::ChunkId> {
        self.chunks.iter().keys().map(|k| u128::from_be_bytes(k.unwrap().as_ref().try_into().unwrap())).collect()
    }

    pub(super) fn test_remove_chunk(&self, id: crate::checkpoint::chunk::ChunkId) {
        self.chunks.remove(id.to_be_bytes()).unwrap();
    }

    pub(super) fn test_complete_ids(&self) -> Vec<u64> {
        self.complete_ids().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::store::tests::{manifest, state};

    /// A store let go of opens again at once (its flusher thread may still
    /// hold sled's lock for a moment), every time; one still held is an
    /// error naming the directory.
    #[tokio::test]
    async fn a_store_let_go_of_opens_again_and_one_held_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for checkpoint in 1..=20 {
            let store = SledStore::open(dir.path()).unwrap();
            store.put(checkpoint, "t", state(checkpoint as u8)).unwrap();
            store.complete(checkpoint, 1, &manifest()).await.unwrap();
            drop(store);
        }
        let held = SledStore::open(dir.path()).unwrap();
        assert_eq!(held.latest_id().unwrap(), Some(20));
        let refused = SledStore::open(dir.path()).unwrap_err().to_string();
        assert!(refused.contains("cannot open state in") && refused.contains("lock"), "{refused}");
    }

    /// sled's copy of a failed write's OS error (its debug form as the
    /// message) reads as the system's error again; another stays as it is.
    #[test]
    fn a_copied_os_error_reads_as_the_systems() {
        let full = std::io::Error::from_raw_os_error(28);
        let copied = std::io::Error::new(full.kind(), format!("{full:?}"));
        let said = as_the_system_said(copied);
        assert_eq!((said.raw_os_error(), said.to_string()), (Some(28), full.to_string()));
        let other = as_the_system_said(std::io::Error::other("lost"));
        assert_eq!((other.raw_os_error(), other.to_string()), (None, "lost".to_string()));
    }

    /// A checkpoint of state format 1 (its completion record the task
    /// count alone) reads back without a manifest, for the restore to
    /// refuse; the manifest of a newer one reads back as written.
    #[tokio::test]
    async fn completion_records_carry_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        store.put(1, "t", state(1)).unwrap();
        store.complete(1, 1, &manifest()).await.unwrap();
        assert_eq!(store.read(1).unwrap().manifest, Some(manifest()));
        store.put(2, "t", state(2)).unwrap();
        store.complete.insert(format!("{:020}", 2), &1u64.to_le_bytes()).unwrap();
        let cp = store.read(2).unwrap();
        assert_eq!((cp.id, cp.manifest), (2, None));
        // A damaged record is a damaged checkpoint, not a format-1 one.
        let mut record = store.complete.get(format!("{:020}", 1)).unwrap().unwrap().to_vec();
        let last = record.len() - 1;
        record[last] ^= 1;
        store.complete.insert(format!("{:020}", 1), record).unwrap();
        assert!(store.read(1).is_err());
    }

    /// Values over `LARGE` bytes are files beside sled: they read back,
    /// a damaged or missing one makes its checkpoint damaged (the one
    /// before it is restored), pruned checkpoints take their files with
    /// them, and a file whose key is gone is deleted when the store opens.
    #[tokio::test]
    async fn large_values_are_files_that_go_with_their_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let files = || std::fs::read_dir(dir.path().join("values")).map_or(0, |d| d.count());
        let store = SledStore::open(dir.path()).unwrap();
        let big =
            |tag: u8| (0..super::super::large_values::LARGE * 3).map(|i| (i % 251) as u8 ^ tag).collect::<Vec<u8>>();
        let chunk = |tag: u8| crate::checkpoint::chunk::ChunkId::from(tag) << 64;
        for id in 1..=5u8 {
            let mut chunks = ChunkWriter::default();
            chunks.write(chunk(id), big(id + 100));
            let parts = vec![("op".to_string(), big(id)), ("small".to_string(), vec![id; 3])];
            store.put(id.into(), "t", TaskState { parts, chunks }).unwrap();
            store.complete(id.into(), 1, &manifest()).await.unwrap();
            let cp = store.read(id.into()).unwrap();
            assert_eq!(cp.part("t", "op"), Some(big(id).as_slice()));
            assert_eq!(cp.part("t", "small"), Some(&[id; 3][..]));
            assert_eq!(&*cp.chunks.get(chunk(id)).unwrap(), big(id + 100).as_slice());
        }
        // Three checkpoints are kept, each a state file and a chunk file.
        assert_eq!(files(), 3 * 2);
        let state_file = dir.path().join("values").join(format!("states-{}", hex::encode(state_key(5, "t"))));
        let mut bytes = std::fs::read(&state_file).unwrap();
        bytes[1000] ^= 1;
        std::fs::write(&state_file, &bytes).unwrap();
        let recovery = store.restore_before(u64::MAX).unwrap();
        assert_eq!((recovery.checkpoint.map(|c| c.id), recovery.damaged), (Some(4), vec![5]));
        let chunk_file = dir.path().join("values").join(format!("chunks-{}", hex::encode(chunk(4).to_be_bytes())));
        std::fs::remove_file(chunk_file).unwrap();
        let err = store.read(4).unwrap_err().to_string();
        assert!(err.contains("missing or damaged"), "{err}");
        drop(store);
        std::fs::write(dir.path().join("values").join("chunks-00ff"), b"left by a crash").unwrap();
        let _store = SledStore::open(dir.path()).unwrap();
        assert_eq!(files(), 3 * 2 - 1, "the orphan is deleted when the store opens, the rest kept");
    }

    /// A chunk that is a spill file is stored as a hard link to it: the
    /// same bytes on disk, never read into memory; it outlives the spill
    /// file, is linked again when an abandoned checkpoint's chunk is sent
    /// again, and a small one is a sled value as any other.
    #[tokio::test]
    async fn spilled_chunks_are_linked_not_copied() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let backend = crate::spill::StateBackend::spilling(1 << 20, &dir.path().join("spill")).unwrap();
        let budget = backend.share("op", 0).unwrap();
        let big: Vec<u8> = (0..super::super::large_values::LARGE * 2).map(|i| (i % 253) as u8).collect();
        let (large, small) = (budget.spill(&big).unwrap(), budget.spill(b"few bytes").unwrap());
        let store = SledStore::open(dir.path().join("store").as_path()).unwrap();
        let (a, b) = (7u128 << 64, 8u128 << 64);
        for checkpoint in [1, 2] {
            let mut chunks = ChunkWriter::default();
            chunks.write_file(a, large.clone());
            chunks.write_file(b, small.clone());
            store.put(checkpoint, "t", TaskState { parts: vec![("op".into(), vec![1])], chunks }).unwrap();
        }
        store.complete(2, 1, &manifest()).await.unwrap();
        let stored = dir.path().join("store/values").join(format!("chunks-{}", hex::encode(a.to_be_bytes())));
        let inode = |p: &std::path::Path| std::fs::metadata(p).unwrap().ino();
        assert_eq!(inode(&stored), inode(large.path().unwrap()), "a link to the spill file");
        drop((large, small, budget, backend));
        let cp = store.read(2).unwrap();
        assert_eq!(&*cp.chunks.get(a).unwrap(), big.as_slice());
        assert_eq!(&*cp.chunks.get(b).unwrap(), b"few bytes");
        assert_eq!(std::fs::read_dir(dir.path().join("store/values")).unwrap().count(), 1, "only the large chunk");
    }

    /// A checkpoint's large chunks are verified when it is read but read
    /// only when a restore asks for one, so that restoring state larger
    /// than memory holds one chunk at a time; one damaged after it was read
    /// is an error naming the chunk, not wrong state.
    #[tokio::test]
    async fn large_chunks_are_read_when_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let big: Vec<u8> = (0..super::super::large_values::LARGE * 2).map(|i| (i % 241) as u8).collect();
        let id = 9u128 << 64;
        let mut chunks = ChunkWriter::default();
        chunks.write(id, big.clone());
        store.put(1, "t", TaskState { parts: vec![("op".into(), vec![1])], chunks }).unwrap();
        store.complete(1, 1, &manifest()).await.unwrap();
        let cp = store.read(1).unwrap();
        assert_eq!(cp.chunks.size(id).unwrap(), big.len() as u64);
        assert!(matches!(cp.chunks.get(id).unwrap(), std::borrow::Cow::Owned(_)), "read from its file");
        assert_eq!(&*cp.chunks.get(id).unwrap(), big.as_slice());
        let file = dir.path().join("values").join(format!("chunks-{}", hex::encode(id.to_be_bytes())));
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[7] ^= 1;
        std::fs::write(&file, &bytes).unwrap();
        let err = cp.chunks.get(id).unwrap_err().to_string();
        assert!(err.contains(&format!("state chunk {id:032x}")) && err.contains("damaged"), "{err}");
        assert!(store.read(1).is_err(), "read again, the checkpoint is damaged");
    }
}
