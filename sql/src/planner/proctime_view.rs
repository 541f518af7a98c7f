//! A view's `PROCTIME()` column as a processing-time attribute, as Flink
//! keeps it (Nexmark q12: `CREATE VIEW B AS SELECT *, PROCTIME() AS p_time
//! FROM bid`, then `TUMBLE(TABLE B, DESCRIPTOR(p_time), …)`).
//!
//! Windows over processing time fire on the wall clock, so the view's
//! sources must carry the wall clock as their watermark instead of their
//! event time (`planner/stream.rs` plans them so). That is right only when
//! nothing in the view depends on event time: a view of projections and
//! filters over tables, which this module checks.

use datafusion::logical_expr::{Expr, LogicalPlan};

use crate::catalog::Catalog;
use crate::planner::window_tvf::WINDOW_RELATION;

/// Whether column `column` of `plan` is the wall clock: a `PROCTIME()`
/// call, or a table's `PROCTIME()` column, passed through unchanged.
pub fn is_proctime(plan: &LogicalPlan, column: usize, catalog: &Catalog) -> bool {
    match plan {
        LogicalPlan::Projection(p) => match p.expr.get(column).map(|e| e.clone().unalias_nested().data) {
            Some(Expr::ScalarFunction(f)) => f.name().eq_ignore_ascii_case("proctime"),
            Some(Expr::Column(c)) => p
                .input
                .schema()
                .index_of_column(&c)
                .is_ok_and(|i| is_proctime(&p.input, i, catalog)),
            _ => false,
        },
        LogicalPlan::SubqueryAlias(a) => is_proctime(&a.input, column, catalog),
        LogicalPlan::Filter(f) => is_proctime(&f.input, column, catalog),
        LogicalPlan::TableScan(scan) => {
            let field = scan.projected_schema.field(column).name();
            catalog
                .get(scan.table_name.table())
                .and_then(|t| t.proctime())
                .is_some_and(|p| p == field)
        }
        _ => false,
    }
}

/// The first node of `plan` whose results depend on event time (an
/// aggregation, a join, a sort, a window), if any: over such a view,
/// processing-time windows are refused.
pub fn event_time_node(plan: &LogicalPlan) -> Option<&'static str> {
    match plan {
        // Window TVFs are planned as scans of their relations.
        LogicalPlan::TableScan(scan) if scan.table_name.table().starts_with(WINDOW_RELATION) => Some("a window"),
        LogicalPlan::Projection(_)
        | LogicalPlan::SubqueryAlias(_)
        | LogicalPlan::Filter(_)
        | LogicalPlan::TableScan(_)
        | LogicalPlan::Union(_) => plan.inputs().into_iter().find_map(event_time_node),
        LogicalPlan::Aggregate(_) => Some("an aggregation"),
        LogicalPlan::Join(_) => Some("a join"),
        LogicalPlan::Sort(_) => Some("an ORDER BY"),
        _ => Some("this kind of query"),
    }
}
