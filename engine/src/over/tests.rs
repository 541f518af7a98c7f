//! An OVER aggregation restored at another parallelism goes on as the
//! uninterrupted one: waiting rows, frame rows and unbounded accumulators
//! follow their key groups.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, Int64Array, RecordBatch, TimestampMillisecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::functions_aggregate::count::count_udaf;
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::physical_expr::aggregate::AggregateExprBuilder;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::PhysicalExpr;

use super::{Frame, Over, OverFunction, OverPlan};
use crate::checkpoint::chunk::{ChunkMap, ChunkWriter};
use crate::message::StreamBatch;
use crate::metrics::JobMetrics;
use crate::operator::{Collector, Emitted, Operator};
use crate::runtime::exchange::{key_groups, subtask_of_key_group};

fn input() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, true),
        Field::new("v", DataType::Int64, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
    ]))
}

/// `SUM(v) ROWS 2 PRECEDING, COUNT(v) UNBOUNDED, LAG(v)` per `k` by `ts`.
fn operator() -> Over {
    let v: Arc<dyn PhysicalExpr> = Arc::new(Column::new("v", 1));
    let aggregate = |f, frame, name: &str| OverFunction::Aggregate {
        function: Arc::new(
            AggregateExprBuilder::new(f, vec![Arc::clone(&v)])
                .schema(input())
                .alias(name)
                .build()
                .unwrap(),
        ),
        frame,
    };
    let mut fields: Vec<Field> = input().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.extend(["s", "c", "l"].map(|n| Field::new(n, DataType::Int64, true)));
    let plan = OverPlan {
        partition: vec![Arc::new(Column::new("k", 0))],
        time_column: 2,
        processing_time: false,
        functions: vec![
            aggregate(sum_udaf(), Frame::Rows(Some(2)), "s"),
            aggregate(count_udaf(), Frame::Range(None), "c"),
            OverFunction::Lag {
                value: Arc::clone(&v),
                offset: 1,
                default: ScalarValue::Null,
            },
        ],
        input_schema: input(),
        output_schema: Arc::new(Schema::new(fields)),
        late_output: None,
    };
    let metrics = Arc::new(JobMetrics::default());
    Over::new(Arc::new(plan), "over".into(), metrics.register("over", 0)).unwrap()
}

fn batch(rows: &[(i64, i64, i64)]) -> StreamBatch {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
        Arc::new(TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.2))),
    ];
    StreamBatch::new(RecordBatch::try_new(input(), columns).unwrap())
}

/// Part `p`: 200 rows over 17 keys at times `1000 p ..`, disordered.
fn part(p: i64) -> Vec<(i64, i64, i64)> {
    (0..200)
        .map(|i| ((i * 5 + p) % 17, i * 13 + p, 1000 * p + (i * 37) % 200))
        .collect()
}

/// Every emitted row as `(k, ts, v, s, c, l)`.
fn rows_of(out: Collector, into: &mut BTreeSet<[Option<i64>; 6]>) {
    for e in out.out {
        let Emitted::Data(b) = e else { continue };
        let col = |i: usize| -> Vec<Option<i64>> {
            match i {
                2 => b
                    .data
                    .column(2)
                    .as_primitive::<datafusion::arrow::datatypes::TimestampMillisecondType>()
                    .iter()
                    .collect(),
                _ => b.data.column(i).as_primitive::<Int64Type>().iter().collect(),
            }
        };
        let (k, v, ts, s, c, l) = (col(0), col(1), col(2), col(3), col(4), col(5));
        for r in 0..b.data.num_rows() {
            assert!(into.insert([k[r], ts[r], v[r], s[r], c[r], l[r]]), "a row left twice");
        }
    }
}

#[test]
fn restored_at_another_parallelism_it_goes_on_where_it_was() {
    let mut whole = operator();
    let (mut expected, mut got) = (BTreeSet::new(), BTreeSet::new());
    for p in 0..3 {
        let mut out = Collector::default();
        whole.on_batch(batch(&part(p)), &mut out).unwrap();
        // Rows of part p wait until the next part's watermark.
        whole.on_watermark(1000 * p - 1, &mut out).unwrap();
        rows_of(out, &mut expected);
    }
    got.clone_from(&expected);
    assert!(whole.state_bytes() > 0, "weir.memory sees the waiting and kept rows");
    let state = whole.snapshot(1, &mut ChunkWriter::default()).unwrap().unwrap();
    let mut restored: Vec<Over> = (0..3)
        .map(|i| {
            let mut op = operator();
            op.restore(&[&state], &ChunkMap::default(), &|g| subtask_of_key_group(g, 3) == i)
                .unwrap();
            op
        })
        .collect();
    let mut hashes = Vec::new();
    for p in 3..7 {
        let rows = if p < 6 { part(p) } else { Vec::new() };
        let wm = if p < 6 { 1000 * p - 1 } else { i64::MAX };
        let mut out = Collector::default();
        whole.on_batch(batch(&rows), &mut out).unwrap();
        whole.on_watermark(wm, &mut out).unwrap();
        rows_of(out, &mut expected);
        let keys: Vec<ArrayRef> = vec![Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0)))];
        let groups = key_groups(&keys, rows.len(), &mut hashes).unwrap();
        for (i, op) in restored.iter_mut().enumerate() {
            let mine: Vec<(i64, i64, i64)> = rows
                .iter()
                .zip(&groups)
                .filter(|(_, g)| subtask_of_key_group(**g, 3) == i)
                .map(|(r, _)| *r)
                .collect();
            let mut out = Collector::default();
            op.on_batch(batch(&mine), &mut out).unwrap();
            op.on_watermark(wm, &mut out).unwrap();
            rows_of(out, &mut got);
        }
    }
    assert_eq!(got.len(), 6 * 200, "every row leaves once");
    assert_eq!(got, expected);
    // The truth for one key, in time order.
    let mut key0: Vec<(i64, i64)> = (0..6).flat_map(part).filter(|r| r.0 == 0).map(|r| (r.2, r.1)).collect();
    key0.sort();
    for (i, (ts, v)) in key0.iter().enumerate() {
        let s: i64 = key0[i.saturating_sub(2)..=i].iter().map(|r| r.1).sum();
        let l = i.checked_sub(1).map(|j| key0[j].1);
        assert!(
            got.contains(&[Some(0), Some(*ts), Some(*v), Some(s), Some(i as i64 + 1), l]),
            "row {i} of key 0"
        );
    }
}
