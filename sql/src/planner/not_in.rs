//! `x NOT IN (SELECT y FROM … WHERE c)` in a WHERE clause, written as the
//! `NOT EXISTS` it means there:
//!
//! ```sql
//! NOT EXISTS (SELECT 1 FROM … WHERE c AND (y = x OR y IS NULL OR x IS NULL))
//! ```
//!
//! A row passes `NOT IN` only when no `y` equals `x` and none is unknown:
//! one NULL `y`, or a NULL `x` against any row, makes it UNKNOWN, which a
//! WHERE drops; with no rows at all it is TRUE. DataFusion plans `NOT IN`
//! as a null-aware anti join, which a partitioned stream cannot run (one
//! NULL anywhere empties the answer); written this way, the NULLs are a
//! condition of the rows that match, and a window anti join (Flink's
//! `NOT IN` over window TVFs, correlated on the windows) runs it per window
//! as Flink does.
//!
//! Only a top-level conjunct of a WHERE is rewritten (elsewhere UNKNOWN is
//! not FALSE), and only when `x` can be named from inside the subquery:
//! qualified (`L.num`), or a bare column of the one relation the select
//! reads, which it is qualified by.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, GroupByExpr, Ident, Query, Select, SelectItem, SetExpr, TableFactor, Value, Visit, VisitMut,
    Visitor, VisitorMut,
};

/// Rewrites the `NOT IN` subqueries of every WHERE in `query`.
pub fn rewrite(query: &mut Query) {
    let _ = query.visit(&mut NotIn);
}

struct NotIn;

impl VisitorMut for NotIn {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let SetExpr::Select(select) = query.body.as_mut() {
            rewrite_select(select);
        }
        ControlFlow::Continue(())
    }
}

fn rewrite_select(select: &mut Select) {
    let qualifier = single_relation_name(select);
    if let Some(selection) = &mut select.selection {
        rewrite_conjuncts(selection, qualifier.as_ref());
    }
}

/// The name the one relation of `select` is known by, if it reads one.
fn single_relation_name(select: &Select) -> Option<Ident> {
    let [from] = select.from.as_slice() else { return None };
    if !from.joins.is_empty() {
        return None;
    }
    match &from.relation {
        TableFactor::Table { alias: Some(a), .. } | TableFactor::Derived { alias: Some(a), .. } => Some(a.name.clone()),
        TableFactor::Table { name, alias: None, .. } => name.0.last()?.as_ident().cloned(),
        _ => None,
    }
}

fn rewrite_conjuncts(expr: &mut Expr, qualifier: Option<&Ident>) {
    match expr {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            rewrite_conjuncts(left, qualifier);
            rewrite_conjuncts(right, qualifier);
        }
        Expr::Nested(inner) => rewrite_conjuncts(inner, qualifier),
        Expr::InSubquery {
            expr: x,
            subquery,
            negated: true,
        } => {
            if let Some(exists) = not_exists(x, subquery, qualifier) {
                *expr = exists;
            }
        }
        _ => {}
    }
}

/// `NOT EXISTS (…)` for `x NOT IN (subquery)`, if it can be written.
fn not_exists(x: &Expr, subquery: &Query, qualifier: Option<&Ident>) -> Option<Expr> {
    let x = match x {
        Expr::CompoundIdentifier(_) => x.clone(),
        Expr::Identifier(column) => Expr::CompoundIdentifier(vec![qualifier?.clone(), column.clone()]),
        _ => return None,
    };
    let simple = subquery.with.is_none()
        && subquery.order_by.is_none()
        && subquery.limit_clause.is_none()
        && subquery.fetch.is_none();
    let SetExpr::Select(select) = subquery.body.as_ref() else {
        return None;
    };
    let [SelectItem::UnnamedExpr(y) | SelectItem::ExprWithAlias { expr: y, .. }] = select.projection.as_slice() else {
        return None;
    };
    let grouped = !matches!(&select.group_by, GroupByExpr::Expressions(k, _) if k.is_empty())
        || select.having.is_some()
        || select.distinct.is_some()
        || aggregates(y);
    if !simple || grouped {
        return None;
    }
    let or = |l: Expr, r: Expr| Expr::BinaryOp {
        left: Box::new(l),
        op: BinaryOperator::Or,
        right: Box::new(r),
    };
    let matches = or(
        or(
            Expr::BinaryOp {
                left: Box::new(y.clone()),
                op: BinaryOperator::Eq,
                right: Box::new(x.clone()),
            },
            Expr::IsNull(Box::new(y.clone())),
        ),
        Expr::IsNull(Box::new(x)),
    );
    let mut inner = select.clone();
    inner.projection = vec![SelectItem::UnnamedExpr(Expr::Value(
        Value::Number("1".into(), false).into(),
    ))];
    inner.selection = Some(match inner.selection.take() {
        Some(c) => Expr::BinaryOp {
            left: Box::new(Expr::Nested(Box::new(c))),
            op: BinaryOperator::And,
            right: Box::new(Expr::Nested(Box::new(matches))),
        },
        None => matches,
    });
    let mut query = subquery.clone();
    query.body = Box::new(SetExpr::Select(inner));
    Some(Expr::Exists {
        subquery: Box::new(query),
        negated: true,
    })
}

/// Whether `y` calls an aggregate (`SELECT max(n) FROM r` is one row, not
/// `r`'s), or a window function.
fn aggregates(y: &Expr) -> bool {
    struct Finder(bool);
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if let Expr::Function(f) = e {
                let name = f.name.to_string().to_lowercase();
                if f.over.is_some() || AGGREGATES.contains(&name.as_str()) {
                    self.0 = true;
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut finder = Finder(false);
    let _ = y.visit(&mut finder);
    finder.0
}

/// Flink's aggregate functions, by name.
const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "sum0",
    "min",
    "max",
    "avg",
    "stddev_pop",
    "stddev_samp",
    "var_pop",
    "var_samp",
    "variance",
    "collect",
    "listagg",
    "first_value",
    "last_value",
    "array_agg",
    "json_objectagg",
    "json_arrayagg",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::parse_script;
    use crate::statement::WeirStatement;

    fn rewritten(sql: &str) -> String {
        let Some(WeirStatement::Query { mut query, .. }) =
            parse_script(sql).ok().and_then(|mut s| s.pop()).map(|s| s.statement)
        else {
            panic!("not a query: {sql}")
        };
        rewrite(&mut query);
        query.to_string()
    }

    #[test]
    fn not_in_a_where_becomes_not_exists_with_the_nulls_as_matches() {
        assert_eq!(
            rewritten("SELECT * FROM l AS L WHERE L.num NOT IN (SELECT num FROM r AS R WHERE L.w = R.w) AND L.v > 1"),
            "SELECT * FROM l AS L WHERE NOT EXISTS (SELECT 1 FROM r AS R WHERE (L.w = R.w) AND (num = L.num OR num IS NULL OR L.num IS NULL)) AND L.v > 1"
        );
        // A bare column is the outer relation's.
        assert_eq!(
            rewritten("SELECT * FROM l WHERE num NOT IN (SELECT n FROM r)"),
            "SELECT * FROM l WHERE NOT EXISTS (SELECT 1 FROM r WHERE n = l.num OR n IS NULL OR l.num IS NULL)"
        );
    }

    #[test]
    fn what_it_would_change_the_meaning_of_is_left_alone() {
        for sql in [
            // UNKNOWN is not FALSE under NOT or in a select list.
            "SELECT * FROM l WHERE NOT (num NOT IN (SELECT n FROM r))",
            "SELECT num NOT IN (SELECT n FROM r) FROM l",
            "SELECT * FROM l WHERE num NOT IN (SELECT n FROM r) OR v > 1",
            // An aggregate's or a limited subquery's rows are not its input's.
            "SELECT * FROM l WHERE num NOT IN (SELECT max(n) FROM r GROUP BY k)",
            "SELECT * FROM l WHERE num NOT IN (SELECT max(n) FROM r)",
            "SELECT * FROM l WHERE num NOT IN (SELECT n FROM r LIMIT 3)",
            // A bare column with two relations around it.
            "SELECT * FROM l, m WHERE num NOT IN (SELECT n FROM r)",
            "SELECT * FROM l WHERE num IN (SELECT n FROM r)",
        ] {
            assert_eq!(rewritten(sql), sql);
        }
    }
}
