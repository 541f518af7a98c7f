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

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    CaseWhen, DuplicateTreatment, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, NullTreatment, Query,
    Value, VisitMut, VisitorMut,
};

use crate::dialect::call;

/// Rewrites the Flink aggregates of `query`.
pub fn rewrite(query: &mut Query) {
    let _ = query.visit(&mut FlinkAggregates);
}

struct FlinkAggregates;

impl VisitorMut for FlinkAggregates {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
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
        rewrite(&mut query);
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
    }
}
