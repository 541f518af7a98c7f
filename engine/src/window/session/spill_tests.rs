//! The session aggregate under a state budget: it fires exactly what the
//! in-memory operator fires, its buffered rows in memory stay within its
//! share after every batch, and a checkpoint taken while rows are spilled
//! restores into an operator that goes on as the uninterrupted one.

use super::*;
use crate::checkpoint::chunk::{ChunkBytes, ChunkMap};
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
            // Only each row's live flag (a bit) and the sessions' bookkeeping must
            // stay in memory: a spilled batch keeps no key ids or times.
            let fixed = op.buffer.iter().map(Buffered::flag_bytes).sum::<usize>() + op.bookkeeping();
            let held = op.buffer.iter().map(Buffered::memory).sum::<usize>() + op.bookkeeping();
            assert!(held as u64 <= BUDGET.max(fixed as u64), "{held} bytes held over a {BUDGET}-byte budget");
            assert!(op.buffer.iter().filter(|b| b.spilled() > 0).all(|b| b.memory() == b.flag_bytes()));
        }
        most_spilled = most_spilled.max(op.state_size().spilled);
        op.on_watermark(*wm, out).unwrap();
    }
    most_spilled
}

/// What the operator without a budget fires for `batches`, to the end of
/// the input, sorted.
fn fired_in_memory(batches: &[(Vec<i64>, Vec<i64>, i64)]) -> Vec<(i64, i64, i64, i64)> {
    let mut whole = operator(&StateBackend::memory());
    let mut out = Collector::default();
    feed(&mut whole, batches, &mut out);
    whole.on_watermark(i64::MAX / 4, &mut out).unwrap();
    fired(&out)
}

/// What an operator of `backend` restored from `state` (with `chunks`)
/// fires for `rest` to the end of the input, after `before` (what the
/// operator fired before the checkpoint), sorted.
fn fired_after_restore(
    backend: &StateBackend,
    state: &[u8],
    chunks: &ChunkMap,
    rest: &[(Vec<i64>, Vec<i64>, i64)],
    before: Vec<(i64, i64, i64, i64)>,
) -> Vec<(i64, i64, i64, i64)> {
    let mut restored = operator(backend);
    restored.restore(&[state], chunks, &|_| true).unwrap();
    let mut out = Collector::default();
    feed(&mut restored, rest, &mut out);
    restored.on_watermark(i64::MAX / 4, &mut out).unwrap();
    let mut all = before;
    all.extend(fired(&out));
    all.sort();
    all
}

#[test]
fn sessions_over_their_budget_spill_and_fire_what_memory_fires() {
    let dir = tempfile::tempdir().unwrap();
    let batches = input();
    let expected = fired_in_memory(&batches);
    assert!(!expected.is_empty());

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
    let taken = job().unwrap();
    let state = taken.state.unwrap();
    let chunks = ChunkMap::of(taken.chunks.new).unwrap();
    assert_eq!(chunks.len(), taken.chunks.refs.len(), "a first checkpoint writes every chunk it lists");
    for backend in [StateBackend::memory(), StateBackend::spilling(BUDGET, &dir.path().join("restored")).unwrap()] {
        assert_eq!(fired_after_restore(&backend, &state, &chunks, after, before_checkpoint.clone()), expected);
    }
    feed(&mut op, &after[10..], &mut got);
    op.on_watermark(i64::MAX / 4, &mut got).unwrap();
    assert_eq!(fired(&got), expected);
}

/// Each buffered batch is a chunk: a checkpoint writes the batches no
/// completed checkpoint stored (a batch first sent with an abandoned one is
/// sent again) and references the others, and a restore from the chunks
/// stored so far goes on as the uninterrupted operator.
#[test]
fn checkpoints_write_only_the_batches_not_stored_yet() {
    let batches = input();
    let mut op = operator(&StateBackend::memory());
    let mut got = Collector::default();
    feed(&mut op, &batches[..20], &mut got);
    let first = op.snapshot_async(1).unwrap()().unwrap();
    assert_eq!(first.chunks.new.len(), first.chunks.refs.len());
    op.checkpoint_complete(1);
    let mut stored = ChunkMap::of(first.chunks.new).unwrap();
    feed(&mut op, &batches[20..21], &mut got);
    let abandoned = op.snapshot_async(2).unwrap()().unwrap();
    feed(&mut op, &batches[21..22], &mut got);
    let third = op.snapshot_async(3).unwrap()().unwrap();
    let written: Vec<_> = third.chunks.new.iter().map(|(id, _)| *id).collect();
    assert!(third.chunks.refs.iter().all(|id| stored.contains(*id) != written.contains(id)));
    assert!(written.len() < third.chunks.refs.len(), "nothing was referenced: {} written", written.len());
    let resent: Vec<_> =
        abandoned.chunks.new.iter().filter(|(id, _)| !stored.contains(*id)).map(|(id, _)| id).collect();
    assert!(!resent.is_empty() && resent.iter().all(|id| written.contains(id)), "the abandoned checkpoint's batches");
    stored.extend(third.chunks.new).unwrap();

    let state = third.state.unwrap();
    let resumed = fired_after_restore(&StateBackend::memory(), &state, &stored, &batches[22..], fired(&got));
    assert_eq!(resumed, fired_in_memory(&batches));
}

/// With the spilling backend a checkpoint compresses the batches it takes
/// from memory, and writes one as large as the store keeps in a file of
/// its own to a spill file (which the store links, so that the batches a
/// checkpoint takes are not all encoded into memory at once); the
/// restored operator goes on as the uninterrupted one.
#[test]
fn large_batches_a_checkpoint_takes_from_memory_go_to_spill_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut batches = input();
    let rest = batches.split_off(40);
    let big = batches.into_iter().fold((Vec::new(), Vec::new(), 0), |(mut ts, mut keys, _), (t, k, wm)| {
        ts.extend(t);
        keys.extend(k);
        (ts, keys, wm)
    });
    let all: Vec<_> = std::iter::once(big.clone()).chain(rest.iter().cloned()).collect();

    let spilling = StateBackend::spilling(1 << 30, &dir.path().join("spill")).unwrap();
    let mut op = operator(&spilling);
    let mut got = Collector::default();
    // Not `feed`, which holds the operator to a 32 KB budget.
    op.on_batch(keyed(&big.0, &big.1), &mut got).unwrap();
    op.on_watermark(big.2, &mut got).unwrap();
    let taken = op.snapshot_async(1).unwrap()().unwrap();
    let files = taken.chunks.new.iter().filter(|(_, c)| matches!(c, ChunkBytes::File(_))).count();
    assert_eq!(files, 1, "the large batch goes to a spill file, nothing else: {} chunks", taken.chunks.new.len());
    let chunks = ChunkMap::of(taken.chunks.new).unwrap();
    let state = taken.state.unwrap();
    let resumed = fired_after_restore(&StateBackend::memory(), &state, &chunks, &rest, fired(&got));
    assert_eq!(resumed, fired_in_memory(&all));
}

/// A batch a checkpoint took from memory and the operator spilled before
/// the checkpoint was written is written from its spill file: a
/// checkpoint in flight does not keep spilled rows in memory. The
/// restored operator goes on as the uninterrupted one.
#[test]
fn a_checkpoint_in_flight_reads_what_spilled_since_its_barrier_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let batches = input();
    let spilling = StateBackend::spilling(1 << 30, &dir.path().join("spill")).unwrap();
    let mut op = operator(&spilling);
    let mut got = Collector::default();
    // Not `feed`, which holds the operator to a 32 KB budget.
    for (ts, keys, wm) in &batches[..30] {
        op.on_batch(keyed(ts, keys), &mut got).unwrap();
        op.on_watermark(*wm, &mut got).unwrap();
    }
    let job = op.snapshot_async(1).unwrap();
    let taken: Vec<_> = op.buffer.iter().filter(|b| b.live_rows > 0).map(|b| b.chunk()).collect();
    assert!(taken.len() > 2 && op.state_size().spilled == 0);
    let SessionAggregate { buffer, budget, .. } = &mut op;
    for b in buffer.iter_mut().filter(|b| taken[..taken.len() / 2].contains(&b.chunk())) {
        b.spill(budget.as_ref().unwrap()).unwrap();
    }
    let written = job().unwrap();
    let files: Vec<_> =
        written.chunks.new.iter().filter(|(_, c)| matches!(c, ChunkBytes::File(_))).map(|(id, _)| *id).collect();
    assert_eq!(files, taken[..taken.len() / 2], "what spilled after the barrier, and only that, is read from disk");
    let chunks = ChunkMap::of(written.chunks.new).unwrap();
    let state = written.state.unwrap();
    let resumed = fired_after_restore(&StateBackend::memory(), &state, &chunks, &batches[30..], fired(&got));
    assert_eq!(resumed, fired_in_memory(&batches));
}
