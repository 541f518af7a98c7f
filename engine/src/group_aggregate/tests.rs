//! The group aggregation restored at another parallelism, unchanged
//! results, damaged state, and MIN/MAX over a changelog.

use super::*;
use crate::checkpoint::codec::Encoder;
use crate::operator::Emitted;
use crate::runtime::exchange::subtask_of_key_group;
use crate::window::groups::AggregateCall;
use datafusion::arrow::array::{AsArray, Int64Array};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema};
use datafusion::functions_aggregate::min_max::max_udaf;
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::physical_expr::aggregate::AggregateExprBuilder;
use datafusion::physical_expr::expressions::Column;
use std::collections::BTreeMap;

mod oracle;
mod spill;

/// `SELECT k, sum(v), max(v) FROM t GROUP BY k` over (k, v).
fn operator() -> GroupAggregate {
    aggregation(false)
}

/// [`operator`]'s aggregation, over appends or over a changelog.
fn aggregation(retracting: bool) -> GroupAggregate {
    aggregation_with_ttl(retracting, None)
}

/// [`aggregation`] under a state TTL.
fn aggregation_with_ttl(retracting: bool, ttl: Option<std::time::Duration>) -> GroupAggregate {
    let input =
        Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, true), Field::new("v", DataType::Int64, true)]));
    let k: Arc<dyn datafusion::physical_plan::PhysicalExpr> = Arc::new(Column::new("k", 0));
    let v: Arc<dyn datafusion::physical_plan::PhysicalExpr> = Arc::new(Column::new("v", 1));
    let call = |f, alias: &str| AggregateCall {
        function: Arc::new(
            AggregateExprBuilder::new(f, vec![Arc::clone(&v)]).schema(Arc::clone(&input)).alias(alias).build().unwrap(),
        ),
        filter: None,
    };
    let output = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, true),
        Field::new("s", DataType::Int64, true),
        Field::new("m", DataType::Int64, true),
        changelog::op_field(),
    ]));
    let plan = GroupAggregatePlan {
        grouping: Grouping::new(
            vec![k],
            vec![Field::new("k", DataType::Int64, true)],
            vec![call(sum_udaf(), "s"), call(max_udaf(), "m")],
        ),
        output: vec![OutputColumn::Key(0), OutputColumn::Aggregate(0), OutputColumn::Aggregate(1)],
        output_schema: output,
        retracting,
        ttl,
    };
    let metrics = crate::metrics::JobMetrics::default().register("g", 0);
    GroupAggregate::new(Arc::new(plan), "g".into(), metrics, None).unwrap()
}

fn batch(rows: &[(i64, i64)]) -> StreamBatch {
    let schema =
        Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, true), Field::new("v", DataType::Int64, true)]));
    StreamBatch::new(
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
            ],
        )
        .unwrap(),
    )
}

/// Applies emitted changes to `table` (key → (sum, max)), checking that
/// each `-U`/`-D` withdraws the key's current row.
fn apply(out: Collector, table: &mut BTreeMap<i64, (i64, i64)>) {
    for e in out.out {
        let Emitted::Data(b) = e else { continue };
        let (rows, kinds) = changelog::split(&b.data);
        let kinds = kinds.unwrap();
        let col = |i: usize| rows.column(i).as_primitive::<Int64Type>().clone();
        let (k, s, m) = (col(0), col(1), col(2));
        for r in 0..rows.num_rows() {
            let row = (s.value(r), m.value(r));
            match kinds.get(r) {
                RowKind::Insert | RowKind::UpdateAfter => assert!(table.insert(k.value(r), row).is_none()),
                RowKind::UpdateBefore | RowKind::Delete => assert_eq!(table.remove(&k.value(r)), Some(row)),
            }
        }
    }
}

/// Checkpoint `id` of `op`: its state and the chunks it wrote.
fn checkpointed(op: &mut GroupAggregate, id: u64) -> (Vec<u8>, ChunkMap) {
    let mut writer = ChunkWriter::default();
    let state = op.snapshot(id, &mut writer).unwrap().unwrap();
    (state, ChunkMap::of(writer.new).unwrap())
}

fn input(part: u64) -> Vec<(i64, i64)> {
    (0..500).map(|i| ((i * 7 + part as i64) % 97, (i * 31 + part as i64 * 11) % 1000)).collect()
}

/// State taken at parallelism 1 and restored into 3 subtasks (each
/// keeping its key groups) goes on exactly as the uninterrupted
/// operator: same final results, and a restored group's first change is
/// a `-U` of the row emitted before the checkpoint.
#[test]
fn restored_at_another_parallelism_it_goes_on_where_it_was() {
    let mut whole = operator();
    let mut expected = BTreeMap::new();
    let mut got = BTreeMap::new();
    let mut hashes = Vec::new();
    for part in 0..3 {
        let mut out = Collector::default();
        whole.on_batch(batch(&input(part)), &mut out).unwrap();
        apply(out, &mut expected);
    }
    got.clone_from(&expected);
    let (state, chunks) = checkpointed(&mut whole, 1);
    let mut restored: Vec<GroupAggregate> = (0..3)
        .map(|i| {
            let mut op = operator();
            op.restore(&[&state], &chunks, &|g| subtask_of_key_group(g, 3) == i).unwrap();
            op
        })
        .collect();
    assert_eq!(restored.iter().map(|o| o.index.len()).sum::<usize>(), whole.index.len());
    for part in 3..6 {
        let rows = input(part);
        let mut out = Collector::default();
        whole.on_batch(batch(&rows), &mut out).unwrap();
        apply(out, &mut expected);
        // Route each row to its subtask as the exchange would.
        let keys: Vec<ArrayRef> = vec![Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0)))];
        let groups = key_groups(&keys, rows.len(), &mut hashes).unwrap();
        for (i, op) in restored.iter_mut().enumerate() {
            let mine: Vec<(i64, i64)> =
                rows.iter().zip(&groups).filter(|(_, g)| subtask_of_key_group(**g, 3) == i).map(|(r, _)| *r).collect();
            let mut out = Collector::default();
            op.on_batch(batch(&mine), &mut out).unwrap();
            apply(out, &mut got);
        }
    }
    assert_eq!(got, expected);
    let truth: BTreeMap<i64, (i64, i64)> = (0..6).flat_map(input).fold(BTreeMap::new(), |mut t, (k, v)| {
        let e = t.entry(k).or_insert((0, i64::MIN));
        e.0 += v;
        e.1 = e.1.max(v);
        t
    });
    assert_eq!(got, truth);
    // weir.memory's keys: every group, over the subtasks as in the whole.
    assert_eq!(whole.state_size().keys, Some(truth.len()));
    assert_eq!(restored.iter().filter_map(|o| o.state_size().keys).sum::<usize>(), truth.len());
    assert!(restored.iter().all(|o| o.state_size().bytes > 0));
}

/// Stored state whose aggregate columns have other types than the
/// query's accumulators (damaged, or from another plan) is refused as
/// damaged rather than handed to an accumulator, which would panic.
#[test]
fn state_of_other_types_is_damaged() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, true),
        Field::new("a0_0", DataType::Utf8, true),
        Field::new("a1_0", DataType::Int64, true),
        Field::new("rows", DataType::Int64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![1])),
        Arc::new(datafusion::arrow::array::StringArray::from(vec!["x"])),
        Arc::new(Int64Array::from(vec![2])),
        Arc::new(Int64Array::from(vec![1])),
    ];
    let mut e = Encoder::default();
    e.u64(1);
    e.u64(0);
    e.batch(&RecordBatch::try_new(schema, columns).unwrap()).unwrap();
    let err = operator().restore(&[&e.bytes], &ChunkMap::default(), &|_| true).err();
    assert!(matches!(err, Some(EngineError::State(_))), "{err:?}");
}

/// A batch that changes nothing a group shows emits nothing for it.
#[test]
fn unchanged_results_emit_nothing() {
    let mut op = operator();
    let mut out = Collector::default();
    op.on_batch(batch(&[(1, 5), (2, 7)]), &mut out).unwrap();
    let mut table = BTreeMap::new();
    apply(out, &mut table);
    let mut out = Collector::default();
    op.on_batch(batch(&[(1, 0), (2, 9)]), &mut out).unwrap();
    let emitted: usize = out.out.iter().map(|e| if let Emitted::Data(b) = e { b.num_rows() } else { 0 }).sum();
    assert_eq!(emitted, 2, "key 1 (sum and max unchanged) emits nothing; key 2 a -U and a +U");
    apply(out, &mut table);
    assert_eq!(table, BTreeMap::from([(1, (5, 5)), (2, (16, 9))]));
}

/// A job without checkpoints keeps no list of changed groups (no second
/// copy of their keys); after its first checkpoint it lists the groups a
/// batch changes, once each, and the next checkpoint writes only those.
#[test]
fn changed_groups_are_listed_only_once_checkpoints_are_taken() {
    let mut op = operator();
    let rows: Vec<(i64, i64)> = (0..10_000).map(|k| (k, k % 7)).collect();
    op.on_batch(batch(&rows), &mut Collector::default()).unwrap();
    op.on_batch(batch(&rows), &mut Collector::default()).unwrap();
    assert!(op.written.memory() < 1024, "{} bytes listed without checkpoints", op.written.memory());
    let written = |op: &mut GroupAggregate, id: u64| -> usize {
        let mut writer = ChunkWriter::default();
        op.snapshot(id, &mut writer).unwrap();
        op.checkpoint_complete(id);
        oracle::rows_written(&writer)
    };
    assert_eq!(written(&mut op, 1), 10_000);
    op.on_batch(batch(&rows[..300]), &mut Collector::default()).unwrap();
    op.on_batch(batch(&rows[100..400]), &mut Collector::default()).unwrap();
    assert_eq!(written(&mut op, 2), 400);
}

/// Over a changelog, MAX takes back the value a `-U` withdraws (not the
/// oldest), and its counts survive a checkpoint: after a restore, taking
/// back the larger of two values answers with the other.
#[test]
fn max_over_a_changelog_takes_back_any_value_across_a_restore() {
    let changes = |rows: &[(i64, i64, RowKind)]| {
        let b = batch(&rows.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>());
        StreamBatch::new(changelog::with_kinds(&b.data, rows.iter().map(|r| r.2 as i8).collect()).unwrap())
    };
    let mut op = aggregation(true);
    let mut table = BTreeMap::new();
    let mut out = Collector::default();
    op.on_batch(changes(&[(1, 5, RowKind::Insert), (1, 9, RowKind::Insert), (1, 7, RowKind::Insert)]), &mut out)
        .unwrap();
    apply(out, &mut table);
    assert_eq!(table, BTreeMap::from([(1, (21, 9))]));
    let (state, chunks) = checkpointed(&mut op, 1);
    let mut restored = aggregation(true);
    restored.restore(&[&state], &chunks, &|_| true).unwrap();
    let mut out = Collector::default();
    restored.on_batch(changes(&[(1, 9, RowKind::UpdateBefore)]), &mut out).unwrap();
    apply(out, &mut table);
    assert_eq!(table, BTreeMap::from([(1, (12, 7))]), "9 taken back: 7 is the largest left");
}

/// Under a state TTL, a group nothing wrote for the TTL is dropped without
/// output; its next row starts it afresh (`+I`) and is counted, as is a
/// retraction of a dropped group, which sends nothing.
#[test]
fn idle_groups_expire_and_a_row_meeting_one_is_counted() {
    use std::sync::atomic::{AtomicI64, Ordering};
    let clock = Arc::new(AtomicI64::new(0));
    let mut g = aggregation_with_ttl(true, Some(std::time::Duration::from_millis(100)));
    g.expiry = g.expiry.take().map(|e| e.with_clock(Arc::clone(&clock)));
    let changes = |rows: &[(i64, i64, RowKind)]| {
        let plain = batch(&rows.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>()).data;
        StreamBatch::new(changelog::with_kinds(&plain, rows.iter().map(|r| r.2 as i8).collect()).unwrap())
    };
    let mut table = BTreeMap::new();
    let step =
        |g: &mut GroupAggregate, at: i64, rows: &[(i64, i64, RowKind)], table: &mut BTreeMap<i64, (i64, i64)>| {
            clock.store(at, Ordering::Relaxed);
            let mut out = Collector::default();
            g.on_timer(&mut out).unwrap();
            assert!(out.out.is_empty(), "expiry sends nothing");
            g.on_batch(changes(rows), &mut out).unwrap();
            apply(out, table);
        };
    step(&mut g, 0, &[(1, 10, RowKind::Insert), (2, 20, RowKind::Insert)], &mut table);
    step(&mut g, 60, &[(1, 5, RowKind::Insert)], &mut table);
    assert_eq!(table, BTreeMap::from([(1, (15, 10)), (2, (20, 20))]));
    // Group 2 idled for 100 ms: dropped. Its next row starts it again; the
    // sink still holds its old row, so the test's table is cleared first.
    table.remove(&2);
    step(&mut g, 120, &[(2, 7, RowKind::Insert)], &mut table);
    assert_eq!(table.get(&2), Some(&(7, 7)));
    assert_eq!(g.metrics.expired_state_rows.load(Ordering::Relaxed), 1);
    // Group 1 (written at 60) is dropped at 160; a retraction of it sends
    // nothing and is counted.
    table.remove(&1);
    step(&mut g, 170, &[(1, 5, RowKind::Delete)], &mut table);
    assert!(!table.contains_key(&1));
    assert_eq!(g.metrics.expired_state_rows.load(Ordering::Relaxed), 2);
    assert_eq!(g.index.len(), 1, "only group 2 is held");
    assert_eq!(g.state_size().keys, Some(1), "weir.memory counts only held groups");
}

/// State saved by `SELECT k, sum(v) … GROUP BY k` restored into
/// [`operator`], which added `max(v)`: every restored group goes on with
/// its sum, and its max starts empty — over the rows after the restore.
#[test]
fn an_added_aggregate_starts_empty_for_restored_groups() {
    let full = operator();
    let plan = GroupAggregatePlan {
        grouping: Grouping::new(
            full.plan.grouping.keys.clone(),
            vec![Field::new("k", DataType::Int64, true)],
            vec![full.plan.grouping.aggregates[0].clone()],
        ),
        output: vec![OutputColumn::Key(0), OutputColumn::Aggregate(0)],
        output_schema: Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("s", DataType::Int64, true),
            changelog::op_field(),
        ])),
        retracting: false,
        ttl: None,
    };
    let metrics = crate::metrics::JobMetrics::default().register("g", 0);
    let mut saved_by = GroupAggregate::new(Arc::new(plan), "g".into(), metrics, None).unwrap();
    for part in 0..3 {
        saved_by.on_batch(batch(&input(part)), &mut Collector::default()).unwrap();
    }
    let (state, chunks) = checkpointed(&mut saved_by, 1);
    let mut restored = operator();
    restored.restore_adding_aggregates(&[&state], &chunks, &|_| true, &[Some(0), None]).unwrap();
    // Each key's latest (sum, max) after the restore.
    let mut got = BTreeMap::new();
    for part in 3..6 {
        let mut out = Collector::default();
        restored.on_batch(batch(&input(part)), &mut out).unwrap();
        for e in out.out {
            let Emitted::Data(b) = e else { continue };
            let (rows, kinds) = changelog::split(&b.data);
            let kinds = kinds.unwrap();
            let col = |i: usize| rows.column(i).as_primitive::<Int64Type>().clone();
            let (k, s, m) = (col(0), col(1), col(2));
            for r in 0..rows.num_rows() {
                if matches!(kinds.get(r), RowKind::Insert | RowKind::UpdateAfter) {
                    got.insert(k.value(r), (s.value(r), m.value(r)));
                }
            }
        }
    }
    let mut truth: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for (k, v) in (3..6).flat_map(input) {
        let e = truth.entry(k).or_insert((0, i64::MIN));
        e.0 += v;
        e.1 = e.1.max(v);
    }
    for (k, v) in (0..3).flat_map(input) {
        if let Some(e) = truth.get_mut(&k) {
            e.0 += v;
        }
    }
    assert_eq!(got, truth);
}
