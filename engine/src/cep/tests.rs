//! `MATCH_RECOGNIZE` restored at another parallelism goes on as the
//! uninterrupted one: waiting rows and open attempts follow their key
//! groups.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, TimeUnit, TimestampMillisecondType};
use datafusion::functions_aggregate::count::count_udaf;
use datafusion::logical_expr::Operator as Op;
use datafusion::physical_expr::aggregate::AggregateExprBuilder;
use datafusion::physical_expr::expressions::{BinaryExpr, Column};
use datafusion::physical_plan::PhysicalExpr;

use super::{AfterMatch, Condition, MatchPlan, MatchRecognize, Navigation, Nfa, Pattern};
use crate::message::StreamBatch;
use crate::metrics::JobMetrics;
use crate::operator::{Collector, Emitted};
use crate::testing::{Part, kvt_schema, whole_and_restored};

/// `current <op> previous` over `v`.
fn compare(op: Op) -> Condition {
    let schema = Arc::new(Schema::new(vec![
        Field::new("c", DataType::Int64, true),
        Field::new("p", DataType::Int64, true),
    ]));
    Condition {
        navigations: vec![
            Navigation::Last {
                var: None,
                slot: 1,
                offset: 0,
            },
            Navigation::Prev { slot: 1, offset: 1 },
        ],
        schema,
        expr: Arc::new(BinaryExpr::new(
            Arc::new(Column::new("c", 0)),
            op,
            Arc::new(Column::new("p", 1)),
        )),
        text: format!("v {op} PREV(v)"),
    }
}

/// One navigation as the whole measure.
fn measure(navigation: Navigation, data_type: DataType) -> Condition {
    Condition {
        navigations: vec![navigation],
        schema: Arc::new(Schema::new(vec![Field::new("m", data_type, true)])),
        expr: Arc::new(Column::new("m", 0)),
        text: "m".into(),
    }
}

/// `PARTITION BY k ORDER BY ts MEASURES FIRST(A.v), MATCH_ROWTIME(),
/// COUNT(B.v) PATTERN (A B+ C) WITHIN 2 s DEFINE B AS v < PREV(v), C AS v >
/// PREV(v)`: V-shapes of `v`.
fn operator() -> MatchRecognize {
    let count = AggregateExprBuilder::new(
        count_udaf(),
        vec![Arc::new(Column::new("v", 0)) as Arc<dyn PhysicalExpr>],
    )
    .schema(Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, true)])))
    .alias("n")
    .build()
    .unwrap();
    let timestamp = DataType::Timestamp(TimeUnit::Millisecond, None);
    let pattern = Pattern::Concat(vec![
        Pattern::Var(0),
        Pattern::Repeat {
            inner: Box::new(Pattern::Var(1)),
            min: 1,
            max: None,
            greedy: true,
        },
        Pattern::Var(2),
    ]);
    let plan = MatchPlan {
        partition: vec![0],
        time_column: 2,
        derived: Vec::new(),
        variables: vec!["A".into(), "B".into(), "C".into()],
        nfa: Nfa::compile(&pattern).unwrap(),
        pattern_text: "A B+ C".into(),
        defines: vec![None, Some(compare(Op::Lt)), Some(compare(Op::Gt))],
        measures: vec![
            measure(
                Navigation::First {
                    var: Some(0),
                    slot: 1,
                    offset: 0,
                },
                DataType::Int64,
            ),
            measure(
                Navigation::Last {
                    var: None,
                    slot: 2,
                    offset: 0,
                },
                timestamp.clone(),
            ),
            measure(
                Navigation::Aggregate {
                    var: Some(1),
                    slot: 1,
                    input: DataType::Int64,
                    function: Arc::new(count),
                },
                DataType::Int64,
            ),
        ],
        after_match: AfterMatch::PastLastRow,
        within: Some(2000),
        input_schema: kvt_schema(),
        output_schema: Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("a", DataType::Int64, true),
            Field::new("t", timestamp, true),
            Field::new("n", DataType::Int64, true),
        ])),
        late_output: None,
    };
    let metrics = Arc::new(JobMetrics::default());
    MatchRecognize::new(Arc::new(plan), "match".into(), metrics.register("match", 0)).unwrap()
}

/// Part `p`: 200 rows over 7 keys at distinct times `1000 p ..`,
/// disordered, with values that go up and down.
fn part(p: i64) -> Vec<(i64, i64, i64)> {
    (0..200)
        .map(|i| {
            (
                (i * 5 + p) % 7,
                (i * 7919 + p * 31) % 101,
                1000 * p + (i * 37) % 200 * 5,
            )
        })
        .collect()
}

/// Every emitted match as `(k, a, t, n)`.
fn matches_of(out: Collector, into: &mut BTreeSet<[i64; 4]>) {
    for e in out.out {
        let Emitted::Data(b) = e else { continue };
        let int = |i: usize| b.data.column(i).as_primitive::<Int64Type>().clone();
        let (k, a, n) = (int(0), int(1), int(3));
        let t = b.data.column(2).as_primitive::<TimestampMillisecondType>();
        for r in 0..b.data.num_rows() {
            assert!(
                into.insert([k.value(r), a.value(r), t.value(r), n.value(r)]),
                "a match left twice"
            );
        }
    }
}

#[test]
fn restored_at_another_parallelism_it_goes_on_where_it_was() {
    let mut parts: Vec<Part> = (0..6).map(|p| (part(p), 1000 * p + 500)).collect();
    parts.push((Vec::new(), i64::MAX));
    let key = |b: &StreamBatch| -> Vec<ArrayRef> { vec![Arc::clone(b.data.column(0))] };
    let (whole, restored) = whole_and_restored(operator, &parts, 3, 3, key);
    let (mut expected, mut got) = (BTreeSet::new(), BTreeSet::new());
    whole.into_iter().for_each(|out| matches_of(out, &mut expected));
    restored.into_iter().for_each(|out| matches_of(out, &mut got));
    assert!(expected.len() > 50, "the data has V-shapes: {}", expected.len());
    assert_eq!(got, expected);
    // The truth for one key: V-shapes found scanning its rows in order.
    let mut key0: Vec<(i64, i64)> = (0..6).flat_map(part).filter(|r| r.0 == 0).map(|r| (r.2, r.1)).collect();
    key0.sort();
    let mut truth = BTreeSet::new();
    let mut s = 0;
    while s + 2 < key0.len() {
        let mut e = s + 1;
        while e < key0.len() && key0[e].1 < key0[e - 1].1 && key0[e].0 - key0[s].0 < 2000 {
            e += 1;
        }
        let found = e > s + 1 && e < key0.len() && key0[e].1 > key0[e - 1].1 && key0[e].0 - key0[s].0 < 2000;
        if found {
            truth.insert([0, key0[s].1, key0[e].0, (e - s - 1) as i64]);
            s = e + 1;
        } else {
            s += 1;
        }
    }
    let key0_got: BTreeSet<[i64; 4]> = got.iter().filter(|m| m[0] == 0).copied().collect();
    assert_eq!(key0_got, truth);
}
