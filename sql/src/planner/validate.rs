//! Refuses, with their line and column, the constructs a streaming query
//! cannot have (yet). DataFusion would plan them; the streaming planner
//! could only name them without a place.

use datafusion::sql::sqlparser::ast::{
    Distinct, Expr, Query, WindowType, Select, SelectItem, SetExpr, SetOperator, SetQuantifier, Spanned, TableFactor,
    TableWithJoins, Visit, Visitor,
};
use std::ops::ControlFlow;

use crate::error::{Position, Result, SqlError};

/// Checks a query that reads streams.
pub fn check_streaming_query(q: &Query) -> Result<()> {
    // ORDER BY runs when it starts with the time attribute ascending
    // (`planner/stream/time_sort.rs`), LIMIT as the first rows to arrive
    // (`planner/stream/limit.rs`).
    if let Some(fetch) = &q.fetch {
        return Err(SqlError::unsupported(
            "FETCH on a streaming query",
            Position::of(fetch.span()),
        ));
    }
    check_set_expr(&q.body)?;
    if let Some(with) = &q.with {
        for cte in &with.cte_tables {
            check_streaming_query(&cte.query)?;
        }
    }
    Ok(())
}

fn check_set_expr(s: &SetExpr) -> Result<()> {
    match s {
        SetExpr::Select(select) => check_select(select),
        SetExpr::Query(q) => check_streaming_query(q),
        // UNION ALL of streams runs (`stream/union.rs`), UNION as a
        // DISTINCT of it, INTERSECT and EXCEPT as a group aggregation over
        // it (`planner/set_operations.rs`): updating results, as in Flink.
        SetExpr::SetOperation {
            op: SetOperator::Union,
            set_quantifier: SetQuantifier::All | SetQuantifier::None | SetQuantifier::Distinct,
            left,
            right,
        }
        | SetExpr::SetOperation {
            op: SetOperator::Intersect | SetOperator::Except,
            set_quantifier: SetQuantifier::All | SetQuantifier::None | SetQuantifier::Distinct,
            left,
            right,
        } => {
            check_set_expr(left)?;
            check_set_expr(right)
        }
        SetExpr::SetOperation {
            op,
            set_quantifier,
            left,
            ..
        } => Err(SqlError::unsupported(
            format!(
                "{op}{} of streams (UNION, INTERSECT and EXCEPT, each with or without ALL, are supported)",
                match set_quantifier {
                    SetQuantifier::None => String::new(),
                    q => format!(" {q}"),
                }
            ),
            Position::of(left.span()),
        )),
        // VALUES is a bounded stream of its rows, as in Flink.
        _ => Ok(()),
    }
}

fn check_select(select: &Select) -> Result<()> {
    // SELECT DISTINCT runs as a GROUP BY of every column (an updating
    // result, as in Flink); DISTINCT ON has no Flink form.
    if let Some(Distinct::On(_)) = &select.distinct {
        return Err(SqlError::unsupported(
            "SELECT DISTINCT ON on a stream",
            Position::of(select.select_token.0.span),
        ));
    }
    for twj in &select.from {
        check_from(twj)?;
    }
    for item in &select.projection {
        let e = match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
            _ => continue,
        };
        check_over(e)?;
    }
    Ok(())
}

/// Joined relations are checked like the first; whether a join itself can
/// run on streams the streaming planner decides (it needs a window or a
/// time bound).
fn check_from(twj: &TableWithJoins) -> Result<()> {
    check_factor(&twj.relation)?;
    for j in &twj.joins {
        check_factor(&j.relation)?;
    }
    Ok(())
}

fn check_factor(f: &TableFactor) -> Result<()> {
    match f {
        TableFactor::Derived { subquery, .. } => check_streaming_query(subquery),
        TableFactor::NestedJoin { table_with_joins, .. } => check_from(table_with_joins),
        _ => Ok(()),
    }
}

/// Where the query's first JOIN is (its joined relation), for errors about
/// the join that the streaming planner finds.
pub fn first_join(q: &Query) -> Option<Position> {
    fn in_set(s: &SetExpr) -> Option<Position> {
        match s {
            SetExpr::Select(select) => select.from.iter().find_map(in_from),
            SetExpr::Query(q) => first_join(q),
            _ => None,
        }
    }
    fn in_from(twj: &TableWithJoins) -> Option<Position> {
        if let Some(j) = twj.joins.first() {
            return Position::of(j.relation.span());
        }
        match &twj.relation {
            TableFactor::Derived { subquery, .. } => first_join(subquery),
            TableFactor::NestedJoin { table_with_joins, .. } => in_from(table_with_joins),
            _ => None,
        }
    }
    in_set(&q.body)
}

/// Checks the window functions (`… OVER (…)`) of `e`: `ROW_NUMBER()`
/// runs as a Top-N or a deduplication (`planner/stream/rank.rs`), other
/// functions as OVER aggregation (`planner/stream/over.rs`): both need an
/// ORDER BY, which the planner only finds without a place.
fn check_over(e: &Expr) -> Result<()> {
    struct Over(Result<()>);
    impl Visitor for Over {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            let Expr::Function(f) = e else {
                return ControlFlow::Continue(());
            };
            let Some(over) = &f.over else {
                return ControlFlow::Continue(());
            };
            let pos = Position::of(e.span());
            let name = f.name.to_string().to_ascii_uppercase();
            let ordered = match over {
                WindowType::WindowSpec(spec) => !spec.order_by.is_empty(),
                WindowType::NamedWindow(_) => true,
            };
            self.0 = if !ordered {
                Err(SqlError::plan(
                    format!(
                        "{name}() OVER (…) needs ORDER BY in a streaming query: {}",
                        if name == "ROW_NUMBER" {
                            "the time attribute for a deduplication, any columns for a Top-N"
                        } else {
                            "its time attribute, ascending"
                        }
                    ),
                    pos,
                ))
            } else {
                Ok(())
            };
            match self.0 {
                Ok(()) => ControlFlow::Continue(()),
                Err(_) => ControlFlow::Break(()),
            }
        }
    }
    let mut v = Over(Ok(()));
    let _ = e.visit(&mut v);
    v.0
}
