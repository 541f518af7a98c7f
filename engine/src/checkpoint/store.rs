//! Where checkpoints are written: one sled database per job under
//! `state.dir`. A checkpoint is the state of every task, then a completion
//! record naming how many task states it has, with the job's state
//! [`Manifest`]; only a completed, intact checkpoint is ever restored. Large operator state lives in chunks
//! (`checkpoint::chunk`), shared by the checkpoints that reference them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use crate::checkpoint::chunk::{ChunkId, ChunkMap, ChunkWriter};
use crate::checkpoint::codec::{Decoder, Encoder};
use crate::checkpoint::identity::Manifest;
use crate::error::{EngineError, Result};

/// Complete checkpoints kept; older ones are deleted.
const RETAINED: usize = 3;

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
        self.tasks
            .get(task)?
            .parts
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
    }
}

/// What recovery found: the checkpoint to resume from, and the newer
/// complete checkpoints that were skipped because they are damaged.
#[derive(Debug, Default)]
pub struct Recovery {
    pub checkpoint: Option<Checkpoint>,
    pub damaged: Vec<u64>,
}

/// The checkpoints of one job.
#[derive(Debug, Clone)]
pub struct StateStore {
    db: sled::Db,
    states: sled::Tree,
    /// Per state key: the chunks that task state references.
    refs: sled::Tree,
    chunks: sled::Tree,
    complete: sled::Tree,
}

fn err(context: &str) -> impl FnOnce(sled::Error) -> EngineError + '_ {
    move |e| EngineError::State(format!("{context}: {e}"))
}

fn state_key(checkpoint: u64, task: &str) -> Vec<u8> {
    format!("{checkpoint:020}/{task}").into_bytes()
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

fn decode_refs(body: &[u8]) -> Vec<ChunkId> {
    body.chunks_exact(16)
        .map(|c| u128::from_le_bytes(c.try_into().expect("chunks_exact yields 16 bytes")))
        .collect()
}

impl StateStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        let db = sled::open(dir).map_err(|e| EngineError::State(format!("cannot open state in {}: {e}", dir.display())))?;
        let tree = |name: &str| db.open_tree(name).map_err(err("opening state"));
        let (states, refs, chunks, complete) = (tree("states")?, tree("refs")?, tree("chunks")?, tree("complete")?);
        Ok(Self {
            db,
            states,
            refs,
            chunks,
            complete,
        })
    }

    /// Records one task's state for `checkpoint`, with checksums: its new
    /// chunks, the ids of all chunks it references, then its parts.
    pub fn put(&self, checkpoint: u64, task: &str, state: &TaskState) -> Result<()> {
        for (id, bytes) in &state.chunks.new {
            self.chunks.insert(id.to_be_bytes(), checked(bytes)).map_err(err("writing state"))?;
        }
        let refs: Vec<u8> = state.chunks.refs.iter().flat_map(|id| id.to_le_bytes()).collect();
        self.refs
            .insert(state_key(checkpoint, task), checked(&refs))
            .map_err(err("writing state"))?;
        let mut e = Encoder::default();
        e.u64(state.parts.len() as u64);
        for (name, bytes) in &state.parts {
            e.bytes(name.as_bytes());
            e.bytes(bytes);
        }
        self.states
            .insert(state_key(checkpoint, task), checked(&e.bytes))
            .map_err(err("writing state"))?;
        Ok(())
    }

    /// Marks `checkpoint` complete once its `tasks` states are durable,
    /// recording the `manifest` of the job that wrote them, and deletes
    /// checkpoints no longer needed.
    pub async fn complete(&self, checkpoint: u64, tasks: usize, manifest: &Manifest) -> Result<()> {
        self.db.flush_async().await.map_err(err("flushing state"))?;
        let mut record = Encoder::default();
        record.u64(tasks as u64);
        record.bytes(&manifest.encode());
        self.complete
            .insert(format!("{checkpoint:020}"), checked(&record.bytes))
            .map_err(err("completing a checkpoint"))?;
        self.db.flush_async().await.map_err(err("flushing state"))?;
        self.prune(checkpoint)
    }

    /// Deletes the checkpoints before the retained ones, then the chunks no
    /// remaining checkpoint references (mark and sweep).
    fn prune(&self, latest: u64) -> Result<()> {
        let ids = self.complete_ids()?;
        let keep_from = ids.iter().rev().nth(RETAINED - 1).copied().unwrap_or(0);
        for id in ids.iter().filter(|id| **id < keep_from) {
            self.complete.remove(format!("{id:020}")).map_err(err("pruning state"))?;
        }
        // States of older checkpoints, complete or abandoned.
        let cutoff = format!("{:020}/", keep_from.min(latest));
        for tree in [&self.states, &self.refs] {
            for key in tree.range(..cutoff.as_bytes()).keys() {
                let key = key.map_err(err("pruning state"))?;
                tree.remove(key).map_err(err("pruning state"))?;
            }
        }
        let mut live = HashSet::new();
        for value in self.refs.iter().values() {
            let value = value.map_err(err("pruning state"))?;
            // A damaged list keeps nothing alive; its checkpoint cannot be
            // restored anyway.
            if let Some(body) = verified(&value) {
                live.extend(decode_refs(body));
            }
        }
        for key in self.chunks.iter().keys() {
            let key = key.map_err(err("pruning state"))?;
            let id = <[u8; 16]>::try_from(key.as_ref()).map(u128::from_be_bytes);
            if !id.is_ok_and(|id| live.contains(&id)) {
                self.chunks.remove(key).map_err(err("pruning state"))?;
            }
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

    /// The newest complete checkpoint that reads back intact; a torn or
    /// partial one is skipped, with a warning, for the one before it.
    pub fn restore(&self) -> Result<Recovery> {
        self.restore_before(u64::MAX)
    }

    /// [`Self::restore`] among the checkpoints older than `id`: the state
    /// of checkpoint `id` read back but could not be decoded.
    pub fn restore_before(&self, id: u64) -> Result<Recovery> {
        let mut damaged = Vec::new();
        for id in self.complete_ids()?.into_iter().rev().filter(|c| *c < id) {
            match self.read(id) {
                Ok(cp) => {
                    return Ok(Recovery {
                        checkpoint: Some(cp),
                        damaged,
                    });
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
            self.complete.remove(key.map_err(err("truncating state"))?).map_err(err("truncating state"))?;
        }
        for tree in [&self.states, &self.refs] {
            for key in tree.range(from.as_bytes()..).keys() {
                tree.remove(key.map_err(err("truncating state"))?).map_err(err("truncating state"))?;
            }
        }
        self.db.flush().map_err(err("flushing state"))?;
        Ok(())
    }

    /// Complete checkpoint `id`, checked like [`Self::restore`]'s.
    pub fn read(&self, id: u64) -> Result<Checkpoint> {
        let record = self.complete.get(format!("{id:020}")).map_err(err("reading state"))?;
        let (expected, manifest) = record
            .as_deref()
            .and_then(completion)
            .transpose()?
            .ok_or_else(|| EngineError::State(format!("checkpoint {id} has no valid completion record")))?;
        let prefix = format!("{id:020}/");
        let mut tasks = BTreeMap::new();
        let mut chunks = HashMap::new();
        for entry in self.states.scan_prefix(prefix.as_bytes()) {
            let (key, value) = entry.map_err(err("reading state"))?;
            let task = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
            let body =
                verified(&value).ok_or_else(|| EngineError::State(format!("checkpoint {id}: state of {task} fails its checksum")))?;
            let mut d = Decoder::new(body);
            let n = d.u64()?;
            let mut parts = Vec::new();
            for _ in 0..n {
                let name = String::from_utf8_lossy(d.bytes()?).into_owned();
                parts.push((name, d.bytes()?.to_vec()));
            }
            d.finish()?;
            let refs = self.refs.get(&key).map_err(err("reading state"))?;
            let refs = refs
                .as_deref()
                .and_then(verified)
                .map(decode_refs)
                .ok_or_else(|| EngineError::State(format!("checkpoint {id}: the chunk list of {task} is missing or damaged")))?;
            for chunk in &refs {
                if chunks.contains_key(chunk) {
                    continue;
                }
                let value = self.chunks.get(chunk.to_be_bytes()).map_err(err("reading state"))?;
                let body = value.as_deref().and_then(verified).ok_or_else(|| {
                    EngineError::State(format!("checkpoint {id}: state chunk {chunk:032x} of {task} is missing or damaged"))
                })?;
                chunks.insert(*chunk, body.to_vec());
            }
            let chunks = ChunkWriter { new: Vec::new(), refs };
            tasks.insert(task, TaskState { parts, chunks });
        }
        if tasks.len() as u64 != expected {
            return Err(EngineError::State(format!(
                "checkpoint {id} has {} task states, its completion record says {expected}",
                tasks.len()
            )));
        }
        Ok(Checkpoint {
            id,
            tasks,
            chunks: ChunkMap(chunks),
            manifest,
        })
    }

    /// Copies complete checkpoint `id` into a new store in `dir`: a
    /// savepoint, which outlives the job and can start another.
    pub async fn export(&self, id: u64, dir: &Path) -> Result<()> {
        let cp = self.read(id)?;
        let manifest = cp.manifest.as_ref().ok_or_else(|| {
            EngineError::Incompatible(format!("checkpoint {id} is of state format 1: it cannot be saved for a newer Weir"))
        })?;
        let target = StateStore::open(dir)?;
        for (task, state) in &cp.tasks {
            let mut state = state.clone();
            for chunk in &state.chunks.refs {
                state.chunks.new.push((*chunk, cp.chunks.get(*chunk)?.to_vec()));
            }
            target.put(id, task, &state)?;
        }
        target.complete(id, cp.tasks.len(), manifest).await
    }

    /// Corrupts one stored task state of `checkpoint` (for tests of the
    /// fallback).
    #[cfg(test)]
    fn corrupt(&self, checkpoint: u64, task: &str) {
        let key = state_key(checkpoint, task);
        let mut v = self.states.get(&key).unwrap().unwrap().to_vec();
        let last = v.len() - 1;
        v[last] ^= 0xff;
        self.states.insert(key, v).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(tag: u8) -> TaskState {
        TaskState {
            parts: vec![("source".into(), vec![tag; 3]), ("op0".into(), vec![tag, 9])],
            chunks: ChunkWriter::default(),
        }
    }

    fn manifest() -> Manifest {
        Manifest::decode(&Manifest::of(&crate::plan::StreamPlan { stages: Vec::new() }).encode()).unwrap()
    }

    fn chunk_ids(store: &StateStore) -> Vec<ChunkId> {
        store.chunks.iter().keys().map(|k| u128::from_be_bytes(k.unwrap().as_ref().try_into().unwrap())).collect()
    }

    #[tokio::test]
    async fn complete_checkpoints_read_back_and_damaged_ones_fall_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        assert!(store.restore().unwrap().checkpoint.is_none());
        for id in 1..=2 {
            store.put(id, "s0-0", &state(id as u8)).unwrap();
            store.put(id, "s1-0", &state(10 + id as u8)).unwrap();
            store.complete(id, 2, &manifest()).await.unwrap();
        }
        // Checkpoint 3 never completes: it is never restored.
        store.put(3, "s0-0", &state(3)).unwrap();
        let cp = store.restore().unwrap().checkpoint.unwrap();
        assert_eq!(cp.id, 2);
        assert_eq!(cp.part("s1-0", "op0"), Some(&[12u8, 9][..]));
        store.corrupt(2, "s1-0");
        let recovery = store.restore().unwrap();
        let cp = recovery.checkpoint.unwrap();
        assert_eq!(cp.id, 1, "a damaged checkpoint falls back to the previous one");
        assert_eq!(recovery.damaged, vec![2]);
        assert_eq!(cp.part("s0-0", "source"), Some(&[1u8, 1, 1][..]));
        // Resuming from 1 drops the damaged 2 and the stale states of 3: a
        // new checkpoint 2 of other tasks is then whole.
        store.truncate_after(1).unwrap();
        store.put(2, "s9-0", &state(42)).unwrap();
        store.complete(2, 1, &manifest()).await.unwrap();
        let recovery = store.restore().unwrap();
        assert!(recovery.damaged.is_empty());
        assert_eq!(recovery.checkpoint.unwrap().part("s9-0", "op0"), Some(&[42u8, 9][..]));
    }

    #[tokio::test]
    async fn old_checkpoints_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        for id in 1..=6 {
            store.put(id, "t", &state(id as u8)).unwrap();
            store.complete(id, 1, &manifest()).await.unwrap();
        }
        assert_eq!(store.complete_ids().unwrap(), vec![4, 5, 6]);
        assert!(store.read(3).is_err());
        assert_eq!(store.read(4).unwrap().id, 4);
    }

    /// A chunk is written once, read back by every checkpoint that
    /// references it, deleted when no retained checkpoint does; a missing
    /// chunk makes its checkpoint damaged.
    #[tokio::test]
    async fn chunks_live_as_long_as_a_retained_checkpoint_references_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        let (old, new) = (crate::checkpoint::chunk::new_chunk_id(), crate::checkpoint::chunk::new_chunk_id());
        let mut first = state(1);
        first.chunks.write(old, b"old slice".to_vec());
        store.put(1, "t", &first).unwrap();
        store.complete(1, 1, &manifest()).await.unwrap();
        // Checkpoints 2 and 3 reference `old` without writing it again.
        for id in 2..=3 {
            let mut s = state(id as u8);
            s.chunks.reference(old);
            if id == 3 {
                s.chunks.write(new, b"new slice".to_vec());
            }
            store.put(id, "t", &s).unwrap();
            store.complete(id, 1, &manifest()).await.unwrap();
        }
        let cp = store.read(2).unwrap();
        assert_eq!(cp.chunks.get(old).unwrap(), b"old slice");
        assert_eq!(cp.tasks["t"].chunks.refs, vec![old]);
        assert_eq!(store.read(3).unwrap().chunks.get(new).unwrap(), b"new slice");
        // Once no retained checkpoint (4, 5, 6) references `old`, it goes.
        for id in 4..=6 {
            let mut s = state(id as u8);
            s.chunks.reference(new);
            store.put(id, "t", &s).unwrap();
            store.complete(id, 1, &manifest()).await.unwrap();
        }
        assert_eq!(chunk_ids(&store), vec![new]);
        store.chunks.remove(new.to_be_bytes()).unwrap();
        let recovery = store.restore().unwrap();
        assert_eq!(recovery.damaged, vec![6, 5, 4], "every checkpoint that lost its chunk is damaged");
        assert!(recovery.checkpoint.is_none());
    }

    /// A savepoint carries the chunks its checkpoint references.
    #[tokio::test]
    async fn an_export_copies_the_referenced_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(&dir.path().join("job")).unwrap();
        let id = crate::checkpoint::chunk::new_chunk_id();
        let mut s = state(7);
        s.chunks.write(id, vec![1, 2, 3]);
        store.put(1, "t", &s).unwrap();
        store.complete(1, 1, &manifest()).await.unwrap();
        store.export(1, &dir.path().join("savepoint")).await.unwrap();
        let saved = StateStore::open(&dir.path().join("savepoint")).unwrap();
        let cp = saved.restore().unwrap().checkpoint.unwrap();
        assert_eq!(cp.chunks.get(id).unwrap(), &[1, 2, 3]);
        assert_eq!(cp.part("t", "op0"), Some(&[7u8, 9][..]));
    }

    /// A checkpoint of state format 1 (its completion record the task
    /// count alone) reads back without a manifest, for the restore to
    /// refuse; the manifest of a newer one reads back as written.
    #[tokio::test]
    async fn completion_records_carry_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        store.put(1, "t", &state(1)).unwrap();
        store.complete(1, 1, &manifest()).await.unwrap();
        assert_eq!(store.read(1).unwrap().manifest, Some(manifest()));
        store.put(2, "t", &state(2)).unwrap();
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
}
