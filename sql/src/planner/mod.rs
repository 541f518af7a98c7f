//! From SQL to a streaming plan: window TVFs rewritten in the AST, the query
//! planned by DataFusion, then mapped to stages of streaming operators.

pub mod day_time;
pub mod field_names;
pub mod flink_aggregates;
pub mod flink_calls;
pub mod floor_ceil;
pub mod insert_columns;
pub mod legacy_windows;
pub mod lookup;
pub mod match_recognize;
pub mod not_in;
pub mod optimize;
pub mod proctime_view;
pub mod set_operations;
pub mod stream;
pub mod table;
pub mod table_like;
pub mod table_partitions;
pub mod validate;
pub mod window_tvf;

/// Rewrites Flink's forms that DataFusion does not plan in `query`, whose
/// views are expanded already, into forms it does: legacy group windows,
/// ROW field names, Flink's calls and aggregates, `NOT IN` subqueries,
/// `FLOOR`/`CEIL … TO`, and casts in the session's time zone. One place, so
/// that a statement and a view read by a window TVF (planned apart) are
/// written alike.
pub fn rewrite_flink_forms(query: &mut datafusion::sql::sqlparser::ast::Query) -> crate::error::Result<()> {
    legacy_windows::rewrite(query)?;
    field_names::rewrite(query);
    flink_calls::rewrite(query);
    flink_aggregates::rewrite(query)?;
    not_in::rewrite(query);
    floor_ceil::rewrite(query);
    crate::time_zone::rewrite::rewrite_casts(query);
    Ok(())
}
