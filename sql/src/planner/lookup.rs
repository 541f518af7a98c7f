//! `JOIN dim FOR SYSTEM_TIME AS OF s.proc_time AS d ON …`: lookup joins in
//! the AST. DataFusion does not plan table versions, so the version is
//! checked here and taken out; DataFusion then plans an ordinary join, and
//! the streaming planner recognises its lookup table by the table's
//! connector (`stream/lookup.rs`). A table that can only be looked up in
//! (`postgres`) anywhere else is refused here, where the error can point at
//! it. A table that is also read as a stream (`filesystem`) is looked up in
//! under its lookup twin's name ([`LOOKUP_TWIN`]), which tells the
//! streaming planner which of its reads is a lookup.
//!
//! `FOR SYSTEM_TIME AS OF` the rowtime of the left side is Flink's
//! event-time temporal join against a versioned table (a stream with a
//! PRIMARY KEY and a WATERMARK): checked here, then its table is wrapped
//! in a subquery whose inner alias ([`TEMPORAL`]) tells the streaming
//! planner, which runs the join as a temporal join.

use std::sync::Arc;

use datafusion::sql::sqlparser::ast::{
    Expr, Ident, JoinOperator, ObjectName, Query, SelectItem, SelectItemQualifiedWildcardKind, SetExpr, TableAlias,
    TableFactor, TableVersion, TableWithJoins,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::catalog::{Catalog, TableDef};
use crate::error::{Position, Result, SqlError};
use crate::planner::table::normalize;
use crate::statement::position_of;

/// The prefix of the name a table that is also read as a stream is looked
/// up in under: `__weir_lookup__side_input` is `side_input` looked up in.
/// The name exists while the query is planned (a table of the table's
/// columns), and only in lookup joins.
pub const LOOKUP_TWIN: &str = "__weir_lookup__";

/// The prefix of the alias that marks the versioned table of an event-time
/// temporal join: `JOIN rates FOR SYSTEM_TIME AS OF o.order_time AS r`
/// becomes `JOIN (SELECT * FROM rates AS "__weir_temporal__order_time") AS
/// r`, which DataFusion plans as an ordinary join, and the streaming planner
/// (`stream/temporal_join.rs`) plans as a temporal join AS OF the left
/// side's `order_time`.
pub const TEMPORAL: &str = "__weir_temporal__";

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

/// A subquery or view of the FROM clause (by alias) and its rowtime
/// columns, as far as its SELECT tells ([`rowtimes`]).
type DerivedTimes = (Option<String>, Vec<String>);

fn rewrite_from(t: &mut TableWithJoins, catalog: &Catalog, twins: &mut Vec<Arc<TableDef>>) -> Result<()> {
    let mut before: Vec<Relation> = Vec::new();
    // Subqueries and views joined before (by alias): their columns' origin
    // is not known here, so a time attribute they pass through is trusted,
    // as Flink keeps PROCTIME() a time attribute through a projection.
    let mut derived: Vec<Option<String>> = Vec::new();
    // Their rowtime columns, as far as their SELECT tells (for temporal
    // joins AS OF a view's rowtime).
    let mut derived_times: Vec<DerivedTimes> = Vec::new();
    let factors = std::iter::once((&mut t.relation, None))
        .chain(t.joins.iter_mut().map(|j| (&mut j.relation, Some(&j.join_operator))));
    for (factor, operator) in factors {
        let joined = operator.is_some();
        let mut versioned = None;
        match factor {
            TableFactor::Derived { subquery, alias, .. } => {
                derived_times.push((alias.as_ref().map(|a| normalize(&a.name)), rowtimes(subquery, catalog)));
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
                    // FOR SYSTEM_TIME AS OF a rowtime of the left side: an
                    // event-time temporal join (a lookup table is looked up
                    // in at a PROCTIME() column only).
                    (_, Some(TableVersion::ForSystemTimeAsOf(e)))
                        if let Some(t) = table
                            && let Some(column) = as_of_rowtime(&e, &before, &derived, &derived_times, is_lookup) =>
                    {
                        check_temporal(t, &e, operator, at)?;
                        versioned = Some((name.clone(), alias.take(), column));
                    }
                    (false, Some(v)) => {
                        let not_rowtime = match (&v, table) {
                            (TableVersion::ForSystemTimeAsOf(e), Some(_)) => {
                                format!(", and {e} is not the rowtime of a table joined before it")
                            }
                            _ => String::new(),
                        };
                        return Err(SqlError::plan(
                            format!(
                                "FOR SYSTEM_TIME AS OF is for lookup tables (connectors 'postgres' and 'filesystem') AS OF a PROCTIME() column, and for versioned tables (PRIMARY KEY and WATERMARK) AS OF the rowtime (WATERMARK column) of the table joined on the left; '{table_name}' is {}{not_rowtime}",
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
                        check_proctime(&e, &before, &derived, also_stream)?;
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
                let qualifier = match (&versioned, alias.as_ref()) {
                    (Some((_, Some(a), _)), _) | (None, Some(a)) => normalize(&a.name),
                    _ => table_name,
                };
                match table {
                    Some(table) => before.push(Relation { table, qualifier }),
                    // A view, expanded later.
                    None => derived.push(Some(qualifier)),
                }
            }
            _ => {}
        }
        if let Some((name, alias, column)) = versioned {
            *factor = versioned_table(name, alias, &column)?;
        }
    }
    Ok(())
}

/// `e` must name a `PROCTIME()` column of a table joined before (or a
/// column of a view or subquery joined before, which may pass one
/// through): lookups happen as rows go by, so only processing time makes
/// sense.
fn check_proctime(e: &Expr, before: &[Relation], derived: &[Option<String>], also_stream: bool) -> Result<()> {
    let (qualifier, column) = match e {
        Expr::Identifier(c) => (None, normalize(c)),
        Expr::CompoundIdentifier(parts) if parts.len() == 2 => (Some(normalize(&parts[0])), normalize(&parts[1])),
        _ => (None, String::new()),
    };
    let is_proctime = |r: &Relation| {
        let Ok(i) = r.table.schema.index_of(&column) else {
            return false;
        };
        r.table.computed.as_ref().is_some_and(|c| c.is_proctime(i))
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
            "FOR SYSTEM_TIME AS OF {e}: a lookup join needs a PROCTIME() column of the stream it joins (declare one: proc_time AS PROCTIME()){}",
            if also_stream { "; an event-time temporal join needs the rowtime (WATERMARK column) of the table joined on the left" } else { "" }
        ),
        position_of(e),
    ))
}

/// The column `e` names when it is the rowtime (WATERMARK column) of a
/// table joined before, or of a view or subquery joined before (trusted
/// here, checked by the streaming planner) unless the joined table is a
/// lookup table, which a view's column rather looks up in.
fn as_of_rowtime(
    e: &Expr,
    before: &[Relation],
    derived: &[Option<String>],
    derived_times: &[DerivedTimes],
    is_lookup: bool,
) -> Option<String> {
    let (qualifier, column) = match e {
        Expr::Identifier(c) => (None, normalize(c)),
        Expr::CompoundIdentifier(parts) if parts.len() == 2 => (Some(normalize(&parts[0])), normalize(&parts[1])),
        _ => return None,
    };
    let found = before
        .iter()
        .filter(|r| qualifier.as_ref().is_none_or(|q| *q == r.qualifier))
        .any(|r| r.table.rowtime() == Some(column.as_str()))
        || derived_times
            .iter()
            .filter(|(alias, _)| qualifier.is_none() || *alias == qualifier)
            .any(|(_, times)| times.contains(&column));
    let through_derived = match &qualifier {
        Some(q) => derived.iter().any(|d| d.as_ref() == Some(q)),
        None => !derived.is_empty(),
    };
    (found || (through_derived && !is_lookup)).then_some(column)
}

/// The columns of `query`'s rows that are a table's rowtime selected
/// unchanged (by name, `*`, or under an alias), through subqueries: what a
/// view can be joined AS OF. Anything it cannot tell is left out.
fn rowtimes(query: &Query, catalog: &Catalog) -> Vec<String> {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return match query.body.as_ref() {
            SetExpr::Query(q) => rowtimes(q, catalog),
            _ => Vec::new(),
        };
    };
    // The rowtimes of its FROM, with the names they are qualified by.
    let mut from: Vec<(String, String)> = Vec::new();
    for twj in &select.from {
        for factor in std::iter::once(&twj.relation).chain(twj.joins.iter().map(|j| &j.relation)) {
            match factor {
                TableFactor::Table { name, alias, .. } => {
                    let Some(table) = name.0.last().and_then(|p| p.as_ident()).map(normalize) else {
                        continue;
                    };
                    let qualifier = alias.as_ref().map_or(table.clone(), |a| normalize(&a.name));
                    if let Some(t) = catalog.get(&table).and_then(|t| t.rowtime()) {
                        from.push((qualifier, t.to_string()));
                    }
                }
                TableFactor::Derived { subquery, alias: Some(a), .. } => {
                    from.extend(rowtimes(subquery, catalog).into_iter().map(|t| (normalize(&a.name), t)));
                }
                _ => {}
            }
        }
    }
    let rowtime = |e: &Expr| -> Option<String> {
        let (qualifier, column) = match e {
            Expr::Identifier(c) => (None, normalize(c)),
            Expr::CompoundIdentifier(parts) if parts.len() == 2 => (Some(normalize(&parts[0])), normalize(&parts[1])),
            _ => return None,
        };
        from.iter()
            .any(|(q, t)| *t == column && qualifier.as_ref().is_none_or(|want| want == q))
            .then_some(column)
    };
    let mut times = Vec::new();
    for item in &select.projection {
        match item {
            SelectItem::Wildcard(_) => times.extend(from.iter().map(|(_, t)| t.clone())),
            SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(name), _) => {
                let q = name.0.last().and_then(|p| p.as_ident()).map(normalize);
                times.extend(from.iter().filter(|(f, _)| q.as_ref() == Some(f)).map(|(_, t)| t.clone()));
            }
            SelectItem::UnnamedExpr(e) => times.extend(rowtime(e)),
            SelectItem::ExprWithAlias { expr, alias } if rowtime(expr).is_some() => times.push(normalize(alias)),
            _ => {}
        }
    }
    times
}

/// An event-time temporal join needs the versioned table on the right of
/// an INNER or LEFT join, readable as a stream, with a primary key and a
/// watermark (its versions' times), as in Flink.
fn check_temporal(table: &TableDef, e: &Expr, operator: Option<&JoinOperator>, at: Option<Position>) -> Result<()> {
    let name = &table.name;
    match operator {
        None => {
            return Err(SqlError::plan(
                format!("versioned table '{name}' must be on the right of its JOIN, after the table joined AS OF its rowtime"),
                at,
            ));
        }
        Some(JoinOperator::Join(_) | JoinOperator::Inner(_) | JoinOperator::Left(_) | JoinOperator::LeftOuter(_)) => {}
        Some(op) => {
            let kind = match op {
                JoinOperator::Right(_) | JoinOperator::RightOuter(_) => "a RIGHT",
                JoinOperator::FullOuter(_) => "a FULL",
                _ => "this kind of",
            };
            return Err(SqlError::Unsupported {
                construct: format!("{kind} temporal join (FOR SYSTEM_TIME AS OF {e})"),
                detail: Some("as in Flink, an event-time temporal join is INNER or LEFT, with the versioned table on the right".into()),
                position: at,
            });
        }
    }
    if table.connector.source.is_none() {
        return Err(SqlError::plan(
            format!(
                "'{name}' (connector '{}') cannot be read as a stream: FOR SYSTEM_TIME AS OF {e} joins the versions of a table read as a stream",
                table.connector.connector
            ),
            at,
        ));
    }
    let key = table.declared.as_ref().map(|d| d.primary_key.as_slice()).unwrap_or_default();
    let missing = match (key.is_empty(), table.rowtime()) {
        (true, _) => "it has no PRIMARY KEY",
        (false, None) => "it has no WATERMARK",
        (false, Some(_)) => return Ok(()),
    };
    let key = match key.is_empty() {
        true => "…".to_string(),
        false => key.iter().map(normalize).collect::<Vec<_>>().join(", "),
    };
    Err(SqlError::plan(
        format!(
            "FOR SYSTEM_TIME AS OF {e}: an event-time temporal join needs a versioned table: declare PRIMARY KEY ({key}) NOT ENFORCED and a WATERMARK on '{name}' ({missing})"
        ),
        at,
    ))
}

/// `name AS alias` as the versioned table of a temporal join AS OF the left
/// side's `column`: `(SELECT * FROM name AS "__weir_temporal__column") AS
/// alias`, the alias defaulting to the table's name.
fn versioned_table(name: ObjectName, alias: Option<TableAlias>, column: &str) -> Result<TableFactor> {
    let marker = Ident::with_quote('"', format!("{TEMPORAL}{column}"));
    let sql = format!("SELECT * FROM versioned AS {marker}");
    let mut subquery = Parser::new(&GenericDialect {})
        .try_with_sql(&sql)
        .and_then(|mut p| p.parse_query())
        .map_err(|e| SqlError::plan(format!("a temporal join's versioned table: {e}"), position_of(&name)))?;
    let outer = match alias {
        Some(a) => a,
        None => {
            let last = name.0.last().and_then(|p| p.as_ident()).cloned().unwrap_or_else(|| Ident::new("versioned"));
            TableAlias { explicit: true, name: last, columns: Vec::new(), at: None }
        }
    };
    if let SetExpr::Select(select) = subquery.body.as_mut()
        && let Some(TableFactor::Table { name: inner, .. }) = select.from.first_mut().map(|f| &mut f.relation)
    {
        *inner = name;
    }
    Ok(TableFactor::Derived { lateral: false, subquery, alias: Some(outer), sample: None })
}
