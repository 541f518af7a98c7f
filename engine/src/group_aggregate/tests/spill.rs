//! The group aggregation under a state budget (the spilling backend): each
//! batch's changes equal those of the same operator with its state in
//! memory (a spilled group's change is a `-U`/`+U` of the result it had),
//! the memory it holds after each batch stays within its share, and
//! checkpoints taken while groups are spilled restore at another
//! parallelism to DataFusion's batch result.

use super::oracle::{
    Change, Table, apply_rows, batch_query, changelog_input, changes, net, plan, route, subtask, text_rows,
};
use super::*;
use crate::checkpoint::chunk::ChunkMap;
use crate::spill::StateBackend;

/// Bytes of state the subtask may hold: a few hundred of the test's groups.
const BUDGET: u64 = 128 << 10;

fn budgeted(plan: &Arc<GroupAggregatePlan>, backend: &StateBackend, subtask: usize) -> GroupAggregate {
    let metrics = crate::metrics::JobMetrics::default().register("g", subtask);
    GroupAggregate::new(Arc::clone(plan), "g".into(), metrics, backend.share("g", subtask)).unwrap()
}

/// The test's plan (over a changelog or appends) and a spilling backend
/// of [`BUDGET`] in a temporary directory (its `spill`).
fn spilling_backend(retracting: bool) -> (Arc<GroupAggregatePlan>, tempfile::TempDir, Arc<StateBackend>) {
    let dir = tempfile::tempdir().unwrap();
    let backend = StateBackend::spilling(BUDGET, &dir.path().join("spill")).unwrap();
    (plan(retracting), dir, backend)
}

/// Everything emitted, in order: kind, key and results.
fn emitted(out: &Collector) -> Vec<String> {
    let mut v = Vec::new();
    for e in &out.out {
        let Emitted::Data(b) = e else { continue };
        let (rows, kinds) = changelog::split(&b.data);
        let kinds = kinds.unwrap();
        let columns = rows.columns();
        for (r, (k, row)) in text_rows(&columns[0], &columns[1..], rows.num_rows()).enumerate() {
            v.push(format!("{:?} {k} {row:?}", kinds.get(r)));
        }
    }
    v
}

/// Runs `batch` through the memory operator and the budgeted one,
/// checking that both emit the same changes and that the budgeted one
/// holds no more than its share; the changes go to `table`.
fn both(memory: &mut GroupAggregate, spilling: &mut GroupAggregate, batch: &[Change], table: &mut Table) {
    let (mut want, mut got) = (Collector::default(), Collector::default());
    memory.on_batch(changes(batch), &mut want).unwrap();
    spilling.on_batch(changes(batch), &mut got).unwrap();
    assert_eq!(emitted(&got), emitted(&want));
    let held = spilling.state_size().bytes as u64;
    assert!(held <= BUDGET, "{held} bytes held over a {BUDGET}-byte budget");
    assert_eq!(spilling.state_size().keys, memory.state_size().keys, "groups in memory and on disk");
    apply_rows(got, table);
}

/// COUNT, SUM, AVG, MIN and MAX over a changelog whose retractions revisit
/// groups spilled long before: every batch's changes equal the in-memory
/// operator's, and the result is DataFusion's batch aggregation.
#[tokio::test(flavor = "multi_thread")]
async fn spilled_groups_come_back_as_if_they_never_left() {
    let (plan, dir, backend) = spilling_backend(true);
    let (mut memory, mut spilling) = (subtask(&plan), budgeted(&plan, &backend, 0));
    let input = changelog_input(80, 20_000, 5);
    let mut table = Table::new();
    let mut most_spilled = 0;
    for batch in &input {
        both(&mut memory, &mut spilling, batch, &mut table);
        most_spilled = most_spilled.max(spilling.state_size().spilled);
    }
    assert!(most_spilled > BUDGET as usize, "groups were spilled: {most_spilled} bytes");
    assert!(spilling.spilled_reads() > 0, "spilled groups were read back");
    assert_eq!(table, batch_query(&net(&input.concat())).await);
    drop(spilling);
    drop(backend);
    assert!(!dir.path().join("spill").exists(), "spill files go with the job");
}

/// Keys that only grow (Nexmark's auction ids) never read a spilled run:
/// each is above every run's largest key.
#[tokio::test(flavor = "multi_thread")]
async fn growing_keys_never_read_spilled_groups() {
    let (plan, _dir, backend) = spilling_backend(false);
    let (mut memory, mut spilling) = (subtask(&plan), budgeted(&plan, &backend, 0));
    let input: Vec<Vec<Change>> =
        (0..60).map(|b| (0..200).map(|i| (b * 100 + i / 2, i, changelog::RowKind::Insert)).collect()).collect();
    let mut table = Table::new();
    for batch in &input {
        both(&mut memory, &mut spilling, batch, &mut table);
    }
    assert!(spilling.state_size().spilled > 0);
    assert_eq!(spilling.spilled_reads(), 0);
    assert_eq!(table, batch_query(&net(&input.concat())).await);
}

/// Checkpoint `id` of `op` taken as the task does (`snapshot_async`, run
/// off the loop); its chunks go to `store`. Completed unless `abandon`.
fn checkpoint(op: &mut GroupAggregate, id: u64, store: &mut ChunkMap, abandon: bool) -> Vec<u8> {
    let job = op.snapshot_async(id).unwrap();
    let out = job().unwrap();
    if !abandon {
        store.extend(out.chunks.new).unwrap();
        op.checkpoint_complete(id);
    }
    out.state.unwrap()
}

/// A budgeted subtask checkpoints every 8 batches while groups are
/// spilled (one checkpoint abandoned, its runs sent again by the next)
/// and is killed; its last checkpoint, which lists runs with rows loaded
/// back, restores at parallelism 3, with and without a budget, and goes on
/// to DataFusion's batch result.
#[tokio::test(flavor = "multi_thread")]
async fn checkpoints_of_spilled_groups_restore_at_another_parallelism() {
    let (plan, dir, backend) = spilling_backend(true);
    let mut op = budgeted(&plan, &backend, 0);
    let input = changelog_input(70, 20_000, 9);
    let mut store = ChunkMap::default();
    let mut table = Table::new();
    let (mut state, mut committed) = (Vec::new(), Table::new());
    for (b, batch) in input[..60].iter().enumerate() {
        let mut out = Collector::default();
        op.on_batch(changes(batch), &mut out).unwrap();
        apply_rows(out, &mut table);
        if b % 8 == 7 {
            let id = b as u64 / 8 + 1;
            let abandon = id == 4;
            let taken = checkpoint(&mut op, id, &mut store, abandon);
            if !abandon {
                (state, committed) = (taken, table.clone());
            }
        }
    }
    let listed = read_key_groups("g", &state).unwrap();
    assert!(
        listed.iter().any(|(_, s)| matches!(s, KeyGroupState::Chunk { live, .. } if !live.is_empty())),
        "the checkpoint lists runs some of whose groups were loaded back"
    );
    assert!(op.state_size().spilled > 0);
    drop(op);
    let chunks = store;
    let want = batch_query(&net(&input.concat())).await;
    for budget in [true, false] {
        let after_backend = StateBackend::spilling(BUDGET / 3, &dir.path().join(format!("after-{budget}"))).unwrap();
        let mut after: Vec<GroupAggregate> = (0..3)
            .map(|i| {
                let mut op = if budget { budgeted(&plan, &after_backend, i) } else { subtask(&plan) };
                op.restore(&[&state], &chunks, &|g| subtask_of_key_group(g, 3) == i).unwrap();
                op
            })
            .collect();
        let mut table = committed.clone();
        for batch in &input[56..] {
            route(&mut after, batch, &mut table);
        }
        assert_eq!(table, want, "restored with a budget: {budget}");
        if budget {
            assert!(after.iter().any(|op| op.state_size().spilled > 0), "restored groups spilled again");
        }
    }
    // Damaged state: a run's live rows listed with a byte too few is
    // refused, naming the operator, rather than restoring the wrong groups.
    let mut damaged = Encoder::default();
    damaged.u64(u64::MAX - 1);
    damaged.u64(listed.len() as u64);
    for (kg, s) in &listed {
        let KeyGroupState::Chunk { id, live } = s else { unreachable!("the chunked layout") };
        damaged.u64(*kg as u64);
        damaged.bytes(&id.to_le_bytes());
        damaged.bytes(if live.is_empty() { live } else { &live[1..] });
    }
    let err = subtask(&plan).restore(&[&damaged.bytes], &chunks, &|_| true).unwrap_err().to_string();
    assert!(err.contains("g: a run of") && err.contains("bytes of live rows"), "{err}");
}

/// A spill file that is gone fails the batch that needs it with an error
/// naming the file, not a panic.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_spill_file_is_an_error() {
    let (plan, dir, backend) = spilling_backend(false);
    let mut op = budgeted(&plan, &backend, 0);
    let rows: Vec<Change> = (0..20_000).map(|k| (k, 1, changelog::RowKind::Insert)).collect();
    for part in rows.chunks(500) {
        op.on_batch(changes(part), &mut Collector::default()).unwrap();
    }
    assert!(op.state_size().spilled > 0);
    for entry in walk(&dir.path().join("spill")) {
        std::fs::remove_file(entry).unwrap();
    }
    let err = op.on_batch(changes(&[(0, 1, changelog::RowKind::Insert)]), &mut Collector::default()).unwrap_err();
    assert!(err.to_string().contains("reading spilled state"), "{err}");
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files
}
