//! A script: `;`-separated statements, each with its text and place.
//! Parsed in time linear in the script's length, on a stack sized for it
//! (`crate::depth`), so that neither a script of thirty thousand
//! statements nor a statement nested thousands deep stalls or crashes the
//! process.

use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Location, Token, Tokenizer};

use crate::dialect::{WeirDialect, nested_types, unreserve_top};
use crate::error::{Position, Result, SqlError};
use crate::hints::{StateTtlHint, TableHint, state_ttl_hints, table_hints};
use crate::statement::{WeirStatement, parse_statement};

/// A statement with its text and where it starts in the script.
#[derive(Debug, Clone)]
pub struct ParsedStatement {
    pub statement: WeirStatement,
    /// The statement's own text, without the closing `;`.
    pub text: String,
    pub start: Position,
    /// `/*+ OPTIONS(…) */` hints of its tables (`crate::hints`).
    pub hints: Vec<TableHint>,
    /// `/*+ STATE_TTL(…) */` hints of its queries.
    pub state_ttl: Vec<StateTtlHint>,
}

/// Parses a script of `;`-separated statements, in time linear in its
/// length, on a stack that any tree it makes fits (`crate::depth`).
/// Statements nesting deeper than any session may allow
/// ([`MAX_EXPRESSION_DEPTH`](crate::settings::MAX_EXPRESSION_DEPTH)) are
/// refused here, so that no caller ever holds one; a session refuses those
/// deeper than its own `table.planner.max-expression-depth`.
pub fn parse_script(sql: &str) -> Result<Vec<ParsedStatement>> {
    crate::depth::on_parsing_stack(sql, || {
        let dialect = WeirDialect::default();
        let mut tokens = Tokenizer::new(&dialect, sql)
            .with_unescape(true)
            .tokenize_with_location()
            .map_err(ParserError::from)?;
        unreserve_top(&mut tokens);
        nested_types(&mut tokens)?;
        crate::planner::match_recognize::move_within(&mut tokens);
        let mut hints = table_hints(&tokens)?.into_iter().peekable();
        let mut ttl_hints = state_ttl_hints(&tokens)?.into_iter().peekable();
        let mut parser = Parser::new(&dialect)
            .with_recursion_limit(crate::depth::PARSER_RECURSION_LIMIT)
            .with_tokens_with_locations(tokens);
        let mut texts = Offsets::new(sql);
        let mut out = Vec::new();
        loop {
            while parser.consume_token(&Token::SemiColon) {}
            let first = parser.peek_token();
            if first.token == Token::EOF {
                break;
            }
            let start = first.span.start;
            let at = Position::at(start).unwrap_or(Position { line: 1, column: 1 });
            let statement = parse_statement(&mut parser)?;
            crate::depth::check(&statement, crate::settings::MAX_EXPRESSION_DEPTH, at)?;
            let end = parser.peek_token();
            if !matches!(end.token, Token::SemiColon | Token::EOF) {
                return Err(SqlError::Syntax {
                    message: format!("expected ';' or end of input after the statement, found {}", end.token),
                    position: Position::of(end.span),
                });
            }
            let (from, to) = (texts.offset(start), texts.offset(end.span.start));
            let text = sql.get(from..to.max(from)).unwrap_or_default().trim().to_string();
            let before_end = |l: Location| end.token == Token::EOF || (l.line, l.column) < (end.span.start.line, end.span.start.column);
            let mut own = Vec::new();
            while let Some(h) = hints.next_if(|h| before_end(h.table_at)) {
                own.push(h);
            }
            let mut state_ttl = Vec::new();
            while let Some(h) = ttl_hints.next_if(|h| {
                h.position.is_none_or(|p| before_end(Location { line: p.line, column: p.column }))
            }) {
                state_ttl.push(h);
            }
            out.push(ParsedStatement { statement, text, start: at, hints: own, state_ttl });
        }
        Ok(out)
    })
}

/// Byte offsets of sqlparser's locations (1-based lines and character
/// columns) in a script, found by walking forward from the previous one:
/// statements come in order, so a whole script is walked once.
struct Offsets<'a> {
    sql: &'a str,
    /// The byte offset, line and column reached.
    at: usize,
    line: u64,
    column: u64,
}

impl<'a> Offsets<'a> {
    fn new(sql: &'a str) -> Self {
        Self { sql, at: 0, line: 1, column: 1 }
    }

    /// The byte offset of `l`; the end of the script for the end of input
    /// (line 0).
    fn offset(&mut self, l: Location) -> usize {
        if l.line == 0 {
            return self.sql.len();
        }
        if (l.line, l.column) < (self.line, self.column) {
            *self = Self::new(self.sql);
        }
        for c in self.sql[self.at..].chars() {
            if (self.line, self.column) == (l.line, l.column) {
                break;
            }
            self.at += c.len_utf8();
            if c == '\n' {
                self.line += 1;
                self.column = 1;
            } else {
                self.column += 1;
            }
        }
        self.at
    }
}
