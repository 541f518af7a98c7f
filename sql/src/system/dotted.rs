//! `weir.savepoint('path')` and `weir.savepoint_rows('path', 'id')`, the
//! issue's names for the savepoint table functions. DataFusion looks a
//! table function up by the first part of its name only (`weir`), so this
//! relation planner — DataFusion's hook for planning a FROM item — renames
//! such a call to the function's registered name (`weir_savepoint`,
//! `weir_savepoint_rows`, which keep working as written) and hands it back
//! to DataFusion's own planning.
//!
//! pgwire's front end for DataFusion's statements (datafusion-postgres)
//! drops the schema of every table function call (`weir.savepoint(…)`
//! becomes `savepoint(…)`) before DataFusion plans it, so `weir serve`
//! renames the calls of a statement it hands there first, with the same
//! renaming ([`rename_calls`]).

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::error::Result as DfResult;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::planner::{RelationPlanner, RelationPlannerContext, RelationPlanning};
use datafusion::sql::sqlparser::ast::{Ident, ObjectName, Query, TableFactor, VisitMut, VisitorMut};

use super::{SCHEMA, savepoint, savepoint_rows};

/// Registers the renaming with `ctx`.
pub(super) fn register(ctx: &SessionContext) -> DfResult<()> {
    ctx.register_relation_planner(Arc::new(DottedTableFunctions))
}

/// The registered name of a `weir.<function>` table function call.
pub(super) fn registered_name(schema: &str, function: &str) -> Option<&'static str> {
    if !schema.eq_ignore_ascii_case(SCHEMA) {
        return None;
    }
    [savepoint::NAME, savepoint_rows::NAME]
        .into_iter()
        .find(|name| name.strip_prefix("weir_").is_some_and(|f| f.eq_ignore_ascii_case(function)))
}

/// Renames the table function called in `relation` if it is
/// `weir.<function>(…)` of a system table function; whether it did.
fn rename(relation: &mut TableFactor) -> bool {
    if let TableFactor::Table { name, args: Some(_), .. } = relation
        && let [schema, function] = name.0.as_slice()
        && let (Some(schema), Some(function)) = (schema.as_ident(), function.as_ident())
        && let Some(registered) = registered_name(&schema.value, &function.value)
    {
        *name = ObjectName::from(vec![Ident::new(registered)]);
        return true;
    }
    false
}

/// Renames every `weir.<function>(…)` call in FROM of `query` to the
/// function's registered name, as the relation planner does, for a planner
/// that would not see the schema (see the module's comment). Whether
/// anything was renamed.
pub fn rename_calls(query: &mut Query) -> bool {
    struct Renamed(bool);
    impl VisitorMut for Renamed {
        type Break = ();
        fn pre_visit_table_factor(&mut self, relation: &mut TableFactor) -> ControlFlow<()> {
            self.0 |= rename(relation);
            ControlFlow::Continue(())
        }
    }
    let mut renamed = Renamed(false);
    let _ = query.visit(&mut renamed);
    renamed.0
}

/// Renames `weir.<function>(…)` in FROM (see the module's comment).
#[derive(Debug)]
struct DottedTableFunctions;

impl RelationPlanner for DottedTableFunctions {
    fn plan_relation(
        &self,
        mut relation: TableFactor,
        _: &mut dyn RelationPlannerContext,
    ) -> DfResult<RelationPlanning> {
        rename(&mut relation);
        Ok(RelationPlanning::Original(Box::new(relation)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statement::WeirStatement;

    fn renamed(sql: &str) -> Option<String> {
        let statements = crate::parse_script(sql).unwrap();
        let WeirStatement::Query { query, .. } = &statements[0].statement else { panic!("{sql}: not a query") };
        let mut query = query.clone();
        rename_calls(&mut query).then(|| query.to_string())
    }

    /// Every `weir.<function>(…)` call in FROM, in any case and nested, is
    /// renamed; registered names, other schemas' functions and tables are not.
    #[test]
    fn dotted_calls_are_renamed_and_nothing_else() {
        let sql =
            "SELECT * FROM WEIR.Savepoint('p') AS s JOIN (SELECT * FROM weir.savepoint_rows('p', 'W#0')) r ON true";
        let text = renamed(sql).unwrap();
        assert!(text.contains("FROM weir_savepoint('p') AS s JOIN"), "{text}");
        assert!(text.contains("FROM weir_savepoint_rows('p', 'W#0'))"), "{text}");
        assert!(!text.to_lowercase().contains("weir."), "{text}");
        for sql in
            ["SELECT * FROM weir_savepoint('p')", "SELECT * FROM other.savepoint('p')", "SELECT * FROM weir.jobs"]
        {
            assert_eq!(renamed(sql), None, "{sql}");
        }
    }
}
