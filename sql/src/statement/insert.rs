//! Flink's `INSERT INTO t [PARTITION (col = value, …)] [(col, …)] query`:
//! parsed here rather than by sqlparser, which reads a column list after
//! PARTITION only in its Hive dialect. `INSERT OVERWRITE` is Flink's batch
//! mode's and is refused.

use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr, Ident};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use super::{WeirStatement, parse_window_clauses, position_of};
use crate::error::{Position, Result, SqlError};

/// An INSERT statement at the parser's position.
pub(crate) fn parse_insert(p: &mut Parser) -> Result<WeirStatement> {
    let pos = Position::of(p.peek_token().span);
    p.expect_keyword(Keyword::INSERT)?;
    if p.parse_keyword(Keyword::OVERWRITE) {
        return Err(SqlError::unsupported("INSERT OVERWRITE (Flink's batch mode)", pos));
    }
    p.expect_keyword(Keyword::INTO)?;
    let _ = p.parse_keyword(Keyword::TABLE);
    let table = p.parse_object_name(false)?;
    let partition = match p.parse_keyword(Keyword::PARTITION) {
        true => {
            p.expect_token(&Token::LParen)?;
            let spec = p.parse_comma_separated(Parser::parse_expr)?;
            p.expect_token(&Token::RParen)?;
            static_partition(spec)?
        }
        false => Vec::new(),
    };
    // A column list, unless the parenthesis opens the query.
    let columns = match (&p.peek_token_ref().token, &p.peek_nth_token_ref(1).token) {
        (Token::LParen, Token::Word(w)) if !matches!(w.keyword, Keyword::SELECT | Keyword::WITH | Keyword::VALUES) => {
            p.expect_token(&Token::LParen)?;
            let columns = p.parse_comma_separated(|p| p.parse_identifier())?;
            p.expect_token(&Token::RParen)?;
            columns
        }
        _ => Vec::new(),
    };
    let query = p.parse_query()?;
    let clauses = parse_window_clauses(p)?;
    Ok(WeirStatement::Insert {
        table,
        columns,
        partition,
        query,
        clauses,
    })
}

/// The columns `PARTITION (…)` gives a value: `col = value` (a column named
/// alone is a dynamic partition, which the query produces).
fn static_partition(spec: Vec<Expr>) -> Result<Vec<(Ident, Expr)>> {
    let mut given = Vec::new();
    for e in spec {
        match e {
            Expr::BinaryOp {
                left,
                op: BinaryOperator::Eq,
                right,
            } => match *left {
                Expr::Identifier(column) => given.push((column, *right)),
                other => {
                    return Err(SqlError::plan(
                        format!("PARTITION ({other} = …): not a column name"),
                        position_of(&other),
                    ));
                }
            },
            Expr::Identifier(_) => {}
            other => {
                return Err(SqlError::plan(
                    format!("PARTITION ({other}): expected column = value, or a column"),
                    position_of(&other),
                ));
            }
        }
    }
    Ok(given)
}

#[cfg(test)]
mod tests {
    use crate::script::parse_script;
    use crate::statement::WeirStatement;

    fn parts(sql: &str) -> (Vec<String>, Vec<String>, String) {
        let Some(WeirStatement::Insert {
            columns,
            partition,
            query,
            ..
        }) = parse_script(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .pop()
            .map(|s| s.statement)
        else {
            panic!("not an INSERT: {sql}")
        };
        (
            columns.iter().map(|c| c.value.clone()).collect(),
            partition.iter().map(|(c, v)| format!("{}={v}", c.value)).collect(),
            query.to_string(),
        )
    }

    #[test]
    fn partition_and_column_list_in_flinks_order() {
        assert_eq!(
            parts("INSERT INTO t PARTITION (dt = '2019-08-30', country) (u, cnt) SELECT a, b FROM s"),
            (
                vec!["u".into(), "cnt".into()],
                vec!["dt='2019-08-30'".into()],
                "SELECT a, b FROM s".into()
            )
        );
        assert_eq!(parts("INSERT INTO t (SELECT 1)"), (vec![], vec![], "(SELECT 1)".into()));
        assert_eq!(parts("INSERT INTO t VALUES (1)"), (vec![], vec![], "VALUES (1)".into()));
        let e = parse_script("INSERT OVERWRITE t SELECT 1").unwrap_err().to_string();
        assert!(
            e.contains("INSERT OVERWRITE (Flink's batch mode) is not supported"),
            "{e}"
        );
        let e = parse_script("INSERT INTO t PARTITION (1 = 2) SELECT 1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a column name"), "{e}");
    }
}
