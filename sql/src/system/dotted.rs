//! `weir.savepoint('path')` and `weir.savepoint_rows('path', 'id')`, the
//! issue's names for the savepoint table functions. DataFusion looks a
//! table function up by the first part of its name only (`weir`), so this
//! relation planner — DataFusion's hook for planning a FROM item — renames
//! such a call to the function's registered name (`weir_savepoint`,
//! `weir_savepoint_rows`, which keep working as written) and hands it back
//! to DataFusion's own planning.

use std::sync::Arc;

use datafusion::error::Result as DfResult;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::planner::{RelationPlanner, RelationPlannerContext, RelationPlanning};
use datafusion::sql::sqlparser::ast::{Ident, ObjectName, TableFactor};

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

/// Renames `weir.<function>(…)` in FROM (see the module's comment).
#[derive(Debug)]
struct DottedTableFunctions;

impl RelationPlanner for DottedTableFunctions {
    fn plan_relation(
        &self,
        mut relation: TableFactor,
        _: &mut dyn RelationPlannerContext,
    ) -> DfResult<RelationPlanning> {
        if let TableFactor::Table { name, args: Some(_), .. } = &mut relation
            && let [schema, function] = name.0.as_slice()
            && let (Some(schema), Some(function)) = (schema.as_ident(), function.as_ident())
            && let Some(registered) = registered_name(&schema.value, &function.value)
        {
            *name = ObjectName::from(vec![Ident::new(registered)]);
        }
        Ok(RelationPlanning::Original(Box::new(relation)))
    }
}
