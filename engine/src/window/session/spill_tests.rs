//! The session aggregate under a state budget: it fires exactly what the
//! in-memory operator fires, its buffered rows in memory stay within its
//! share after every batch, and a checkpoint taken while rows are spilled
//! restores into an operator that goes on as the uninterrupted one.

use super::*;
use crate::checkpoint::chunk::{ChunkMap, ChunkWriter};
use crate::metrics::JobMetrics;
use crate::spill::StateBackend;
use crate::window::aggregate::spill_tests::fired;
use crate::window::aggregate::tests::{count_per_key, keyed, keyed_schema};

const BUDGET: u64 = 32 << 10;

fn operator(backend: &StateBackend) -> SessionAggregate {
    let plan =
        SessionAggregatePlan { gap: 300, aggregation: count_per_key(), input_schema: keyed_schema(), emit_rows: None };
    let metrics = JobMetrics::default().register("s", 0);
    SessionAggregate::new(Arc::new(plan), "s".into(), metrics, backend.share("s", 0)).unwrap()
}

/// Batches of (ts, key) over 2 000 keys, rows 0–9 ms apart, each followed
/// by a watermark 20 s behind (so that many sessions wait to close).
fn input() -> Vec<(Vec<i64>, Vec<i64>, i64)> {
    let mut seed = 11u64;
    let mut next = move |n: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let mut ts = 0;
    (0..60)
        .map(|_| {
            let (times, keys): (Vec<i64>, Vec<i64>) = (0..500)
                .map(|_| {
                    ts += next(10) as i64;
                    (ts, next(2_000) as i64)
                })
                .unzip();
            (times, keys, ts - 20_000)
        })
        .collect()
}

fn feed(op: &mut SessionAggregate, batches: &[(Vec<i64>, Vec<i64>, i64)], out: &mut Collector) -> usize {
    let mut most_spilled = 0;
    for (ts, keys, wm) in batches {
        op.on_batch(keyed(ts, keys), out).unwrap();
        if op.budget.is_some() {
            // Each row's key id, time and live flag stay in memory.
            let fixed: usize = op.buffer.iter().map(|b| b.keys.len() * 4 + b.times.len() * 8 + b.live.len()).sum();
            let buffered: usize = op.buffer.iter().map(Buffered::memory).sum();
            assert!(
                buffered as u64 <= BUDGET.max(fixed as u64),
                "{buffered} bytes buffered over a {BUDGET}-byte budget"
            );
        }
        most_spilled = most_spilled.max(op.state_size().spilled);
        op.on_watermark(*wm, out).unwrap();
    }
    most_spilled
}

#[test]
fn sessions_over_their_budget_spill_and_fire_what_memory_fires() {
    let dir = tempfile::tempdir().unwrap();
    let batches = input();
    let mut whole = operator(&StateBackend::memory());
    let mut expected = Collector::default();
    feed(&mut whole, &batches, &mut expected);
    whole.on_watermark(i64::MAX / 4, &mut expected).unwrap();
    assert!(!fired(&expected).is_empty());

    let spilling = StateBackend::spilling(BUDGET, &dir.path().join("spill")).unwrap();
    let (before, after) = batches.split_at(40);
    let mut op = operator(&spilling);
    let mut got = Collector::default();
    assert!(feed(&mut op, before, &mut got) > 0, "nothing was spilled");
    // A checkpoint of spilled rows, restored into an operator without a
    // budget and one with, each going on to the end. The snapshot is
    // written after the operator went on (firing sessions, purging and
    // spilling rows): none of that may reach it.
    let job = op.snapshot_async(1).unwrap();
    let before_checkpoint = fired(&got);
    feed(&mut op, &after[..10], &mut got);
    let state = job().unwrap().state.unwrap();
    assert_eq!(state, operator_state_at(&dir, before), "the snapshot changed after its barrier");
    for backend in [StateBackend::memory(), StateBackend::spilling(BUDGET, &dir.path().join("restored")).unwrap()] {
        let mut restored = operator(&backend);
        restored.restore(&[&state], &ChunkMap::default(), &|_| true).unwrap();
        let mut out = Collector::default();
        feed(&mut restored, after, &mut out);
        restored.on_watermark(i64::MAX / 4, &mut out).unwrap();
        let mut all = before_checkpoint.clone();
        all.extend(fired(&out));
        all.sort();
        assert_eq!(all, fired(&expected));
    }
    feed(&mut op, &after[10..], &mut got);
    op.on_watermark(i64::MAX / 4, &mut got).unwrap();
    assert_eq!(fired(&got), fired(&expected));
}

/// The state of an operator with the test's budget fed `batches`, taken at
/// once on the task loop.
fn operator_state_at(dir: &tempfile::TempDir, batches: &[(Vec<i64>, Vec<i64>, i64)]) -> Vec<u8> {
    let backend = StateBackend::spilling(BUDGET, &dir.path().join("twin")).unwrap();
    let mut op = operator(&backend);
    feed(&mut op, batches, &mut Collector::default());
    op.snapshot(1, &mut ChunkWriter::default()).unwrap().unwrap()
}
