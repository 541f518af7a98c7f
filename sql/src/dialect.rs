//! Weir's SQL dialect: DataFusion's generic dialect plus Flink's
//! `TABLE t` argument of window table-valued functions and Flink's nested
//! column types (`ROW<…>`, `ARRAY<…>`, `MAP<…, …>`), its JSON
//! constructors and `IS JSON` predicate (`dialect/json.rs`), the clauses
//! of its JSON query functions (`dialect/json_query.rs`), interval
//! range qualifiers (`dialect/interval.rs`), `BETWEEN SYMMETRIC`, `CASE`
//! value lists and `OVERLAPS` (`dialect/predicates.rs`).

use std::any::TypeId;

use datafusion::sql::sqlparser::ast::{Expr, Ident, Value};
use datafusion::sql::sqlparser::dialect::{Dialect, GenericDialect};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Location, Span, Token, TokenWithSpan};

use crate::error::{Position, Result, SqlError};

mod interval;
mod json;
mod json_query;
mod predicates;

pub(crate) use json::{call, cast};

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

    /// As in the generic dialect: `STRUCT<name TYPE, …>` is a type, and
    /// Flink's `ROW<…>` is rewritten to it ([`row_types_as_structs`]).
    fn supports_struct_literal(&self) -> bool {
        true
    }

    /// Flink's (Calcite's) `U&'\0041'` strings of Unicode escapes
    /// (`UESCAPE` is read by [`unicode_escape`]).
    fn supports_unicode_string_literal(&self) -> bool {
        true
    }

    /// Flink's `MAP<K, V>` type (the generic dialect only reads
    /// ClickHouse's `Map(K, V)`).
    fn supports_map_literal_with_angle_brackets(&self) -> bool {
        true
    }

    /// Flink's `MATCH_RECOGNIZE` (its `WITHIN` after `PATTERN (…)` is moved
    /// into `DEFINE` first: `planner::match_recognize::move_within`).
    fn supports_match_recognize(&self) -> bool {
        true
    }

    fn is_select_item_alias(&self, explicit: bool, kw: &Keyword, parser: &mut Parser) -> bool {
        explicit || (self.generic.is_column_alias(kw, parser) && !starts_window_clause(parser))
    }

    fn is_table_factor_alias(&self, explicit: bool, kw: &Keyword, parser: &mut Parser) -> bool {
        explicit || (self.generic.is_table_alias(kw, parser) && !starts_window_clause(parser))
    }

    fn parse_prefix(&self, parser: &mut Parser) -> Option<Result<Expr, ParserError>> {
        if let Some(constructor) = json::parse_constructor(parser) {
            return Some(constructor);
        }
        if let Some(query) = json_query::parse_query_function(parser) {
            return Some(query);
        }
        if let Some(interval) = interval::parse_interval(parser) {
            return Some(interval);
        }
        if let Some(case) = predicates::parse_case(parser) {
            return Some(case);
        }
        if let Some(text) = unicode_string(parser) {
            return Some(text);
        }
        // `CURRENT_CATALOG()`: sqlparser reads the word as a niladic
        // keyword and then refuses the parentheses.
        if json::word(parser, 0, "CURRENT_CATALOG")
            && parser.peek_nth_token_ref(1).token == Token::LParen
            && parser.peek_nth_token_ref(2).token == Token::RParen
        {
            for _ in 0..3 {
                parser.next_token();
            }
            return Some(Ok(call("current_catalog", vec![])));
        }
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

    /// Flink's `x IS [NOT] JSON [kind]`, `x [NOT] BETWEEN [A]SYMMETRIC a
    /// AND b` and `(s, e) OVERLAPS (s, e)`.
    fn parse_infix(&self, parser: &mut Parser, expr: &Expr, _precedence: u8) -> Option<Result<Expr, ParserError>> {
        json::parse_is_json(parser, expr)
            .or_else(|| predicates::parse_between(self, parser, expr))
            .or_else(|| predicates::parse_overlaps(self, parser, expr))
    }
}

/// A `U&'…'` string (already read with `\` escapes by the tokenizer), as
/// the plain string DataFusion plans; with `UESCAPE 'c'`, `c` is the escape
/// character instead (`cXXXX`, `c+XXXXXX`, `cc`). A backslash escape in
/// the text is then already read (the tokenizer has no other way): only
/// `U&'…'` strings without backslashes are exact under `UESCAPE`.
fn unicode_string(parser: &mut Parser) -> Option<Result<Expr, ParserError>> {
    let Token::UnicodeStringLiteral(text) = &parser.peek_token_ref().token else {
        return None;
    };
    let text = text.clone();
    parser.next_token();
    if !json::word(parser, 0, "UESCAPE") {
        return Some(Ok(Expr::value(Value::SingleQuotedString(text))));
    }
    parser.next_token();
    let at = parser.peek_token_ref().span.start;
    let error = |m: String| ParserError::ParserError(format!("{m} at Line: {}, Column: {}", at.line, at.column));
    let escape = match &parser.next_token().token {
        Token::SingleQuotedString(e) => {
            let mut chars = e.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if !c.is_ascii_hexdigit() && !"+'\"".contains(c) && !c.is_whitespace() => c,
                _ => {
                    return Some(Err(error(format!(
                        "UESCAPE takes one character other than a hex digit, +, a quote or a space, not '{e}'"
                    ))));
                }
            }
        }
        other => {
            return Some(Err(error(format!(
                "UESCAPE takes a string of one character, found {other}"
            ))));
        }
    };
    Some(
        with_escape(&text, escape)
            .map(|s| Expr::value(Value::SingleQuotedString(s)))
            .map_err(error),
    )
}

/// `text` with its `escape` sequences read.
fn with_escape(text: &str, escape: char) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != escape {
            out.push(c);
            continue;
        }
        if chars.next_if_eq(&escape).is_some() {
            out.push(escape);
            continue;
        }
        let digits = if chars.next_if_eq(&'+').is_some() { 6 } else { 4 };
        let hex: String = (0..digits).filter_map(|_| chars.next()).collect();
        let code = u32::from_str_radix(&hex, 16)
            .ok()
            .filter(|_| hex.len() == digits)
            .ok_or_else(|| format!("invalid Unicode escape {escape}{hex}: {digits} hex digits expected"))?;
        out.push(
            char::from_u32(code).ok_or_else(|| format!("invalid Unicode escape {escape}{hex}: no such character"))?,
        );
    }
    Ok(out)
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
    let word = |n: usize, w: &str| matches!(&parser.peek_nth_token_ref(n).token, Token::Word(x) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(w));
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
        let next = tokens[i + 1..]
            .iter()
            .map(|t| &t.token)
            .find(|t| !matches!(t, Token::Whitespace(_)));
        if matches!(next, Some(Token::Number(..) | Token::LParen)) {
            continue;
        }
        if let Token::Word(w) = &mut tokens[i].token {
            w.keyword = Keyword::NoKeyword;
        }
    }
}

/// How deep types may nest (`ARRAY<ARRAY<…>>`): as deep as a JSON record
/// may (Jackson's default, which Weir's JSON reader keeps too), since a
/// deeper value could never be read. sqlparser parses types recursively
/// without a limit, so a deeper type is refused before it is parsed.
pub const MAX_TYPE_DEPTH: usize = 1_000;

/// Rewrites the tokens of Flink's nested types into what sqlparser reads:
/// `ROW` types as `STRUCT` ([`row_types_as_structs`]), and an empty `<>`
/// after `ARRAY`, `MAP` or `ROW` as `<` and `>`, so that `ARRAY<>` is
/// reported as a missing type rather than as a misplaced `<>` operator.
/// Types nested deeper than [`MAX_TYPE_DEPTH`] are an error.
pub fn nested_types(tokens: &mut Vec<TokenWithSpan>) -> Result<()> {
    split_empty_type_brackets(tokens);
    row_types_as_structs(tokens);
    map_constructors(tokens);
    check_type_depth(tokens)
}

/// Refuses a type nested deeper than [`MAX_TYPE_DEPTH`], at its first
/// `<` too many: one that follows a nested type's name opens a level, and
/// `>` (`>>`: two) closes one.
fn check_type_depth(tokens: &[TokenWithSpan]) -> Result<()> {
    let mut depth = 0usize;
    let mut previous_is_type = false;
    for t in tokens {
        match &t.token {
            Token::Whitespace(_) => continue,
            Token::Lt if previous_is_type => {
                depth += 1;
                if depth > MAX_TYPE_DEPTH {
                    return Err(SqlError::Limit {
                        message: format!("a type nests deeper than {MAX_TYPE_DEPTH} levels"),
                        position: Position::of(t.span),
                    });
                }
            }
            Token::Gt => depth = depth.saturating_sub(1),
            Token::ShiftRight => depth = depth.saturating_sub(2),
            _ => {}
        }
        previous_is_type = names_nested_type(&t.token);
    }
    Ok(())
}

/// Whether `token` is the name of a nested type: `ARRAY`, `MAP`, `ROW` (or
/// `STRUCT`), unquoted.
fn names_nested_type(token: &Token) -> bool {
    matches!(token, Token::Word(w) if w.quote_style.is_none()
        && ["ARRAY", "MAP", "ROW", "STRUCT"].iter().any(|n| w.value.eq_ignore_ascii_case(n)))
}

/// Splits every `<>` token that follows a nested type's name into `<` and
/// `>`, each at its own column.
fn split_empty_type_brackets(tokens: &mut Vec<TokenWithSpan>) {
    let mut previous_is_type = false;
    let mut out = Vec::with_capacity(tokens.len());
    for t in tokens.drain(..) {
        if matches!(t.token, Token::Whitespace(_)) {
            out.push(t);
            continue;
        }
        if previous_is_type && t.token == Token::Neq {
            let (start, end) = (t.span.start, t.span.end);
            let middle = Location::new(start.line, start.column + 1);
            out.push(TokenWithSpan::new(Token::Lt, Span::new(start, middle)));
            out.push(TokenWithSpan::new(Token::Gt, Span::new(middle, end)));
            previous_is_type = false;
            continue;
        }
        previous_is_type = names_nested_type(&t.token);
        out.push(t);
    }
    *tokens = out;
}

/// Makes Flink's `ROW` types sqlparser's `STRUCT` types, which it parses
/// into the same tree: `ROW<name TYPE, …>` always (the word `ROW` followed
/// by `<` is no expression), and `ROW(name TYPE, …)` when what follows the
/// parenthesis reads as a field declaration — a name then a type name —
/// since `ROW(a, b)` is Flink's row constructor and must stay a call.
/// A quoted `` `row` `` is a column name and left alone.
fn row_types_as_structs(tokens: &mut [TokenWithSpan]) {
    // Found once for the whole script, so that nested `ROW(…)` types stay
    // linear in its length.
    let mut closing: Option<Vec<Option<usize>>> = None;
    for i in 0..tokens.len() {
        let Token::Word(w) = &tokens[i].token else { continue };
        if w.keyword != Keyword::ROW || w.quote_style.is_some() {
            continue;
        }
        let Some(open) = next_significant(tokens, i + 1) else {
            continue;
        };
        match tokens[open].token {
            Token::Lt => make_struct(&mut tokens[i]),
            Token::LParen if declares_fields(tokens, open) => {
                let close = closing.get_or_insert_with(|| matching_parens(tokens))[open];
                if let Some(close) = close {
                    make_struct(&mut tokens[i]);
                    tokens[open].token = Token::Lt;
                    tokens[close].token = Token::Gt;
                }
            }
            _ => {}
        }
    }
}

/// The index of the first token from `from` on that is not whitespace
/// (comments are whitespace tokens).
fn next_significant(tokens: &[TokenWithSpan], from: usize) -> Option<usize> {
    (from..tokens.len()).find(|&i| !matches!(tokens[i].token, Token::Whitespace(_)))
}

/// Whether the parenthesis at `open` starts `name TYPE`: a word, then an
/// unquoted word naming a type. No expression starts so (`ROW(a, b)`,
/// `ROW(a IS NULL)`, `ROW(DATE '2026-01-01')`, `ROW(CAST(…))` do not);
/// `NOT` is excluded for `ROW(NOT flag)` over a column named like a type.
fn declares_fields(tokens: &[TokenWithSpan], open: usize) -> bool {
    let Some(name) = next_significant(tokens, open + 1) else {
        return false;
    };
    let Token::Word(name_word) = &tokens[name].token else {
        return false;
    };
    if name_word.quote_style.is_none() && name_word.keyword == Keyword::NOT {
        return false;
    }
    let Some(ty) = next_significant(tokens, name + 1) else {
        return false;
    };
    matches!(&tokens[ty].token, Token::Word(w) if w.quote_style.is_none() && names_a_type(&w.value))
}

/// The first word of every column type Weir declares (`crate::types`).
const TYPE_WORDS: &[&str] = &[
    "TINYINT",
    "SMALLINT",
    "INT",
    "INTEGER",
    "BIGINT",
    "INT2",
    "INT4",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FLOAT",
    "REAL",
    "DOUBLE",
    "FLOAT4",
    "FLOAT8",
    "FLOAT32",
    "FLOAT64",
    "DECIMAL",
    "DEC",
    "NUMERIC",
    "BOOLEAN",
    "BOOL",
    "STRING",
    "VARCHAR",
    "CHAR",
    "CHARACTER",
    "TEXT",
    "BYTES",
    "BINARY",
    "VARBINARY",
    "BYTEA",
    "DATE",
    "TIMESTAMP",
    "TIMESTAMP_LTZ",
    "ROW",
    "ARRAY",
    "MAP",
    "STRUCT",
];

/// Whether `word` starts a column type.
fn names_a_type(word: &str) -> bool {
    TYPE_WORDS.iter().any(|t| t.eq_ignore_ascii_case(word))
}

/// For every `(`, the index of the `)` closing it, if the script has it.
fn matching_parens(tokens: &[TokenWithSpan]) -> Vec<Option<usize>> {
    let mut closing = vec![None; tokens.len()];
    let mut open = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        match t.token {
            Token::LParen => open.push(i),
            Token::RParen => {
                if let Some(o) = open.pop() {
                    closing[o] = Some(i);
                }
            }
            _ => {}
        }
    }
    closing
}

/// Makes the word `ROW` the keyword `STRUCT`, keeping its text for
/// messages.
/// Flink's map constructor `MAP['a', 1, 'b', 2]` as DataFusion's
/// `make_map('a', 1, 'b', 2)`: the word becomes the function's name and
/// its brackets parentheses (`MAP<K, V>`, the type, is left alone).
fn map_constructors(tokens: &mut [TokenWithSpan]) {
    for i in 0..tokens.len() {
        let Token::Word(w) = &tokens[i].token else { continue };
        if w.keyword != Keyword::MAP || w.quote_style.is_some() {
            continue;
        }
        let Some(open) = next_significant(tokens, i + 1) else {
            continue;
        };
        if tokens[open].token != Token::LBracket {
            continue;
        }
        let mut depth = 0usize;
        let Some(close) = (open..tokens.len()).find(|&j| {
            match tokens[j].token {
                Token::LBracket => depth += 1,
                Token::RBracket => depth -= 1,
                _ => {}
            }
            depth == 0
        }) else {
            continue;
        };
        tokens[i].token = Token::make_word("make_map", None);
        tokens[open].token = Token::LParen;
        tokens[close].token = Token::RParen;
    }
}

fn make_struct(token: &mut TokenWithSpan) {
    if let Token::Word(w) = &mut token.token {
        w.keyword = Keyword::STRUCT;
    }
}

/// An expression parsed with Weir's dialect, as text (or the error):
/// what the dialect's hooks make of it, for their tests.
#[cfg(test)]
pub(crate) fn parsed_expr(sql: &str) -> String {
    Parser::new(&WeirDialect::default())
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map(|e| e.to_string())
        .unwrap_or_else(|e| format!("error: {e}"))
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;

    use super::*;

    /// The significant tokens of `sql` after the rewrite, as text.
    fn rewritten(sql: &str) -> String {
        let mut tokens = Tokenizer::new(&WeirDialect::default(), sql)
            .tokenize_with_location()
            .expect("tokens");
        nested_types(&mut tokens).expect("not too deep");
        let words: Vec<String> = tokens
            .iter()
            .filter(|t| !matches!(t.token, Token::Whitespace(_)))
            .map(|t| match &t.token {
                Token::Word(w) if w.keyword == Keyword::STRUCT => "STRUCT".to_string(),
                other => other.to_string(),
            })
            .collect();
        words.join(" ")
    }

    #[test]
    fn row_types_become_structs_and_row_constructors_stay() {
        assert_eq!(rewritten("r ROW<a INT>"), "r STRUCT < a INT >");
        assert_eq!(
            rewritten("r ROW(a INT, b ROW(c DECIMAL(10, 2)))"),
            "r STRUCT < a INT , b STRUCT < c DECIMAL ( 10 , 2 ) > >"
        );
        for expression in [
            "ROW(a, b)",
            "ROW(a IS NULL)",
            "ROW(DATE '2026-01-01')",
            "ROW(CAST(a AS INT))",
            "ROW(NOT INT)",
        ] {
            assert!(
                rewritten(expression).starts_with("ROW ("),
                "{expression}: {}",
                rewritten(expression)
            );
        }
        // A quoted `row` is a name; an unclosed ROW( is left to the parser.
        assert_eq!(rewritten("`row` < 5"), "`row` < 5");
        assert_eq!(rewritten("ROW(a INT"), "ROW ( a INT");
        // `<>` is an empty type, not "not equal", after a nested type's name.
        assert_eq!(rewritten("ARRAY<>"), "ARRAY < >");
        assert_eq!(rewritten("ROW <>"), "STRUCT < >");
        assert_eq!(rewritten("a <> b"), "a <> b");
    }

    /// Calcite's `U&` strings: four or six hex digits after the escape
    /// character, which `UESCAPE` may change.
    #[test]
    fn unicode_strings_are_read() {
        let parsed = |sql: &str| {
            Parser::new(&WeirDialect::default())
                .try_with_sql(sql)
                .and_then(|mut p| p.parse_expr())
                .map(|e| e.to_string())
                .unwrap_or_else(|e| format!("error: {e}"))
        };
        assert_eq!(parsed(r"U&'\0041\0042'"), "'AB'");
        assert_eq!(parsed(r"u&'x\+01F600'"), "'x\u{1F600}'");
        assert_eq!(parsed("U&'#0041##' UESCAPE '#'"), "'A#'");
        assert!(parsed("U&'#00' UESCAPE '#'").contains("4 hex digits expected"));
        assert!(parsed("U&'a' UESCAPE 'ab'").contains("UESCAPE takes one character"));
        assert_eq!(parsed("u & 'x'"), "u & 'x'");
    }

    #[test]
    fn types_nest_at_most_max_type_depth_levels() {
        let nested = |depth: usize, open: &str| format!("{}INT{}", open.repeat(depth), ">".repeat(depth));
        let tokens = |sql: &str| {
            Tokenizer::new(&WeirDialect::default(), sql)
                .tokenize_with_location()
                .expect("tokens")
        };
        for open in ["ARRAY<", "ROW<a ", "MAP<STRING, "] {
            assert!(
                nested_types(&mut tokens(&nested(MAX_TYPE_DEPTH, open))).is_ok(),
                "{open}"
            );
            let e = nested_types(&mut tokens(&nested(MAX_TYPE_DEPTH + 1, open))).unwrap_err();
            assert!(e.to_string().contains("deeper than 1000 levels"), "{open}: {e}");
        }
        // Siblings do not add up, and comparisons are no types.
        let wide = format!("ROW<{}>", vec!["a ARRAY<INT>"; 5_000].join(", "));
        assert!(nested_types(&mut tokens(&wide)).is_ok());
        assert!(nested_types(&mut tokens(&"a < b AND ".repeat(5_000))).is_ok());
    }
}
