//! The temporal join against an oracle (each left row with its key's
//! latest version at or before its time), whole and restored at another
//! parallelism; deletions of a changelog; late left rows.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int8Array, Int64Array, RecordBatch, TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit, TimestampMillisecondType};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::PhysicalExpr;

use super::{TemporalJoin, TemporalJoinPlan};
use crate::changelog;
use crate::checkpoint::chunk::{ChunkMap, ChunkWriter};
use crate::message::{StreamBatch, WATERMARK_END};
use crate::metrics::{JobMetrics, OperatorMetrics};
use crate::operator::{Collector, Emitted, Operator};
use crate::runtime::exchange::{key_groups, subtask_of_key_group};

/// (key, value or rate, time)
type Row = (i64, i64, i64);
/// A joined row: the left row and the version's rate.
type Joined = (i64, i64, i64, Option<i64>);

fn fields(nullable: bool) -> Vec<Field> {
    vec![
        Field::new("k", DataType::Int64, nullable),
        Field::new("v", DataType::Int64, nullable),
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), nullable),
    ]
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(fields(true)))
}

fn plan(outer: bool, right_changelog: bool) -> TemporalJoinPlan {
    let key = || -> Vec<Arc<dyn PhysicalExpr>> { vec![Arc::new(Column::new("k", 0))] };
    let mut output = fields(true);
    output.extend(fields(true));
    TemporalJoinPlan {
        outer,
        left_schema: schema(),
        right_schema: schema(),
        output_schema: Arc::new(Schema::new(output)),
        left_keys: key(),
        right_keys: key(),
        left_time: 2,
        right_time: 2,
        right_changelog,
        table: "rates".into(),
    }
}

fn operator(outer: bool, right_changelog: bool) -> (TemporalJoin, Arc<OperatorMetrics>) {
    let metrics = Arc::new(JobMetrics::default()).register("tj", 0);
    let op = TemporalJoin::new(
        Arc::new(plan(outer, right_changelog)),
        "tj".into(),
        Arc::clone(&metrics),
    )
    .unwrap();
    (op, metrics)
}

fn batch(rows: &[Row]) -> StreamBatch {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
        Arc::new(TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.2))),
    ];
    StreamBatch::new(RecordBatch::try_new(schema(), columns).unwrap())
}

fn joined(out: Collector, into: &mut Vec<Joined>) {
    for e in out.out {
        let Emitted::Data(b) = e else { continue };
        let d = &b.data;
        let int = |c: usize| d.column(c).as_primitive::<Int64Type>().clone();
        let (k, v, rate) = (int(0), int(1), int(4));
        let ts = d.column(2).as_primitive::<TimestampMillisecondType>();
        for r in 0..d.num_rows() {
            into.push((
                k.value(r),
                v.value(r),
                ts.value(r),
                rate.is_valid(r).then(|| rate.value(r)),
            ));
        }
    }
}

/// A small deterministic generator.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> i64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n) as i64
    }
}

/// Step `p`'s rows: versions of 13 keys around `100 p` (unique times per
/// key), left rows in `[100 p, 100 p + 100)` out of order; the watermark
/// after the step is `100 p - 60`.
fn steps() -> Vec<(Vec<Row>, Vec<Row>, i64)> {
    let mut rng = Lcg(7);
    let mut seen = HashSet::new();
    (0..10)
        .map(|p| {
            let mut right = Vec::new();
            for _ in 0..30 {
                let (k, t) = (rng.below(13), 100 * p - 50 + rng.below(150));
                if seen.insert((k, t)) {
                    right.push((k, rng.below(1000), t));
                }
            }
            let left = (0..40)
                .map(|i| (rng.below(15), 1000 * p + i, 100 * p + rng.below(100)))
                .collect();
            (left, right, 100 * p - 60)
        })
        .collect()
}

/// Each left row with its key's latest version at or before its time.
fn oracle(outer: bool) -> Vec<Joined> {
    let all = steps();
    let versions: Vec<Row> = all.iter().flat_map(|s| s.1.clone()).collect();
    let mut want = Vec::new();
    for &(k, v, t) in all.iter().flat_map(|s| &s.0) {
        let version = versions.iter().filter(|r| r.0 == k && r.2 <= t).max_by_key(|r| r.2);
        match version {
            Some(r) => want.push((k, v, t, Some(r.1))),
            None if outer => want.push((k, v, t, None)),
            None => {}
        }
    }
    want.sort();
    want
}

fn sorted(mut rows: Vec<Joined>) -> Vec<Joined> {
    rows.sort();
    rows
}

#[test]
fn each_left_row_joins_the_version_current_at_its_time() {
    for outer in [false, true] {
        let (mut op, metrics) = operator(outer, false);
        let mut got = Vec::new();
        for (left, right, wm) in steps() {
            let mut out = Collector::default();
            op.on_input(1, batch(&right), &mut out).unwrap();
            op.on_input(0, batch(&left), &mut out).unwrap();
            op.on_watermark(wm, &mut out).unwrap();
            joined(out, &mut got);
        }
        let mut out = Collector::default();
        op.on_watermark(WATERMARK_END, &mut out).unwrap();
        joined(out, &mut got);
        assert_eq!(sorted(got), oracle(outer), "outer: {outer}");
        assert_eq!(metrics.late_rows.load(Ordering::Relaxed), 0);
        assert!(op.waiting.is_empty());
        assert!(
            op.versions.iter().count() <= 13,
            "one version per key is left at the end"
        );
    }
}

#[test]
fn a_temporal_join_restored_at_another_parallelism_goes_on() {
    let (mut whole, _) = operator(true, false);
    let all = steps();
    let mut before = Vec::new();
    for (left, right, wm) in &all[..5] {
        let mut out = Collector::default();
        whole.on_input(1, batch(right), &mut out).unwrap();
        whole.on_input(0, batch(left), &mut out).unwrap();
        whole.on_watermark(*wm, &mut out).unwrap();
        joined(out, &mut before);
    }
    let state = whole.snapshot(1, &mut ChunkWriter::default()).unwrap().unwrap();
    let mut restored: Vec<TemporalJoin> = (0..3)
        .map(|i| {
            let (mut op, _) = operator(true, false);
            op.restore(&[&state], &ChunkMap::default(), &|g| subtask_of_key_group(g, 3) == i)
                .unwrap();
            op
        })
        .collect();
    let mine = |rows: &[Row], i: usize| -> Vec<Row> {
        let keys: Vec<ArrayRef> = vec![Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0)))];
        let groups = key_groups(&keys, rows.len(), &mut Vec::new()).unwrap();
        rows.iter()
            .zip(groups)
            .filter(|(_, g)| subtask_of_key_group(*g, 3) == i)
            .map(|(r, _)| *r)
            .collect()
    };
    let (mut expected, mut got) = (before.clone(), before);
    let rest: Vec<(Vec<Row>, Vec<Row>, i64)> = all[5..]
        .iter()
        .cloned()
        .chain([(Vec::new(), Vec::new(), WATERMARK_END)])
        .collect();
    for (left, right, wm) in &rest {
        let mut out = Collector::default();
        whole.on_input(1, batch(right), &mut out).unwrap();
        whole.on_input(0, batch(left), &mut out).unwrap();
        whole.on_watermark(*wm, &mut out).unwrap();
        joined(out, &mut expected);
        for (i, op) in restored.iter_mut().enumerate() {
            let mut out = Collector::default();
            op.on_input(1, batch(&mine(right, i)), &mut out).unwrap();
            op.on_input(0, batch(&mine(left, i)), &mut out).unwrap();
            op.on_watermark(*wm, &mut out).unwrap();
            joined(out, &mut got);
        }
    }
    assert_eq!(sorted(got), sorted(expected.clone()));
    assert_eq!(sorted(expected), oracle(true));
}

#[test]
fn a_deletion_ends_a_version_and_update_befores_are_no_versions() {
    let (mut op, _) = operator(true, true);
    let rows = [(1, 10, 10), (1, 10, 20), (1, 30, 30), (1, 30, 40)];
    let kinds = Int8Array::from(vec![0, 3, 1, 2]);
    let data = changelog::with_kinds(&batch(&rows).data, kinds.values().to_vec()).unwrap();
    let mut out = Collector::default();
    op.on_input(1, StreamBatch::new(data), &mut out).unwrap();
    op.on_input(
        0,
        batch(&[(1, 1, 15), (1, 2, 25), (1, 3, 35), (1, 4, 45), (2, 5, 45)]),
        &mut out,
    )
    .unwrap();
    op.on_watermark(WATERMARK_END, &mut out).unwrap();
    let mut got = Vec::new();
    joined(out, &mut got);
    assert_eq!(
        sorted(got),
        vec![
            (1, 1, 15, Some(10)),
            (1, 2, 25, None),
            (1, 3, 35, None),
            (1, 4, 45, Some(30)),
            (2, 5, 45, None)
        ]
    );
}

#[test]
fn left_rows_behind_the_watermark_are_counted_late() {
    let (mut op, metrics) = operator(false, false);
    let mut out = Collector::default();
    op.on_input(1, batch(&[(1, 7, 0)]), &mut out).unwrap();
    op.on_watermark(100, &mut out).unwrap();
    op.on_input(0, batch(&[(1, 1, 50), (1, 2, 100), (1, 3, 150)]), &mut out)
        .unwrap();
    op.on_watermark(WATERMARK_END, &mut out).unwrap();
    let mut got = Vec::new();
    joined(out, &mut got);
    assert_eq!(sorted(got), vec![(1, 2, 100, Some(7)), (1, 3, 150, Some(7))]);
    assert_eq!(metrics.late_rows.load(Ordering::Relaxed), 1);
}
