//! The store's contract, checked against every backend: sled, and object
//! storage over a local directory and over memory.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;

use super::object::ObjectStateStore;
use super::*;
use crate::checkpoint::chunk::{ChunkId, new_chunk_id};

#[derive(Debug, Clone, Copy)]
enum Backend {
    Sled,
    LocalObjects,
    MemoryObjects,
}

const BACKENDS: [Backend; 3] = [Backend::Sled, Backend::LocalObjects, Backend::MemoryObjects];

const DEADLINE: Duration = Duration::from_secs(30);

fn open(backend: Backend, dir: &Path) -> Arc<StateStore> {
    Arc::new(match backend {
        Backend::Sled => StateStore::open(dir).unwrap(),
        Backend::LocalObjects => StateStore::open_at(&file_url(dir), DEADLINE).unwrap(),
        Backend::MemoryObjects => StateStore::Object(ObjectStateStore::with_store(
            Arc::new(InMemory::new()),
            ObjectPath::from("ckpt/job"),
            url::Url::parse("memory:///ckpt/job").unwrap(),
            DEADLINE,
        )),
    })
}

fn file_url(dir: &Path) -> Location {
    Location::Url(url::Url::from_directory_path(dir).unwrap())
}

/// Hooks into each backend's storage, for damage the tests inflict.
impl StateStore {
    async fn corrupt(&self, checkpoint: u64, task: &str) {
        match self {
            Self::Sled(s) => s.test_corrupt(checkpoint, task),
            Self::Object(s) => s.test_corrupt(checkpoint, task).await,
        }
    }

    async fn chunk_ids(&self) -> Vec<ChunkId> {
        match self {
            Self::Sled(s) => s.test_chunk_ids(),
            Self::Object(s) => s.test_chunk_ids().await,
        }
    }

    async fn remove_chunk(&self, id: ChunkId) {
        match self {
            Self::Sled(s) => s.test_remove_chunk(id),
            Self::Object(s) => s.test_remove_chunk(id).await,
        }
    }

    async fn complete_ids(&self) -> Vec<u64> {
        match self {
            Self::Sled(s) => s.test_complete_ids(),
            Self::Object(s) => s.test_complete_ids().await,
        }
    }
}

/// A task's state of two small parts, tagged to tell checkpoints apart.
pub(super) fn state(tag: u8) -> TaskState {
    TaskState {
        parts: vec![("source".into(), vec![tag; 3]), ("op0".into(), vec![tag, 9])],
        chunks: ChunkWriter::default(),
    }
}

/// The manifest of an empty plan, as a checkpoint records it.
pub(super) fn manifest() -> Manifest {
    Manifest::decode(&Manifest::of(&crate::plan::StreamPlan::new(Vec::new())).encode()).unwrap()
}

#[tokio::test]
async fn complete_checkpoints_read_back_and_damaged_ones_fall_back() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let store = open(backend, dir.path());
        assert!(store.restore().unwrap().checkpoint.is_none());
        for id in 1..=2 {
            store.put(id, "s0-0", state(id as u8)).await.unwrap();
            store.put(id, "s1-0", state(10 + id as u8)).await.unwrap();
            store.complete(id, 2, &manifest()).await.unwrap();
        }
        // Checkpoint 3 never completes: it is never restored.
        store.put(3, "s0-0", state(3)).await.unwrap();
        let cp = store.restore().unwrap().checkpoint.unwrap();
        assert_eq!(cp.id, 2, "{backend:?}");
        assert_eq!(cp.part("s1-0", "op0"), Some(&[12u8, 9][..]));
        store.corrupt(2, "s1-0").await;
        let recovery = store.restore().unwrap();
        let cp = recovery.checkpoint.unwrap();
        assert_eq!(cp.id, 1, "{backend:?}: a damaged checkpoint falls back to the previous one");
        assert_eq!(recovery.damaged, vec![2]);
        assert_eq!(cp.part("s0-0", "source"), Some(&[1u8, 1, 1][..]));
        // Resuming from 1 drops the damaged 2 and the stale states of 3: a
        // new checkpoint 2 of other tasks is then whole.
        store.truncate_after(1).unwrap();
        store.put(2, "s9-0", state(42)).await.unwrap();
        store.complete(2, 1, &manifest()).await.unwrap();
        let recovery = store.restore().unwrap();
        assert!(recovery.damaged.is_empty(), "{backend:?}");
        assert_eq!(recovery.checkpoint.unwrap().part("s9-0", "op0"), Some(&[42u8, 9][..]));
        assert_eq!(store.latest_id().unwrap(), Some(2));
    }
}

#[tokio::test]
async fn old_checkpoints_are_pruned() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let store = open(backend, dir.path());
        for id in 1..=6 {
            store.put(id, "t", state(id as u8)).await.unwrap();
            store.complete(id, 1, &manifest()).await.unwrap();
        }
        assert_eq!(store.complete_ids().await, vec![4, 5, 6], "{backend:?}");
        assert!(store.read(3).is_err());
        assert_eq!(store.read(4).unwrap().id, 4);
    }
}

/// A chunk is written once, read back by every checkpoint that
/// references it, deleted when no retained checkpoint does (also by the
/// store opened again); a missing
/// chunk makes its checkpoint damaged.
#[tokio::test]
async fn chunks_live_as_long_as_a_retained_checkpoint_references_them() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let store = open(backend, dir.path());
        let (old, new) = (new_chunk_id(), new_chunk_id());
        let mut first = state(1);
        first.chunks.write(old, b"old slice".to_vec());
        store.put(1, "t", first.clone()).await.unwrap();
        store.complete(1, 1, &manifest()).await.unwrap();
        // Checkpoints 2 and 3 reference `old` without writing it again.
        for id in 2..=3 {
            let mut s = state(id as u8);
            s.chunks.reference(old);
            if id == 3 {
                s.chunks.write(new, b"new slice".to_vec());
            }
            store.put(id, "t", s.clone()).await.unwrap();
            store.complete(id, 1, &manifest()).await.unwrap();
        }
        let cp = store.read(2).unwrap();
        assert_eq!(&*cp.chunks.get(old).unwrap(), b"old slice");
        assert_eq!(cp.tasks["t"].chunks.refs, vec![old]);
        assert_eq!(&*store.read(3).unwrap().chunks.get(new).unwrap(), b"new slice");
        // Opened again, the store still knows which chunks it holds (a
        // store in memory is gone once dropped).
        let store = match backend {
            Backend::MemoryObjects => store,
            _ => {
                drop(store);
                open(backend, dir.path())
            }
        };
        // Once no retained checkpoint (4, 5, 6) references `old`, it goes.
        for id in 4..=6 {
            let mut s = state(id as u8);
            s.chunks.reference(new);
            store.put(id, "t", s.clone()).await.unwrap();
            store.complete(id, 1, &manifest()).await.unwrap();
        }
        assert_eq!(store.chunk_ids().await, vec![new], "{backend:?}");
        store.remove_chunk(new).await;
        let recovery = store.restore().unwrap();
        assert_eq!(recovery.damaged, vec![6, 5, 4], "{backend:?}: every checkpoint that lost its chunk is damaged");
        assert!(recovery.checkpoint.is_none());
    }
}

/// Chunks a task's writer puts for a checkpoint not complete yet survive
/// the clean-up after an older one completes; those of a checkpoint never
/// completed are collected once it is older than the retained ones.
#[tokio::test]
async fn chunks_written_for_a_checkpoint_in_flight_survive_a_clean_up() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let store = open(backend, dir.path());
        let (kept, orphan) = (new_chunk_id(), new_chunk_id());
        store.put(1, "t", state(1)).await.unwrap();
        // The writer of checkpoint 2 puts its chunk before checkpoint 1
        // completes (and cleans up).
        let written = store.put_chunks(2, "t", &[kept], vec![(kept, b"kept".to_vec().into())]).await.unwrap();
        assert_eq!(written, 4);
        store.complete(1, 1, &manifest()).await.unwrap();
        assert_eq!(store.chunk_ids().await, vec![kept], "{backend:?}");
        let mut second = state(2);
        second.chunks.reference(kept);
        store.put(2, "t", second.clone()).await.unwrap();
        store.complete(2, 1, &manifest()).await.unwrap();
        assert_eq!(&*store.read(2).unwrap().chunks.get(kept).unwrap(), b"kept");
        // Checkpoint 3's writer puts a chunk, and 3 is abandoned.
        store.put_chunks(3, "t", &[orphan], vec![(orphan, b"orphan".to_vec().into())]).await.unwrap();
        for id in 4..=6 {
            let mut s = state(id as u8);
            s.chunks.reference(kept);
            store.put(id, "t", s.clone()).await.unwrap();
            store.complete(id, 1, &manifest()).await.unwrap();
        }
        assert_eq!(store.chunk_ids().await, vec![kept], "{backend:?}: the abandoned checkpoint's chunk is collected");
    }
}

/// A savepoint carries the chunks its checkpoint references, to a local
/// directory (sled) or to a URL, from either kind of store.
#[tokio::test]
async fn an_export_copies_the_referenced_chunks() {
    for backend in BACKENDS {
        for to_url in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let store = open(backend, &dir.path().join("job"));
            let id = new_chunk_id();
            let mut s = state(7);
            s.chunks.write(id, vec![1, 2, 3]);
            store.put(1, "t", s.clone()).await.unwrap();
            store.complete(1, 1, &manifest()).await.unwrap();
            let target = match to_url {
                false => Location::Local(dir.path().join("savepoint")),
                true => file_url(&dir.path().join("savepoint")),
            };
            store.export(1, &target.to_path_buf()).await.unwrap();
            let saved = StateStore::open_at(&target, DEADLINE).unwrap();
            let cp = saved.restore().unwrap().checkpoint.unwrap();
            assert_eq!(&*cp.chunks.get(id).unwrap(), &[1, 2, 3], "{backend:?} to {target}");
            assert_eq!(cp.part("t", "op0"), Some(&[7u8, 9][..]));
        }
    }
}

/// A checkpoint's manifest is written only if absent: a second writer of
/// the same checkpoint (another run of the job under the same location)
/// fails instead of replacing it.
#[tokio::test]
async fn a_manifest_is_never_overwritten() {
    for backend in [Backend::LocalObjects, Backend::MemoryObjects] {
        let dir = tempfile::tempdir().unwrap();
        let store = open(backend, dir.path());
        store.put(1, "t", state(1)).await.unwrap();
        store.complete(1, 1, &manifest()).await.unwrap();
        store.put(1, "t", state(2)).await.unwrap();
        let e = store.complete(1, 1, &manifest()).await.unwrap_err().to_string();
        assert!(e.contains("already complete"), "{backend:?}: {e}");
        assert_eq!(store.read(1).unwrap().part("t", "op0"), Some(&[2u8, 9][..]), "task states are overwritten");
    }
}
