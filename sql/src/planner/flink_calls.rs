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
//!   `exp(1)`; `STARTSWITH` and `ENDSWITH`: its `starts_with`, `ends_with`.
//! - `ELT(i, a, b, …)`: `CASE i WHEN 1 THEN a WHEN 2 THEN b … END` (NULL for
//!   an index out of range, as Flink).
//! - `ARRAY_APPEND(array, x)`, `ARRAY_PREPEND(array, x)` and
//!   `ARRAY_CONCAT(a, b, …)` are NULL when an array is (DataFusion's take a
//!   NULL array as empty), and `ARRAY_PREPEND` takes the array first
//!   (DataFusion's the element); `ARRAY_SLICE(array, from)` runs to the end;
//!   `ARRAY_SORT(array, ascending[, nulls_first])` takes booleans (see
//!   [`array_sort`]).
//! - `s [NOT] SIMILAR TO 'pattern'`: DataFusion matches the pattern as an
//!   unanchored regular expression (`'abc' SIMILAR TO 'b'` is TRUE); it
//!   becomes `REGEXP(s, '^(?:…)$')` with `%` as `.*`, `_` as `.` and `.`,
//!   `^`, `$`, `\` literal, as SQL's patterns mean.
//! - A numeric literal with an exponent (`1.5e3`) is a DOUBLE in Flink;
//!   DataFusion, told to read literals with a point as DECIMAL (Flink's
//!   type for those), would read it as one too: it becomes
//!   `CAST('1.5e3' AS DOUBLE)`.
//!
//! Every expression of the query is visited: select lists, filters, joins'
//! conditions, subqueries.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, CaseWhen, DateTimeField, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectName,
    Query, UnaryOperator, Value, VisitMut, VisitorMut,
};

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;

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
        if let Expr::Value(v) = expr
            && let Value::Number(n, _) = &v.value
            && n.contains(['e', 'E'])
        {
            let double = datafusion::sql::sqlparser::ast::DataType::Double(
                datafusion::sql::sqlparser::ast::ExactNumberInfo::None,
            );
            *expr = crate::dialect::cast(Expr::value(Value::SingleQuotedString(n.clone())), double);
            return ControlFlow::Continue(());
        }
        if let Expr::Extract {
            field: DateTimeField::Dow,
            expr: inner,
            ..
        } = expr
        {
            *expr = call("dayofweek", vec![(**inner).clone()]);
            return ControlFlow::Continue(());
        }
        if let Expr::SimilarTo {
            negated,
            expr: inner,
            pattern,
            escape_char: None,
        } = expr
            && let Expr::Value(v) = pattern.as_ref()
            && let Value::SingleQuotedString(p) = &v.value
        {
            let regex = Expr::value(Value::SingleQuotedString(similar_regex(p)));
            let test = call("regexp", vec![(**inner).clone(), regex]);
            *expr = if *negated {
                Expr::UnaryOp {
                    op: UnaryOperator::Not,
                    expr: Box::new(Expr::Nested(Box::new(test))),
                }
            } else {
                test
            };
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
            ("STARTSWITH", _) => f.name = ObjectName::from(vec![Ident::new("starts_with")]),
            ("ENDSWITH", _) => f.name = ObjectName::from(vec![Ident::new("ends_with")]),
            ("E", FunctionArguments::List(l)) if l.args.is_empty() => {
                *expr = call("exp", vec![Expr::value(Value::Number("1.0".into(), false))]);
                return ControlFlow::Continue(());
            }
            _ => {}
        }
        let FunctionArguments::List(list) = &mut f.args else {
            return ControlFlow::Continue(());
        };
        if let Some(args) = plain_args(&list.args) {
            let rewritten = match (name.as_str(), args.as_slice()) {
                ("ELT", [index, values @ ..]) if !values.is_empty() => Some(Expr::Case {
                    case_token: AttachedToken::empty(),
                    end_token: AttachedToken::empty(),
                    operand: Some(Box::new(index.clone())),
                    conditions: values
                        .iter()
                        .enumerate()
                        .map(|(i, v)| CaseWhen {
                            condition: Expr::value(Value::Number((i + 1).to_string(), false)),
                            result: v.clone(),
                        })
                        .collect(),
                    else_result: None,
                }),
                ("ARRAY_SLICE", [array, from]) => {
                    let end = Expr::value(Value::Number("-1".into(), false));
                    Some(call("array_slice", vec![array.clone(), from.clone(), end]))
                }
                _ => None,
            };
            if let Some(rewritten) = rewritten {
                *expr = rewritten;
                return ControlFlow::Continue(());
            }
        }
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

    /// The rewrites that repeat an argument, done once the arguments are
    /// rewritten, so that [`MAX_REPEATED`] bounds what nesting them makes.
    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Some(rewritten) = collection_call(expr) {
            *expr = rewritten;
        }
        ControlFlow::Continue(())
    }
}

/// How long (as SQL text) an argument a rewrite repeats may be: nested
/// calls would otherwise double the query at each level. Past it the NULL
/// guard is left out (DataFusion's meaning: a NULL array as empty).
const MAX_REPEATED: usize = 16 * 1024;

/// Whether `values` are short enough to repeat.
fn repeatable(values: &[&Expr]) -> bool {
    values.iter().map(|v| v.to_string().len()).sum::<usize>() <= MAX_REPEATED
}

/// Flink's `ARRAY_APPEND`, `ARRAY_PREPEND`, `ARRAY_CONCAT` and
/// `ARRAY_SORT` with flags as DataFusion's calls, if `expr` is one.
fn collection_call(expr: &Expr) -> Option<Expr> {
    let Expr::Function(f) = expr else { return None };
    let name = f.name.0.last()?.as_ident()?.value.to_uppercase();
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    let args = plain_args(&list.args)?;
    let guarded = |values: &[&Expr], then: Expr| {
        if repeatable(values) {
            null_if_null(values, then)
        } else {
            then
        }
    };
    Some(match (name.as_str(), args.as_slice()) {
        ("ARRAY_APPEND", [array, x]) => guarded(&[array], call("array_push_back", vec![array.clone(), x.clone()])),
        ("ARRAY_PREPEND", [array, x]) => guarded(&[array], call("array_push_front", vec![x.clone(), array.clone()])),
        ("ARRAY_CONCAT", arrays) if !arrays.is_empty() => {
            guarded(&arrays.iter().collect::<Vec<_>>(), call("array_cat", arrays.to_vec()))
        }
        ("ARRAY_SORT", [array, ascending, rest @ ..]) if rest.len() <= 1 => {
            let flag = |e: &Expr| match e {
                Expr::Value(v) => match v.value {
                    Value::Boolean(b) => Some(b),
                    _ => None,
                },
                _ => None,
            };
            let text = |t: &str| Expr::value(Value::SingleQuotedString(t.into()));
            match (flag(ascending), rest.first().map(flag)) {
                // Constant flags: one call.
                (Some(up), None | Some(Some(_))) => {
                    let first = rest.first().and_then(flag).unwrap_or(up);
                    call(
                        "list_sort",
                        vec![
                            array.clone(),
                            text(if up { "ASC" } else { "DESC" }),
                            text(if first { "NULLS FIRST" } else { "NULLS LAST" }),
                        ],
                    )
                }
                _ if repeatable(&[array]) => array_sort(array, ascending, rest.first()),
                _ => return None,
            }
        }
        _ => return None,
    })
}

/// The arguments of a call, if all are plain expressions.
fn plain_args(args: &[FunctionArg]) -> Option<Vec<Expr>> {
    args.iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// Flink's `ARRAY_SORT(array, ascending[, nulls_first])` (booleans; NULLs
/// first exactly when ascending unless told) as DataFusion's
/// `array_sort(array, 'ASC' | 'DESC', 'NULLS FIRST' | 'NULLS LAST')`
/// (by its alias `list_sort`, which this rewrite leaves alone); NULL when a
/// flag is NULL.
fn array_sort(array: &Expr, ascending: &Expr, nulls_first: Option<&Expr>) -> Expr {
    let sort = |order: &str, nulls: &str| {
        let text = |t: &str| Expr::value(Value::SingleQuotedString(t.into()));
        call("list_sort", vec![array.clone(), text(order), text(nulls)])
    };
    let when = |condition: Expr, result: Expr| CaseWhen { condition, result };
    let and = |a: &Expr, b: &Expr| Expr::BinaryOp {
        left: Box::new(a.clone()),
        op: BinaryOperator::And,
        right: Box::new(b.clone()),
    };
    let (conditions, otherwise) = match nulls_first {
        None => (
            vec![when(ascending.clone(), sort("ASC", "NULLS FIRST"))],
            sort("DESC", "NULLS LAST"),
        ),
        Some(first) => (
            vec![
                when(and(ascending, first), sort("ASC", "NULLS FIRST")),
                when(ascending.clone(), sort("ASC", "NULLS LAST")),
                when(first.clone(), sort("DESC", "NULLS FIRST")),
            ],
            sort("DESC", "NULLS LAST"),
        ),
    };
    let flags: Vec<&Expr> = std::iter::once(ascending).chain(nulls_first).collect();
    null_if_null(
        &flags,
        Expr::Case {
            case_token: AttachedToken::empty(),
            end_token: AttachedToken::empty(),
            operand: None,
            conditions,
            else_result: Some(Box::new(otherwise)),
        },
    )
}

/// `CASE WHEN a IS NULL OR … THEN NULL ELSE then END`.
fn null_if_null(values: &[&Expr], then: Expr) -> Expr {
    let condition = values
        .iter()
        .map(|v| Expr::IsNull(Box::new((*v).clone())))
        .reduce(|a, b| Expr::BinaryOp {
            left: Box::new(a),
            op: BinaryOperator::Or,
            right: Box::new(b),
        })
        .unwrap_or(Expr::value(Value::Boolean(false)));
    Expr::Case {
        case_token: AttachedToken::empty(),
        end_token: AttachedToken::empty(),
        operand: None,
        conditions: vec![CaseWhen {
            condition,
            result: Expr::value(Value::Null),
        }],
        else_result: Some(Box::new(then)),
    }
}

/// A SQL `SIMILAR TO` pattern as an anchored regular expression: `%` any
/// text, `_` any character, `.`, `^`, `$` and `\` themselves; `|`, `*`,
/// `+`, `?`, `{…}`, `(…)` and `[…]` as in regular expressions.
fn similar_regex(pattern: &str) -> String {
    let mut out = String::from("^(?:");
    let mut in_class = false;
    for c in pattern.chars() {
        match c {
            _ if in_class => {
                if c == ']' {
                    in_class = false;
                }
                if c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            '%' => out.push_str(".*"),
            '_' => out.push('.'),
            '[' => {
                in_class = true;
                out.push(c);
            }
            '.' | '^' | '$' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push_str(")$");
    out
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

    /// Flink's docs: "ELT(2, 'scala-1', 'java-2', 'go-3')" is `java-2`
    /// (NULL out of range); ARRAY_APPEND / ARRAY_PREPEND / ARRAY_CONCAT of
    /// a NULL array are NULL, ARRAY_PREPEND puts the element first;
    /// ARRAY_SLICE without an end runs to the end; SIMILAR TO matches the
    /// whole text with `%` and `_`; STARTSWITH / ENDSWITH.
    #[tokio::test]
    async fn flink_collection_and_pattern_calls() {
        assert_eq!(value("SELECT ELT(2, 'scala-1', 'java-2', 'go-3')").await, "java-2");
        assert_eq!(value("SELECT ELT(0, 'a') IS NULL").await, "true");
        assert_eq!(value("SELECT ARRAY_PREPEND(ARRAY[1, 2], 0)").await, "[0, 1, 2]");
        assert_eq!(
            value("SELECT ARRAY_APPEND(CAST(NULL AS ARRAY<INT>), 3) IS NULL").await,
            "true"
        );
        assert_eq!(
            value("SELECT ARRAY_CONCAT(ARRAY[1], CAST(NULL AS ARRAY<INT>)) IS NULL").await,
            "true"
        );
        assert_eq!(value("SELECT ARRAY_CONCAT(ARRAY[1], ARRAY[2, 3])").await, "[1, 2, 3]");
        assert_eq!(value("SELECT ARRAY_SLICE(ARRAY[1, 2, 3, 4], 2)").await, "[2, 3, 4]");
        // Flink's docs: descending puts NULLs last unless told otherwise.
        assert_eq!(value("SELECT ARRAY_SORT(ARRAY[3, NULL, 1])").await, "[NULL, 1, 3]");
        assert_eq!(
            value("SELECT ARRAY_SORT(ARRAY[3, NULL, 1], FALSE)").await,
            "[3, 1, NULL]"
        );
        assert_eq!(
            value("SELECT ARRAY_SORT(ARRAY[3, NULL, 1], TRUE, FALSE)").await,
            "[1, 3, NULL]"
        );
        assert_eq!(
            value("SELECT ARRAY_SORT(ARRAY[3, NULL, 1], FALSE, TRUE)").await,
            "[NULL, 3, 1]"
        );
        assert_eq!(
            value("SELECT ARRAY_SORT(ARRAY[3, 1], CAST(NULL AS BOOLEAN)) IS NULL").await,
            "true"
        );
        assert_eq!(value("SELECT 'abc' SIMILAR TO 'b'").await, "false");
        assert_eq!(value("SELECT 'abc' SIMILAR TO '(a|z)_c%'").await, "true");
        assert_eq!(value("SELECT 'a$c' NOT SIMILAR TO 'a$c'").await, "false");
        assert_eq!(
            value("SELECT STARTSWITH('flink', 'fl') AND ENDSWITH('flink', 'nk')").await,
            "true"
        );
        assert_eq!(super::similar_regex("a.%[x.]_"), "^(?:a\\..*[x.].)$");
    }

    /// Calls that repeat an argument nest without doubling the query at
    /// each level: past [`MAX_REPEATED`](super::MAX_REPEATED) the NULL
    /// guard is left out.
    #[test]
    fn nested_guards_stay_bounded() {
        let nested = format!("SELECT {}ARRAY[1]{}", "ARRAY_APPEND(".repeat(45), ", 1)".repeat(45));
        let out = rewritten(&nested);
        assert!(out.len() < 200_000, "{} characters", out.len());
        assert!(out.contains("CASE WHEN ARRAY[1] IS NULL THEN NULL"), "{}", &out[..300]);
    }
}
