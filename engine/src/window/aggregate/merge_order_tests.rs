//! A tumbling window whose only slice a checkpoint split into parts fires
//! what the same window fires without checkpoints, for aggregates whose
//! result depends on the order rows arrived in (FIRST_VALUE, LAST_VALUE)
//! and for those that merge in any order (COUNT, MAX): the oracle is the
//! rows' own first and last times, counted by hand.

use std::sync::Arc;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit, TimestampMillisecondType};
use datafusion::functions_aggregate::count::count_udaf;
use datafusion::functions_aggregate::first_last::{first_value_udaf, last_value_udaf};
use datafusion::functions_aggregate::min_max::max_udaf;
use datafusion::logical_expr::AggregateUDF;
use datafusion::physical_expr::aggregate::AggregateExprBuilder;
use datafusion::physical_expr::expressions::Column;

use super::tests::{keyed, keyed_schema};
use super::*;
use crate::metrics::JobMetrics;
use crate::operator::Emitted;
use crate::window::groups::{AggregateCall, Grouping};
use crate::window::spec::{WindowKind, WindowSpec};

/// `window_start, window_end, k` and one aggregate of `ts` per function.
fn operator(functions: &[Arc<AggregateUDF>]) -> WindowAggregate {
    let input = keyed_schema();
    let ts: Arc<dyn datafusion::physical_plan::PhysicalExpr> = Arc::new(Column::new("ts", 0));
    let k: Arc<dyn datafusion::physical_plan::PhysicalExpr> = Arc::new(Column::new("k", 1));
    let time = DataType::Timestamp(TimeUnit::Millisecond, None);
    let mut fields = vec![
        Field::new("window_start", time.clone(), false),
        Field::new("window_end", time.clone(), false),
        Field::new("k", DataType::Int64, true),
    ];
    let mut output = vec![OutputColumn::WindowStart, OutputColumn::WindowEnd, OutputColumn::Key(0)];
    let mut aggregates = Vec::new();
    for (i, f) in functions.iter().enumerate() {
        let function = AggregateExprBuilder::new(Arc::clone(f), vec![Arc::clone(&ts)])
            .schema(Arc::clone(&input))
            .alias(format!("a{i}"))
            .build()
            .unwrap();
        fields.push(Field::new(format!("a{i}"), function.field().data_type().clone(), true));
        aggregates.push(AggregateCall { function: Arc::new(function), filter: None });
        output.push(OutputColumn::Aggregate(i));
    }
    let aggregation = WindowedAggregation {
        time_column: 0,
        grouping: Grouping::new(vec![k], vec![Field::new("k", DataType::Int64, true)], aggregates),
        output,
        output_schema: Arc::new(Schema::new(fields)),
        allowed_lateness: 0,
        validity: crate::event_time::EventTimeValidity { min_valid: i64::MIN, max_future_ms: i64::MAX / 4 },
        late_output: None,
        emit_early: None,
    };
    let plan =
        WindowAggregatePlan { window: WindowSpec::new(WindowKind::Tumble { size: 1000 }, 0).unwrap(), aggregation };
    WindowAggregate::new(Arc::new(plan), "w".into(), JobMetrics::default().register("w", 0), None)
}

/// (k, each aggregate as i64) of everything emitted, sorted.
fn fired(out: Collector) -> Vec<Vec<i64>> {
    let mut rows = Vec::new();
    for e in out.out {
        if let Emitted::Data(b) = e {
            let b = &b.data;
            for r in 0..b.num_rows() {
                let mut row = vec![b.column(2).as_primitive::<datafusion::arrow::datatypes::Int64Type>().value(r)];
                for c in 3..b.num_columns() {
                    let col = b.column(c);
                    row.push(match col.data_type() {
                        DataType::Int64 => col.as_primitive::<datafusion::arrow::datatypes::Int64Type>().value(r),
                        _ => col.as_primitive::<TimestampMillisecondType>().value(r),
                    });
                }
                rows.push(row);
            }
        }
    }
    rows.sort();
    rows
}

#[test]
fn a_split_slice_fires_in_arrival_order() {
    // Keys 0..50, times rising within the window [0, 1000); a snapshot is
    // taken after each of three batches, so the slice fires from parts and
    // live groups.
    let batches: Vec<(Vec<i64>, Vec<i64>)> = (0..4)
        .map(|b| {
            let ts: Vec<i64> = (0..100).map(|i| b * 200 + i).collect();
            let keys: Vec<i64> = (0..100).map(|i| (i * 7 + b) % 50).collect();
            (ts, keys)
        })
        .collect();
    let mut expected: std::collections::BTreeMap<i64, (i64, i64, i64)> = Default::default();
    for (ts, keys) in &batches {
        for (t, k) in ts.iter().zip(keys) {
            let e = expected.entry(*k).or_insert((*t, *t, 0));
            e.1 = *t;
            e.2 += 1;
        }
    }
    let all: Vec<Vec<i64>> = expected.iter().map(|(k, (first, last, n))| vec![*k, *first, *last, *n, *last]).collect();
    let ordered = [first_value_udaf(), last_value_udaf(), count_udaf(), max_udaf()];
    let any_order = [count_udaf(), max_udaf()];
    // The first set keeps arrival order (parts merged oldest first into a
    // new table), the second folds parts into the live groups.
    assert!(!operator(&ordered).plan.aggregation.grouping.merges_in_any_order());
    assert!(operator(&any_order).plan.aggregation.grouping.merges_in_any_order());
    for (functions, columns) in [(&ordered[..], &[0, 1, 2, 3, 4][..]), (&any_order[..], &[0, 3, 4][..])] {
        let want: Vec<Vec<i64>> = all.iter().map(|row| columns.iter().map(|c| row[*c]).collect()).collect();
        for checkpoints in [false, true] {
            let mut op = operator(functions);
            let mut out = Collector::default();
            for (i, (ts, keys)) in batches.iter().enumerate() {
                op.on_batch(keyed(ts, keys), &mut out).unwrap();
                if checkpoints && i < 3 {
                    op.snapshot_async(i as u64 + 1).unwrap()().unwrap();
                }
            }
            op.on_watermark(5000, &mut out).unwrap();
            assert_eq!(fired(out), want, "{} aggregates, checkpoints: {checkpoints}", functions.len());
        }
    }
}
