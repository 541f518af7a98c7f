//! Flink names a selected ROW field after the field: `SELECT bid.auction
//! FROM datagen` has a column `auction` (Flink nexmark's views rely on it),
//! where DataFusion would name it `datagen.bid[auction]`. Every unaliased
//! `a.b[.c…]` in a select list is given its last part as alias — for a
//! qualified column `t.c` that is the name it has anyway — unless another
//! item of the same list has that name (Flink would rename one of them;
//! they keep DataFusion's names instead).
//!
//! Every other unaliased expression is named `EXPR$i` (`i` its position in
//! the select list), as Calcite names it for Flink: `SELECT a + 1, COUNT(*)`
//! has columns `EXPR$0` and `EXPR$1` where DataFusion would say `t.a +
//! Int64(1)` and `count(*)`. After a `*`, whose width the AST does not
//! know, expressions keep DataFusion's names.
//!
//! Flink also takes a select list that names a column twice (`SELECT ts,
//! ts`, or `ts` beside `CAST(ts AS STRING)`, which DataFusion names alike):
//! as Calcite, the later ones are renamed, a column to `ts0`, `ts1`, … and
//! an expression to `EXPR$i` (`i` its position), where DataFusion would
//! refuse the query.

use std::collections::HashMap;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Expr, Query, Select, SelectItem, SetExpr, VisitMut, VisitorMut};

/// Aliases the selected fields of every select of `query`.
pub fn rewrite(query: &mut Query) {
    let _ = query.visit(&mut Namer);
}

struct Namer;

impl VisitorMut for Namer {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        name_fields(query.body.as_mut());
        ControlFlow::Continue(())
    }
}

fn name_fields(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => name_select(select),
        SetExpr::SetOperation { left, right, .. } => {
            name_fields(left);
            name_fields(right);
        }
        _ => {}
    }
}

/// The name an item's column gets without a new alias, if it is plain.
fn output_name(item: &SelectItem) -> Option<String> {
    match item {
        SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
        SelectItem::UnnamedExpr(Expr::Identifier(i)) => Some(i.value.clone()),
        SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => parts.last().map(|p| p.value.clone()),
        _ => None,
    }
}

fn name_select(select: &mut Select) {
    let mut names: HashMap<String, usize> = HashMap::new();
    for item in &select.projection {
        if let Some(n) = output_name(item) {
            *names.entry(n).or_default() += 1;
        }
    }
    for item in &mut select.projection {
        let SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) = item else { continue };
        let Some(last) = parts.last().cloned() else { continue };
        if parts.len() < 2 || names.get(&last.value).copied().unwrap_or(0) > 1 {
            continue;
        }
        let expr = Expr::CompoundIdentifier(std::mem::take(parts));
        *item = SelectItem::ExprWithAlias { expr, alias: last };
    }
    name_expressions(select);
    uniquify(select);
}

/// Whether Calcite names the column of `expr` after `expr` itself: a
/// column, possibly qualified or in parentheses.
fn is_column(expr: &Expr) -> bool {
    match expr {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => true,
        Expr::Nested(inner) => is_column(inner),
        _ => false,
    }
}

/// `EXPR$i` for each unaliased expression that is not a column, up to the
/// first wildcard.
fn name_expressions(select: &mut Select) {
    for (i, item) in select.projection.iter_mut().enumerate() {
        let expr = match item {
            SelectItem::UnnamedExpr(expr) if !is_column(expr) => expr,
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => return,
            _ => continue,
        };
        let expr = std::mem::replace(expr, Expr::value(datafusion::sql::sqlparser::ast::Value::Null));
        *item = SelectItem::ExprWithAlias { expr, alias: datafusion::sql::sqlparser::ast::Ident::new(format!("EXPR${i}")) };
    }
}

/// The name DataFusion gives an unaliased item, as far as clashes go: a
/// cast is named after what it casts.
fn datafusion_name(expr: &Expr) -> String {
    match expr {
        Expr::Cast { expr, .. } | Expr::Nested(expr) => datafusion_name(expr),
        Expr::Identifier(i) => i.value.clone(),
        other => other.to_string(),
    }
}

/// Renames the later items of a select list whose names clash.
fn uniquify(select: &mut Select) {
    let mut taken: HashMap<String, usize> = HashMap::new();
    for item in &select.projection {
        if let SelectItem::ExprWithAlias { alias, .. } = item {
            taken.insert(alias.value.clone(), 1);
        }
    }
    for (i, item) in select.projection.iter_mut().enumerate() {
        let SelectItem::UnnamedExpr(expr) = item else { continue };
        let name = datafusion_name(expr);
        let seen = taken.entry(name.clone()).or_default();
        *seen += 1;
        if *seen == 1 {
            continue;
        }
        let alias = match expr {
            Expr::Identifier(_) => (0..).map(|n| format!("{name}{n}")).find(|c| !taken.contains_key(c)).unwrap_or(name),
            _ => format!("EXPR${i}"),
        };
        taken.insert(alias.clone(), 1);
        let expr = std::mem::replace(expr, Expr::value(datafusion::sql::sqlparser::ast::Value::Null));
        *item = SelectItem::ExprWithAlias { expr, alias: datafusion::sql::sqlparser::ast::Ident::new(alias) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::parse_script;
    use crate::statement::WeirStatement;

    fn named(sql: &str) -> String {
        let WeirStatement::Query { mut query, .. } = parse_script(sql).expect("parses").remove(0).statement else {
            panic!("not a query")
        };
        rewrite(&mut query);
        query.to_string()
    }

    #[test]
    fn selected_fields_are_named_after_the_field_unless_names_clash() {
        assert_eq!(
            named("SELECT bid.auction, t.bid.price, `dateTime`, x AS y FROM datagen"),
            "SELECT bid.auction AS auction, t.bid.price AS price, `dateTime`, x AS y FROM datagen"
        );
        assert_eq!(named("SELECT a.id, b.id FROM a JOIN b ON a.k = b.k"), "SELECT a.id, b.id FROM a JOIN b ON a.k = b.k");
        assert_eq!(
            named("SELECT ts, ts, CAST(ts AS STRING), ts AS ts0, ts FROM t"),
            "SELECT ts, ts AS ts1, CAST(ts AS STRING) AS EXPR$2, ts AS ts0, ts AS ts2 FROM t"
        );
        assert_eq!(
            named("SELECT a + 1, COUNT(*), (b), `x`, UPPER(s) AS u, arr[1] FROM t GROUP BY a"),
            "SELECT a + 1 AS EXPR$0, COUNT(*) AS EXPR$1, (b), `x`, UPPER(s) AS u, arr[1] AS EXPR$5 FROM t GROUP BY a"
        );
        assert_eq!(named("SELECT a + 1, *, b + 1 FROM t"), "SELECT a + 1 AS EXPR$0, *, b + 1 FROM t");
        assert_eq!(
            named("SELECT * FROM (SELECT r.k FROM t UNION ALL SELECT s.k FROM u)"),
            "SELECT * FROM (SELECT r.k AS k FROM t UNION ALL SELECT s.k AS k FROM u)"
        );
    }
}
