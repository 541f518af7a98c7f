//! The window aggregate under a state budget (the spilling backend): what
//! it fires equals what the same operator fires with its state in memory,
//! for every kind of window, through checkpoints taken while state is
//! spilled and restores at another parallelism; and the memory it holds
//! after each batch stays within its share.

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::{Int64Type, TimestampMillisecondType};

use super::tests::{count_per_key, keyed};
use super::*;
use crate::checkpoint::chunk::ChunkMap;
use crate::metrics::JobMetrics;
use crate::operator::Emitted;
use crate::runtime::exchange::subtask_of_key_group;
use crate::spill::StateBackend;
use crate::window::spec::WindowKind;

/// Bytes of state each subtask may hold: about a third of a window.
const BUDGET: u64 = 64 << 10;

fn operator(kind: WindowKind, backend: &StateBackend, subtask: usize) -> WindowAggregate {
    let plan = WindowAggregatePlan { window: WindowSpec::new(kind, 0).unwrap(), aggregation: count_per_key() };
    let metrics = JobMetrics::default().register("w", subtask);
    WindowAggregate::new(Arc::new(plan), "w".into(), metrics, backend.share("w", subtask))
}

/// (window start, window end, key, count) of everything emitted, sorted:
/// the output of [`count_per_key`] over windows or sessions.
pub(crate) fn fired(out: &Collector) -> Vec<(i64, i64, i64, i64)> {
    let mut v = Vec::new();
    for e in &out.out {
        if let Emitted::Data(b) = e {
            let start = b.data.column(0).as_primitive::<TimestampMillisecondType>();
            let end = b.data.column(1).as_primitive::<TimestampMillisecondType>();
            let k = b.data.column(2).as_primitive::<Int64Type>();
            let c = b.data.column(3).as_primitive::<Int64Type>();
            v.extend((0..b.num_rows()).map(|i| (start.value(i), end.value(i), k.value(i), c.value(i))));
        }
    }
    v.sort();
    v
}

/// Batches of (ts, key) over 20 s, 4 000 keys, each followed by the
/// watermark its rows allow (1 s behind the latest).
fn input() -> Vec<(Vec<i64>, Vec<i64>, i64)> {
    let mut seed = 7u64;
    let mut next = move |n: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    (0..40)
        .map(|b| {
            let (ts, keys): (Vec<i64>, Vec<i64>) =
                (0..1000).map(|_| (b * 500 + next(1000) as i64, next(4000) as i64)).unzip();
            (ts, keys, b * 500 - 1000)
        })
        .collect()
}

fn kinds() -> [WindowKind; 3] {
    [
        WindowKind::Tumble { size: 2000 },
        WindowKind::Hop { slide: 1000, size: 3000 },
        WindowKind::Cumulate { step: 1000, max_size: 4000 },
    ]
}

/// Runs every batch and the final watermark through `op`, checking after
/// each batch that a budgeted one holds no more than its share.
fn run(op: &mut WindowAggregate, batches: &[(Vec<i64>, Vec<i64>, i64)], out: &mut Collector) -> usize {
    let mut most_spilled = 0;
    for (ts, keys, wm) in batches {
        op.on_batch(keyed(ts, keys), out).unwrap();
        let size = op.state_size();
        if op.budget.is_some() {
            assert!(size.bytes as u64 <= BUDGET, "{} bytes held over a {BUDGET}-byte budget", size.bytes);
        }
        most_spilled = most_spilled.max(size.spilled);
        op.on_watermark(*wm, out).unwrap();
    }
    op.on_watermark(i64::MAX / 4, out).unwrap();
    most_spilled
}

#[test]
fn windows_over_their_budget_spill_and_fire_what_memory_fires() {
    let dir = tempfile::tempdir().unwrap();
    for kind in kinds() {
        let batches = input();
        let memory = StateBackend::memory();
        let mut expected = Collector::default();
        run(&mut operator(kind, &memory, 0), &batches, &mut expected);

        let spilling = StateBackend::spilling(BUDGET, &dir.path().join("spill")).unwrap();
        let mut got = Collector::default();
        let spilled = run(&mut operator(kind, &spilling, 0), &batches, &mut got);
        assert!(spilled > 0, "{kind:?}: nothing was spilled");
        assert!(!fired(&expected).is_empty());
        assert_eq!(fired(&got), fired(&expected), "{kind:?}");
    }
}

/// Checkpoints taken while state is spilled (asynchronously, as the
/// runtime takes them, and one abandoned) restore, at parallelism 3 and
/// with or without a budget, into operators that fire what the
/// uninterrupted run fires.
#[test]
fn checkpoints_of_spilled_state_restore_at_another_parallelism() {
    let dir = tempfile::tempdir().unwrap();
    for kind in kinds() {
        let batches = input();
        let (before, after) = batches.split_at(23);
        let memory = StateBackend::memory();
        let mut whole = Collector::default();
        run(&mut operator(kind, &memory, 0), &batches, &mut whole);

        let spilling = StateBackend::spilling(BUDGET, &dir.path().join("spill")).unwrap();
        let mut op = operator(kind, &spilling, 0);
        let mut got = Collector::default();
        let mut stored = ChunkMap::default();
        let mut state = Vec::new();
        let mut in_flight = None;
        for (i, (ts, keys, wm)) in before.iter().enumerate() {
            op.on_batch(keyed(ts, keys), &mut got).unwrap();
            // The snapshot of the previous barrier is written while rows
            // arrive (and state spills) after it.
            if let Some((checkpoint, job)) = in_flight.take() {
                let job: crate::checkpoint::snapshot::SnapshotJob = job;
                let written = job().unwrap();
                if checkpoint != 9 {
                    stored.extend(written.chunks.new.iter().cloned()).unwrap();
                    assert!(
                        written.chunks.refs.iter().all(|id| stored.contains(*id)),
                        "a chunk was never written"
                    );
                    state = written.state.unwrap();
                    op.checkpoint_complete(checkpoint);
                }
            }
            op.on_watermark(*wm, &mut got).unwrap();
            if i % 5 == 4 {
                in_flight = Some((i as u64, op.snapshot_async(i as u64).unwrap()));
            }
        }
        assert!(op.state_size().spilled > 0, "{kind:?}: nothing was spilled");
        // What fired before the last completed checkpoint (batch 19), and
        // what the restored subtasks fire after it.
        let mut upto = Collector::default();
        let mut replay = operator(kind, &memory, 0);
        for (ts, keys, wm) in &before[..20] {
            replay.on_batch(keyed(ts, keys), &mut upto).unwrap();
            replay.on_watermark(*wm, &mut upto).unwrap();
        }
        for budgeted in [false, true] {
            let backend = if budgeted {
                StateBackend::spilling(BUDGET, &dir.path().join("restore")).unwrap()
            } else {
                StateBackend::memory()
            };
            let mut restored = fired(&upto);
            let mut hashes = Vec::new();
            let mut subtasks: Vec<WindowAggregate> = (0..3).map(|s| operator(kind, &backend, s)).collect();
            for (s, r) in subtasks.iter_mut().enumerate() {
                r.restore(&[&state], &stored, &|g| subtask_of_key_group(g, 3) == s).unwrap();
            }
            for (ts, keys, wm) in before[20..].iter().chain(after) {
                let batch = keyed(ts, keys);
                let groups =
                    crate::runtime::exchange::key_groups(&[Arc::clone(batch.data.column(1))], ts.len(), &mut hashes)
                        .unwrap();
                for (s, r) in subtasks.iter_mut().enumerate() {
                    let mine: Vec<usize> = (0..ts.len()).filter(|i| subtask_of_key_group(groups[*i], 3) == s).collect();
                    let t: Vec<i64> = mine.iter().map(|i| ts[*i]).collect();
                    let k: Vec<i64> = mine.iter().map(|i| keys[*i]).collect();
                    let mut out = Collector::default();
                    r.on_batch(keyed(&t, &k), &mut out).unwrap();
                    r.on_watermark(*wm, &mut out).unwrap();
                    restored.extend(fired(&out));
                }
            }
            for r in &mut subtasks {
                let mut out = Collector::default();
                r.on_watermark(i64::MAX / 4, &mut out).unwrap();
                restored.extend(fired(&out));
            }
            restored.sort();
            assert_eq!(restored, fired(&whole), "{kind:?}, restored with a budget: {budgeted}");
        }
    }
}

/// Spill files are removed once nothing holds them: a fired window's, and
/// all of them when the job's backend goes.
#[test]
fn spill_files_go_with_the_state_they_hold() {
    let dir = tempfile::tempdir().unwrap();
    let files = |d: &std::path::Path| walk(d).len();
    let spill = dir.path().join("spill");
    let backend = StateBackend::spilling(BUDGET, &spill).unwrap();
    let mut op = operator(WindowKind::Tumble { size: 2000 }, &backend, 0);
    let mut out = Collector::default();
    for (ts, keys, _) in input().iter().take(3) {
        op.on_batch(keyed(ts, keys), &mut out).unwrap();
    }
    assert!(files(&spill) > 0, "nothing spilled");
    op.on_watermark(i64::MAX / 4, &mut out).unwrap();
    assert_eq!(files(&spill), 0, "the fired windows' files remain");
    drop(op);
    drop(backend);
    assert!(!spill.exists(), "the job's spill directory remains");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
