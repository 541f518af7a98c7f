//! Inspection of a sled store written here, in the layout the window
//! aggregate writes; the sizes are compared with the bytes put.

use super::*;
use crate::checkpoint::chunk::ChunkWriter;
use crate::checkpoint::codec::Encoder;
use crate::checkpoint::identity::{Manifest, StateId, StatefulPart};
use crate::checkpoint::store::TaskState;

/// A window aggregate's state with one slice holding `chunks` (key group,
/// id), as `WindowAggregate::snapshot` lays it out.
fn window_state(chunks: &[(u64, ChunkId)]) -> Vec<u8> {
    let mut e = Encoder::default();
    e.i64(1000);
    e.u64(1);
    e.i64(2000);
    e.u64(0);
    e.u64(1);
    e.i64(0);
    e.i64(2000);
    e.u64(chunks.len() as u64);
    for (group, id) in chunks {
        e.u64(*group);
        e.bytes(&id.to_le_bytes());
    }
    e.bytes
}

fn manifest() -> Manifest {
    let part = |id: &str, signature: &str| StatefulPart {
        id: StateId::parse(id),
        signature: signature.into(),
    };
    Manifest {
        weir_version: "test".into(),
        format: crate::checkpoint::identity::STATE_FORMAT_VERSION,
        key_hash: crate::runtime::key_hash::KEY_HASH_VERSION,
        plan_fingerprint: "0".into(),
        parts: vec![
            part("Source#0", "table t"),
            part("WindowAggregate#0", "tumble"),
            part("GroupAggregate#0", "g"),
        ],
        job: Some("j".into()),
    }
}

/// Two tasks' window state over key groups {3, 7} and {7, 9}: the part's
/// bytes are its state plus every chunk, each key group its own chunks.
#[tokio::test]
async fn sizes_by_part_and_key_group() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sp");
    let store = StateStore::open(&path).unwrap();
    let chunk = |len: usize| (crate::checkpoint::chunk::new_chunk_id(), vec![7u8; len]);
    let (a, b, c, d) = (chunk(10), chunk(20), chunk(40), chunk(80));
    let mut tasks = Vec::new();
    for (task, chunks) in [("0/0", [(3, &a), (7, &b)]), ("0/1", [(7, &c), (9, &d)])] {
        let state = window_state(&chunks.iter().map(|(g, (id, _))| (*g, *id)).collect::<Vec<_>>());
        let mut writer = ChunkWriter::default();
        for (_, (id, bytes)) in chunks {
            writer.write(*id, bytes.clone());
        }
        let parts = vec![
            ("Source#0".to_string(), vec![1u8; 5]),
            ("WindowAggregate#0".to_string(), state.clone()),
        ];
        store.put(4, task, &TaskState { parts, chunks: writer }).unwrap();
        tasks.push(state.len() as u64);
    }
    store.complete(4, 2, &manifest()).await.unwrap();
    drop(store);

    let cp = read_latest(path.to_str().unwrap()).unwrap();
    let rows = part_sizes(&cp).unwrap();
    let row = |id: &str, group: Option<usize>| rows.iter().find(|r| r.state_id == id && r.key_group == group).unwrap();
    let window = row("WindowAggregate#0", None);
    assert_eq!(window.bytes, tasks.iter().sum::<u64>() + 10 + 20 + 40 + 80);
    assert_eq!((window.tasks, window.checkpoint), (2, 4));
    assert_eq!(window.kind.as_deref(), Some("WindowAggregate"));
    assert_eq!(window.signature.as_deref(), Some("tumble"));
    assert_eq!(
        (
            row("WindowAggregate#0", Some(3)).bytes,
            row("WindowAggregate#0", Some(3)).tasks
        ),
        (10, 1)
    );
    assert_eq!(
        (
            row("WindowAggregate#0", Some(7)).bytes,
            row("WindowAggregate#0", Some(7)).tasks
        ),
        (60, 2)
    );
    assert_eq!(row("WindowAggregate#0", Some(9)).bytes, 80);
    let groups: Vec<_> = rows.iter().filter_map(|r| r.key_group).collect();
    assert_eq!(groups, [3, 7, 9]);
    assert_eq!((row("Source#0", None).bytes, row("Source#0", None).tasks), (10, 2));
    // Named by the manifest, held by no task.
    assert_eq!(
        (row("GroupAggregate#0", None).bytes, row("GroupAggregate#0", None).tasks),
        (0, 0)
    );
    // The store was let go: it opens again.
    StateStore::open(&path).unwrap();
}

/// A path with no state is refused by name and is not created.
#[test]
fn missing_store_is_an_error_and_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nothing");
    let err = read_latest(path.to_str().unwrap()).unwrap_err().to_string();
    assert!(err.contains(path.to_str().unwrap()), "{err}");
    assert!(!path.exists());
}

/// Window state that is cut short is an error naming the part, not a panic.
#[tokio::test]
async fn damaged_window_state_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(dir.path()).unwrap();
    let mut state = window_state(&[(1, 42)]);
    state.truncate(state.len() - 3);
    let parts = vec![("WindowAggregate#0".to_string(), state)];
    store
        .put(
            1,
            "0/0",
            &TaskState {
                parts,
                chunks: ChunkWriter::default(),
            },
        )
        .unwrap();
    store.complete(1, 1, &manifest()).await.unwrap();
    drop(store);
    let cp = read_latest(dir.path().to_str().unwrap()).unwrap();
    let err = part_sizes(&cp).unwrap_err().to_string();
    assert!(err.contains("WindowAggregate#0"), "{err}");
}
