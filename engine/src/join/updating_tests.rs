//! The updating join against DataFusion's batch join of the two sides'
//! current rows: after every batch of changes, the changelog emitted so
//! far, applied, is that join — for every join type, with NULL keys,
//! duplicate rows, a residual condition, and a restore at another
//! parallelism.

use std::sync::Arc;

use crate::testing::{data_batches, sorted_lines};
use datafusion::arrow::array::{Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::{JoinSide, JoinType};
use datafusion::logical_expr::Operator as BinaryOp;
use datafusion::physical_expr::expressions::{BinaryExpr, Column};
use datafusion::physical_plan::joins::utils::{ColumnIndex, JoinFilter};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::checkpoint::chunk::ChunkMap;
use crate::metrics::JobMetrics;
use crate::runtime::exchange::{key_groups, subtask_of_key_group};

fn side_schema(side: &str) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(format!("{side}k"), DataType::Int64, true),
        Field::new(format!("{side}v"), DataType::Int64, true),
    ]))
}

/// `l.k = r.k`, and with `filtered`, `l.v < r.v`.
fn spec(join_type: JoinType, filtered: bool) -> JoinSpec {
    let (l, r) = (side_schema("l"), side_schema("r"));
    let nullable = |f: &Arc<Field>| f.as_ref().clone().with_nullable(true);
    let output = Arc::new(Schema::new(l.fields().iter().chain(r.fields().iter()).map(nullable).collect::<Vec<_>>()));
    let filter = filtered.then(|| {
        let lt =
            Arc::new(BinaryExpr::new(Arc::new(Column::new("lv", 0)), BinaryOp::Lt, Arc::new(Column::new("rv", 1))));
        JoinFilter::new(
            lt,
            vec![ColumnIndex { index: 1, side: JoinSide::Left }, ColumnIndex { index: 1, side: JoinSide::Right }],
            Arc::new(Schema::new(vec![l.field(1).clone(), r.field(1).clone()])),
        )
    });
    JoinSpec {
        join_type,
        left_schema: l,
        right_schema: r,
        on: vec![(Arc::new(Column::new("lk", 0)), Arc::new(Column::new("rk", 0)))],
        filter,
        output_schema: output,
    }
}

fn join(join_type: JoinType, filtered: bool) -> UpdatingJoin {
    join_with_ttl(join_type, filtered, [None, None])
}

fn join_with_ttl(join_type: JoinType, filtered: bool, ttl: [Option<std::time::Duration>; 2]) -> UpdatingJoin {
    let plan = Arc::new(UpdatingJoinPlan { spec: spec(join_type, filtered), ttl });
    let metrics = JobMetrics::default().register("join", 0);
    UpdatingJoin::new(plan, "join".into(), metrics).unwrap()
}

type Row = (Option<i64>, i64);

/// A changelog batch of `side`'s rows.
fn changes(side: usize, rows: &[(Row, RowKind)]) -> StreamBatch {
    let schema = side_schema(if side == 0 { "l" } else { "r" });
    let k = Int64Array::from_iter(rows.iter().map(|((k, _), _)| *k));
    let v = Int64Array::from_iter_values(rows.iter().map(|((_, v), _)| *v));
    let batch = RecordBatch::try_new(schema, vec![Arc::new(k), Arc::new(v)]).unwrap();
    StreamBatch::new(changelog::with_kinds(&batch, rows.iter().map(|(_, kind)| *kind as i8).collect()).unwrap())
}

fn plain(side: usize, rows: &[Row]) -> RecordBatch {
    let rows: Vec<(Row, RowKind)> = rows.iter().map(|r| (*r, RowKind::Insert)).collect();
    changelog::split(&changes(side, &rows).data).0
}

/// One batch of changes to `side`'s current rows `held`: new rows (a few
/// keys, some NULL), and retractions of held ones as `-D` or `-U`/`+U`.
fn step(g: &mut SmallRng, held: &mut Vec<Row>) -> Vec<(Row, RowKind)> {
    let mut out = Vec::new();
    for _ in 0..g.random_range(1..6) {
        let fresh = (g.random_range(0..6) != 0).then(|| g.random_range(0..3));
        let fresh = (fresh, g.random_range(0..6));
        if held.is_empty() || g.random_bool(0.5) {
            held.push(fresh);
            out.push((fresh, RowKind::Insert));
            continue;
        }
        let old = held.swap_remove(g.random_range(0..held.len()));
        if g.random_bool(0.5) {
            out.push((old, RowKind::Delete));
        } else {
            out.push((old, RowKind::UpdateBefore));
            held.push(fresh);
            out.push((fresh, RowKind::UpdateAfter));
        }
    }
    out
}

/// What the changelog so far leaves, against DataFusion's join of the two
/// sides' current rows.
fn check(emitted: &[RecordBatch], held: &[Vec<Row>; 2], spec: &JoinSpec, what: &str) {
    let got = changelog::materialize(&spec.output_schema, emitted, None).unwrap();
    let want = spec.run(vec![plain(0, &held[0])], vec![plain(1, &held[1])], "test").unwrap();
    assert_eq!(sorted_lines(&[got]), sorted_lines(&want), "{what}");
}

#[test]
fn every_join_type_keeps_its_changelog_equal_to_the_batch_join() {
    for join_type in [JoinType::Inner, JoinType::Left, JoinType::Right, JoinType::Full] {
        for filtered in [false, true] {
            let mut g = SmallRng::seed_from_u64(7);
            let mut op = join(join_type, filtered);
            let mut held: [Vec<Row>; 2] = [Vec::new(), Vec::new()];
            let mut emitted = Vec::new();
            for i in 0..120 {
                let side = g.random_range(0..2);
                let batch = changes(side, &step(&mut g, &mut held[side]));
                let mut out = Collector::default();
                op.on_input(side, batch, &mut out).unwrap();
                emitted.extend(data_batches(out));
                check(&emitted, &held, &op.plan.spec, &format!("{join_type:?} filtered {filtered}, step {i}"));
            }
            assert!(emitted.iter().map(RecordBatch::num_rows).sum::<usize>() > 100);
        }
    }
}

/// A retraction of a row the join never held sends nothing and is counted.
#[test]
fn a_retraction_of_a_row_never_held_is_counted() {
    let mut op = join(JoinType::Left, false);
    let mut out = Collector::default();
    op.on_input(1, changes(1, &[((Some(1), 5), RowKind::Insert)]), &mut out).unwrap();
    op.on_input(0, changes(0, &[((Some(1), 9), RowKind::Delete)]), &mut out).unwrap();
    assert!(data_batches(out).is_empty());
    assert_eq!(op.metrics.expired_state_rows.load(Ordering::Relaxed), 1);
}

/// A full join restored from a checkpoint into two subtasks (each taking
/// its key groups) goes on as the uninterrupted one. The snapshot's job
/// runs only after the batch past the barrier changed the state, as off
/// the task loop: it writes the state the barrier found.
#[test]
fn a_restore_at_another_parallelism_goes_on_as_before() {
    let mut g = SmallRng::seed_from_u64(11);
    let mut whole = join(JoinType::Full, true);
    let mut held: [Vec<Row>; 2] = [Vec::new(), Vec::new()];
    let (mut expected, mut got) = (Vec::new(), Vec::new());
    let mut restored: Vec<UpdatingJoin> = Vec::new();
    let mut in_flight = None;
    let mut hashes = Vec::new();
    for i in 0..120 {
        if i == 60 {
            in_flight = Some((whole.snapshot_async(1).unwrap(), expected.clone()));
        }
        let side = g.random_range(0..2);
        let batch = changes(side, &step(&mut g, &mut held[side]));
        let mut out = Collector::default();
        whole.on_input(side, batch.clone(), &mut out).unwrap();
        expected.extend(data_batches(out));
        if let Some((job, at_barrier)) = in_flight.take() {
            let state = job().unwrap().state.unwrap();
            restored = (0..2)
                .map(|s| {
                    let mut op = join(JoinType::Full, true);
                    op.restore(&[&state], &ChunkMap::default(), &|k| subtask_of_key_group(k, 2) == s).unwrap();
                    op
                })
                .collect();
            got = at_barrier;
        }
        if restored.is_empty() {
            continue;
        }
        let groups = key_groups(&[Arc::clone(batch.data.column(0))], batch.num_rows(), &mut hashes).unwrap();
        for (s, op) in restored.iter_mut().enumerate() {
            let mine = UInt32Array::from_iter_values(
                (0..batch.num_rows() as u32).filter(|r| subtask_of_key_group(groups[*r as usize], 2) == s),
            );
            let mut out = Collector::default();
            op.on_input(side, batch.take(&mine).unwrap(), &mut out).unwrap();
            got.extend(data_batches(out));
        }
    }
    let spec = &whole.plan.spec;
    check(&expected, &held, spec, "uninterrupted");
    check(&got, &held, spec, "restored");
}

/// Under a state TTL on the right side, a right key nothing wrote for the
/// TTL is dropped without output; a left row that would have met it is
/// counted and goes out padded with NULLs, as in Flink; a key written
/// within the TTL stays.
#[test]
fn keys_idle_for_the_ttl_are_dropped_and_counted_when_met() {
    use std::sync::atomic::AtomicI64;
    let clock = Arc::new(AtomicI64::new(0));
    let mut op = join_with_ttl(JoinType::Left, false, [None, Some(std::time::Duration::from_millis(100))]);
    op.sides[1].set_clock(Arc::clone(&clock));
    let mut emitted = Vec::new();
    let mut step = |op: &mut UpdatingJoin, at: i64, side: usize, rows: &[(Row, RowKind)]| {
        clock.store(at, Ordering::Relaxed);
        let mut out = Collector::default();
        op.on_timer(&mut out).unwrap();
        op.on_input(side, changes(side, rows), &mut out).unwrap();
        emitted.extend(data_batches(out));
    };
    step(&mut op, 0, 1, &[((Some(1), 10), RowKind::Insert), ((Some(2), 20), RowKind::Insert)]);
    step(&mut op, 60, 1, &[((Some(2), 21), RowKind::Insert)]);
    // Right key 1 idled 100 ms at 120: dropped; key 2 (written at 60) stays.
    step(&mut op, 120, 0, &[((Some(1), 1), RowKind::Insert), ((Some(2), 2), RowKind::Insert)]);
    let spec = &op.plan.spec;
    let got = changelog::materialize(&spec.output_schema, &emitted, None).unwrap();
    let want = spec
        .run(vec![plain(0, &[(Some(1), 1), (Some(2), 2)])], vec![plain(1, &[(Some(2), 20), (Some(2), 21)])], "test")
        .unwrap();
    assert_eq!(sorted_lines(&[got]), sorted_lines(&want));
    assert_eq!(op.metrics.expired_state_rows.load(Ordering::Relaxed), 1);
}
