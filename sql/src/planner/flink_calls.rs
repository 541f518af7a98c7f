//! Flink function calls whose syntax DataFusion's planner does not take,
//! written as calls it does (the functions are in `crate::functions`):
//!
//! - `TIMESTAMPADD(DAY, 1, ts)` and `TIMESTAMPDIFF(MONTH, a, b)`: the unit
//!   is a keyword, which sqlparser gives as a column name that DataFusion
//!   fails to resolve; it becomes the string `'DAY'`.
//!
//! (`JSON_VALUE(json, path RETURNING INT …)` and the other JSON clauses are
//! written as arguments by the dialect, `dialect/json_query.rs`.)
//! - `EXTRACT(DOW FROM d)`: Flink counts Sunday as 1 (DataFusion as 0);
//!   it becomes `DAYOFWEEK(d)`, which does.
//! - `LEFT(s, n)` / `RIGHT(s, n)` with a negative `n` are `''` in Flink
//!   (DataFusion cuts from the other end): `n` becomes `GREATEST(n, 0)`.
//! - `CEILING(x)`, `SIGN(x)` and `E()`: DataFusion's `ceil`, `signum` and
//!   `exp(1)`.
//!
//! Every expression of the query is visited: select lists, filters, joins'
//! conditions, subqueries.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    DateTimeField, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectName, Query, Value, VisitMut,
    VisitorMut,
};

use crate::dialect::call;

/// Rewrites the Flink calls of `query`.
pub fn rewrite(query: &mut Query) {
    let _ = query.visit(&mut FlinkCalls);
}

/// Rewrites the Flink calls of one expression (a computed column's, a
/// watermark's).
pub fn rewrite_expr(expr: &mut Expr) {
    let _ = expr.visit(&mut FlinkCalls);
}

struct FlinkCalls;

impl VisitorMut for FlinkCalls {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Extract {
            field: DateTimeField::Dow,
            expr: inner,
            ..
        } = expr
        {
            *expr = call("dayofweek", vec![(**inner).clone()]);
            return ControlFlow::Continue(());
        }
        let Expr::Function(f) = expr else {
            return ControlFlow::Continue(());
        };
        let Some(name) = f
            .name
            .0
            .last()
            .and_then(|part| part.as_ident())
            .map(|i| i.value.to_uppercase())
        else {
            return ControlFlow::Continue(());
        };
        match (name.as_str(), &f.args) {
            ("CEILING", _) => f.name = ObjectName::from(vec![Ident::new("ceil")]),
            ("SIGN", _) => f.name = ObjectName::from(vec![Ident::new("signum")]),
            ("E", FunctionArguments::List(l)) if l.args.is_empty() => {
                *expr = call("exp", vec![Expr::value(Value::Number("1.0".into(), false))]);
                return ControlFlow::Continue(());
            }
            _ => {}
        }
        let FunctionArguments::List(list) = &mut f.args else {
            return ControlFlow::Continue(());
        };
        match name.as_str() {
            "LEFT" | "RIGHT" => {
                if let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(n))) = list.args.get_mut(1) {
                    let zero = Expr::value(Value::Number("0".into(), false));
                    *n = call("greatest", vec![n.clone(), zero]);
                }
            }
            "TIMESTAMPADD" | "TIMESTAMPDIFF" => {
                if let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(unit))) = list.args.first_mut()
                    && let Expr::Identifier(id) = unit
                    && id.quote_style.is_none()
                {
                    *unit = Expr::value(Value::SingleQuotedString(id.value.to_uppercase()));
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    use datafusion::prelude::SessionContext;

    use super::*;
    use crate::script::parse_script;
    use crate::statement::WeirStatement;

    fn rewritten(sql: &str) -> String {
        let WeirStatement::Query { mut query, .. } = parse_script(sql).expect("parses").remove(0).statement else {
            panic!("not a query")
        };
        rewrite(&mut query);
        query.to_string()
    }

    /// The first value `sql` gives once rewritten, run by DataFusion with
    /// Weir's functions.
    async fn value(sql: &str) -> String {
        let ctx = SessionContext::new();
        crate::functions::register(&ctx);
        let batches = ctx
            .sql(&rewritten(sql))
            .await
            .expect("plans")
            .collect()
            .await
            .expect("runs");
        let options = FormatOptions::default().with_null("NULL");
        ArrayFormatter::try_new(batches[0].column(0).as_ref(), &options)
            .expect("formats")
            .value(0)
            .to_string()
    }

    #[test]
    fn flink_functions_units_and_returning_are_rewritten() {
        assert_eq!(
            rewritten("SELECT TIMESTAMPADD(DAY, 1, ts), timestampdiff(month, a, b) FROM t"),
            "SELECT TIMESTAMPADD('DAY', 1, ts), timestampdiff('MONTH', a, b) FROM t"
        );
        assert_eq!(
            rewritten("SELECT * FROM t WHERE TIMESTAMPDIFF(SECOND, a, (SELECT MAX(b) FROM u)) > 0"),
            "SELECT * FROM t WHERE TIMESTAMPDIFF('SECOND', a, (SELECT MAX(b) FROM u)) > 0"
        );
        assert_eq!(
            rewritten("SELECT JSON_VALUE(j, '$.a' RETURNING INT), JSON_VALUE(j, '$.b') FROM t"),
            "SELECT JSON_VALUE(j, '$.a', CAST(NULL AS INT)), JSON_VALUE(j, '$.b') FROM t"
        );
        // A quoted name is a column, left alone.
        assert_eq!(
            rewritten("SELECT TIMESTAMPADD(`DAY`, 1, ts) FROM t"),
            "SELECT TIMESTAMPADD(`DAY`, 1, ts) FROM t"
        );
    }

    /// Flink's docs: "TIMESTAMPADD(WEEK, 1, DATE '2003-01-02') returns
    /// 2003-01-09", "TIMESTAMPDIFF(DAY, TIMESTAMP '2003-01-02 10:00:00',
    /// TIMESTAMP '2003-01-03 10:00:00') leads to 1", "JSON_VALUE('{"a":
    /// true}', '$.a' RETURNING BOOLEAN)" is TRUE, and `0.998` RETURNING
    /// DOUBLE.
    #[tokio::test]
    async fn flink_functions_documented_examples_run() {
        assert_eq!(
            value("SELECT TIMESTAMPADD(WEEK, 1, DATE '2003-01-02')").await,
            "2003-01-09"
        );
        assert_eq!(
            value("SELECT TIMESTAMPDIFF(DAY, TIMESTAMP '2003-01-02 10:00:00', TIMESTAMP '2003-01-03 10:00:00')").await,
            "1"
        );
        assert_eq!(
            value(r#"SELECT JSON_VALUE('{"a": true}', '$.a' RETURNING BOOLEAN) AND TRUE"#).await,
            "true"
        );
        assert_eq!(
            value(r#"SELECT JSON_VALUE('{"a.b": [0.998,0.996]}', '$.["a.b"][0]' RETURNING DOUBLE) + 1"#).await,
            "1.998"
        );
        assert_eq!(
            value(r#"SELECT JSON_VALUE('{"a": 42}', '$.a' RETURNING BIGINT) * 2"#).await,
            "84"
        );
    }

    /// Flink's docs: "EXTRACT(DOW FROM DATE '1994-09-27')" is 3 (a
    /// Tuesday, Sunday being 1); "LEFT/RIGHT … Returns EMPTY String if
    /// integer is negative"; CEILING and SIGN as CEIL and the signum; E().
    #[tokio::test]
    async fn flink_meanings_of_shared_names() {
        assert_eq!(value("SELECT EXTRACT(DOW FROM DATE '1994-09-27')").await, "3");
        assert_eq!(
            value("SELECT EXTRACT(DOW FROM TIMESTAMP '1994-09-25 10:00:00')").await,
            "1"
        );
        assert_eq!(value("SELECT LEFT('abc', -1)").await, "");
        assert_eq!(value("SELECT RIGHT('abc', -2)").await, "");
        assert_eq!(value("SELECT LEFT('abc', 2) || RIGHT('abc', 1)").await, "abc");
        assert_eq!(value("SELECT CEILING(1.2)").await, "2.0");
        assert_eq!(value("SELECT SIGN(-4.5)").await, "-1.0");
        assert_eq!(value("SELECT E()").await, std::f64::consts::E.to_string());
    }
}
