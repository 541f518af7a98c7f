//! Top-N and deduplication under a state budget (the spilling backend):
//! each batch's changes equal those of the same operator with its state
//! in memory (a spilled partition's change withdraws the rows it had), the
//! memory it holds after each batch stays within its share, and
//! checkpoints taken while partitions are spilled restore at another
//! parallelism and go on to the oracle's ranks.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, Int64Array, RecordBatch, TimestampMillisecondArray};
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::{Int64Type, UInt64Type};
use datafusion::physical_expr::PhysicalSortExpr;
use datafusion::physical_expr::expressions::Column;

use super::tests::plan;
use super::{Rank, RankMode, RankPlan};
use crate::changelog::{self, RowKind};
use crate::checkpoint::chunk::ChunkMap;
use crate::checkpoint::snapshot::SnapshotJob;
use crate::message::StreamBatch;
use crate::metrics::JobMetrics;
use crate::operator::{Collector, Emitted, Operator};
use crate::runtime::exchange::{key_groups, subtask_of_key_group};
use crate::spill::StateBackend;
use crate::testing::{data_batches, kvt_schema, sorted_lines};

/// Bytes of state a subtask may hold: a few hundred of the test's
/// partitions beside the tables a batch of new ones grows.
const BUDGET: u64 = 256 << 10;

/// Partition keys: most rows of a batch make a new partition or meet a
/// spilled one.
const KEYS: i64 = 12_000;

/// A row `(k, v, ts)` and whether it is inserted or withdrawn.
type Change = (i64, i64, i64, RowKind);

/// `(k, rank)` → the value ranked there, as a sink applying the changes
/// holds it.
type Table = BTreeMap<(i64, u64), i64>;

fn rank(plan: &Arc<RankPlan>, backend: Option<&StateBackend>, subtask: usize) -> Rank {
    let metrics = JobMetrics::default().register("rank", subtask);
    Rank::new(Arc::clone(plan), "rank".into(), metrics, backend.and_then(|b| b.share("rank", subtask))).unwrap()
}

/// Top-3 by `v` descending per `k`, over appends or a changelog.
fn top3(retracting: bool) -> Arc<RankPlan> {
    let mut plan = plan(RankMode::Updating { changelog: true });
    plan.retracting = retracting;
    Arc::new(plan)
}

/// Keep-last deduplication per `k` by `ts` (Nexmark q18's shape): the
/// latest row wins, a tie by arrival too.
fn keep_last() -> Arc<RankPlan> {
    let mut plan = plan(RankMode::Updating { changelog: true });
    plan.order = vec![PhysicalSortExpr {
        expr: Arc::new(Column::new("ts", 2)),
        options: SortOptions { descending: true, nulls_first: false },
    }];
    plan.last = 1;
    plan.later_wins_ties = true;
    plan.number = false;
    Arc::new(plan)
}

/// Keep-first deduplication per `k` by event time (`ORDER BY ts` rising,
/// rn = 1): a key's earliest row leaves once the watermark passes it.
fn keep_first() -> Arc<RankPlan> {
    let mut plan = plan(RankMode::FirstByEventTime { time_column: 2 });
    plan.order = vec![PhysicalSortExpr {
        expr: Arc::new(Column::new("ts", 2)),
        options: SortOptions { descending: false, nulls_first: false },
    }];
    plan.last = 1;
    plan.number = false;
    Arc::new(plan)
}

/// `batches` batches of 300 rows over [`KEYS`] keys, values unique and in no
/// order, times increasing; with `retractions`, each batch also withdraws
/// 40 rows sent earlier (their partitions mostly spilled by then).
fn input(batches: i64, retractions: bool) -> Vec<Vec<Change>> {
    let mut sent: Vec<(i64, i64, i64)> = Vec::new();
    let mut out = Vec::new();
    for b in 0..batches {
        let mut batch: Vec<Change> = (0..300)
            .map(|i| {
                let n = b * 300 + i;
                ((n * 104_729) % KEYS, (n * 7919) % 1_000_003, n, RowKind::Insert)
            })
            .collect();
        if retractions && b > 0 {
            for j in 0..40 {
                let at = ((b * 40 + j) * 6007) as usize % sent.len();
                let (k, v, ts) = sent.swap_remove(at);
                batch.push((k, v, ts, RowKind::Delete));
            }
        }
        sent.extend(batch.iter().filter(|c| c.3 == RowKind::Insert).map(|c| (c.0, c.1, c.2)));
        out.push(batch);
    }
    out
}

fn stream_batch(rows: &[Change]) -> StreamBatch {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
        Arc::new(TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.2))),
    ];
    let plain = RecordBatch::try_new(kvt_schema(), columns).unwrap();
    // Appends alone are a plain batch, as a keep-first ranking takes them.
    if rows.iter().all(|r| r.3 == RowKind::Insert) {
        return StreamBatch::new(plain);
    }
    StreamBatch::new(changelog::with_kinds(&plain, rows.iter().map(|r| r.3 as i8).collect()).unwrap())
}

/// Feeds `batch` to `op`, then the watermark at its latest time (which
/// releases keep-first rows; an updating ranking forwards it).
fn feed(op: &mut Rank, batch: &[Change], out: &mut Collector) {
    op.on_batch(stream_batch(batch), out).unwrap();
    let latest = batch.iter().map(|c| c.2).max().unwrap_or(i64::MIN);
    op.on_watermark(latest, out).unwrap();
}

/// Applies emitted changes to `table`, checking that each `-U`/`-D`
/// withdraws the rank's current row.
fn apply(out: &Collector, table: &mut Table) {
    for e in &out.out {
        let Emitted::Data(b) = e else { continue };
        let (rows, kinds) = changelog::split(&b.data);
        let k = rows.column(0).as_primitive::<Int64Type>();
        let v = rows.column(1).as_primitive::<Int64Type>();
        let rank = rows.column(3).as_primitive::<UInt64Type>();
        for r in 0..rows.num_rows() {
            let key = (k.value(r), rank.value(r));
            match kinds.as_ref().map_or(RowKind::Insert, |k| k.get(r)) {
                RowKind::Insert | RowKind::UpdateAfter => assert!(table.insert(key, v.value(r)).is_none(), "{key:?}"),
                RowKind::UpdateBefore | RowKind::Delete => assert_eq!(table.remove(&key), Some(v.value(r))),
            }
        }
    }
}

/// The oracle: per key, the rows left after every change, best first by
/// `order` (a row's value and time), as many as `ranks`.
fn oracle(input: &[Vec<Change>], ranks: usize, order: impl Fn(&(i64, i64)) -> i64) -> Table {
    let mut held: BTreeMap<i64, Vec<(i64, i64)>> = BTreeMap::new();
    for (k, v, ts, kind) in input.iter().flatten() {
        let rows = held.entry(*k).or_default();
        match kind {
            RowKind::Insert | RowKind::UpdateAfter => rows.push((*v, *ts)),
            _ => rows.retain(|r| *r != (*v, *ts)),
        }
    }
    let mut table = Table::new();
    for (k, mut rows) in held {
        rows.sort_by_key(|r| std::cmp::Reverse(order(r)));
        for (i, (v, _)) in rows.into_iter().take(ranks).enumerate() {
            table.insert((k, i as u64 + 1), v);
        }
    }
    table
}

/// Runs every batch through the in-memory operator and the budgeted one:
/// both emit the same changes, the budgeted one holds no more than its
/// share and counts the same partitions. Returns the sink's table.
fn side_by_side(plan: &Arc<RankPlan>, input: &[Vec<Change>]) -> Table {
    let dir = tempfile::tempdir().unwrap();
    let backend = StateBackend::spilling(BUDGET, &dir.path().join("spill")).unwrap();
    let (mut memory, mut spilling) = (rank(plan, None, 0), rank(plan, Some(&backend), 0));
    let mut table = Table::new();
    let mut most_spilled = 0;
    for batch in input {
        let (mut want, mut got) = (Collector::default(), Collector::default());
        feed(&mut memory, batch, &mut want);
        feed(&mut spilling, batch, &mut got);
        apply(&got, &mut table);
        assert_eq!(sorted_lines(&data_batches(got)), sorted_lines(&data_batches(want)));
        let held = spilling.state_size().bytes as u64;
        assert!(
            held <= BUDGET,
            "{held} bytes held over a {BUDGET}-byte budget: {:?} of partitions and tables, {} partitions",
            spilling.resident_bytes(),
            spilling.index.len()
        );
        assert_eq!(spilling.state_size().keys, memory.state_size().keys, "partitions in memory and on disk");
        most_spilled = most_spilled.max(spilling.state_size().spilled);
    }
    assert!(most_spilled > 0, "partitions were spilled");
    assert!(spilling.spilled_reads() > 0, "spilled partitions were read back");
    drop(spilling);
    drop(backend);
    assert!(!dir.path().join("spill").exists(), "spill files go with the job");
    table
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spilled_top_n_ranks_as_in_memory() {
    let input = input(80, false);
    assert_eq!(side_by_side(&top3(false), &input), oracle(&input, 3, |r| r.0));
}

/// Over a changelog every row of a partition is kept (the next one moves
/// up when one is withdrawn), and the withdrawals meet spilled partitions.
#[tokio::test(flavor = "multi_thread")]
async fn a_spilled_top_n_over_a_changelog_ranks_as_in_memory() {
    let input = input(60, true);
    assert_eq!(side_by_side(&top3(true), &input), oracle(&input, 3, |r| r.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spilled_deduplication_keeps_the_last_row_as_in_memory() {
    let input = input(80, false);
    assert_eq!(side_by_side(&keep_last(), &input), oracle(&input, 1, |r| r.1));
}

/// Keys whose first row has left spill as key and time; a later row of
/// such a key loads it back and is a duplicate, never a second first row.
#[tokio::test(flavor = "multi_thread")]
async fn a_spilled_keep_first_deduplication_emits_each_key_once() {
    let input = input(80, false);
    assert_eq!(side_by_side(&keep_first(), &input), oracle(&input, 1, |r| -r.1));
}

/// Completes the snapshot `job` of checkpoint `id` of `op` (taken at its
/// barrier, run later, as off the task loop); its chunks go to `store`.
/// Completed unless `abandon`.
fn complete(op: &mut Rank, id: u64, job: SnapshotJob, store: &mut ChunkMap, abandon: bool) -> Vec<u8> {
    let out = job().unwrap();
    if !abandon {
        store.extend(out.chunks.new).unwrap();
        op.checkpoint_complete(id);
    }
    out.state.unwrap()
}

/// Routes a batch to the subtasks that own its keys' key groups, as the
/// exchange does, applying what they emit.
fn route(ops: &mut [Rank], batch: &[Change], table: &mut Table) {
    let keys: Vec<ArrayRef> = vec![Arc::new(Int64Array::from_iter_values(batch.iter().map(|r| r.0)))];
    let groups = key_groups(&keys, batch.len(), &mut Vec::new()).unwrap();
    let n = ops.len();
    for (s, op) in ops.iter_mut().enumerate() {
        let mine: Vec<Change> =
            batch.iter().zip(&groups).filter(|(_, g)| subtask_of_key_group(**g, n) == s).map(|(c, _)| *c).collect();
        let mut out = Collector::default();
        feed(op, &mine, &mut out);
        apply(&out, table);
    }
}

/// A budgeted Top-N over a changelog checkpoints while partitions are
/// spilled and restores at another parallelism (see [`restored_goes_on`]).
#[tokio::test(flavor = "multi_thread")]
async fn checkpoints_of_spilled_partitions_restore_at_another_parallelism() {
    let input = input(70, true);
    restored_goes_on(&top3(true), &input, &oracle(&input, 3, |r| r.0));
}

/// Keep-first by event time: its spilled keys, restored, still make later
/// rows of theirs duplicates.
#[tokio::test(flavor = "multi_thread")]
async fn checkpoints_of_spilled_first_rows_restore_at_another_parallelism() {
    let input = input(70, false);
    restored_goes_on(&keep_first(), &input, &oracle(&input, 1, |r| -r.1));
}

/// A budgeted ranking checkpoints every 8 batches while partitions are
/// spilled (one checkpoint abandoned, its runs sent again by the next),
/// each snapshot's job run only after the next batch changed the state,
/// and is killed; its last checkpoint restores at parallelism 3, with and
/// without a budget, and goes on to `want`. State written without a
/// budget (the in-memory layout) restores under one too.
fn restored_goes_on(plan: &Arc<RankPlan>, input: &[Vec<Change>], want: &Table) {
    let dir = tempfile::tempdir().unwrap();
    for budget_before in [true, false] {
        let backend = StateBackend::spilling(BUDGET, &dir.path().join(format!("before-{budget_before}"))).unwrap();
        let mut op = rank(plan, budget_before.then_some(&*backend), 0);
        let mut store = ChunkMap::default();
        let (mut table, mut committed) = (Table::new(), Table::new());
        let (mut state, mut resume) = (Vec::new(), 0);
        let mut in_flight: Option<(u64, SnapshotJob, Table, usize)> = None;
        for (b, batch) in input[..60].iter().enumerate() {
            let mut out = Collector::default();
            feed(&mut op, batch, &mut out);
            apply(&out, &mut table);
            if let Some((id, job, at_barrier, next)) = in_flight.take() {
                let abandon = id == 4;
                let taken = complete(&mut op, id, job, &mut store, abandon);
                if !abandon {
                    (state, committed, resume) = (taken, at_barrier, next);
                }
            }
            if b % 8 == 7 {
                let id = b as u64 / 8 + 1;
                in_flight = Some((id, op.snapshot_async(id).unwrap(), table.clone(), b + 1));
            }
        }
        assert_eq!(op.state_size().spilled > 0, budget_before);
        drop(op);
        for budget_after in [true, false] {
            let name = format!("after-{budget_before}-{budget_after}");
            let after_backend = StateBackend::spilling(BUDGET / 3, &dir.path().join(name)).unwrap();
            let mut after: Vec<Rank> = (0..3)
                .map(|i| {
                    let mut op = rank(plan, budget_after.then_some(&*after_backend), i);
                    op.restore(&[&state], &store, &|g| subtask_of_key_group(g, 3) == i).unwrap();
                    op
                })
                .collect();
            let mut table = committed.clone();
            for batch in &input[resume..] {
                route(&mut after, batch, &mut table);
            }
            assert_eq!(&table, want, "budget before: {budget_before}, after: {budget_after}");
            if budget_after {
                assert!(after.iter().any(|op| op.state_size().spilled > 0), "restored partitions spilled again");
            }
        }
    }
}

/// A checkpoint listing a chunk of a key group past the last is damaged
/// state: refused, naming the operator.
#[tokio::test(flavor = "multi_thread")]
async fn a_chunk_of_an_unknown_key_group_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let backend = StateBackend::spilling(BUDGET, &dir.path().join("spill")).unwrap();
    let plan = top3(false);
    let mut op = rank(&plan, Some(&backend), 0);
    op.on_batch(stream_batch(&input(1, false)[0]), &mut Collector::default()).unwrap();
    let mut store = ChunkMap::default();
    let job = op.snapshot_async(1).unwrap();
    let mut state = complete(&mut op, 1, job, &mut store, false);
    // The state ends with the chunk list: its last entry's key group is 8
    // bytes before its id (16 bytes and a length) and bitmap (a length).
    let at = state.len() - 8 - (8 + 16) - 8;
    state[at..at + 8].copy_from_slice(&999u64.to_le_bytes());
    let err = rank(&plan, None, 0).restore(&[&state], &store, &|_| true).unwrap_err().to_string();
    assert!(err.contains("rank: ranked rows name key group 999"), "{err}");
}
