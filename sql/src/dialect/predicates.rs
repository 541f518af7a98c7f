//! Flink's (Calcite's) standard SQL forms that sqlparser does not read,
//! written as expressions DataFusion plans:
//!
//! - `x [NOT] BETWEEN SYMMETRIC a AND b`: `[NOT] (x BETWEEN a AND b OR x
//!   BETWEEN b AND a)`, the standard's definition (so `12 BETWEEN SYMMETRIC
//!   NULL AND 12` is UNKNOWN, as Flink documents); `ASYMMETRIC` is the plain
//!   `BETWEEN`.
//! - `CASE x WHEN 1, 2 THEN …`: a simple `CASE` whose `WHEN` lists several
//!   values becomes the searched `CASE WHEN x IN (1, 2) THEN …`.
//! - `(s1, e1) OVERLAPS (s2, e2)`: each period's ends ordered (an interval
//!   as its second element is a length: the end is `s + interval`), then
//!   `e1 >= s2 AND e2 >= s1`, Calcite's reading of the standard.

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{BinaryOperator, CaseWhen, Expr, UnaryOperator};
use datafusion::sql::sqlparser::dialect::{Dialect, Precedence};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};

use super::json::word;

/// How long (as SQL text) the operands these forms repeat may be: each
/// nested `BETWEEN SYMMETRIC` or `OVERLAPS` would otherwise double the
/// statement. No query Flink users write comes near it.
const MAX_REPEATED: usize = 64 * 1024;

/// An error at `at` unless `operands` are short enough to repeat.
fn repeatable(parser: &Parser, what: &str, operands: &[&Expr]) -> Result<(), ParserError> {
    let length: usize = operands.iter().map(|e| e.to_string().len()).sum();
    if length <= MAX_REPEATED {
        return Ok(());
    }
    let at = parser.peek_token_ref().span.start;
    Err(ParserError::ParserError(format!(
        "{what}: its operands are {length} characters long, more than the {MAX_REPEATED} Weir repeats at Line: {}, Column: {}",
        at.line, at.column
    )))
}

/// `[NOT] BETWEEN [A]SYMMETRIC …` after `expr`, if that is what follows.
pub(super) fn parse_between(
    dialect: &dyn Dialect,
    parser: &mut Parser,
    expr: &Expr,
) -> Option<Result<Expr, ParserError>> {
    let negated = word(parser, 0, "NOT");
    let at = usize::from(negated);
    if !word(parser, at, "BETWEEN") {
        return None;
    }
    let symmetric = word(parser, at + 1, "SYMMETRIC");
    if !symmetric && !word(parser, at + 1, "ASYMMETRIC") {
        return None;
    }
    for _ in 0..at + 2 {
        parser.next_token();
    }
    Some(between(dialect, parser, expr, negated, symmetric))
}

fn between(
    dialect: &dyn Dialect,
    parser: &mut Parser,
    expr: &Expr,
    negated: bool,
    symmetric: bool,
) -> Result<Expr, ParserError> {
    let precedence = dialect.prec_value(Precedence::Between);
    let low = parser.parse_subexpr(precedence)?;
    parser.expect_keyword_is(Keyword::AND)?;
    let high = parser.parse_subexpr(precedence)?;
    let plain = |low: &Expr, high: &Expr, negated| Expr::Between {
        expr: Box::new(expr.clone()),
        negated,
        low: Box::new(low.clone()),
        high: Box::new(high.clone()),
    };
    if !symmetric {
        return Ok(plain(&low, &high, negated));
    }
    repeatable(parser, "BETWEEN SYMMETRIC", &[expr, &low, &high])?;
    let either = Expr::Nested(Box::new(Expr::BinaryOp {
        left: Box::new(plain(&low, &high, false)),
        op: BinaryOperator::Or,
        right: Box::new(plain(&high, &low, false)),
    }));
    Ok(if negated {
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr: Box::new(either),
        }
    } else {
        either
    })
}

/// A simple `CASE x WHEN …` at the parser's position, read with Flink's
/// lists of values; a searched `CASE WHEN` is left to sqlparser.
pub(super) fn parse_case(parser: &mut Parser) -> Option<Result<Expr, ParserError>> {
    if !parser.peek_keyword(Keyword::CASE) || word(parser, 1, "WHEN") {
        return None;
    }
    parser.next_token();
    Some(simple_case(parser))
}

fn simple_case(parser: &mut Parser) -> Result<Expr, ParserError> {
    let case_token = AttachedToken(parser.get_current_token().clone());
    let operand = parser.parse_expr()?;
    parser.expect_keyword_is(Keyword::WHEN)?;
    let mut branches = Vec::new();
    loop {
        let values = parser.parse_comma_separated(Parser::parse_expr)?;
        parser.expect_keyword_is(Keyword::THEN)?;
        let result = parser.parse_expr()?;
        branches.push((values, result));
        if !parser.parse_keyword(Keyword::WHEN) {
            break;
        }
    }
    let else_result = if parser.parse_keyword(Keyword::ELSE) {
        Some(Box::new(parser.parse_expr()?))
    } else {
        None
    };
    let end_token = AttachedToken(parser.expect_keyword(Keyword::END)?);
    let lists = branches.iter().any(|(values, _)| values.len() > 1);
    if lists {
        repeatable(parser, "CASE", &vec![&operand; branches.len()])?;
    }
    let conditions = branches
        .into_iter()
        .map(|(mut values, result)| {
            let condition = if !lists {
                values.remove(0)
            } else if values.len() == 1 {
                Expr::BinaryOp {
                    left: Box::new(operand.clone()),
                    op: BinaryOperator::Eq,
                    right: Box::new(values.remove(0)),
                }
            } else {
                Expr::InList {
                    expr: Box::new(operand.clone()),
                    list: values,
                    negated: false,
                }
            };
            CaseWhen { condition, result }
        })
        .collect();
    Ok(Expr::Case {
        case_token,
        end_token,
        operand: (!lists).then(|| Box::new(operand)),
        conditions,
        else_result,
    })
}

/// `OVERLAPS (s2, e2)` after `(s1, e1)`, if that is what follows.
pub(super) fn parse_overlaps(
    dialect: &dyn Dialect,
    parser: &mut Parser,
    expr: &Expr,
) -> Option<Result<Expr, ParserError>> {
    if !word(parser, 0, "OVERLAPS") {
        return None;
    }
    let Some((s1, e1)) = period(expr) else {
        return None;
    };
    let at = parser.peek_token_ref().span.start;
    parser.next_token();
    let right = match parser.parse_subexpr(dialect.prec_value(Precedence::Between)) {
        Ok(r) => r,
        Err(e) => return Some(Err(e)),
    };
    let Some((s2, e2)) = period(&right) else {
        return Some(Err(ParserError::ParserError(format!(
            "OVERLAPS compares two periods (start, end or interval), found {right} at Line: {}, Column: {}",
            at.line, at.column
        ))));
    };
    if let Err(e) = repeatable(parser, "OVERLAPS", &[&s1, &e1, &s2, &e2]) {
        return Some(Err(e));
    }
    let (s1, e1) = ordered(s1, e1);
    let (s2, e2) = ordered(s2, e2);
    let ge = |a: Expr, b: Expr| Expr::BinaryOp {
        left: Box::new(a),
        op: BinaryOperator::GtEq,
        right: Box::new(b),
    };
    Some(Ok(Expr::Nested(Box::new(Expr::BinaryOp {
        left: Box::new(ge(e1, s2)),
        op: BinaryOperator::And,
        right: Box::new(ge(e2, s1)),
    }))))
}

/// The start and end of a period `(start, end)` or `(start, interval)`.
fn period(expr: &Expr) -> Option<(Expr, Expr)> {
    let Expr::Tuple(elements) = expr else { return None };
    let [start, second] = elements.as_slice() else {
        return None;
    };
    let end = if is_interval(second) {
        Expr::Nested(Box::new(Expr::BinaryOp {
            left: Box::new(start.clone()),
            op: BinaryOperator::Plus,
            right: Box::new(second.clone()),
        }))
    } else {
        second.clone()
    };
    Some((start.clone(), end))
}

fn is_interval(e: &Expr) -> bool {
    match e {
        Expr::Interval(_) => true,
        Expr::Nested(inner) => is_interval(inner),
        _ => false,
    }
}

/// The ends of a period, the earlier first.
fn ordered(start: Expr, end: Expr) -> (Expr, Expr) {
    let in_order = Expr::BinaryOp {
        left: Box::new(start.clone()),
        op: BinaryOperator::LtEq,
        right: Box::new(end.clone()),
    };
    let pick = |a: &Expr, b: &Expr| Expr::Case {
        case_token: AttachedToken::empty(),
        end_token: AttachedToken::empty(),
        operand: None,
        conditions: vec![CaseWhen {
            condition: in_order.clone(),
            result: a.clone(),
        }],
        else_result: Some(Box::new(b.clone())),
    };
    (pick(&start, &end), pick(&end, &start))
}

#[cfg(test)]
mod tests {
    use crate::dialect::parsed_expr as parsed;

    #[test]
    fn between_symmetric_is_either_order() {
        assert_eq!(
            parsed("x BETWEEN SYMMETRIC 15 AND 12"),
            "(x BETWEEN 15 AND 12 OR x BETWEEN 12 AND 15)"
        );
        assert_eq!(
            parsed("x NOT BETWEEN SYMMETRIC a AND b + 1 AND y"),
            "NOT (x BETWEEN a AND b + 1 OR x BETWEEN b + 1 AND a) AND y"
        );
        assert_eq!(parsed("x BETWEEN ASYMMETRIC 1 AND 2"), "x BETWEEN 1 AND 2");
        assert_eq!(parsed("x NOT BETWEEN ASYMMETRIC 1 AND 2"), "x NOT BETWEEN 1 AND 2");
        assert_eq!(parsed("x BETWEEN 1 AND 2"), "x BETWEEN 1 AND 2");
    }

    #[test]
    fn case_lists_become_in_lists() {
        assert_eq!(
            parsed("CASE x WHEN 1, 2 THEN 'a' WHEN 3 THEN 'b' ELSE 'c' END"),
            "CASE WHEN x IN (1, 2) THEN 'a' WHEN x = 3 THEN 'b' ELSE 'c' END"
        );
        assert_eq!(parsed("CASE x WHEN 1 THEN 'a' END"), "CASE x WHEN 1 THEN 'a' END");
        assert_eq!(parsed("CASE WHEN x THEN 'a' END"), "CASE WHEN x THEN 'a' END");
        assert!(parsed("CASE x WHEN 1, THEN 'a' END").starts_with("error: "));
    }

    #[test]
    fn overlaps_orders_each_period() {
        assert_eq!(
            parsed("(a, b) OVERLAPS (c, INTERVAL '1' HOUR)"),
            "(CASE WHEN a <= b THEN b ELSE a END >= CASE WHEN c <= (c + INTERVAL '1' HOUR) THEN c ELSE (c + INTERVAL '1' HOUR) END \
             AND CASE WHEN c <= (c + INTERVAL '1' HOUR) THEN (c + INTERVAL '1' HOUR) ELSE c END >= CASE WHEN a <= b THEN a ELSE b END)"
        );
        assert!(
            parsed("(a, b) OVERLAPS c").starts_with("error: "),
            "{}",
            parsed("(a, b) OVERLAPS c")
        );
    }
}
