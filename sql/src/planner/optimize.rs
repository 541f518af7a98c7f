//! DataFusion's optimizer over a streaming query, with the rules that keep
//! its meaning on an unbounded stream.
//!
//! The stream planner (`stream.rs`) maps the optimised logical plan, so
//! what a rule does here — a filter moved below a join or into one side, a
//! comma join turned into an equi-join, constants folded — Weir does not do
//! by hand. Rules left out, and why:
//!
//! - `OptimizeProjections`: prunes the columns a window TVF's scan gives
//!   to those read above it, dropping the rowtime column a window
//!   aggregate needs (the aggregate then has no window). Weir prunes at
//!   its exchanges instead (`stream/narrow.rs`), keeping the rowtime.
//! - `CommonSubexprEliminate`, `ExtractLeafExpressions`,
//!   `PushDownLeafProjections`: add projections between a window TVF and
//!   its aggregate, which hide the window from the aggregate.
//! - `SingleDistinctToGroupBy`: turns `count(DISTINCT x)` into two stacked
//!   aggregations; on a stream the inner one's results are a changelog,
//!   and a window's result would no longer be final when the window fires.
//! - `EliminateFilter`, `PropagateEmptyRelation`, `EliminateLimit`,
//!   `PushDownLimit`: make empty relations and limits, which have no
//!   source on a stream; `WHERE FALSE` stays a filter that drops every row.
//! - `ScalarSubqueryToJoin`, `DecorrelateLateralJoin`, `EliminateJoin`:
//!   make joins the stream planner does not run (the subqueries are
//!   refused as unsupported instead of as joins).
//!
//! `DecorrelatePredicateSubquery` is kept: `IN` / `EXISTS` subqueries
//! become semi and anti joins, which run as window joins (Flink's window
//! semi and anti joins) and are refused by name otherwise.
//! - `RewriteSetComparison`, `UnionsToFilter`, `EliminateGroupByConstant`:
//!   rewrite set operations and constant keys into forms whose streaming
//!   meaning differs (a filter for a UNION of one input keeps no
//!   distinctness; a constant key's group is Flink's too).
//!
//! `ReplaceDistinctWithAggregate` is kept: `SELECT DISTINCT` and `UNION`
//! become a GROUP BY of every column, which is how Flink runs them (an
//! updating result that emits a row the first time it is seen).

use std::sync::Arc;

use datafusion::execution::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::optimizer::decorrelate_predicate_subquery::DecorrelatePredicateSubquery;
use datafusion::optimizer::eliminate_cross_join::EliminateCrossJoin;
use datafusion::optimizer::eliminate_duplicated_expr::EliminateDuplicatedExpr;
use datafusion::optimizer::eliminate_outer_join::EliminateOuterJoin;
use datafusion::optimizer::extract_equijoin_predicate::ExtractEquijoinPredicate;
use datafusion::optimizer::filter_null_join_keys::FilterNullJoinKeys;
use datafusion::optimizer::optimize_unions::OptimizeUnions;
use datafusion::optimizer::push_down_filter::PushDownFilter;
use datafusion::optimizer::replace_distinct_aggregate::ReplaceDistinctWithAggregate;
use datafusion::optimizer::simplify_expressions::SimplifyExpressions;
use datafusion::optimizer::{Optimizer, OptimizerRule};

use datafusion::error::Result;

/// The rules, in DataFusion's own order.
fn rules() -> Vec<Arc<dyn OptimizerRule + Send + Sync>> {
    vec![
        Arc::new(OptimizeUnions::new()),
        Arc::new(SimplifyExpressions::new()),
        Arc::new(ReplaceDistinctWithAggregate::new()),
        Arc::new(DecorrelatePredicateSubquery::new()),
        Arc::new(ExtractEquijoinPredicate::new()),
        Arc::new(EliminateDuplicatedExpr::new()),
        Arc::new(EliminateCrossJoin::new()),
        Arc::new(FilterNullJoinKeys::default()),
        Arc::new(EliminateOuterJoin::new()),
        Arc::new(PushDownFilter::new()),
    ]
}

/// `plan`, analysed, optimised for a stream.
pub fn optimize(plan: LogicalPlan, state: &SessionState) -> Result<LogicalPlan> {
    Optimizer::with_rules(rules()).optimize(plan, state, |_, _| {})
}
