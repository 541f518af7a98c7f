//! Dropping the columns an aggregation does not read before its exchange.
//!
//! The stream planner works on DataFusion's analysed plan, where a scan
//! still yields every column of its table. An exchange copies each column
//! of every row it re-partitions, so a wide row (Nexmark's bids carry
//! three strings) costs far more to move than the key and time an
//! aggregation reads: at parallelism 2 the copies were a sixth of q5's
//! time.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::DataFusionError;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::utils::collect_columns;
use datafusion::physical_plan::PhysicalExpr;
use weir_engine::operators::project::ProjectPlan;
use weir_engine::plan::OperatorPlan;
use weir_engine::window::groups::AggregateCall;

use super::Flow;
use crate::error::{Result, SqlError};

/// The projection that keeps the columns `keep` of rows of `input`, in
/// that order.
pub(super) fn select(input: &Schema, keep: &[usize]) -> Result<OperatorPlan> {
    let schema = projected(input, keep)?;
    let exprs = keep
        .iter()
        .map(|i| Arc::new(Column::new(input.field(*i).name(), *i)) as Arc<dyn PhysicalExpr>)
        .collect();
    Ok(OperatorPlan::new(ProjectPlan { exprs, schema }))
}

/// The columns `keep` of `input`.
fn projected(input: &Schema, keep: &[usize]) -> Result<SchemaRef> {
    Ok(Arc::new(input.project(keep).map_err(DataFusionError::from)?))
}

/// The columns of a row an operator reads, in their order in the row.
pub(super) struct Narrowing {
    keep: Vec<usize>,
}

impl Narrowing {
    /// The columns `exprs` and `calls` read, plus `also` (e.g. the
    /// rowtime); `None` when that is every column of `input`, so there is
    /// nothing to drop.
    fn of(
        input: &Schema,
        exprs: &[Arc<dyn PhysicalExpr>],
        calls: &[AggregateCall],
        also: &[usize],
    ) -> Option<Self> {
        let mut used: BTreeSet<usize> = also.iter().copied().collect();
        let call_exprs = calls
            .iter()
            .flat_map(|c| c.function.expressions().into_iter().chain(c.filter.clone()));
        for e in exprs.iter().cloned().chain(call_exprs) {
            used.extend(collect_columns(&e).iter().map(Column::index));
        }
        (used.len() < input.fields().len()).then(|| Self { keep: used.into_iter().collect() })
    }

    /// Moves an aggregation's `keys` and `calls` over rows of `input` onto
    /// the columns they and `also` read, behind a projection over `flow`'s
    /// rows; the narrowing, when a column went.
    pub(super) fn apply(
        flow: &mut Flow,
        input: &Schema,
        keys: &mut Vec<Arc<dyn PhysicalExpr>>,
        calls: &mut Vec<AggregateCall>,
        also: &[usize],
    ) -> Result<Option<Self>> {
        let Some(n) = Self::of(input, keys, calls, also) else {
            return Ok(None);
        };
        flow.push(select(input, &n.keep)?);
        *keys = keys.iter().map(|k| n.expr(k)).collect::<Result<_>>()?;
        *calls = calls.iter().map(|c| n.call(c)).collect::<Result<_>>()?;
        Ok(Some(n))
    }

    /// The row after the projection, of a row of `input`.
    pub(super) fn schema(&self, input: &Schema) -> Result<SchemaRef> {
        projected(input, &self.keep)
    }

    /// Where input column `i` is after the projection.
    pub(super) fn index(&self, i: usize) -> Result<usize> {
        self.keep
            .binary_search(&i)
            .map_err(|_| SqlError::plan(format!("column {i} was dropped before the aggregation that reads it"), None))
    }

    /// `e` reading the projected row.
    fn expr(&self, e: &Arc<dyn PhysicalExpr>) -> Result<Arc<dyn PhysicalExpr>> {
        let moved = Arc::clone(e).transform(|node| {
            let Some(c) = node.downcast_ref::<Column>() else {
                return Ok(Transformed::no(node));
            };
            let at = self
                .index(c.index())
                .map_err(|e| DataFusionError::Plan(e.to_string()))?;
            Ok(Transformed::yes(Arc::new(Column::new(c.name(), at)) as Arc<dyn PhysicalExpr>))
        })?;
        Ok(moved.data)
    }

    /// `call` with its arguments and filter reading the projected row.
    fn call(&self, call: &AggregateCall) -> Result<AggregateCall> {
        let args = call.function.expressions().iter().map(|e| self.expr(e)).collect::<Result<_>>()?;
        let order_by = call
            .function
            .order_bys()
            .iter()
            .map(|s| self.expr(&s.expr))
            .collect::<Result<_>>()?;
        let function = call.function.with_new_expressions(args, order_by).ok_or_else(|| {
            SqlError::plan(format!("aggregate {} cannot be moved onto fewer columns", call.function.name()), None)
        })?;
        Ok(AggregateCall {
            function: Arc::new(function),
            filter: call.filter.as_ref().map(|f| self.expr(f)).transpose()?,
        })
    }
}
