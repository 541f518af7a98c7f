//! An OVER aggregation restored at another parallelism goes on as the
//! uninterrupted one: waiting rows, frame rows and unbounded accumulators
//! follow their key groups.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema};
use datafusion::common::ScalarValue;
use datafusion::functions_aggregate::count::count_udaf;
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::physical_expr::aggregate::AggregateExprBuilder;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::PhysicalExpr;

use super::{Frame, Over, OverFunction, OverPlan};
use crate::message::StreamBatch;
use crate::metrics::JobMetrics;
use crate::operator::{Collector, Emitted};
use crate::testing::{Part, kvt_schema, whole_and_restored};

/// `SUM(v) ROWS 2 PRECEDING, COUNT(v) UNBOUNDED, LAG(v)` per `k` by `ts`.
fn operator() -> Over {
    let v: Arc<dyn PhysicalExpr> = Arc::new(Column::new("v", 1));
    let aggregate = |f, frame, name: &str| OverFunction::Aggregate {
        function: Arc::new(
            AggregateExprBuilder::new(f, vec![Arc::clone(&v)])
                .schema(kvt_schema())
                .alias(name)
                .build()
                .unwrap(),
        ),
        frame,
    };
    let mut fields: Vec<Field> = kvt_schema().fields().iter().map(|f| f.as_ref().clone()).collect();
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
        input_schema: kvt_schema(),
        output_schema: Arc::new(Schema::new(fields)),
        late_output: None,
    };
    let metrics = Arc::new(JobMetrics::default());
    Over::new(Arc::new(plan), "over".into(), metrics.register("over", 0)).unwrap()
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
    let mut parts: Vec<Part> = (0..6).map(|p| (part(p), 1000 * p - 1)).collect();
    parts.push((Vec::new(), i64::MAX));
    let key = |b: &StreamBatch| -> Vec<ArrayRef> { vec![Arc::clone(b.data.column(0))] };
    let (whole, restored) = whole_and_restored(operator, &parts, 3, 3, key);
    let (mut expected, mut got) = (BTreeSet::new(), BTreeSet::new());
    whole.into_iter().for_each(|out| rows_of(out, &mut expected));
    restored.into_iter().for_each(|out| rows_of(out, &mut got));
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
