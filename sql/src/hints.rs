//! Flink's dynamic table options: `FROM t /*+ OPTIONS('k' = 'v') */` and
//! `INSERT INTO t /*+ OPTIONS(…) */`, options that override the table's
//! `WITH` for one statement (Flink's "SQL Hints" page).
//!
//! A hint is a comment to the SQL parser, so it is read from the tokens:
//! a `/*+ … */` comment right after a table's name belongs to that table.
//! The statement keeps the hints with the place of the name they follow;
//! the session plans the statement against a copy of the table with the
//! options merged in, checked as `WITH` is (an unknown key is an error).
//! `STATE_TTL('t' = '1d', …)` after a `SELECT` (Flink's query hint) sets
//! the state TTL of the regular joins and group aggregations reading `t`
//! in that statement ([`state_ttl_hints`]; the planner matches the names).
//! Other hints (`BROADCAST`, `LOOKUP`, …) are planner advice Weir has no
//! use for and are left alone, as Flink leaves hints it does not know.

use datafusion::sql::sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer, Whitespace};

use crate::dialect::WeirDialect;
use crate::error::{Position, Result, SqlError};

/// `OPTIONS(…)` after a table's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableHint {
    /// Where the table's name starts: the name it belongs to.
    pub table_at: Location,
    /// Where the hint is, for errors.
    pub position: Option<Position>,
    /// The options in the order written.
    pub options: Vec<(String, String)>,
}

/// Every `OPTIONS` hint in `tokens`.
pub fn table_hints(tokens: &[TokenWithSpan]) -> Result<Vec<TableHint>> {
    let mut hints = Vec::new();
    // Where the name just read starts (`db.t`: at `db`).
    let mut name_start: Option<Location> = None;
    let mut after_period = false;
    for t in tokens {
        match &t.token {
            Token::Whitespace(Whitespace::MultiLineComment(text)) if text.starts_with('+') => {
                let position = Position::of(t.span);
                match (hint_pairs(&text[1..], "OPTIONS", position)?, name_start) {
                    (None, _) => {}
                    (Some(options), Some(table_at)) => hints.push(TableHint {
                        table_at,
                        position,
                        options,
                    }),
                    (Some(_), None) => {
                        return Err(SqlError::Syntax {
                            message: "an OPTIONS hint must follow a table's name".into(),
                            position,
                        });
                    }
                }
            }
            Token::Whitespace(_) => {}
            Token::Word(_) => {
                if !after_period || name_start.is_none() {
                    name_start = Some(t.span.start);
                }
                after_period = false;
            }
            Token::Period => after_period = true,
            _ => {
                name_start = None;
                after_period = false;
            }
        }
    }
    Ok(hints)
}

/// `STATE_TTL(…)` in a statement: per table name or alias, its state
/// TTL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateTtlHint {
    /// Where the hint is, for errors.
    pub position: Option<Position>,
    pub ttls: Vec<(String, std::time::Duration)>,
}

/// Every `STATE_TTL` hint in `tokens`, their durations checked.
pub fn state_ttl_hints(tokens: &[TokenWithSpan]) -> Result<Vec<StateTtlHint>> {
    let mut hints = Vec::new();
    for t in tokens {
        let Token::Whitespace(Whitespace::MultiLineComment(text)) = &t.token else {
            continue;
        };
        let Some(body) = text.strip_prefix('+') else {
            continue;
        };
        let position = Position::of(t.span);
        let Some(pairs) = hint_pairs(body, "STATE_TTL", position)? else {
            continue;
        };
        let ttls = pairs
            .into_iter()
            .map(|(name, value)| match weir_engine::duration::parse_duration(&value) {
                Ok(d) => Ok((name, d)),
                Err(why) => Err(SqlError::plan(format!("STATE_TTL('{name}' = '{value}'): {why}"), position)),
            })
            .collect::<Result<Vec<_>>>()?;
        hints.push(StateTtlHint { position, ttls });
    }
    Ok(hints)
}

/// `UID('GroupAggregate' = 'clicks', …)` in a statement: the state ids
/// the user gives its stateful operators (`crate::planner::stream::uid`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UidHint {
    /// Where the hint is, for errors.
    pub position: Option<Position>,
    /// Per operator (a kind, or a derived id as `EXPLAIN` shows it), its
    /// state id.
    pub uids: Vec<(String, String)>,
}

/// Every `UID` hint in `tokens`.
pub fn uid_hints(tokens: &[TokenWithSpan]) -> Result<Vec<UidHint>> {
    let mut hints = Vec::new();
    for t in tokens {
        if let Token::Whitespace(Whitespace::MultiLineComment(text)) = &t.token
            && let Some(body) = text.strip_prefix('+')
            && let Some(uids) = hint_pairs(body, "UID", Position::of(t.span))?
        {
            hints.push(UidHint { position: Position::of(t.span), uids });
        }
    }
    Ok(hints)
}

/// The key-value pairs of the hint `name(…)` among a comment's hints;
/// `None` when it has none.
fn hint_pairs(text: &str, name: &str, position: Option<Position>) -> Result<Option<Vec<(String, String)>>> {
    let bad = |why: &str| SqlError::Syntax {
        message: format!("hint /*+{text}*/: {why}; expected {name}('key' = 'value', …)"),
        position,
    };
    let tokens = Tokenizer::new(&WeirDialect::default(), text)
        .with_unescape(true)
        .tokenize()
        .map_err(|e| bad(&e.to_string()))?;
    let tokens: Vec<Token> = tokens
        .into_iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    let Some(start) = tokens
        .iter()
        .position(|t| matches!(t, Token::Word(w) if w.value.eq_ignore_ascii_case(name)))
    else {
        return Ok(None);
    };
    let mut options = Vec::new();
    let mut rest = tokens[start + 1..].iter();
    if rest.next() != Some(&Token::LParen) {
        return Err(bad(&format!("no '(' after {name}")));
    }
    loop {
        let key = match rest.next() {
            Some(Token::SingleQuotedString(k)) => k.clone(),
            Some(Token::RParen) if options.is_empty() => return Err(bad("no options")),
            _ => return Err(bad("a key must be a quoted string")),
        };
        if rest.next() != Some(&Token::Eq) {
            return Err(bad(&format!("no '=' after '{key}'")));
        }
        let Some(Token::SingleQuotedString(value)) = rest.next() else {
            return Err(bad(&format!("the value of '{key}' must be a quoted string")));
        };
        if options.iter().any(|(k, _): &(String, String)| k == &key) {
            return Err(bad(&format!("'{key}' is given twice")));
        }
        options.push((key, value.clone()));
        match rest.next() {
            Some(Token::Comma) => continue,
            Some(Token::RParen) => return Ok(Some(options)),
            _ => return Err(bad("options are separated by ',' and end with ')'")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hints(sql: &str) -> Result<Vec<(u64, u64, Vec<(String, String)>)>> {
        let tokens = Tokenizer::new(&WeirDialect::default(), sql)
            .tokenize_with_location()
            .unwrap();
        Ok(table_hints(&tokens)?
            .into_iter()
            .map(|h| (h.table_at.line, h.table_at.column, h.options))
            .collect())
    }

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn options_hints_belong_to_the_table_before_them() {
        assert_eq!(
            hints("SELECT * FROM t1 /*+ OPTIONS('a' = '1', 'b'='x y') */ JOIN db.t2 /*+ OPTIONS('c'='3') */ ON true")
                .unwrap(),
            vec![(1, 15, kv(&[("a", "1"), ("b", "x y")])), (1, 60, kv(&[("c", "3")]))]
        );
        assert_eq!(
            hints("INSERT INTO out /*+ OPTIONS('sink.parallelism'='2') */ SELECT 1").unwrap(),
            vec![(1, 13, kv(&[("sink.parallelism", "2")]))]
        );
        // Query hints and plain comments are not table options.
        assert_eq!(
            hints("SELECT /*+ BROADCAST(t) */ * FROM t /* a note */").unwrap(),
            vec![]
        );
    }

    #[test]
    fn state_ttl_hints_name_tables_and_durations() {
        let tokens = |sql: &str| Tokenizer::new(&WeirDialect::default(), sql).tokenize_with_location().unwrap();
        let hints = state_ttl_hints(&tokens(
            "SELECT /*+ STATE_TTL('o' = '1d', 'Customers' = '12 h'), BROADCAST(c) */ * FROM o JOIN Customers c ON true",
        ))
        .unwrap();
        assert_eq!(
            hints[0].ttls,
            vec![
                ("o".to_string(), std::time::Duration::from_secs(86_400)),
                ("Customers".to_string(), std::time::Duration::from_secs(43_200))
            ]
        );
        assert_eq!(hints[0].position, Some(Position { line: 1, column: 8 }));
        let e = state_ttl_hints(&tokens("SELECT /*+ STATE_TTL('o' = 'soon') */ 1")).unwrap_err();
        assert!(e.to_string().contains("STATE_TTL('o' = 'soon')"), "{e}");
        let e = state_ttl_hints(&tokens("SELECT /*+ STATE_TTL(o = '1d') */ 1")).unwrap_err();
        assert!(e.to_string().contains("expected STATE_TTL('key' = 'value'"), "{e}");
    }

    #[test]
    fn malformed_options_say_what_is_wrong_and_where() {
        for (sql, why) in [
            ("SELECT * FROM t /*+ OPTIONS('a') */", "no '=' after 'a'"),
            (
                "SELECT * FROM t /*+ OPTIONS(a = 'b') */",
                "a key must be a quoted string",
            ),
            ("SELECT * FROM t /*+ OPTIONS('a' = 1) */", "must be a quoted string"),
            ("SELECT * FROM t /*+ OPTIONS('a'='1', 'a'='2') */", "given twice"),
            ("SELECT * FROM t /*+ OPTIONS() */", "no options"),
            ("SELECT * FROM t /*+ OPTIONS('a'='1' */", "end with ')'"),
        ] {
            let e = hints(sql).unwrap_err();
            assert!(e.to_string().contains(why), "{sql}: {e}");
            assert!(
                matches!(
                    e,
                    SqlError::Syntax {
                        position: Some(Position { line: 1, column: 17 }),
                        ..
                    }
                ),
                "{sql}: {e:?}"
            );
        }
    }
}
