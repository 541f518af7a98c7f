//! The body of a statement set, `BEGIN INSERT …; INSERT …; END`, shared by
//! `EXECUTE STATEMENT SET` and Flink's `EXPLAIN STATEMENT SET`.

use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use super::{WeirStatement, parse_insert};
use crate::error::{Position, Result, SqlError};

/// What follows `STATEMENT SET`: the INSERTs between BEGIN and END, as one
/// job; `pos` is where the statement starts.
pub(super) fn parse_body(p: &mut Parser, pos: Option<Position>) -> Result<WeirStatement> {
    p.expect_keyword(Keyword::BEGIN)?;
    let mut inserts = Vec::new();
    loop {
        while p.consume_token(&Token::SemiColon) {}
        if p.parse_keyword(Keyword::END) {
            break;
        }
        if !p.peek_keyword(Keyword::INSERT) {
            let t = p.peek_token();
            return Err(SqlError::Syntax {
                message: format!("a statement set holds INSERT statements up to END, found {}", t.token),
                position: Position::of(t.span),
            });
        }
        inserts.push(parse_insert(p)?);
    }
    if inserts.is_empty() {
        return Err(SqlError::plan("a statement set needs at least one INSERT", pos));
    }
    Ok(WeirStatement::StatementSet(inserts))
}
