//! GROUP BY without a window (Flink's group aggregation): results that
//! change as rows arrive, emitted as a changelog (`weir_engine::changelog`).
//!
//! Its input may be another such aggregation (Nexmark q4: the average of
//! each category's auction maxima): the earlier results it withdraws are
//! retracted, which only COUNT, SUM, AVG, COLLECT, MIN and MAX can do
//! whatever the order.

use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::common::DFSchema;
use datafusion::logical_expr::{Aggregate, Expr};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::PhysicalExpr;
use weir_engine::changelog::{OP_COLUMN, op_field};
use weir_engine::group_aggregate::GroupAggregatePlan;
use weir_engine::plan::{Distribution, OperatorPlan, Properties};
use weir_engine::window::aggregate::OutputColumn;
use weir_engine::window::groups::Grouping;

use super::narrow::Narrowing;
use super::{Flow, StreamPlanner, aggregation_key};
use crate::error::{Result, SqlError};

/// Aggregates whose retraction does not depend on the order rows came in
/// (MIN and MAX keep a count per value: `weir_engine::group_aggregate`).
const RETRACTABLE: [&str; 6] = ["count", "sum", "avg", "collect", "min", "max"];

impl StreamPlanner<'_> {
    /// Plans `agg` over `flow`, which has no window.
    pub(super) fn group_aggregate(&mut self, agg: &Aggregate, input: &DFSchema, mut flow: Flow) -> Result<Flow> {
        let mut layout = Vec::new();
        let mut keys: Vec<Arc<dyn PhysicalExpr>> = Vec::new();
        let mut key_fields = Vec::new();
        // The row the aggregation reads: the input's, or the Expand's.
        let mut row: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
        if let [Expr::GroupingSet(gs)] = agg.group_expr.as_slice() {
            let expanded = self.expand_grouping_sets(agg, gs, input, None, &mut flow)?;
            (keys, key_fields, row, layout) = (expanded.keys, expanded.key_fields, expanded.row, expanded.layout);
        } else {
            for (i, g) in agg.group_expr.iter().enumerate() {
                if matches!(g, Expr::GroupingSet(_)) {
                    return Err(SqlError::unsupported("GROUPING SETS mixed with other GROUP BY items", None));
                }
                let field = agg.schema.field(i);
                key_fields.push(Field::new(field.name(), field.data_type().clone(), true));
                layout.push(OutputColumn::Key(keys.len()));
                keys.push(self.physical(g, input)?);
            }
        }
        let aggregates = self.aggregate_calls(agg, input, &mut layout)?;
        if flow.props().changelog {
            for (call, e) in aggregates.iter().zip(&agg.aggr_expr) {
                let name = call.function.fun().name().to_ascii_lowercase();
                if !RETRACTABLE.contains(&name.as_str()) {
                    return Err(SqlError::Unsupported {
                        construct: format!("{e} over the results of a GROUP BY without a window"),
                        detail: Some(
                            "those results change, and only COUNT, SUM, AVG, COLLECT, MIN and MAX can take back an earlier value; \
                             aggregate over a window instead"
                                .into(),
                        ),
                        position: None,
                    });
                }
            }
        }
        // Only what the aggregation reads (and the changelog column, last)
        // crosses the exchange.
        let (mut keys, mut aggregates) = (keys, aggregates);
        let width = row.len();
        if flow.props().changelog {
            row.push(op_field());
        }
        let row = Schema::new(row);
        let op = flow.props().changelog.then_some(width);
        Narrowing::apply(&mut flow, &row, &mut keys, &mut aggregates, op.as_slice())?;
        let mut fields: Vec<Field> = agg.schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(op_field());
        let plan = GroupAggregatePlan {
            grouping: Grouping::new(keys.clone(), key_fields, aggregates),
            output: layout.clone(),
            output_schema: Arc::new(Schema::new(fields)),
            retracting: flow.props().changelog,
            ttl: self.state_ttl.of_input(&agg.input),
        };
        flow.then(OperatorPlan::new(plan), Distribution::Hash(keys));
        *flow.props_mut() = Properties {
            changelog: true,
            unique_key: Some(aggregation_key(&layout)),
            rowtime: None,
            proctime: None,
            window: None,
        };
        Ok(flow)
    }
}

/// The changelog column of a batch whose visible columns are `width`, as
/// a projection passes it on.
pub(super) fn op_passthrough(width: usize) -> Arc<dyn PhysicalExpr> {
    Arc::new(Column::new(OP_COLUMN, width))
}
