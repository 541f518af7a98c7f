//! Flink's `PARTITIONED BY (col, …)` clause of `CREATE TABLE`, between the
//! column list (or `COMMENT`) and `WITH`: the columns whose values name a
//! filesystem table's directories.

use datafusion::sql::sqlparser::ast::Ident;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::error::{Position, Result};

/// `PARTITIONED BY (…)`: the columns in order, each with its position
/// (`Ident`'s span) for errors.
#[derive(Debug, Clone)]
pub struct PartitionedBy {
    pub columns: Vec<Ident>,
    /// Where `PARTITIONED` is, for errors about the clause as a whole.
    pub position: Option<Position>,
}

/// Parses `PARTITIONED BY (a, b)` if it comes next.
pub(super) fn parse_partitioned_by(p: &mut Parser) -> Result<Option<PartitionedBy>> {
    let position = Position::of(p.peek_token().span);
    if !p.parse_keyword(Keyword::PARTITIONED) {
        return Ok(None);
    }
    p.expect_keyword(Keyword::BY)?;
    p.expect_token(&Token::LParen)?;
    let columns = p.parse_comma_separated(|p| p.parse_identifier())?;
    p.expect_token(&Token::RParen)?;
    Ok(Some(PartitionedBy { columns, position }))
}
