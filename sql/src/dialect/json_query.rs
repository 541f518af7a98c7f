//! The clauses of Flink's JSON query functions, which sqlparser does not
//! read (it takes `RETURNING` alone), written as constant arguments of
//! Weir's functions (`functions::json`):
//!
//! - `JSON_VALUE(j, path [RETURNING type] [{NULL | ERROR | DEFAULT e} ON
//!   EMPTY] [{NULL | ERROR | DEFAULT e} ON ERROR])` becomes `JSON_VALUE(j,
//!   path, CAST(NULL AS type))` with `RETURNING` only, and with an `ON`
//!   clause `JSON_VALUE(j, path, CAST(NULL AS type), 'NULL', NULL,
//!   'DEFAULT', e)` (the type `STRING` when not given);
//! - `JSON_QUERY(j, path [{WITHOUT | WITH [CONDITIONAL | UNCONDITIONAL]}
//!   [ARRAY] WRAPPER] [{NULL | ERROR | EMPTY ARRAY | EMPTY OBJECT} ON EMPTY]
//!   [… ON ERROR])` becomes `JSON_QUERY(j, path, 'WITHOUT', 'NULL',
//!   'NULL')` when a clause is given, with a sixth argument `'ARRAY'` for
//!   `RETURNING ARRAY<STRING>`;
//! - `JSON_EXISTS(j, path [{TRUE | FALSE | UNKNOWN | ERROR} ON ERROR])`
//!   becomes `JSON_EXISTS(j, path, 'FALSE')` when the clause is given.
//!
//! Without clauses the call is the plain two-argument one. A clause out of
//! place or misspelled is a syntax error at it.

use datafusion::sql::sqlparser::ast::{ArrayElemTypeDef, DataType, Expr, Value};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;

use super::json::{call, word};

/// Which function.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Value,
    Query,
    Exists,
}

/// `JSON_VALUE(…)`, `JSON_QUERY(…)` or `JSON_EXISTS(…)` at the parser's
/// position, if there.
pub(super) fn parse_query_function(parser: &mut Parser) -> Option<Result<Expr, ParserError>> {
    if parser.peek_nth_token_ref(1).token != Token::LParen {
        return None;
    }
    let kind = [
        ("JSON_VALUE", Kind::Value),
        ("JSON_QUERY", Kind::Query),
        ("JSON_EXISTS", Kind::Exists),
    ]
    .into_iter()
    .find(|(name, _)| word(parser, 0, name))?
    .1;
    let name = match &parser.next_token().token {
        Token::Word(w) => w.value.clone(),
        _ => return None,
    };
    parser.next_token();
    Some(arguments(parser, kind, &name))
}

/// Consumes the words `words` if they come next.
fn words(parser: &mut Parser, words: &[&str]) -> bool {
    if words.iter().enumerate().all(|(i, w)| word(parser, i, w)) {
        for _ in words {
            parser.next_token();
        }
        true
    } else {
        false
    }
}

fn text(s: &str) -> Expr {
    Expr::value(Value::SingleQuotedString(s.to_string()))
}

fn null_of(data_type: DataType) -> Expr {
    super::json::cast(Expr::value(Value::Null), data_type)
}

/// The arguments after `(` up to the closing `)`, as the call Weir plans.
fn arguments(parser: &mut Parser, kind: Kind, name: &str) -> Result<Expr, ParserError> {
    let json = parser.parse_expr()?;
    parser.expect_token(&Token::Comma)?;
    let path = parser.parse_expr()?;
    let mut args = vec![json, path];
    match kind {
        Kind::Exists => {
            let on_error = ["TRUE", "FALSE", "UNKNOWN", "ERROR"]
                .into_iter()
                .find(|b| word(parser, 0, b) && word(parser, 1, "ON") && word(parser, 2, "ERROR"));
            if let Some(behaviour) = on_error {
                words(parser, &[behaviour, "ON", "ERROR"]);
                args.push(text(behaviour));
            }
        }
        Kind::Value => {
            let returning = if parser.parse_keyword(Keyword::RETURNING) {
                Some(parser.parse_data_type()?)
            } else {
                None
            };
            let (on_empty, on_error) = value_behaviours(parser)?;
            if returning.is_some() || on_empty.is_some() || on_error.is_some() {
                args.push(null_of(returning.unwrap_or(DataType::Varchar(None))));
            }
            if on_empty.is_some() || on_error.is_some() {
                for (behaviour, default) in [on_empty, on_error].into_iter().map(|b| b.unwrap_or(("NULL", None))) {
                    args.push(text(behaviour));
                    args.push(default.unwrap_or(Expr::value(Value::Null)));
                }
            }
        }
        Kind::Query => {
            let text_type = |t: &DataType| matches!(t, DataType::String(_) | DataType::Varchar(_));
            let mut array = false;
            if parser.parse_keyword(Keyword::RETURNING) {
                let at = parser.peek_token();
                let data_type = parser.parse_data_type()?;
                array =
                    match &data_type {
                        t if text_type(t) => false,
                        DataType::Array(
                            ArrayElemTypeDef::AngleBracket(t) | ArrayElemTypeDef::SquareBracket(t, None),
                        ) if text_type(t) => true,
                        _ => return parser.expected("RETURNING STRING or ARRAY<STRING> in JSON_QUERY", at),
                    };
            }
            let wrapper = if words(parser, &["WITHOUT"]) {
                Some("WITHOUT")
            } else if words(parser, &["WITH"]) {
                Some(if words(parser, &["CONDITIONAL"]) {
                    "CONDITIONAL"
                } else {
                    words(parser, &["UNCONDITIONAL"]);
                    "UNCONDITIONAL"
                })
            } else {
                None
            };
            if wrapper.is_some() {
                words(parser, &["ARRAY"]);
                if !words(parser, &["WRAPPER"]) {
                    return parser.expected("WRAPPER", parser.peek_token());
                }
            }
            let on_empty = query_behaviour(parser, "EMPTY");
            let on_error = query_behaviour(parser, "ERROR");
            if array || wrapper.is_some() || on_empty.is_some() || on_error.is_some() {
                args.push(text(wrapper.unwrap_or("WITHOUT")));
                args.push(text(on_empty.unwrap_or("NULL")));
                args.push(text(on_error.unwrap_or("NULL")));
            }
            if array {
                args.push(text("ARRAY"));
            }
        }
    }
    if parser.peek_token_ref().token != Token::RParen {
        let expected = match kind {
            Kind::Value => "RETURNING, ON EMPTY, ON ERROR or ) in JSON_VALUE",
            Kind::Query => "a WRAPPER, ON EMPTY, ON ERROR or ) in JSON_QUERY",
            Kind::Exists => "ON ERROR or ) in JSON_EXISTS",
        };
        return parser.expected(expected, parser.peek_token());
    }
    parser.next_token();
    // The name as written, as the rest of the query keeps it.
    Ok(call(name, args))
}

/// A behaviour of `JSON_VALUE` and its `DEFAULT` value.
type Behaviour = (&'static str, Option<Expr>);

/// `[{NULL | ERROR | DEFAULT e} ON EMPTY] [{NULL | ERROR | DEFAULT e} ON
/// ERROR]` of `JSON_VALUE`, in that order.
fn value_behaviours(parser: &mut Parser) -> Result<(Option<Behaviour>, Option<Behaviour>), ParserError> {
    let (mut on_empty, mut on_error) = (None, None);
    loop {
        let behaviour = if words(parser, &["NULL"]) {
            ("NULL", None)
        } else if words(parser, &["ERROR"]) {
            ("ERROR", None)
        } else if words(parser, &["DEFAULT"]) {
            ("DEFAULT", Some(parser.parse_expr()?))
        } else {
            return Ok((on_empty, on_error));
        };
        if on_error.is_none() && on_empty.is_none() && words(parser, &["ON", "EMPTY"]) {
            on_empty = Some(behaviour);
        } else if on_error.is_none() && words(parser, &["ON", "ERROR"]) {
            on_error = Some(behaviour);
        } else {
            let expected = if on_empty.is_some() {
                "ON ERROR"
            } else {
                "ON EMPTY or ON ERROR"
            };
            return parser.expected(expected, parser.peek_token());
        }
    }
}

/// `{NULL | ERROR | EMPTY ARRAY | EMPTY OBJECT} ON <what>` of
/// `JSON_QUERY`, if next.
fn query_behaviour(parser: &mut Parser, what: &str) -> Option<&'static str> {
    for (spelled, behaviour) in [
        (&["NULL"][..], "NULL"),
        (&["ERROR"][..], "ERROR"),
        (&["EMPTY", "ARRAY"][..], "EMPTY ARRAY"),
        (&["EMPTY", "OBJECT"][..], "EMPTY OBJECT"),
    ] {
        let n = spelled.len();
        if spelled.iter().enumerate().all(|(i, w)| word(parser, i, w))
            && word(parser, n, "ON")
            && word(parser, n + 1, what)
        {
            for _ in 0..n + 2 {
                parser.next_token();
            }
            return Some(behaviour);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use crate::dialect::parsed_expr as parsed;

    #[test]
    fn clauses_become_arguments() {
        assert_eq!(parsed("JSON_VALUE(j, '$.a')"), "JSON_VALUE(j, '$.a')");
        assert_eq!(
            parsed("json_value(j, '$.a' RETURNING INT)"),
            "json_value(j, '$.a', CAST(NULL AS INT))"
        );
        assert_eq!(
            parsed("JSON_VALUE(j, 'lax $.b' DEFAULT FALSE ON EMPTY)"),
            "JSON_VALUE(j, 'lax $.b', CAST(NULL AS VARCHAR), 'DEFAULT', false, 'NULL', NULL)"
        );
        assert_eq!(
            parsed("JSON_VALUE(j, '$.b' RETURNING INT NULL ON EMPTY DEFAULT 0 + 1 ON ERROR)"),
            "JSON_VALUE(j, '$.b', CAST(NULL AS INT), 'NULL', NULL, 'DEFAULT', 0 + 1)"
        );
        assert_eq!(
            parsed("JSON_VALUE(j, '$.b' DEFAULT 'x' ON ERROR)"),
            "JSON_VALUE(j, '$.b', CAST(NULL AS VARCHAR), 'NULL', NULL, 'DEFAULT', 'x')"
        );
        assert_eq!(
            parsed("JSON_VALUE(j, '$.b' ERROR ON EMPTY ERROR ON ERROR)"),
            "JSON_VALUE(j, '$.b', CAST(NULL AS VARCHAR), 'ERROR', NULL, 'ERROR', NULL)"
        );
        assert_eq!(
            parsed("JSON_EXISTS(j, 'strict $.b' TRUE ON ERROR)"),
            "JSON_EXISTS(j, 'strict $.b', 'TRUE')"
        );
        assert_eq!(
            parsed("JSON_QUERY(j, '$' WITH ARRAY WRAPPER)"),
            "JSON_QUERY(j, '$', 'UNCONDITIONAL', 'NULL', 'NULL')"
        );
        assert_eq!(
            parsed("JSON_QUERY(j, '$' WITH CONDITIONAL WRAPPER EMPTY OBJECT ON EMPTY EMPTY ARRAY ON ERROR)"),
            "JSON_QUERY(j, '$', 'CONDITIONAL', 'EMPTY OBJECT', 'EMPTY ARRAY')"
        );
        assert_eq!(
            parsed("JSON_QUERY(j, '$' WITHOUT ARRAY WRAPPER)"),
            "JSON_QUERY(j, '$', 'WITHOUT', 'NULL', 'NULL')"
        );
    }

    #[test]
    fn json_query_returning_an_array() {
        assert_eq!(
            parsed("JSON_QUERY(j, 'lax $.a[*]' RETURNING ARRAY<STRING> EMPTY ARRAY ON EMPTY)"),
            "JSON_QUERY(j, 'lax $.a[*]', 'WITHOUT', 'EMPTY ARRAY', 'NULL', 'ARRAY')"
        );
        assert_eq!(parsed("JSON_QUERY(j, '$' RETURNING STRING)"), "JSON_QUERY(j, '$')");
    }

    #[test]
    fn misplaced_clauses_are_errors() {
        for sql in [
            "JSON_VALUE(j, '$.b' ON EMPTY)",
            "JSON_VALUE(j, '$.b' DEFAULT 1 ON NOTHING)",
            "JSON_VALUE(j, '$.b' NULL ON ERROR NULL ON EMPTY)",
            "JSON_EXISTS(j, '$.b' MAYBE ON ERROR)",
            "JSON_QUERY(j, '$' WITH ARRAY)",
            "JSON_QUERY(j, '$' RETURNING INT)",
        ] {
            assert!(parsed(sql).starts_with("error: "), "{sql}: {}", parsed(sql));
        }
    }
}
