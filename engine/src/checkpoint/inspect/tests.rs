//! Inspection of a sled store written here, in the layout the window
//! aggregate writes; the sizes are compared with the bytes put.

use super::*;
use crate::checkpoint::chunk::{ChunkId, ChunkWriter};
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
    let part = |id: &str, signature: &str| StatefulPart { id: StateId::parse(id), signature: signature.into() };
    Manifest {
        weir_version: "test".into(),
        format: crate::checkpoint::identity::STATE_FORMAT_VERSION,
        key_hash: crate::runtime::key_hash::KEY_HASH_VERSION,
        plan_fingerprint: "0".into(),
        parts: vec![part("Source#0", "table t"), part("WindowAggregate#0", "tumble"), part("GroupAggregate#0", "g")],
        job: Some("j".into()),
    }
}

/// Two tasks' window state over key groups {3, 7} and {7, 9}: the part's
/// bytes are its state plus every chunk, each key group its own chunks.
#[tokio::test]
async fn sizes_by_part_and_key_group() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sp");
    let store = std::sync::Arc::new(StateStore::open(&path).unwrap());
    let chunk = |len: usize| (crate::checkpoint::chunk::new_chunk_id(), vec![7u8; len]);
    let (a, b, c, d) = (chunk(10), chunk(20), chunk(40), chunk(80));
    let mut tasks = Vec::new();
    for (task, chunks) in [("0/0", [(3, &a), (7, &b)]), ("0/1", [(7, &c), (9, &d)])] {
        let state = window_state(&chunks.iter().map(|(g, (id, _))| (*g, *id)).collect::<Vec<_>>());
        let mut writer = ChunkWriter::default();
        for (_, (id, bytes)) in chunks {
            writer.write(*id, bytes.clone());
        }
        let parts = vec![("Source#0".to_string(), vec![1u8; 5]), ("WindowAggregate#0".to_string(), state.clone())];
        store.put(4, task, TaskState { parts, chunks: writer }).await.unwrap();
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
    assert_eq!((row("WindowAggregate#0", Some(3)).bytes, row("WindowAggregate#0", Some(3)).tasks), (10, 1));
    assert_eq!((row("WindowAggregate#0", Some(7)).bytes, row("WindowAggregate#0", Some(7)).tasks), (60, 2));
    assert_eq!(row("WindowAggregate#0", Some(9)).bytes, 80);
    let groups: Vec<_> = rows.iter().filter_map(|r| r.key_group).collect();
    assert_eq!(groups, [3, 7, 9]);
    assert_eq!((row("Source#0", None).bytes, row("Source#0", None).tasks), (10, 2));
    // Named by the manifest, held by no task.
    assert_eq!((row("GroupAggregate#0", None).bytes, row("GroupAggregate#0", None).tasks), (0, 0));
    // The store was let go: it opens again.
    StateStore::open(&path).unwrap();
}

/// A group aggregate's state as `group_aggregate/chunks.rs` lays it out:
/// chunked (two tasks, key groups {2, 5} and {8}), and inline in the
/// layout before chunks, whose key groups' bytes are part of the state.
#[tokio::test]
async fn group_aggregate_sizes_by_key_group() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(StateStore::open(dir.path()).unwrap());
    let chunk = |len: usize| (crate::checkpoint::chunk::new_chunk_id(), vec![3u8; len]);
    let (a, b, c) = (chunk(11), chunk(22), chunk(44));
    let mut states = Vec::new();
    for (task, chunks) in [("0/0", vec![(2u64, &a), (5, &b)]), ("0/1", vec![(8, &c)])] {
        let mut e = Encoder::default();
        e.u64(u64::MAX);
        e.u64(chunks.len() as u64);
        let mut writer = ChunkWriter::default();
        for (group, (id, bytes)) in chunks {
            e.u64(group);
            e.bytes(&id.to_le_bytes());
            writer.write(*id, bytes.clone());
        }
        states.push(e.bytes.len() as u64);
        let parts = vec![("GroupAggregate#0".to_string(), e.bytes)];
        store.put(2, task, TaskState { parts, chunks: writer }).await.unwrap();
    }
    // The inline layout: a count of key groups, then each one's batch.
    let mut inline = Encoder::default();
    inline.u64(1);
    inline.u64(6);
    inline.bytes(&[9u8; 30]);
    let inline = inline.bytes;
    let inline_len = inline.len() as u64;
    let parts = vec![("GroupAggregate#0".to_string(), inline)];
    store.put(2, "0/2", TaskState { parts, chunks: ChunkWriter::default() }).await.unwrap();
    store.complete(2, 3, &manifest()).await.unwrap();
    drop(store);

    let cp = read_latest(dir.path().to_str().unwrap()).unwrap();
    let rows = part_sizes(&cp).unwrap();
    let row = |group: Option<usize>| rows.iter().find(|r| r.state_id == "GroupAggregate#0" && r.key_group == group);
    let whole = row(None).unwrap();
    assert_eq!((whole.bytes, whole.tasks), (states.iter().sum::<u64>() + 11 + 22 + 44 + inline_len, 3));
    let sizes = [2, 5, 6, 8].map(|g| row(Some(g)).map(|r| (r.bytes, r.tasks)));
    assert_eq!(sizes, [Some((11, 1)), Some((22, 1)), Some((30, 1)), Some((44, 1))]);
    assert_eq!(rows.iter().filter(|r| r.state_id == "GroupAggregate#0").count(), 5);
}

/// A group aggregate's state naming a key group past the last is an error
/// naming the part.
#[tokio::test]
async fn damaged_group_state_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(StateStore::open(dir.path()).unwrap());
    let mut e = Encoder::default();
    e.u64(1);
    e.u64(1 << 40);
    e.bytes(&[0u8; 4]);
    let parts = vec![("GroupAggregate#0".to_string(), e.bytes)];
    store.put(1, "0/0", TaskState { parts, chunks: ChunkWriter::default() }).await.unwrap();
    store.complete(1, 1, &manifest()).await.unwrap();
    drop(store);
    let cp = read_latest(dir.path().to_str().unwrap()).unwrap();
    let err = part_sizes(&cp).unwrap_err().to_string();
    assert!(err.contains("GroupAggregate#0") && err.contains("key group 1099511627776"), "{err}");
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
    let store = std::sync::Arc::new(StateStore::open(dir.path()).unwrap());
    let mut state = window_state(&[(1, 42)]);
    state.truncate(state.len() - 3);
    let parts = vec![("WindowAggregate#0".to_string(), state)];
    store.put(1, "0/0", TaskState { parts, chunks: ChunkWriter::default() }).await.unwrap();
    store.complete(1, 1, &manifest()).await.unwrap();
    drop(store);
    let cp = read_latest(dir.path().to_str().unwrap()).unwrap();
    let err = part_sizes(&cp).unwrap_err().to_string();
    assert!(err.contains("WindowAggregate#0"), "{err}");
}

/// `count(v), sum(v) GROUP BY k` in a tumbling window, as the window
/// aggregate plans it.
fn count_and_sum() -> crate::window::groups::Grouping {
    use crate::window::groups::{AggregateCall, Grouping};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::functions_aggregate::{count::count_udaf, sum::sum_udaf};
    use datafusion::physical_expr::aggregate::AggregateExprBuilder;
    use datafusion::physical_expr::expressions::Column;
    let input = std::sync::Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, true),
        Field::new("v", DataType::Int64, true),
    ]));
    let k: std::sync::Arc<dyn datafusion::physical_plan::PhysicalExpr> = std::sync::Arc::new(Column::new("k", 0));
    let v: std::sync::Arc<dyn datafusion::physical_plan::PhysicalExpr> = std::sync::Arc::new(Column::new("v", 1));
    let call = |f, alias: &str| AggregateCall {
        function: std::sync::Arc::new(
            AggregateExprBuilder::new(f, vec![std::sync::Arc::clone(&v)])
                .schema(std::sync::Arc::clone(&input))
                .alias(alias)
                .build()
                .unwrap(),
        ),
        filter: None,
    };
    Grouping::new(
        vec![k],
        vec![Field::new("k", DataType::Int64, true)],
        vec![call(count_udaf(), "c"), call(sum_udaf(), "s")],
    )
}

fn lookup(name: &str) -> Option<std::sync::Arc<datafusion::logical_expr::AggregateUDF>> {
    use datafusion::functions_aggregate::{count::count_udaf, sum::sum_udaf};
    [count_udaf(), sum_udaf()].into_iter().find(|f| f.name() == name)
}

/// Window state written as the operator writes it — partial states of two
/// batches split by key group into chunks of one slice, over two tasks —
/// read as rows: one per key with the count and sum of its rows (the
/// chunks of a key merged) and its key group; a bad id and another kind
/// are refused by name.
#[tokio::test]
async fn window_state_as_rows() {
    use crate::window::groups::EvaluatedInput;
    use datafusion::arrow::array::{Array, AsArray, Int64Array};
    use datafusion::arrow::datatypes::{Int64Type, UInt64Type};
    let grouping = count_and_sum();
    let batches: [Vec<(i64, i64)>; 2] =
        [(0..50).map(|i| (i % 7, i)).collect(), (0..30).map(|i| (i % 11, 100 + i)).collect()];
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(StateStore::open(dir.path()).unwrap());
    let mut hashes = Vec::new();
    for (task, rows) in ["0/0", "0/1"].iter().zip(&batches) {
        let keys: datafusion::arrow::array::ArrayRef =
            std::sync::Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0)));
        let values: datafusion::arrow::array::ArrayRef =
            std::sync::Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1)));
        let input = EvaluatedInput {
            keys: vec![keys],
            args: vec![vec![values.clone()], vec![values]],
            filters: vec![None, None],
        };
        let mut groups = grouping.new_groups().unwrap();
        groups.update(&input, rows.len()).unwrap();
        let mut refs = Vec::new();
        let mut writer = ChunkWriter::default();
        for (group, partial) in groups.take_state().unwrap().split_by_key_group(&mut hashes).unwrap() {
            let id = crate::checkpoint::chunk::new_chunk_id();
            let mut bytes = Encoder::default();
            partial.encode(&mut bytes).unwrap();
            writer.write(id, bytes.bytes);
            refs.push((group as u64, id));
        }
        let parts = vec![("WindowAggregate#0".to_string(), window_state(&refs)), ("Source#0".to_string(), vec![1])];
        store.put(2, task, TaskState { parts, chunks: writer }).await.unwrap();
    }
    let mut m = manifest();
    m.parts[1].signature = format!("TUMBLE(size 2 s); {}", grouping.state_signature());
    store.complete(2, 2, &m).await.unwrap();
    // Read through the store written (reopening races sled's release of
    // its lock; `read_latest` is tested above).
    let cp = store.restore().unwrap().checkpoint.unwrap();

    // The oracle: each key's count and sum, and its key group.
    let mut expected = BTreeMap::<i64, (u64, i64, i64)>::new();
    for (k, v) in batches.iter().flatten() {
        let e = expected.entry(*k).or_default();
        e.1 += 1;
        e.2 += v;
    }
    for (k, e) in expected.iter_mut() {
        let key: datafusion::arrow::array::ArrayRef = std::sync::Arc::new(Int64Array::from(vec![*k]));
        e.0 = crate::runtime::exchange::key_groups(&[key], 1, &mut hashes).unwrap()[0] as u64;
    }

    let batch = state_rows(&cp, "WindowAggregate#0", &lookup).unwrap();
    let schema = batch.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["key_group", "slice_start", "first_window_end", "k", "count_0", "sum_1"]);
    let col = |i: usize| batch.column(i).clone();
    let (groups, keys, counts, sums) = (col(0), col(3), col(4), col(5));
    let mut got = BTreeMap::new();
    for r in 0..batch.num_rows() {
        let row = (
            groups.as_primitive::<UInt64Type>().value(r),
            counts.as_primitive::<Int64Type>().value(r) as u64,
            sums.as_primitive::<Int64Type>().value(r),
        );
        assert!(got.insert(keys.as_primitive::<Int64Type>().value(r), row).is_none(), "one row per key");
        assert!(!keys.is_null(r));
    }
    let expected: BTreeMap<i64, (u64, u64, i64)> =
        expected.into_iter().map(|(k, (g, c, s))| (k, (g, c as u64, s))).collect();
    assert_eq!(got, expected);

    let err = state_rows(&cp, "WindowAggregate#9", &lookup).unwrap_err().to_string();
    assert!(err.contains("WindowAggregate#9") && err.contains("WindowAggregate#0"), "{err}");
    let err = state_rows(&cp, "Source#0", &lookup).unwrap_err().to_string();
    assert!(err.contains("Source#0") && err.contains("WindowAggregate and GroupAggregate"), "{err}");
}
