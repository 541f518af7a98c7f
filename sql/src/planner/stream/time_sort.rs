//! `ORDER BY` on a stream (`engine/src/sort.rs`): Flink's rule is that
//! the first key is the time attribute, ascending; rows then leave in
//! order as the watermark passes them, through one subtask.

use std::sync::Arc;

use datafusion::arrow::compute::SortOptions;
use datafusion::logical_expr::{Expr, Sort};
use datafusion::physical_expr::PhysicalSortExpr;
use weir_engine::plan::{Distribution, OperatorPlan};
use weir_engine::sort::TimeSortPlan;

use super::{Flow, StreamPlanner};
use crate::error::{Result, SqlError};

impl StreamPlanner<'_> {
    /// Plans `sort` (without a LIMIT) over its input.
    pub(super) fn time_sort(&mut self, sort: &Sort) -> Result<Flow> {
        let mut flow = self.plan(&sort.input)?;
        self.materialize(&mut flow)?;
        flow.refuse_changelog("ORDER BY", None)?;
        let input = sort.input.schema();
        let rowtime = flow.props().rowtime;
        let time_column = match sort.expr.first() {
            Some(first) if first.asc => match &first.expr {
                Expr::Column(c) => input.index_of_column(c).ok().filter(|i| Some(*i) == rowtime),
                _ => None,
            },
            _ => None,
        };
        let Some(time_column) = time_column else {
            let attribute = rowtime
                .map(|i| format!(" ('{}')", input.field(i).name()))
                .unwrap_or_default();
            return Err(SqlError::Unsupported {
                construct: "ORDER BY on a stream that does not start with its time attribute ascending".into(),
                detail: Some(format!(
                    "as in Flink, a stream is sorted by its rowtime{attribute} first: ORDER BY <rowtime> [ASC], …"
                )),
                position: None,
            });
        };
        let order = sort
            .expr
            .iter()
            .map(|s| {
                Ok(PhysicalSortExpr {
                    expr: self.physical(&s.expr, input)?,
                    options: SortOptions {
                        descending: !s.asc,
                        nulls_first: s.nulls_first,
                    },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let plan = TimeSortPlan {
            time_column,
            order,
            schema: Arc::new(input.as_arrow().clone()),
        };
        flow.then(OperatorPlan::new(plan), Distribution::Single);
        Ok(flow)
    }
}
