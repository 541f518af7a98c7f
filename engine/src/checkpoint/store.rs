//! Where checkpoints are written: one sled database per job under
//! `state.dir`. A checkpoint is the state of every task, then a completion
//! record naming how many task states it has; only a completed, intact
//! checkpoint is ever restored.

use std::collections::BTreeMap;
use std::path::Path;

use crate::checkpoint::codec::{Decoder, Encoder};
use crate::error::{EngineError, Result};

/// Complete checkpoints kept; older ones are deleted.
const RETAINED: usize = 3;

/// The state one task wrote for one checkpoint: named parts (the source's
/// positions, each operator, the sink's prepared output).
pub type TaskState = Vec<(String, Vec<u8>)>;

/// A checkpoint read back: the state of every task, by task key.
#[derive(Debug, Default, Clone)]
pub struct Checkpoint {
    pub id: u64,
    pub tasks: BTreeMap<String, TaskState>,
}

impl Checkpoint {
    /// A named part of a task's state.
    pub fn part(&self, task: &str, name: &str) -> Option<&[u8]> {
        self.tasks
            .get(task)?
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
    complete: sled::Tree,
}

fn err(context: &str) -> impl FnOnce(sled::Error) -> EngineError + '_ {
    move |e| EngineError::State(format!("{context}: {e}"))
}

fn state_key(checkpoint: u64, task: &str) -> Vec<u8> {
    format!("{checkpoint:020}/{task}").into_bytes()
}

impl StateStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        let db = sled::open(dir).map_err(|e| EngineError::State(format!("cannot open state in {}: {e}", dir.display())))?;
        let states = db.open_tree("states").map_err(err("opening state"))?;
        let complete = db.open_tree("complete").map_err(err("opening state"))?;
        Ok(Self { db, states, complete })
    }

    /// Records one task's state for `checkpoint`, with a checksum.
    pub fn put(&self, checkpoint: u64, task: &str, state: &TaskState) -> Result<()> {
        let mut e = Encoder::default();
        e.u64(state.len() as u64);
        for (name, bytes) in state {
            e.bytes(name.as_bytes());
            e.bytes(bytes);
        }
        let mut value = crc32fast::hash(&e.bytes).to_le_bytes().to_vec();
        value.extend_from_slice(&e.bytes);
        self.states.insert(state_key(checkpoint, task), value).map_err(err("writing state"))?;
        Ok(())
    }

    /// Marks `checkpoint` complete once its `tasks` states are durable, and
    /// deletes checkpoints no longer needed.
    pub async fn complete(&self, checkpoint: u64, tasks: usize) -> Result<()> {
        self.db.flush_async().await.map_err(err("flushing state"))?;
        self.complete
            .insert(format!("{checkpoint:020}"), &(tasks as u64).to_le_bytes())
            .map_err(err("completing a checkpoint"))?;
        self.db.flush_async().await.map_err(err("flushing state"))?;
        self.prune(checkpoint)
    }

    fn prune(&self, latest: u64) -> Result<()> {
        let ids = self.complete_ids()?;
        let keep_from = ids.iter().rev().nth(RETAINED - 1).copied().unwrap_or(0);
        for id in ids.iter().filter(|id| **id < keep_from) {
            self.complete.remove(format!("{id:020}")).map_err(err("pruning state"))?;
        }
        // States of older checkpoints, complete or abandoned.
        let cutoff = format!("{:020}/", keep_from.min(latest));
        for key in self.states.range(..cutoff.as_bytes()).keys() {
            let key = key.map_err(err("pruning state"))?;
            self.states.remove(key).map_err(err("pruning state"))?;
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
        let mut damaged = Vec::new();
        for id in self.complete_ids()?.into_iter().rev() {
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
        for key in self.states.range(from.as_bytes()..).keys() {
            self.states.remove(key.map_err(err("truncating state"))?).map_err(err("truncating state"))?;
        }
        self.db.flush().map_err(err("flushing state"))?;
        Ok(())
    }

    /// Complete checkpoint `id`, checked like [`Self::restore`]'s.
    pub fn read(&self, id: u64) -> Result<Checkpoint> {
        let expected = self
            .complete
            .get(format!("{id:020}"))
            .map_err(err("reading state"))?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(u64::from_le_bytes)
            .ok_or_else(|| EngineError::State(format!("checkpoint {id} has no valid completion record")))?;
        let prefix = format!("{id:020}/");
        let mut tasks = BTreeMap::new();
        for entry in self.states.scan_prefix(prefix.as_bytes()) {
            let (key, value) = entry.map_err(err("reading state"))?;
            let task = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
            if value.len() < 4 {
                return Err(EngineError::State(format!("checkpoint {id}: state of {task} is truncated")));
            }
            let (sum, body) = value.split_at(4);
            if crc32fast::hash(body).to_le_bytes() != sum {
                return Err(EngineError::State(format!("checkpoint {id}: state of {task} fails its checksum")));
            }
            let mut d = Decoder::new(body);
            let n = d.u64()?;
            let mut state = Vec::new();
            for _ in 0..n {
                let name = String::from_utf8_lossy(d.bytes()?).into_owned();
                state.push((name, d.bytes()?.to_vec()));
            }
            d.finish()?;
            tasks.insert(task, state);
        }
        if tasks.len() as u64 != expected {
            return Err(EngineError::State(format!(
                "checkpoint {id} has {} task states, its completion record says {expected}",
                tasks.len()
            )));
        }
        Ok(Checkpoint { id, tasks })
    }

    /// Copies complete checkpoint `id` into a new store in `dir`: a
    /// savepoint, which outlives the job and can start another.
    pub async fn export(&self, id: u64, dir: &Path) -> Result<()> {
        let cp = self.read(id)?;
        let target = StateStore::open(dir)?;
        for (task, state) in &cp.tasks {
            target.put(id, task, state)?;
        }
        target.complete(id, cp.tasks.len()).await
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
        vec![("source".into(), vec![tag; 3]), ("op0".into(), vec![tag, 9])]
    }

    #[tokio::test]
    async fn complete_checkpoints_read_back_and_damaged_ones_fall_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        assert!(store.restore().unwrap().checkpoint.is_none());
        for id in 1..=2 {
            store.put(id, "s0-0", &state(id as u8)).unwrap();
            store.put(id, "s1-0", &state(10 + id as u8)).unwrap();
            store.complete(id, 2).await.unwrap();
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
        store.complete(2, 1).await.unwrap();
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
            store.complete(id, 1).await.unwrap();
        }
        assert_eq!(store.complete_ids().unwrap(), vec![4, 5, 6]);
        assert!(store.read(3).is_err());
        assert_eq!(store.read(4).unwrap().id, 4);
    }
}
