//! Flink's aggregate functions that DataFusion names differently or means
//! otherwise, written as the DataFusion aggregates that compute Flink's
//! answer:
//!
//! - `LISTAGG(x [, sep])`: the values joined by `sep`, `','` by default —
//!   DataFusion's `string_agg(x, sep)`.
//! - `VARIANCE(x)`: the sample variance, `var_samp(x)`.
//! - `FIRST_VALUE(x)` / `LAST_VALUE(x)` as aggregates: Flink skips NULL
//!   values (the first or last value that is not NULL), DataFusion's
//!   respect them unless told `IGNORE NULLS`.
//! - `COUNT(DISTINCT a, b, …)`: the distinct tuples none of whose values is
//!   NULL, which DataFusion does not count; a `count(DISTINCT …)` of the
//!   tuple as a ROW, NULL when one of its values is.
//! - `GROUPING(a, …)` and `GROUPING_ID(a, …)`: the bit vector of the
//!   grouping sets' missing columns, the first argument's bit the highest —
//!   DataFusion's `grouping`, as a BIGINT (Flink's type).
//! - `GROUP_ID()`: which copy of a repeated grouping set a row is of; 0
//!   when no set repeats (with repeated sets, whose rows DataFusion keeps
//!   but does not tell apart, it is refused).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    CaseWhen, DataType, DuplicateTreatment, Expr, FunctionArg, FunctionArgExpr, FunctionArguments,
    GroupByExpr, Ident, NullTreatment, Query, Select, SetExpr, Value, Visit, VisitMut, Visitor, VisitorMut,
};

use crate::dialect::{call, cast};
use crate::error::{Position, Result, SqlError};

/// Rewrites the Flink aggregates of `query`.
pub fn rewrite(query: &mut Query) -> Result<()> {
    match query.visit(&mut FlinkAggregates) {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

struct FlinkAggregates;

/// `expr` as a BIGINT.
fn bigint(expr: Expr) -> Expr {
    cast(expr, DataType::BigInt(None))
}

/// Whether a `GROUPING SETS` list of `select`'s GROUP BY names a set twice.
fn repeats_a_grouping_set(select: &Select) -> bool {
    let GroupByExpr::Expressions(exprs, _) = &select.group_by else { return false };
    exprs.iter().any(|e| match e {
        Expr::GroupingSets(sets) => {
            let mut seen = std::collections::HashSet::new();
            sets.iter().any(|set| {
                let mut names: Vec<String> = set.iter().map(ToString::to_string).collect();
                names.sort_unstable();
                !seen.insert(names)
            })
        }
        _ => false,
    })
}

/// Where a `GROUP_ID()` call of `select` is, if it has one.
fn group_id_call(select: &Select) -> Option<Option<Position>> {
    struct Find(Option<Option<Position>>);
    impl Visitor for Find {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            if let Expr::Function(f) = expr
                && let [name] = f.name.0.as_slice()
                && let Some(ident) = name.as_ident()
                && ident.value.eq_ignore_ascii_case("GROUP_ID")
            {
                self.0 = Some(Position::of(ident.span));
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }
    let mut find = Find(None);
    let _ = select.projection.visit(&mut find);
    let _ = select.having.visit(&mut find);
    find.0
}

impl VisitorMut for FlinkAggregates {
    type Break = SqlError;

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<SqlError> {
        if let SetExpr::Select(select) = query.body.as_ref()
            && repeats_a_grouping_set(select)
            && let Some(at) = group_id_call(select)
        {
            return ControlFlow::Break(SqlError::unsupported("GROUP_ID() with a grouping set named twice", at));
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<SqlError> {
        let Expr::Function(f) = expr else { return ControlFlow::Continue(()) };
        let [name] = f.name.0.as_slice() else { return ControlFlow::Continue(()) };
        let Some(name) = name.as_ident().map(|i| i.value.to_uppercase()) else {
            return ControlFlow::Continue(());
        };
        let FunctionArguments::List(list) = &mut f.args else { return ControlFlow::Continue(()) };
        match name.as_str() {
            "LISTAGG" => {
                f.name = Ident::new("string_agg").into();
                if list.args.len() == 1 {
                    list.args.push(FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(
                        Value::SingleQuotedString(",".into()).into(),
                    ))));
                }
            }
            "VARIANCE" => f.name = Ident::new("var_samp").into(),
            "GROUPING" | "GROUPING_ID" if !list.args.is_empty() => {
                f.name = Ident::new("grouping").into();
                *expr = bigint(expr.clone());
            }
            "GROUP_ID" if list.args.is_empty() => *expr = bigint(Expr::value(Value::Number("0".into(), false))),
            "FIRST_VALUE" | "LAST_VALUE" if f.over.is_none() && f.null_treatment.is_none() => {
                f.null_treatment = Some(NullTreatment::IgnoreNulls);
            }
            "COUNT" if matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct)) && list.args.len() > 1 => {
                let values: Option<Vec<Expr>> = list
                    .args
                    .iter()
                    .map(|a| match a {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
                        _ => None,
                    })
                    .collect();
                let Some(values) = values else { return ControlFlow::Continue(()) };
                let any_null = values
                    .iter()
                    .map(|v| Expr::IsNull(Box::new(v.clone())))
                    .reduce(|a, b| Expr::BinaryOp {
                        left: Box::new(a),
                        op: datafusion::sql::sqlparser::ast::BinaryOperator::Or,
                        right: Box::new(b),
                    });
                let Some(any_null) = any_null else { return ControlFlow::Continue(()) };
                let tuple = Expr::Case {
                    case_token: AttachedToken::empty(),
                    end_token: AttachedToken::empty(),
                    operand: None,
                    conditions: vec![CaseWhen { condition: any_null, result: Expr::Value(Value::Null.into()) }],
                    else_result: Some(Box::new(call("struct", values))),
                };
                list.args = vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(tuple))];
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::parse_script;
    use crate::statement::WeirStatement;

    fn rewritten(sql: &str) -> String {
        let Some(WeirStatement::Query { mut query, .. }) = parse_script(sql).ok().and_then(|mut s| s.pop()).map(|s| s.statement)
        else {
            panic!("not a query: {sql}")
        };
        rewrite(&mut query).expect("rewrites");
        query.to_string()
    }

    #[test]
    fn flink_aggregates_become_datafusion_ones() {
        assert_eq!(
            rewritten("SELECT LISTAGG(k), listagg(k, ';'), VARIANCE(v) FROM t"),
            "SELECT string_agg(k, ','), string_agg(k, ';'), var_samp(v) FROM t"
        );
        assert_eq!(
            rewritten("SELECT FIRST_VALUE(v), LAST_VALUE(v) FROM t GROUP BY k"),
            "SELECT FIRST_VALUE(v) IGNORE NULLS, LAST_VALUE(v) IGNORE NULLS FROM t GROUP BY k"
        );
        assert_eq!(
            rewritten("SELECT COUNT(DISTINCT a, b), COUNT(DISTINCT a), COUNT(a) FROM t"),
            "SELECT COUNT(DISTINCT CASE WHEN a IS NULL OR b IS NULL THEN NULL ELSE struct(a, b) END), \
             COUNT(DISTINCT a), COUNT(a) FROM t"
        );
        assert_eq!(
            rewritten("SELECT a, GROUPING(a), GROUPING_ID(a, b), GROUP_ID() FROM t GROUP BY CUBE (a, b)"),
            "SELECT a, CAST(grouping(a) AS BIGINT), CAST(grouping(a, b) AS BIGINT), CAST(0 AS BIGINT) FROM t GROUP BY CUBE (a, b)"
        );
    }

    #[test]
    fn group_id_of_a_repeated_grouping_set_is_refused() {
        let WeirStatement::Query { mut query, .. } =
            parse_script("SELECT a, GROUP_ID() FROM t GROUP BY GROUPING SETS ((a), (a))").unwrap().remove(0).statement
        else {
            panic!("a query")
        };
        let e = rewrite(&mut query).expect_err("refused");
        assert!(e.to_string().contains("GROUP_ID() with a grouping set named twice"), "{e}");
        assert_eq!(e.position().map(|p| p.column), Some(11));
    }
}
