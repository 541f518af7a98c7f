//! Flink's `EXPLAIN` forms: `EXPLAIN PLAN FOR s`, `EXPLAIN detail, … s`
//! (ESTIMATED_COST, CHANGELOG_MODE, PLAN_ADVICE, JSON_EXECUTION_PLAN) and
//! `EXPLAIN [EXECUTE] STATEMENT SET BEGIN …; END`. Every form shows Weir's
//! streaming plan: the details are Flink's optimizer's and are accepted.

use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use super::{WeirStatement, parse_statement, parse_word, statement_set};
use crate::error::{Position, Result, SqlError};

/// The details Flink's EXPLAIN takes.
const DETAILS: [&str; 4] = ["ESTIMATED_COST", "CHANGELOG_MODE", "PLAN_ADVICE", "JSON_EXECUTION_PLAN"];

/// What follows `EXPLAIN`; `pos` is where the statement starts.
pub(super) fn parse_explain(p: &mut Parser, pos: Option<Position>) -> Result<WeirStatement> {
    if p.parse_keyword(Keyword::PLAN) {
        p.expect_keyword(Keyword::FOR)?;
    } else {
        parse_details(p)?;
    }
    // Checked before recursing: `EXPLAIN EXPLAIN …` must not nest.
    if p.peek_keyword(Keyword::EXPLAIN) {
        return Err(SqlError::unsupported("EXPLAIN of EXPLAIN (explain a query or an INSERT)", pos));
    }
    let inner = match parse_word(p, "STATEMENT") {
        true => {
            p.expect_keyword(Keyword::SET)?;
            statement_set::parse_body(p, pos)?
        }
        false => parse_statement(p)?,
    };
    match inner {
        WeirStatement::Query { .. } | WeirStatement::Insert { .. } | WeirStatement::StatementSet(_) => {
            Ok(WeirStatement::Explain(Box::new(inner)))
        }
        _ => Err(SqlError::unsupported(
            "EXPLAIN of this statement (explain a query, an INSERT or a STATEMENT SET)",
            pos,
        )),
    }
}

/// `detail [, detail]*`, each at most once.
fn parse_details(p: &mut Parser) -> Result<()> {
    let mut seen: Vec<&str> = Vec::new();
    loop {
        let t = p.peek_token();
        let Some(detail) = DETAILS.iter().find(|d| parse_word(p, d)) else {
            if !seen.is_empty() {
                // A comma was taken: a detail must follow.
                return Err(SqlError::Syntax {
                    message: format!("expected an EXPLAIN detail ({}), found {}", DETAILS.join(", "), t.token),
                    position: Position::of(t.span),
                });
            }
            return Ok(());
        };
        if seen.contains(detail) {
            return Err(SqlError::plan(format!("EXPLAIN detail {detail} is given twice"), Position::of(t.span)));
        }
        seen.push(detail);
        if !p.consume_token(&Token::Comma) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::parse_script;

    fn explained(sql: &str) -> WeirStatement {
        match parse_script(sql).unwrap_or_else(|e| panic!("{sql}: {e}")).remove(0).statement {
            WeirStatement::Explain(inner) => *inner,
            other => panic!("{sql}: {other:?}"),
        }
    }

    #[test]
    fn flink_explain_forms() {
        assert!(matches!(explained("EXPLAIN PLAN FOR SELECT a FROM t"), WeirStatement::Query { .. }));
        assert!(matches!(
            explained("EXPLAIN ESTIMATED_COST, CHANGELOG_MODE, PLAN_ADVICE, JSON_EXECUTION_PLAN SELECT a FROM t"),
            WeirStatement::Query { .. }
        ));
        assert!(matches!(explained("EXPLAIN changelog_mode INSERT INTO s SELECT a FROM t"), WeirStatement::Insert { .. }));
        for sql in [
            "EXPLAIN STATEMENT SET BEGIN INSERT INTO s SELECT a FROM t; INSERT INTO u SELECT a FROM t; END",
            "EXPLAIN EXECUTE STATEMENT SET BEGIN INSERT INTO s SELECT a FROM t; END",
            "EXPLAIN PLAN FOR STATEMENT SET BEGIN INSERT INTO s SELECT a FROM t; END",
        ] {
            assert!(matches!(explained(sql), WeirStatement::StatementSet(_)), "{sql}");
        }
    }

    #[test]
    fn bad_explain_forms_say_where() {
        for (sql, needle, column) in [
            ("EXPLAIN CHANGELOG_MODE, SELECT 1", "expected an EXPLAIN detail", 25),
            ("EXPLAIN PLAN_ADVICE, PLAN_ADVICE SELECT 1", "given twice", 22),
            ("EXPLAIN PLAN SELECT 1", "FOR", 14),
            ("EXPLAIN STATEMENT SET BEGIN SELECT 1; END", "INSERT statements up to END", 29),
            ("EXPLAIN SHOW TABLES", "EXPLAIN of this statement", 1),
        ] {
            let e = parse_script(sql).unwrap_err();
            assert!(e.to_string().contains(needle), "{sql}: {e}");
            assert_eq!(e.position().map(|p| p.column), Some(column), "{sql}: {e}");
        }
    }
}
