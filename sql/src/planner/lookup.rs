//! `JOIN dim FOR SYSTEM_TIME AS OF s.proc_time AS d ON …`: lookup joins in
//! the AST. DataFusion does not plan table versions, so the version is
//! checked here and taken out; DataFusion then plans an ordinary join, and
//! the streaming planner recognises its lookup table by the table's
//! connector (`stream/lookup.rs`). A table that can only be looked up in
//! (`postgres`) anywhere else is refused here, where the error can point at
//! it. A table that is also read as a stream (`filesystem`) is looked up in
//! under its lookup twin's name ([`LOOKUP_TWIN`]), which tells the
//! streaming planner which of its reads is a lookup.

use std::sync::Arc;

use datafusion::physical_expr::ScalarFunctionExpr;
use datafusion::sql::sqlparser::ast::{
    Expr, Ident, ObjectName, Query, SetExpr, TableAlias, TableFactor, TableVersion, TableWithJoins,
};

use crate::catalog::{Catalog, TableDef};
use crate::error::{Result, SqlError};
use crate::planner::table::normalize;
use crate::statement::position_of;

/// The prefix of the name a table that is also read as a stream is looked
/// up in under: `__weir_lookup__side_input` is `side_input` looked up in.
/// The name exists while the query is planned (a table of the table's
/// columns), and only in lookup joins.
pub const LOOKUP_TWIN: &str = "__weir_lookup__";

/// Checks and strips the `FOR SYSTEM_TIME AS OF` of every lookup join in
/// `query`; returns the tables looked up in under their twin's name.
pub fn rewrite(query: &mut Query, catalog: &Catalog) -> Result<Vec<Arc<TableDef>>> {
    let mut twins = Vec::new();
    rewrite_query(query, catalog, &mut twins)?;
    Ok(twins)
}

fn rewrite_query(query: &mut Query, catalog: &Catalog, twins: &mut Vec<Arc<TableDef>>) -> Result<()> {
    if let Some(with) = &mut query.with {
        for cte in &mut with.cte_tables {
            rewrite_query(&mut cte.query, catalog, twins)?;
        }
    }
    rewrite_set_expr(&mut query.body, catalog, twins)
}

fn rewrite_set_expr(s: &mut SetExpr, catalog: &Catalog, twins: &mut Vec<Arc<TableDef>>) -> Result<()> {
    match s {
        SetExpr::Select(select) => {
            for twj in &mut select.from {
                rewrite_from(twj, catalog, twins)?;
            }
            Ok(())
        }
        SetExpr::Query(q) => rewrite_query(q, catalog, twins),
        SetExpr::SetOperation { left, right, .. } => {
            rewrite_set_expr(left, catalog, twins)?;
            rewrite_set_expr(right, catalog, twins)
        }
        _ => Ok(()),
    }
}

/// A table of the FROM clause: its catalog entry and the name its columns
/// are qualified with.
struct Relation<'a> {
    table: &'a TableDef,
    qualifier: String,
}

fn rewrite_from(t: &mut TableWithJoins, catalog: &Catalog, twins: &mut Vec<Arc<TableDef>>) -> Result<()> {
    let mut before: Vec<Relation> = Vec::new();
    // Subqueries and views joined before (by alias): their columns' origin
    // is not known here, so a time attribute they pass through is trusted,
    // as Flink keeps PROCTIME() a time attribute through a projection.
    let mut derived: Vec<Option<String>> = Vec::new();
    let factors = std::iter::once(&mut t.relation).chain(t.joins.iter_mut().map(|j| &mut j.relation));
    let mut first = true;
    for factor in factors {
        let joined = !std::mem::replace(&mut first, false);
        match factor {
            TableFactor::Derived { subquery, alias, .. } => {
                rewrite_query(subquery, catalog, twins)?;
                derived.push(alias.as_ref().map(|a| normalize(&a.name)));
            }
            TableFactor::Table {
                name, alias, version, ..
            } => {
                let Some(table_name) = name.0.last().and_then(|p| p.as_ident()).map(normalize) else {
                    continue;
                };
                let table = catalog.get(&table_name).map(|t| t.as_ref());
                let is_lookup = table.is_some_and(|t| t.connector.lookup.is_some());
                let also_stream = table.is_some_and(|t| t.connector.source.is_some());
                let at = position_of(name);
                match (is_lookup, version.take()) {
                    (false, None) => {}
                    (true, None) if also_stream => {}
                    (false, Some(_)) => {
                        return Err(SqlError::plan(
                            format!(
                                "FOR SYSTEM_TIME AS OF is for lookup tables (connectors 'postgres' and 'filesystem'); '{table_name}' is {}",
                                table.map_or("not a table".to_string(), |t| format!(
                                    "a '{}' table",
                                    t.connector.connector
                                ))
                            ),
                            at,
                        ));
                    }
                    (true, None) => {
                        return Err(SqlError::plan(
                            format!(
                                "table '{table_name}' (connector 'postgres') can only be joined as a lookup table: JOIN {table_name} FOR SYSTEM_TIME AS OF <stream>.<PROCTIME() column> AS … ON …"
                            ),
                            at,
                        ));
                    }
                    (true, Some(TableVersion::ForSystemTimeAsOf(e))) => {
                        if !joined {
                            return Err(SqlError::plan(
                                format!(
                                    "lookup table '{table_name}' must be on the right of its JOIN, after the stream"
                                ),
                                at,
                            ));
                        }
                        check_proctime(&e, &before, &derived)?;
                        if let Some(def) = catalog.get(&table_name).filter(|_| also_stream) {
                            if alias.is_none() {
                                *alias = Some(TableAlias { explicit: true, name: Ident::new(table_name.clone()), columns: Vec::new(), at: None });
                            }
                            *name = ObjectName::from(vec![Ident::new(format!("{LOOKUP_TWIN}{table_name}"))]);
                            twins.push(Arc::clone(def));
                        }
                    }
                    (true, Some(_)) => {
                        return Err(SqlError::plan(
                            format!(
                                "lookup table '{table_name}' takes FOR SYSTEM_TIME AS OF <stream>.<PROCTIME() column>"
                            ),
                            at,
                        ));
                    }
                }
                let qualifier = alias.as_ref().map_or(table_name, |a| normalize(&a.name));
                match table {
                    Some(table) => before.push(Relation { table, qualifier }),
                    // A view, expanded later.
                    None => derived.push(Some(qualifier)),
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// `e` must name a `PROCTIME()` column of a table joined before (or a
/// column of a view or subquery joined before, which may pass one
/// through): lookups happen as rows go by, so only processing time makes
/// sense.
fn check_proctime(e: &Expr, before: &[Relation], derived: &[Option<String>]) -> Result<()> {
    let (qualifier, column) = match e {
        Expr::Identifier(c) => (None, normalize(c)),
        Expr::CompoundIdentifier(parts) if parts.len() == 2 => (Some(normalize(&parts[0])), normalize(&parts[1])),
        _ => (None, String::new()),
    };
    let is_proctime = |r: &Relation| {
        let Ok(i) = r.table.schema.index_of(&column) else {
            return false;
        };
        r.table.computed.as_ref().is_some_and(|c| {
            <dyn datafusion::physical_plan::PhysicalExpr>::downcast_ref::<ScalarFunctionExpr>(c.exprs[i].as_ref())
                .is_some_and(|f| f.name() == "proctime")
        })
    };
    let found = before
        .iter()
        .filter(|r| qualifier.as_ref().is_none_or(|q| *q == r.qualifier))
        .any(is_proctime);
    let through_derived = match &qualifier {
        Some(q) => derived.iter().any(|d| d.as_ref() == Some(q)),
        None => !derived.is_empty(),
    };
    if found || through_derived {
        return Ok(());
    }
    Err(SqlError::plan(
        format!(
            "FOR SYSTEM_TIME AS OF {e}: a lookup join needs a PROCTIME() column of the stream it joins (declare one: proc_time AS PROCTIME())"
        ),
        position_of(e),
    ))
}
