//! A ranking restored at another parallelism goes on as the uninterrupted
//! one: each subtask keeps the partitions of its key groups.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, UInt64Type};
use datafusion::physical_expr::PhysicalSortExpr;
use datafusion::physical_expr::expressions::Column;

use super::{Rank, RankMode, RankPlan};
use crate::changelog::{self, RowKind};
use crate::message::StreamBatch;
use crate::metrics::JobMetrics;
use crate::operator::{Collector, Emitted};
use crate::testing::{Part, kvt_schema, whole_and_restored};

/// `ROW_NUMBER() OVER (PARTITION BY k ORDER BY v DESC) <= 3`, or per
/// window (`ts` standing for the window end, part of the partition).
fn operator(mode: RankMode) -> Rank {
    let metrics = Arc::new(JobMetrics::default());
    Rank::new(Arc::new(plan(mode)), "rank".into(), metrics.register("rank", 0), None).unwrap()
}

/// The plan of [`operator`].
pub(super) fn plan(mode: RankMode) -> RankPlan {
    let mut fields: Vec<Field> = kvt_schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("rn", DataType::UInt64, false));
    let refires = matches!(mode, RankMode::Window { lateness, .. } if lateness > 0);
    if matches!(mode, RankMode::Updating { changelog: true }) || refires {
        fields.push(changelog::op_field());
    }
    let mut partition: Vec<Arc<dyn datafusion::physical_plan::PhysicalExpr>> = vec![Arc::new(Column::new("k", 0))];
    if let RankMode::Window { .. } = mode {
        partition.push(Arc::new(Column::new("ts", 2)));
    }
    RankPlan {
        partition,
        order: vec![PhysicalSortExpr {
            expr: Arc::new(Column::new("v", 1)),
            options: SortOptions { descending: true, nulls_first: false },
        }],
        first: 1,
        last: 3,
        later_wins_ties: false,
        number: true,
        input_schema: kvt_schema(),
        output_schema: Arc::new(Schema::new(fields)),
        retracting: false,
        mode,
        // With lateness a row is replaced by a re-fired one of equal `v`.
        upsert_key: if refires { vec![1] } else { Vec::new() },
        late_output: None,
        ttl: None,
    }
}

/// Rows of part `part`: 300 rows over 31 keys, values unique, window ends
/// 1000 apart.
fn part(part: i64) -> Vec<(i64, i64, i64)> {
    (0..300).map(|i| ((i * 7 + part) % 31, (i * 7919 + part * 3001) % 100_003, 1000 * (part + 1))).collect()
}

/// Applies emitted changes to `table` ((k, end, rank) → v), checking that
/// each `-U`/`-D` withdraws the rank's current row.
fn apply(out: Collector, table: &mut BTreeMap<(i64, i64, u64), i64>) {
    for e in out.out {
        let Emitted::Data(b) = e else { continue };
        let (rows, kinds) = changelog::split(&b.data);
        let (k, v) = (rows.column(0).as_primitive::<Int64Type>(), rows.column(1).as_primitive::<Int64Type>());
        let end = rows.column(2).as_primitive::<datafusion::arrow::datatypes::TimestampMillisecondType>();
        let rank = rows.column(3).as_primitive::<UInt64Type>();
        for r in 0..rows.num_rows() {
            let key = (k.value(r), end.value(r), rank.value(r));
            match kinds.as_ref().map_or(RowKind::Insert, |k| k.get(r)) {
                RowKind::Insert | RowKind::UpdateAfter => assert!(table.insert(key, v.value(r)).is_none()),
                RowKind::UpdateBefore | RowKind::Delete => assert_eq!(table.remove(&key), Some(v.value(r))),
            }
        }
    }
}

/// Runs parts 0..3, checkpoints, restores into 3 subtasks, and runs parts
/// 3..6 through both, then the end watermark.
fn restored_goes_on(mode: RankMode) -> BTreeMap<(i64, i64, u64), i64> {
    let mut parts: Vec<Part> = (0..6).map(|p| (part(p), 1000 * p)).collect();
    // With lateness, each part also has rows for the window that fired
    // before it: re-fires within the lateness.
    if let RankMode::Window { lateness, .. } = mode
        && lateness > 0
    {
        for (p, (rows, _)) in parts.iter_mut().enumerate().skip(2) {
            let p = p as i64;
            rows.extend((0..50).map(|i| ((i * 3 + p) % 31, 200_000 + i * 13 + p, 1000 * (p - 1))));
        }
    }
    parts.push((Vec::new(), i64::MAX));
    let keys = |b: &StreamBatch| -> Vec<ArrayRef> {
        match mode {
            RankMode::Window { .. } => vec![Arc::clone(b.data.column(0)), Arc::clone(b.data.column(2))],
            _ => vec![Arc::clone(b.data.column(0))],
        }
    };
    let (whole, restored) = whole_and_restored(|| operator(mode), &parts, 3, 3, keys);
    let (mut expected, mut got) = (BTreeMap::new(), BTreeMap::new());
    whole.into_iter().for_each(|out| apply(out, &mut expected));
    restored.into_iter().for_each(|out| apply(out, &mut got));
    assert_eq!(got, expected);
    got
}

#[test]
fn an_updating_top_n_restored_at_another_parallelism_goes_on() {
    let got = restored_goes_on(RankMode::Updating { changelog: true });
    // The truth: the three largest values per key over every part.
    let mut truth: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (k, v, _) in (0..6).flat_map(part) {
        truth.entry(k).or_default().push(v);
    }
    let mut want = BTreeMap::new();
    for (k, mut vs) in truth {
        vs.sort_by(|a, b| b.cmp(a));
        for (i, v) in vs.into_iter().take(3).enumerate() {
            want.insert((k, 0, i as u64 + 1), v);
        }
    }
    let got: BTreeMap<(i64, i64, u64), i64> = got.into_iter().map(|((k, _, r), v)| ((k, 0, r), v)).collect();
    assert_eq!(got, want);
}

/// Windows kept for lateness after they fired: the restored subtasks know
/// which fired (from the watermark) and update their ranks as the
/// uninterrupted one does.
#[test]
fn a_window_top_n_with_lateness_restored_at_another_parallelism_goes_on() {
    let got = restored_goes_on(RankMode::Window { end_column: 2, lateness: 1500 });
    assert_eq!(got.len(), 6 * 31 * 3, "three ranks per key and window");
    // The late rows' values are the largest: a re-fired window ranks them.
    assert!(got.values().filter(|v| **v >= 200_000).count() > 50);
}

#[test]
fn a_window_top_n_restored_at_another_parallelism_goes_on() {
    let got = restored_goes_on(RankMode::Window { end_column: 2, lateness: 0 });
    assert_eq!(got.len(), 6 * 31 * 3, "three ranks per key and window");
}

/// Under a state TTL, an updating Top-N drops a partition nothing wrote
/// for the TTL, without output; the key's next row ranks afresh (rank 1
/// again, although the sink still holds its old ranks) and is counted.
#[test]
fn an_idle_partition_expires_and_its_next_row_ranks_afresh() {
    use crate::testing::kvt_batch;
    use std::sync::atomic::{AtomicI64, Ordering};
    let clock = Arc::new(AtomicI64::new(0));
    let mut op = operator(RankMode::Updating { changelog: true });
    op.idle = Some(crate::state_ttl::Expiry::new(std::time::Duration::from_millis(100)).with_clock(Arc::clone(&clock)));
    let mut table = BTreeMap::new();
    let step = |op: &mut Rank, at: i64, rows: &[(i64, i64, i64)], table: &mut BTreeMap<(i64, i64, u64), i64>| {
        clock.store(at, Ordering::Relaxed);
        let mut out = Collector::default();
        crate::operator::Operator::on_timer(op, &mut out).unwrap();
        assert!(out.out.is_empty(), "expiry sends nothing");
        crate::operator::Operator::on_batch(op, kvt_batch(rows), &mut out).unwrap();
        apply(out, table);
    };
    step(&mut op, 0, &[(1, 50, 0), (1, 40, 0), (2, 10, 0)], &mut table);
    step(&mut op, 60, &[(2, 20, 0)], &mut table);
    // Key 1 idled 100 ms: its next row is rank 1 of a new partition (the
    // test's table, a sink, forgets the old ranks first).
    table.retain(|(k, _, _), _| *k != 1);
    step(&mut op, 120, &[(1, 5, 0), (2, 30, 0)], &mut table);
    let want = BTreeMap::from([((1, 0, 1), 5), ((2, 0, 1), 30), ((2, 0, 2), 20), ((2, 0, 3), 10)]);
    assert_eq!(table, want);
    assert_eq!(op.metrics.expired_state_rows.load(Ordering::Relaxed), 1);
    assert_eq!(op.index.len(), 2);
}
