//! `MATCH_RECOGNIZE` (`weir_engine::cep`) over its planned input: Flink's
//! rules for pattern recognition on a stream — the input appends rows and
//! is ordered by its rowtime ascending — and the output appends one row
//! per match, whose rowtime is `MATCH_ROWTIME()` when it is selected.

use std::sync::Arc;

use datafusion::logical_expr::TableScan;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::PhysicalExpr;
use weir_engine::plan::{Distribution, OperatorPlan, Properties};

use super::{Flow, StreamPlanner, narrow};
use crate::error::{Result, SqlError};
use crate::planner::match_recognize::MatchRelation;

impl StreamPlanner<'_> {
    /// Plans the scan of a `MATCH_RECOGNIZE` placeholder: the operator
    /// over the clause's input, partitioned by its `PARTITION BY`.
    pub(super) fn match_recognize(&mut self, rel: &MatchRelation, scan: &TableScan) -> Result<Flow> {
        let mut flow = self.plan(&rel.input)?;
        self.materialize(&mut flow)?;
        flow.refuse_changelog("MATCH_RECOGNIZE", None)?;
        let plan = &rel.plan;
        let input = &plan.input_schema;
        let ordered_by = input.field(plan.time_column).name();
        if flow.props().rowtime != Some(plan.time_column) {
            let attribute = match flow.props().rowtime {
                Some(t) => format!("its rowtime '{}'", input.field(t).name()),
                None => "a rowtime, but its input has none (declare a WATERMARK on its table)".into(),
            };
            let kind = match flow.props().proctime == Some(plan.time_column) {
                true => "a PROCTIME() column: processing time",
                false => "not a time attribute",
            };
            return Err(SqlError::Unsupported {
                construct: format!("MATCH_RECOGNIZE ORDER BY {ordered_by} ({kind})"),
                detail: Some(format!(
                    "as in Flink, rows are matched in event-time order: ORDER BY must start with {attribute} ascending"
                )),
                position: None,
            });
        }
        let keys: Vec<Arc<dyn PhysicalExpr>> = plan
            .partition
            .iter()
            .map(|c| Arc::new(Column::new(input.field(*c).name(), *c)) as Arc<dyn PhysicalExpr>)
            .collect();
        let distribution = match keys.is_empty() {
            true => Distribution::Single,
            false => Distribution::Hash(keys),
        };
        let late = self.take_late_data(&plan.input_schema)?;
        let mut plan = plan.clone();
        plan.late_output = late.as_ref().map(|(side, _)| Arc::clone(side));
        flow.then(OperatorPlan::new(plan), distribution);
        flow.node.late_sink = late.map(|(_, sink)| sink);
        // Matches are appended; they have no key of their own.
        *flow.props_mut() = Properties {
            rowtime: rel.rowtime,
            ..Properties::default()
        };
        if let Some(projection) = &scan.projection {
            let passthrough: Vec<Option<usize>> = projection.iter().map(|i| Some(*i)).collect();
            flow.push(narrow::select(scan.source.schema().as_ref(), projection)?);
            flow.props_mut().remap(&passthrough);
        }
        Ok(flow)
    }
}
