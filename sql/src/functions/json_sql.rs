//! What Flink's `JSON_EXISTS`, `JSON_VALUE` and `JSON_QUERY` return for
//! what a path finds, with their `ON EMPTY` / `ON ERROR` behaviours and
//! `JSON_QUERY`'s wrappers, as Flink's SQL/JSON functions (Calcite's, over
//! Jayway JsonPath) decide it:
//!
//! - a path without a mode is `strict`; in strict mode text that is not
//!   JSON, or a step of a definite path that finds nothing, is an error; in
//!   `lax` mode both are empty;
//! - JSON null is empty; a wildcard or `..` path finds the array of its
//!   matches (possibly none), which is a value, not empty;
//! - `JSON_EXISTS` is TRUE when a value is found, FALSE when empty, and the
//!   `ON ERROR` behaviour (default FALSE) on an error;
//! - `JSON_VALUE` returns a scalar; an array or object is empty in lax mode
//!   and an error in strict mode;
//! - `JSON_QUERY` wraps what is found, then returns an array or object; a
//!   scalar is empty in lax mode and an error in strict mode.

use super::json_path::{Json, JsonPath};

/// What a path finds in one document.
pub(super) enum Found<'v, 'a> {
    /// An error of strict mode: what went wrong.
    Error(String),
    /// Nothing, or JSON null.
    Empty,
    /// A definite path's value.
    One(&'v Json<'a>),
    /// A wildcard path's matches.
    Many(Vec<&'v Json<'a>>),
}

/// What `path` (written `text`) finds in `doc` (`None`: not JSON).
pub(super) fn find<'v, 'a>(doc: Option<&'v Json<'a>>, path: &JsonPath, text: &str) -> Found<'v, 'a> {
    let Some(doc) = doc else {
        return if path.strict {
            Found::Error("the text is not JSON".into())
        } else {
            Found::Empty
        };
    };
    if path.is_indefinite() {
        return Found::Many(path.select(doc));
    }
    match path.find(doc) {
        None if path.strict => Found::Error(format!("no value at '{text}' (strict mode)")),
        None | Some(Json::Null) => Found::Empty,
        Some(v) => Found::One(v),
    }
}

/// An `ON EMPTY` / `ON ERROR` behaviour, as the dialect writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Behaviour {
    Null,
    Error,
    /// `JSON_VALUE`'s `DEFAULT e`.
    Default,
    /// `JSON_QUERY`'s `EMPTY ARRAY`.
    EmptyArray,
    /// `JSON_QUERY`'s `EMPTY OBJECT`.
    EmptyObject,
    /// `JSON_EXISTS`'s `TRUE ON ERROR`.
    True,
    /// `JSON_EXISTS`'s `FALSE ON ERROR`.
    False,
    /// `JSON_EXISTS`'s `UNKNOWN ON ERROR`.
    Unknown,
}

impl Behaviour {
    /// The behaviour a constant argument names, if any.
    pub(super) fn named(text: &str) -> Option<Behaviour> {
        Some(match text {
            "NULL" => Behaviour::Null,
            "ERROR" => Behaviour::Error,
            "DEFAULT" => Behaviour::Default,
            "EMPTY ARRAY" => Behaviour::EmptyArray,
            "EMPTY OBJECT" => Behaviour::EmptyObject,
            "TRUE" => Behaviour::True,
            "FALSE" => Behaviour::False,
            "UNKNOWN" => Behaviour::Unknown,
            _ => return None,
        })
    }
}

/// `JSON_QUERY`'s wrapper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wrapper {
    Without,
    Conditional,
    Unconditional,
}

impl Wrapper {
    /// The wrapper a constant argument names, if any.
    pub(super) fn named(text: &str) -> Option<Wrapper> {
        Some(match text {
            "WITHOUT" => Wrapper::Without,
            "CONDITIONAL" => Wrapper::Conditional,
            "UNCONDITIONAL" => Wrapper::Unconditional,
            _ => return None,
        })
    }
}

/// `JSON_EXISTS`: whether a value is found (`None`: UNKNOWN); `Err` for
/// `ERROR ON ERROR`.
pub(super) fn exists(found: Found, on_error: Behaviour) -> Result<Option<bool>, String> {
    match found {
        Found::Error(e) => match on_error {
            Behaviour::True => Ok(Some(true)),
            Behaviour::Unknown => Ok(None),
            Behaviour::Error => Err(e),
            _ => Ok(Some(false)),
        },
        Found::Empty => Ok(Some(false)),
        Found::One(_) | Found::Many(_) => Ok(Some(true)),
    }
}

/// What `JSON_VALUE` returns for a row.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// The scalar's text.
    Text(String),
    Null,
    /// The `DEFAULT … ON EMPTY` value.
    DefaultOnEmpty,
    /// The `DEFAULT … ON ERROR` value.
    DefaultOnError,
}

/// `JSON_VALUE`'s outcome; `Err` for an `ERROR` behaviour.
pub(super) fn value(found: Found, strict: bool, on_empty: Behaviour, on_error: Behaviour) -> Result<Outcome, String> {
    let error = |e: String| match on_error {
        Behaviour::Error => Err(e),
        Behaviour::Default => Ok(Outcome::DefaultOnError),
        _ => Ok(Outcome::Null),
    };
    let empty = || match on_empty {
        Behaviour::Error => Err("the path found nothing (ERROR ON EMPTY)".to_string()),
        Behaviour::Default => Ok(Outcome::DefaultOnEmpty),
        _ => Ok(Outcome::Null),
    };
    let not_scalar = |v: &Json| {
        let mut text = String::new();
        let _ = v.write(&mut text);
        format!("strict mode requires a scalar value, found {text}")
    };
    match found {
        Found::Error(e) => error(e),
        Found::Empty => empty(),
        Found::One(v) => match v.scalar_text() {
            Some(t) => Ok(Outcome::Text(t.to_string())),
            None if strict => error(not_scalar(v)),
            None => empty(),
        },
        Found::Many(items) if strict => error(not_scalar(&Json::Array(items.into_iter().cloned().collect()))),
        Found::Many(_) => empty(),
    }
}

/// `JSON_QUERY`'s text (`None`: NULL); `Err` for an `ERROR` behaviour.
pub(super) fn query(
    found: Found,
    strict: bool,
    wrapper: Wrapper,
    on_empty: Behaviour,
    on_error: Behaviour,
) -> Result<Option<String>, String> {
    let instead = |b: Behaviour, e: String| match b {
        Behaviour::Error => Err(e),
        Behaviour::EmptyArray => Ok(Some("[]".to_string())),
        Behaviour::EmptyObject => Ok(Some("{}".to_string())),
        _ => Ok(None),
    };
    let value = match found {
        Found::Error(e) => return instead(on_error, e),
        Found::Empty => None,
        Found::One(v) => Some(v.clone()),
        Found::Many(items) => Some(Json::Array(items.into_iter().cloned().collect())),
    };
    let wrapped = value.map(|v| match (wrapper, v) {
        (Wrapper::Without, v) | (Wrapper::Conditional, v @ Json::Array(_)) => v,
        (_, v) => Json::Array(vec![v]),
    });
    let mut text = String::new();
    match wrapped {
        None => instead(on_empty, "the path found nothing (ERROR ON EMPTY)".into()),
        Some(v @ (Json::Array(_) | Json::Object(_))) => {
            v.write(&mut text).map_err(|e| e.to_string())?;
            Ok(Some(text))
        }
        Some(scalar) if strict => {
            let _ = scalar.write(&mut text);
            instead(
                on_error,
                format!("strict mode requires an array or object, found {text}"),
            )
        }
        Some(_) => instead(on_empty, "the path found a scalar (ERROR ON EMPTY)".into()),
    }
}

/// `JSON_QUERY … RETURNING ARRAY<STRING>`: the elements of the array
/// found (after the wrapper) as strings, a scalar as its text, an array or
/// object as JSON, JSON null as NULL; `None` is NULL. Something other than
/// an array is an error; `EMPTY OBJECT` cannot be an array and is one too.
pub(super) fn query_array(
    found: Found,
    strict: bool,
    wrapper: Wrapper,
    on_empty: Behaviour,
    on_error: Behaviour,
) -> Result<Option<Vec<Option<String>>>, String> {
    let instead = |b: Behaviour, e: String| match b {
        Behaviour::Error => Err(e),
        Behaviour::EmptyArray => Ok(Some(Vec::new())),
        Behaviour::EmptyObject => Err("EMPTY OBJECT cannot be returned as an ARRAY".into()),
        _ => Ok(None),
    };
    let value = match found {
        Found::Error(e) => return instead(on_error, e),
        Found::Empty => None,
        Found::One(v) => Some(v.clone()),
        Found::Many(items) => Some(Json::Array(items.into_iter().cloned().collect())),
    };
    let wrapped = value.map(|v| match (wrapper, v) {
        (Wrapper::Without, v) | (Wrapper::Conditional, v @ Json::Array(_)) => v,
        (_, v) => Json::Array(vec![v]),
    });
    let as_text = |v: &Json| match v {
        Json::Null => None,
        Json::Array(_) | Json::Object(_) => {
            let mut text = String::new();
            let _ = v.write(&mut text);
            Some(text)
        }
        scalar => scalar.scalar_text().map(str::to_string),
    };
    match wrapped {
        None => instead(on_empty, "the path found nothing (ERROR ON EMPTY)".into()),
        Some(Json::Array(items)) => Ok(Some(items.iter().map(as_text).collect())),
        Some(Json::Object(_)) => instead(on_error, "an object cannot be returned as an ARRAY".into()),
        Some(scalar) if strict => instead(
            on_error,
            format!(
                "strict mode requires an array or object, found {}",
                as_text(&scalar).unwrap_or_default()
            ),
        ),
        Some(_) => instead(on_empty, "the path found a scalar (ERROR ON EMPTY)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::json_path::parse;
    use super::*;

    fn run_query(
        doc: &str,
        path: &str,
        wrapper: Wrapper,
        on_empty: Behaviour,
        on_error: Behaviour,
    ) -> Result<Option<String>, String> {
        let p = JsonPath::new(path).unwrap();
        let doc = parse(doc);
        query(find(doc.as_ref(), &p, path), p.strict, wrapper, on_empty, on_error)
    }

    /// Flink's docs (JSON_QUERY): `[{}]`, `[1,2]` and `[[1,2]]` with the
    /// wrappers; `{}` for `EMPTY OBJECT ON EMPTY` of a lax path finding
    /// nothing, `[]` for `EMPTY ARRAY ON ERROR` of a strict one.
    #[test]
    fn query_wrappers_and_behaviours_as_documented() {
        use Behaviour::*;
        assert_eq!(
            run_query("{}", "$", Wrapper::Conditional, Null, Null),
            Ok(Some("[{}]".into()))
        );
        assert_eq!(
            run_query("[1, 2]", "$", Wrapper::Conditional, Null, Null),
            Ok(Some("[1,2]".into()))
        );
        assert_eq!(
            run_query("[1, 2]", "$", Wrapper::Unconditional, Null, Null),
            Ok(Some("[[1,2]]".into()))
        );
        assert_eq!(run_query("1", "$", Wrapper::Without, Null, Null), Ok(None));
        assert_eq!(
            run_query("1", "$", Wrapper::Conditional, Null, Null),
            Ok(Some("[1]".into()))
        );
        assert_eq!(
            run_query("{}", "lax $.invalid", Wrapper::Without, EmptyObject, Null),
            Ok(Some("{}".into()))
        );
        assert_eq!(
            run_query("{}", "strict $.invalid", Wrapper::Without, Null, EmptyArray),
            Ok(Some("[]".into()))
        );
        assert!(run_query("{}", "strict $.invalid", Wrapper::Without, Null, Error).is_err());
        assert!(run_query("{}", "lax $.invalid", Wrapper::Without, Error, Null).is_err());
    }

    /// Flink's docs: `JSON_QUERY('{"a":[{"c":"c1"},{"c":"c2"}]}', 'lax
    /// $.a[*].c' RETURNING ARRAY<STRING>)` is `['c1', 'c2']`.
    #[test]
    fn query_returning_an_array() {
        use Behaviour::*;
        let run = |doc: &str, path: &str, on_empty| {
            let p = JsonPath::new(path).unwrap();
            let doc = parse(doc);
            query_array(find(doc.as_ref(), &p, path), p.strict, Wrapper::Without, on_empty, Null)
        };
        let texts = |v: &[Option<&str>]| Ok(Some(v.iter().map(|t| t.map(str::to_string)).collect()));
        assert_eq!(
            run(r#"{"a":[{"c":"c1"},{"c":"c2"}]}"#, "lax $.a[*].c", Null),
            texts(&[Some("c1"), Some("c2")])
        );
        assert_eq!(
            run(r#"[1, null, {"b": true}]"#, "$", Null),
            texts(&[Some("1"), None, Some(r#"{"b":true}"#)])
        );
        assert_eq!(run("{}", "lax $.x", EmptyArray), Ok(Some(vec![])));
        assert_eq!(run(r#"{"a": {}}"#, "$.a", Null), Ok(None));
        assert!(run("{}", "lax $.x", EmptyObject).is_err());
    }

    fn run_value(doc: &str, path: &str, on_empty: Behaviour, on_error: Behaviour) -> Result<Outcome, String> {
        let p = JsonPath::new(path).unwrap();
        let doc = parse(doc);
        value(find(doc.as_ref(), &p, path), p.strict, on_empty, on_error)
    }

    /// Flink's docs (JSON_VALUE): `DEFAULT FALSE ON EMPTY` of `lax $.b`
    /// and `DEFAULT FALSE ON ERROR` of `strict $.b` over `{"a": true}` are
    /// the default; `NULL ON EMPTY DEFAULT 'wrong' ON ERROR` of a path that
    /// finds "right" is "right".
    #[test]
    fn value_behaviours_as_documented() {
        use Behaviour::*;
        assert_eq!(
            run_value(r#"{"a": true}"#, "lax $.b", Default, Null),
            Ok(Outcome::DefaultOnEmpty)
        );
        assert_eq!(
            run_value(r#"{"a": true}"#, "strict $.b", Null, Default),
            Ok(Outcome::DefaultOnError)
        );
        assert_eq!(
            run_value(
                r#"{"contains blank": "right"}"#,
                "strict $.['contains blank']",
                Null,
                Default
            ),
            Ok(Outcome::Text("right".into()))
        );
        // No mode is strict: a missing member is an error, not empty.
        assert_eq!(run_value(r#"{"a": true}"#, "$.b", Default, Null), Ok(Outcome::Null));
        assert_eq!(
            run_value(r#"{"a": null}"#, "$.a", Default, Null),
            Ok(Outcome::DefaultOnEmpty)
        );
        assert_eq!(
            run_value(r#"{"a": [1]}"#, "lax $.a", Default, Null),
            Ok(Outcome::DefaultOnEmpty)
        );
        assert_eq!(
            run_value(r#"{"a": [1]}"#, "$.a", Null, Default),
            Ok(Outcome::DefaultOnError)
        );
        assert_eq!(
            run_value("not json", "lax $.a", Default, Null),
            Ok(Outcome::DefaultOnEmpty)
        );
        let e = run_value(r#"{"a": {"b": 1}}"#, "$.a", Null, Error).unwrap_err();
        assert_eq!(e, r#"strict mode requires a scalar value, found {"b":1}"#);
    }

    /// Flink's docs (JSON_EXISTS): `TRUE ON ERROR` and `FALSE ON ERROR` of
    /// `strict $.b` over `{"a": true}`.
    #[test]
    fn exists_on_error_as_documented() {
        let run = |doc: &str, path: &str, on_error| {
            let p = JsonPath::new(path).unwrap();
            let doc = parse(doc);
            exists(find(doc.as_ref(), &p, path), on_error)
        };
        assert_eq!(run(r#"{"a": true}"#, "strict $.b", Behaviour::True), Ok(Some(true)));
        assert_eq!(run(r#"{"a": true}"#, "strict $.b", Behaviour::False), Ok(Some(false)));
        assert_eq!(run(r#"{"a": true}"#, "strict $.b", Behaviour::Unknown), Ok(None));
        assert_eq!(run(r#"{"a": true}"#, "lax $.b", Behaviour::True), Ok(Some(false)));
        assert!(run("[", "$", Behaviour::Error).unwrap_err().contains("not JSON"));
    }
}
