//! Flink's JSON syntax that is no plain function call, read into calls of
//! Weir's functions (`functions::json_build`):
//!
//! - `JSON_OBJECT([KEY] k VALUE v, … [{NULL | ABSENT} ON NULL])` becomes
//!   `json_object('NULL:…', k, v, …)`;
//! - `JSON_ARRAY(v, … [{NULL | ABSENT} ON NULL])` becomes
//!   `json_array('ABSENT:…', v, …)`;
//! - the aggregates `JSON_OBJECTAGG([KEY] k VALUE v [… ON NULL])` and
//!   `JSON_ARRAYAGG(v [… ON NULL])` become `json_objectagg('NULL:…', k, v)`
//!   and `json_arrayagg('ABSENT:…', v)` (`functions::json_agg`);
//! - `x IS [NOT] JSON [VALUE | SCALAR | ARRAY | OBJECT]` becomes
//!   `[NOT] is_json(x, 'VALUE')`.
//!
//! The first argument of the constructors and aggregates carries what the
//! SQL says around the values: the `ON NULL` behaviour (Flink's defaults:
//! `NULL` for objects, `ABSENT` for arrays), then one letter a value, `J`
//! where the value is itself a JSON constructor or aggregate (inserted as
//! JSON, not as a string, as Flink does) and `V` otherwise.

use datafusion::sql::sqlparser::ast::{
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident, ObjectName,
    UnaryOperator, Value,
};
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;

/// The names the constructors are planned as.
pub const JSON_OBJECT: &str = "json_object";
pub const JSON_ARRAY: &str = "json_array";
pub const JSON_OBJECTAGG: &str = "json_objectagg";
pub const JSON_ARRAYAGG: &str = "json_arrayagg";
pub const IS_JSON: &str = "is_json";

/// Is token `n` ahead the unquoted word `w` (any case)?
pub(super) fn word(parser: &Parser, n: usize, w: &str) -> bool {
    matches!(&parser.peek_nth_token_ref(n).token, Token::Word(x) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(w))
}

/// The calls read here: (SQL name, planned name, of keys and values,
/// aggregate).
const CALLS: [(&str, &str, bool, bool); 4] = [
    ("JSON_OBJECT", JSON_OBJECT, true, false),
    ("JSON_ARRAY", JSON_ARRAY, false, false),
    ("JSON_OBJECTAGG", JSON_OBJECTAGG, true, true),
    ("JSON_ARRAYAGG", JSON_ARRAYAGG, false, true),
];

/// `JSON_OBJECT(…)`, `JSON_ARRAY(…)`, `JSON_OBJECTAGG(…)` or
/// `JSON_ARRAYAGG(…)` at the parser's position, if there.
pub(super) fn parse_constructor(parser: &mut Parser) -> Option<Result<Expr, ParserError>> {
    if parser.peek_nth_token_ref(1).token != Token::LParen {
        return None;
    }
    let (sql_name, name, object, aggregate) = CALLS.into_iter().find(|c| word(parser, 0, c.0))?;
    parser.next_token();
    parser.next_token();
    Some(constructor_arguments(parser, object, name).and_then(|mut call| {
        if !aggregate {
            return Ok(call);
        }
        let Expr::Function(f) = &mut call else { return Ok(call) };
        // An aggregate takes one item, or one key and value.
        let values = match &f.args {
            FunctionArguments::List(l) => l.args.len() - 1,
            _ => 0,
        };
        if values != if object { 2 } else { 1 } {
            let what = if object { "one KEY k VALUE v" } else { "one item" };
            return Err(ParserError::ParserError(format!("{sql_name} takes {what}")));
        }
        // As any aggregate call: `FILTER (WHERE condition)` after it.
        if word(parser, 0, "FILTER") && parser.peek_nth_token_ref(1).token == Token::LParen && word(parser, 2, "WHERE") {
            for _ in 0..3 {
                parser.next_token();
            }
            f.filter = Some(Box::new(parser.parse_expr()?));
            parser.expect_token(&Token::RParen)?;
        }
        Ok(call)
    }))
}

/// The arguments of a constructor or aggregate up to its `)`, as the call
/// Weir plans.
fn constructor_arguments(parser: &mut Parser, object: bool, name: &str) -> Result<Expr, ParserError> {
    let mut on_null = if object { "NULL" } else { "ABSENT" };
    let mut kinds = String::new();
    let mut args = Vec::new();
    loop {
        if parser.consume_token(&Token::RParen) {
            break;
        }
        if (word(parser, 0, "NULL") || word(parser, 0, "ABSENT")) && word(parser, 1, "ON") && word(parser, 2, "NULL") {
            on_null = if word(parser, 0, "NULL") { "NULL" } else { "ABSENT" };
            parser.next_token();
            parser.next_token();
            parser.next_token();
            parser.expect_token(&Token::RParen)?;
            break;
        }
        if !args.is_empty() {
            parser.expect_token(&Token::Comma)?;
        }
        if object {
            // `KEY` is a keyword unless it is the key itself (a column
            // named key: `JSON_OBJECT(key VALUE v)`).
            if word(parser, 0, "KEY") && !word(parser, 1, "VALUE") {
                parser.next_token();
            }
            args.push(parser.parse_expr()?);
            if !word(parser, 0, "VALUE") {
                return parser.expected("VALUE after a JSON_OBJECT key", parser.peek_token());
            }
            parser.next_token();
        }
        let value = parser.parse_expr()?;
        kinds.push(if is_constructor(&value) { 'J' } else { 'V' });
        args.push(value);
    }
    let flags = Expr::Value(Value::SingleQuotedString(format!("{on_null}:{kinds}")).into());
    Ok(call(name, std::iter::once(flags).chain(args).collect()))
}

/// Is `e` a call of a JSON constructor or aggregate, whose text is JSON to
/// insert?
fn is_constructor(e: &Expr) -> bool {
    match e {
        Expr::Function(f) => {
            let name = f.name.to_string();
            CALLS.iter().any(|c| c.1 == name)
        }
        Expr::Nested(inner) => is_constructor(inner),
        _ => false,
    }
}

/// `IS [NOT] JSON [kind]` after `expr`, if that is what follows.
pub(super) fn parse_is_json(parser: &mut Parser, expr: &Expr) -> Option<Result<Expr, ParserError>> {
    if !word(parser, 0, "IS") {
        return None;
    }
    let negated = word(parser, 1, "NOT");
    let at = if negated { 2 } else { 1 };
    if !word(parser, at, "JSON") {
        return None;
    }
    for _ in 0..=at {
        parser.next_token();
    }
    let kind = ["VALUE", "SCALAR", "ARRAY", "OBJECT"]
        .into_iter()
        .find(|k| word(parser, 0, k))
        .inspect(|_| {
            parser.next_token();
        })
        .unwrap_or("VALUE");
    let test = call(
        IS_JSON,
        vec![expr.clone(), Expr::Value(Value::SingleQuotedString(kind.into()).into())],
    );
    Some(Ok(if negated {
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr: Box::new(Expr::Nested(Box::new(test))),
        }
    } else {
        test
    }))
}

/// `CAST(expr AS data_type)`, as the SQL readers write Flink's forms.
pub(crate) fn cast(expr: Expr, data_type: datafusion::sql::sqlparser::ast::DataType) -> Expr {
    Expr::Cast {
        kind: datafusion::sql::sqlparser::ast::CastKind::Cast,
        expr: Box::new(expr),
        data_type,
        array: false,
        format: None,
    }
}

/// A plain call `name(args)`, as the SQL readers write Flink's forms.
pub(crate) fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e)))
                .collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

#[cfg(test)]
mod tests {
    use crate::dialect::parsed_expr as parsed;

    #[test]
    fn constructors_become_calls() {
        assert_eq!(parsed("JSON_OBJECT()"), "json_object('NULL:')");
        assert_eq!(
            parsed("JSON_OBJECT('K1' VALUE 'V1', KEY 'K2' VALUE x)"),
            "json_object('NULL:VV', 'K1', 'V1', 'K2', x)"
        );
        assert_eq!(
            parsed("JSON_OBJECT(key VALUE 1 ABSENT ON NULL)"),
            "json_object('ABSENT:V', key, 1)"
        );
        assert_eq!(
            parsed("json_object(KEY 'K1' VALUE JSON_ARRAY(1, NULL NULL ON NULL))"),
            "json_object('NULL:J', 'K1', json_array('NULL:VV', 1, NULL))"
        );
        assert_eq!(parsed("JSON_ARRAY()"), "json_array('ABSENT:')");
        assert_eq!(parsed("JSON_ARRAYAGG(x)"), "json_arrayagg('ABSENT:V', x)");
        assert_eq!(parsed("json_arrayagg(x NULL ON NULL)"), "json_arrayagg('NULL:V', x)");
        assert_eq!(
            parsed("JSON_ARRAYAGG(JSON_OBJECT(KEY 'k' VALUE x))"),
            "json_arrayagg('ABSENT:J', json_object('NULL:V', 'k', x))"
        );
        assert_eq!(parsed("JSON_OBJECTAGG(KEY k VALUE v)"), "json_objectagg('NULL:V', k, v)");
        assert_eq!(parsed("JSON_OBJECTAGG(k VALUE v ABSENT ON NULL)"), "json_objectagg('ABSENT:V', k, v)");
        assert_eq!(
            parsed("JSON_OBJECT('a' VALUE JSON_ARRAYAGG(x))"),
            "json_object('NULL:J', 'a', json_arrayagg('ABSENT:V', x))"
        );
        assert_eq!(
            parsed("JSON_ARRAYAGG(x) FILTER (WHERE x > 1) + 1"),
            "json_arrayagg('ABSENT:V', x) FILTER (WHERE x > 1) + 1"
        );
        for wrong in ["JSON_ARRAYAGG()", "JSON_ARRAYAGG(a, b)", "JSON_OBJECTAGG(KEY 'a' VALUE 1, KEY 'b' VALUE 2)"] {
            assert!(parsed(wrong).contains("takes one"), "{wrong}: {}", parsed(wrong));
        }
        assert!(
            parsed("JSON_OBJECT('k' 1)").starts_with("error: "),
            "{}",
            parsed("JSON_OBJECT('k' 1)")
        );
    }

    #[test]
    fn is_json_becomes_a_call() {
        assert_eq!(parsed("s IS JSON"), "is_json(s, 'VALUE')");
        assert_eq!(parsed("s IS NOT JSON OBJECT"), "NOT (is_json(s, 'OBJECT'))");
        assert_eq!(
            parsed("s IS JSON SCALAR AND t IS NULL"),
            "is_json(s, 'SCALAR') AND t IS NULL"
        );
        assert_eq!(parsed("s IS NOT NULL"), "s IS NOT NULL");
    }
}
