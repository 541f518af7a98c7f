//! Weir's SQL dialect: DataFusion's generic dialect plus Flink's
//! `TABLE t` argument of window table-valued functions.

use std::any::TypeId;

use datafusion::sql::sqlparser::ast::{Expr, Ident};
use datafusion::sql::sqlparser::dialect::{Dialect, GenericDialect};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

/// The keyword that marks a table argument in the AST: `TABLE bids` parses
/// to `Expr::Prefixed { prefix: TABLE, value: bids }`.
pub const TABLE_ARGUMENT: &str = "TABLE";

/// Parses like DataFusion's default (generic) dialect, and also accepts a
/// table argument `TABLE name [PARTITION BY expr]` inside function calls, as
/// in `TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND)`.
#[derive(Debug, Default)]
pub struct WeirDialect {
    generic: GenericDialect,
}

impl Dialect for WeirDialect {
    /// Dialect checks inside sqlparser treat Weir as the generic dialect.
    fn dialect(&self) -> TypeId {
        TypeId::of::<GenericDialect>()
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        self.generic.is_identifier_start(ch)
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        self.generic.is_identifier_part(ch)
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        // Flink quotes identifiers with backticks; Postgres users use ".
        ch == '`' || ch == '"'
    }

    fn supports_filter_during_aggregation(&self) -> bool {
        true
    }

    fn supports_group_by_expr(&self) -> bool {
        true
    }

    /// For lookup joins: `JOIN dim FOR SYSTEM_TIME AS OF s.proc_time`.
    fn supports_table_versioning(&self) -> bool {
        true
    }

    fn is_select_item_alias(&self, explicit: bool, kw: &Keyword, parser: &mut Parser) -> bool {
        explicit || (self.generic.is_column_alias(kw, parser) && !starts_window_clause(parser))
    }

    fn is_table_factor_alias(&self, explicit: bool, kw: &Keyword, parser: &mut Parser) -> bool {
        explicit || (self.generic.is_table_alias(kw, parser) && !starts_window_clause(parser))
    }

    fn parse_prefix(&self, parser: &mut Parser) -> Option<Result<Expr, ParserError>> {
        // `TABLE` followed by a name (not `TABLE(`, which is a table
        // function in FROM).
        if !parser.peek_keyword(Keyword::TABLE) {
            return None;
        }
        if !matches!(parser.peek_nth_token_ref(1).token, Token::Word(_)) {
            return None;
        }
        parser.next_token();
        Some(parse_table_argument(parser))
    }
}

/// `t` or `t PARTITION BY k` after `TABLE`: the table alone, or a tuple of
/// the table and the partition expression (for `SESSION`).
fn parse_table_argument(parser: &mut Parser) -> Result<Expr, ParserError> {
    let name = parser.parse_object_name(false)?;
    let table = Expr::CompoundIdentifier(name.0.into_iter().filter_map(|p| p.as_ident().cloned()).collect());
    let value = if parser.parse_keywords(&[Keyword::PARTITION, Keyword::BY]) {
        Expr::Tuple(vec![table, parser.parse_expr()?])
    } else {
        table
    };
    Ok(Expr::Prefixed {
        prefix: Ident::new(TABLE_ARGUMENT),
        value: Box::new(value),
    })
}

/// Called with a candidate alias just consumed: is it rather the first
/// word of `ALLOWED LATENESS`, `LATE DATA INTO` or `EMIT EARLY EVERY`?
fn starts_window_clause(parser: &Parser) -> bool {
    let word = |n: usize, w: &str| {
        matches!(&parser.peek_nth_token_ref(n).token, Token::Word(x) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(w))
    };
    word(0, "LATENESS") || (word(0, "DATA") && word(1, "INTO")) || (word(0, "EARLY") && word(1, "EVERY"))
}

/// Makes `TOP` an ordinary identifier unless a row count follows it
/// (`TOP 10`, `TOP (10)`): sqlparser reads SQL Server's `SELECT TOP n` in
/// every dialect and has no switch for it, while Flink and PostgreSQL take
/// `top` as a column name (`max(price) AS top`, `SELECT top FROM v`).
pub fn unreserve_top(tokens: &mut [TokenWithSpan]) {
    for i in 0..tokens.len() {
        let Token::Word(w) = &tokens[i].token else { continue };
        if w.keyword != Keyword::TOP || w.quote_style.is_some() {
            continue;
        }
        let next = tokens[i + 1..].iter().map(|t| &t.token).find(|t| !matches!(t, Token::Whitespace(_)));
        if matches!(next, Some(Token::Number(..) | Token::LParen)) {
            continue;
        }
        if let Token::Word(w) = &mut tokens[i].token {
            w.keyword = Keyword::NoKeyword;
        }
    }
}
