//! A group aggregate's saved state read back as rows, for
//! `weir_savepoint_rows`: the operator restores the state itself (one
//! reader of its layout, [`decode_key_groups`]) and each group gives its
//! key and its aggregates' current values, as its next output would.

use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema};

use super::{GroupAggregatePlan, KeyGroupRows, decode_key_groups};
use crate::checkpoint::chunk::ChunkMap;
use crate::error::Result;
use crate::window::aggregate::OutputColumn;
use crate::window::groups::Grouping;

/// The groups of every task's saved state `states` (and the chunks they
/// reference) of a group aggregate of `grouping` — over a changelog when
/// `retracting` — by key group: key columns and one column per aggregate,
/// typed as the aggregate's result.
pub fn state_rows(
    grouping: Grouping,
    retracting: bool,
    states: &[&[u8]],
    chunks: &ChunkMap,
) -> Result<Vec<KeyGroupRows>> {
    let mut fields: Vec<Field> = grouping.key_schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    let mut output: Vec<OutputColumn> = (0..fields.len()).map(OutputColumn::Key).collect();
    for (a, call) in grouping.aggregates.iter().enumerate() {
        fields.push(call.function.field().as_ref().clone());
        output.push(OutputColumn::Aggregate(a));
    }
    let plan =
        GroupAggregatePlan { grouping, output, output_schema: Arc::new(Schema::new(fields)), retracting, ttl: None };
    decode_key_groups(Arc::new(plan), states, chunks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::chunk::ChunkWriter;
    use crate::message::StreamBatch;
    use crate::operator::{Collector, Operator};
    use crate::window::groups::AggregateCall;
    use datafusion::arrow::array::{AsArray, Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Int64Type};
    use datafusion::functions_aggregate::{count::count_udaf, min_max::max_udaf};
    use datafusion::physical_expr::aggregate::AggregateExprBuilder;
    use datafusion::physical_expr::expressions::Column;
    use datafusion::physical_plan::PhysicalExpr;
    use std::collections::BTreeMap;

    /// `k, count(v), max(v) GROUP BY k` over (k, v).
    fn grouping() -> Grouping {
        let input =
            Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, true), Field::new("v", DataType::Int64, true)]));
        let k: Arc<dyn PhysicalExpr> = Arc::new(Column::new("k", 0));
        let v: Arc<dyn PhysicalExpr> = Arc::new(Column::new("v", 1));
        let call = |f| AggregateCall {
            function: Arc::new(
                AggregateExprBuilder::new(f, vec![Arc::clone(&v)])
                    .schema(Arc::clone(&input))
                    .alias("a")
                    .build()
                    .unwrap(),
            ),
            filter: None,
        };
        Grouping::new(vec![k], vec![Field::new("k", DataType::Int64, true)], vec![call(count_udaf()), call(max_udaf())])
    }

    /// The groups of two subtasks' checkpoints (of keys of their own, as
    /// key groups are), chunks and all, read back: per key its count and
    /// max over its rows, in the key group its checkpoint put it in.
    #[test]
    fn saved_groups_read_as_rows() {
        let mut expected = BTreeMap::<i64, (i64, i64)>::new();
        let mut states = Vec::new();
        let mut chunks = ChunkMap::default();
        for subtask in 0..2i64 {
            let rows: Vec<(i64, i64)> = (0..300).map(|i| (i % 37 + subtask * 40, (i * 13 + subtask) % 401)).collect();
            for (k, v) in &rows {
                let e = expected.entry(*k).or_insert((0, i64::MIN));
                *e = (e.0 + 1, e.1.max(*v));
            }
            let data = RecordBatch::try_new(
                Arc::new(Schema::new(vec![
                    Field::new("k", DataType::Int64, true),
                    Field::new("v", DataType::Int64, true),
                ])),
                vec![
                    Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
                    Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
                ],
            )
            .unwrap();
            let plan = GroupAggregatePlan {
                grouping: grouping(),
                output: vec![OutputColumn::Key(0), OutputColumn::Aggregate(0), OutputColumn::Aggregate(1)],
                output_schema: Arc::new(Schema::new(vec![
                    Field::new("k", DataType::Int64, true),
                    Field::new("c", DataType::Int64, true),
                    Field::new("m", DataType::Int64, true),
                    crate::changelog::op_field(),
                ])),
                retracting: false,
                ttl: None,
            };
            let metrics = crate::metrics::JobMetrics::default().register("g", 0);
            let mut op = super::super::GroupAggregate::new(Arc::new(plan), "g".into(), metrics, None).unwrap();
            op.on_batch(StreamBatch::new(data), &mut Collector::default()).unwrap();
            let mut writer = ChunkWriter::default();
            states.push(op.snapshot(1, &mut writer).unwrap().unwrap());
            chunks.extend(writer.new).unwrap();
        }
        let states: Vec<&[u8]> = states.iter().map(Vec::as_slice).collect();
        let mut got = BTreeMap::new();
        let mut hashes = Vec::new();
        for part in state_rows(grouping(), false, &states, &chunks).unwrap() {
            let at = crate::runtime::exchange::key_groups(&part.keys, part.rows, &mut hashes).unwrap();
            assert!(at.iter().all(|g| *g == part.key_group), "rows in the key group of their keys");
            let (k, c, m) = (&part.keys[0], &part.values[0], &part.values[1]);
            for r in 0..part.rows {
                let key = k.as_primitive::<Int64Type>().value(r);
                let row = (c.as_primitive::<Int64Type>().value(r), m.as_primitive::<Int64Type>().value(r));
                assert!(got.insert(key, row).is_none(), "key {key} twice");
            }
        }
        assert_eq!(got, expected);
        // Damaged state is an error, not a panic.
        let cut = &states[0][..states[0].len() - 3];
        assert!(state_rows(grouping(), false, &[cut], &chunks).is_err());
    }
}
