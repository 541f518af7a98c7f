//! Flink's JSON query functions, which DataFusion lacks:
//! `JSON_VALUE(json, path [RETURNING type] [… ON EMPTY] [… ON ERROR])`,
//! `JSON_QUERY(json, path [… WRAPPER] [… ON EMPTY] [… ON ERROR])` and
//! `JSON_EXISTS(json, path [… ON ERROR])`. What each returns for what the
//! path finds, with Flink's defaults (`NULL ON EMPTY`, `NULL ON ERROR`,
//! `WITHOUT ARRAY WRAPPER`, `FALSE ON ERROR`), is in `json_sql.rs`. A path
//! Weir cannot read (`[1:2]` slices, `?(…)` filters) is an error naming the
//! function and argument.
//!
//! The clauses arrive as constant arguments (the dialect,
//! `dialect/json_query.rs`, writes them so, as DataFusion's planner refuses
//! clauses): `RETURNING type` as a third argument, a NULL of that type,
//! then `JSON_VALUE`'s behaviours and defaults; `JSON_QUERY`'s wrapper and
//! behaviours; `JSON_EXISTS`'s behaviour. `JSON_VALUE`'s value is converted
//! as Flink converts it: a number to an integer type is truncated towards
//! zero, and what does not convert (a word to INT, a value out of range) is
//! NULL; a `DEFAULT` is cast to the type.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanBuilder, ListBuilder, StringArray, StringBuilder};
use datafusion::arrow::compute::{cast, interleave};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{DataFusionError, ScalarValue, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};

use super::date_format::is_text;
use super::json_path::{Json, JsonPath, parse};
use super::json_sql::{self, Behaviour, Outcome, Wrapper};
use super::regexp::Texts;

/// Which function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Value,
    Query,
    Exists,
}

/// `JSON_VALUE`, `JSON_QUERY` and `JSON_EXISTS`, to register.
pub(super) fn functions() -> Vec<ScalarUDF> {
    let f = |name, kind, arities: &[usize]| {
        let signature = Signature::one_of(
            arities.iter().map(|n| TypeSignature::Any(*n)).collect(),
            Volatility::Immutable,
        );
        ScalarUDF::from(JsonFunction { name, kind, signature })
    };
    vec![
        f("json_value", Kind::Value, &[2, 3, 7]),
        f("json_query", Kind::Query, &[2, 5, 6]),
        f("json_exists", Kind::Exists, &[2, 3]),
    ]
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonFunction {
    name: &'static str,
    kind: Kind,
    signature: Signature,
}

/// Reads each row's path, reusing the last one while the text repeats.
struct Paths {
    function: &'static str,
    last: Option<(String, JsonPath)>,
}

impl Paths {
    fn get(&mut self, text: &str) -> Result<&JsonPath> {
        if self.last.as_ref().is_none_or(|(t, _)| t != text) {
            let path = JsonPath::new(text)
                .map_err(|why| DataFusionError::Execution(format!("{}: {why} (argument 2)", self.function)))?;
            self.last = Some((text.to_string(), path));
        }
        match &self.last {
            Some((_, p)) => Ok(p),
            None => exec_err!("{}: no path", self.function),
        }
    }
}

/// A type `JSON_VALUE … RETURNING` converts to.
fn returnable(t: &DataType) -> bool {
    t.is_numeric() || is_text(t) || matches!(t, DataType::Boolean | DataType::Date32 | DataType::Timestamp(..))
}

impl ScalarUDFImpl for JsonFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(match (self.kind, args.get(2)) {
            (Kind::Exists, _) => DataType::Boolean,
            (Kind::Value, Some(t)) => t.clone(),
            (Kind::Query, _) if args.len() == 6 => {
                DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
            }
            _ => DataType::Utf8,
        })
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let name = self.name.to_uppercase();
        let types: Vec<&DataType> = args.arg_fields.iter().map(|f| f.data_type()).collect();
        for (i, t) in types.iter().take(2).enumerate() {
            if !is_text(t) {
                return plan_err!("{name} takes a string (argument {}), not {t}", i + 1);
            }
        }
        if let Some(t) = types.get(2)
            && (!returnable(t) || **t == DataType::Null)
        {
            return plan_err!("{name} cannot return {t} (RETURNING, argument 3)");
        }
        let types: Vec<DataType> = types.into_iter().cloned().collect();
        Ok(Arc::new(Field::new(self.name, self.return_type(&types)?, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let function = match self.kind {
            Kind::Value => "JSON_VALUE",
            Kind::Query => "JSON_QUERY",
            Kind::Exists => "JSON_EXISTS",
        };
        let clauses = Clauses::read(self.kind, function, &args.args)?;
        let docs = Texts::new(&args.args[0])?;
        let path_texts = Texts::new(&args.args[1])?;
        let mut paths = Paths { function, last: None };
        // The document of the last row, kept while the text repeats (a
        // constant is parsed once).
        let mut last_doc: Option<(usize, Option<Json>)> = None;
        let mut strings = StringBuilder::with_capacity(rows, rows * 8);
        // JSON_QUERY … RETURNING ARRAY<STRING>.
        let returns_array = self.kind == Kind::Query && args.args.len() == 6;
        let mut lists = ListBuilder::new(StringBuilder::new());
        let mut booleans = BooleanBuilder::with_capacity(if self.kind == Kind::Exists { rows } else { 0 });
        // JSON_VALUE: where each row's value comes from (0: the text, 1:
        // the default on empty, 2: the default on error).
        let mut sources: Vec<(usize, usize)> = Vec::with_capacity(if self.kind == Kind::Value { rows } else { 0 });
        let failed = |e: String| DataFusionError::Execution(format!("{function}: {e}"));
        for row in 0..rows {
            let (Some(text), Some(path_text)) = (docs.get(row), path_texts.get(row)) else {
                strings.append_null();
                booleans.append_null();
                lists.append_null();
                sources.push((0, row));
                continue;
            };
            let path = paths.get(path_text)?;
            let reuse = matches!(&docs, Texts::One(_)) && last_doc.as_ref().is_some_and(|(r, _)| *r == 0);
            if !reuse {
                last_doc = Some((row, parse(text)));
            }
            let Some((_, doc)) = &last_doc else {
                return exec_err!("{function}: no document");
            };
            let found = json_sql::find(doc.as_ref(), path, path_text);
            match self.kind {
                Kind::Exists => booleans.append_option(json_sql::exists(found, clauses.on_error).map_err(failed)?),
                Kind::Value => {
                    let source = match json_sql::value(found, path.strict, clauses.on_empty, clauses.on_error)
                        .map_err(failed)?
                    {
                        Outcome::Text(t) => {
                            strings.append_value(t);
                            0
                        }
                        Outcome::Null => {
                            strings.append_null();
                            0
                        }
                        Outcome::DefaultOnEmpty => {
                            strings.append_null();
                            1
                        }
                        Outcome::DefaultOnError => {
                            strings.append_null();
                            2
                        }
                    };
                    sources.push((source, row));
                }
                Kind::Query if returns_array => {
                    match json_sql::query_array(found, path.strict, clauses.wrapper, clauses.on_empty, clauses.on_error)
                        .map_err(failed)?
                    {
                        Some(items) => {
                            for item in items {
                                lists.values().append_option(item);
                            }
                            lists.append(true);
                        }
                        None => lists.append_null(),
                    }
                }
                Kind::Query => strings.append_option(
                    json_sql::query(found, path.strict, clauses.wrapper, clauses.on_empty, clauses.on_error)
                        .map_err(failed)?,
                ),
            }
        }
        if self.kind == Kind::Exists {
            return Ok(ColumnarValue::Array(Arc::new(booleans.finish())));
        }
        if returns_array {
            return Ok(ColumnarValue::Array(Arc::new(lists.finish())));
        }
        let texts = strings.finish();
        let target = args.return_field.data_type();
        let values = if *target == DataType::Utf8 {
            Arc::new(texts)
        } else {
            convert(texts, target)?
        };
        if sources.iter().all(|(source, _)| *source == 0) {
            return Ok(ColumnarValue::Array(values));
        }
        // The defaults, in the returned type.
        let default = |i: usize| -> Result<ArrayRef> { Ok(cast(&args.args[i].to_array(rows)?, target)?) };
        let (on_empty, on_error) = (default(4)?, default(6)?);
        let arrays: [&dyn Array; 3] = [values.as_ref(), on_empty.as_ref(), on_error.as_ref()];
        Ok(ColumnarValue::Array(interleave(&arrays, &sources)?))
    }
}

/// The clauses of a call, read from its constant arguments.
struct Clauses {
    wrapper: Wrapper,
    on_empty: Behaviour,
    on_error: Behaviour,
}

impl Clauses {
    fn read(kind: Kind, function: &str, args: &[ColumnarValue]) -> Result<Self> {
        let constant = |i: usize| -> Result<Option<String>> {
            match args.get(i) {
                None => Ok(None),
                Some(ColumnarValue::Scalar(
                    ScalarValue::Utf8(Some(t)) | ScalarValue::LargeUtf8(Some(t)) | ScalarValue::Utf8View(Some(t)),
                )) => Ok(Some(t.clone())),
                Some(_) => exec_err!("{function}: argument {} must be a constant behaviour", i + 1),
            }
        };
        let behaviour = |i: usize, default: Behaviour| -> Result<Behaviour> {
            match constant(i)? {
                None => Ok(default),
                Some(t) => match Behaviour::named(&t) {
                    Some(b) => Ok(b),
                    None => exec_err!("{function}: unknown behaviour '{t}' (argument {})", i + 1),
                },
            }
        };
        Ok(match kind {
            Kind::Exists => Clauses {
                wrapper: Wrapper::Without,
                on_empty: Behaviour::Null,
                on_error: behaviour(2, Behaviour::False)?,
            },
            Kind::Value => Clauses {
                wrapper: Wrapper::Without,
                on_empty: behaviour(3, Behaviour::Null)?,
                on_error: behaviour(5, Behaviour::Null)?,
            },
            Kind::Query => Clauses {
                wrapper: match constant(2)? {
                    None => Wrapper::Without,
                    Some(t) => match Wrapper::named(&t) {
                        Some(w) => w,
                        None => return exec_err!("{function}: unknown wrapper '{t}' (argument 3)"),
                    },
                },
                on_empty: behaviour(3, Behaviour::Null)?,
                on_error: behaviour(4, Behaviour::Null)?,
            },
        })
    }
}

/// `JSON_VALUE`'s text converted to `RETURNING`'s type: numbers towards
/// zero for an integer type; NULL for what does not convert.
fn convert(texts: StringArray, target: &DataType) -> Result<ArrayRef> {
    let texts = if target.is_integer() {
        let truncated: StringArray = texts
            .iter()
            .map(|t| {
                t.map(|t| match t.split_once('.') {
                    // "13.89" is 13, "-0.5" is "-0" (0).
                    Some((int, frac)) if frac.bytes().all(|b| b.is_ascii_digit()) && !int.is_empty() => int,
                    _ => t,
                })
            })
            .collect();
        truncated
    } else {
        texts
    };
    // Arrow's cast is safe by default: what does not convert is NULL.
    Ok(cast(&texts, target)?)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{query, query_err};

    /// Flink's docs (docs/data/sql_functions.yml, "JSON_VALUE"): `"true"`
    /// for `JSON_VALUE('{"a": true}', '$.a')`; `0.998` for `'$.["a.b"][0]'`
    /// of `{"a.b": [0.998,0.996]}`; `"right"` for `'strict $.[''contains
    /// blank'']'`; and a number as written (Flink's tests:
    /// `123456789.987654321`).
    #[tokio::test]
    async fn json_value_as_flinks_docs_say() {
        assert_eq!(query(r#"SELECT JSON_VALUE('{"a": true}', '$.a')"#).await, ["true"]);
        assert_eq!(
            query(r#"SELECT JSON_VALUE('{"a.b": [0.998,0.996]}', '$.["a.b"][0]')"#).await,
            ["0.998"]
        );
        assert_eq!(
            query(r#"SELECT JSON_VALUE('{"contains blank": "right"}', 'strict $.[''contains blank'']')"#).await,
            ["right"]
        );
        assert_eq!(
            query(r#"SELECT JSON_VALUE('{"n": 123456789.987654321}', '$.n')"#).await,
            ["123456789.987654321"]
        );
        assert_eq!(query(r#"SELECT JSON_VALUE('{"a": {"b": "x"}}', '$.a.b')"#).await, ["x"]);
        assert_eq!(query(r#"SELECT JSON_VALUE('{"a": [7, 8]}', '$.a[0]')"#).await, ["7"]);
        // Nothing there, JSON null, not a scalar, many values, not JSON,
        // SQL NULL: NULL.
        for (doc, path) in [
            (r#"{"a": true}"#, "lax $.b"),
            (r#"{"a": null}"#, "$.a"),
            (r#"{"a": [1]}"#, "$.a"),
            (r#"{"a": [1, 2]}"#, "$.a[*]"),
            ("not json", "$.a"),
        ] {
            assert_eq!(
                query(&format!("SELECT JSON_VALUE('{doc}', '{path}')")).await,
                ["NULL"],
                "{doc} {path}"
            );
        }
        assert_eq!(
            query("SELECT JSON_VALUE(CAST(NULL AS VARCHAR), 'lax $')").await,
            ["NULL"]
        );
        assert_eq!(
            query(r#"SELECT JSON_VALUE(j, '$.k') FROM (VALUES ('{"k": "v1"}'), ('{"k": 2}'), ('{}'), (NULL)) t(j)"#)
                .await,
            ["v1", "2", "NULL", "NULL"]
        );
    }

    /// RETURNING, as the planner writes it (a NULL of the type): Flink's
    /// docs: `TRUE` for `JSON_VALUE('{"a": true}', '$.a' RETURNING
    /// BOOLEAN)`, `0.998` as a DOUBLE; Flink's tests: 13.37 RETURNING INT is
    /// 13, a word RETURNING INT and 9999999999 RETURNING INT are NULL.
    #[tokio::test]
    async fn json_value_returning_a_type() {
        assert_eq!(
            query(r#"SELECT JSON_VALUE('{"a": true}', '$.a', CAST(NULL AS BOOLEAN))"#).await,
            ["true"]
        );
        assert_eq!(
            query(r#"SELECT arrow_typeof(JSON_VALUE('{"a": true}', '$.a', CAST(NULL AS BOOLEAN)))"#).await,
            ["Boolean"]
        );
        assert_eq!(
            query(r#"SELECT JSON_VALUE('{"a.b": [0.998,0.996]}', '$.["a.b"][0]', CAST(NULL AS DOUBLE)) * 2"#).await,
            ["1.996"]
        );
        let int = |doc: &str| format!("SELECT JSON_VALUE('{doc}', '$.v', CAST(NULL AS INT))");
        assert_eq!(query(&int(r#"{"v": 42}"#)).await, ["42"]);
        assert_eq!(query(&int(r#"{"v": 13.37}"#)).await, ["13"]);
        assert_eq!(query(&int(r#"{"v": -13.89}"#)).await, ["-13"]);
        assert_eq!(query(&int(r#"{"v": "account"}"#)).await, ["NULL"]);
        assert_eq!(query(&int(r#"{"v": 9999999999}"#)).await, ["NULL"]);
        assert_eq!(
            query(r#"SELECT JSON_VALUE('{"v": 9999999999}', '$.v', CAST(NULL AS BIGINT))"#).await,
            ["9999999999"]
        );
    }

    /// Flink's docs (JSON_QUERY): `'{"b":1}'` for `'$.a'` of `{ "a": { "b": 1
    /// } }` (compact, as Flink prints it), `'[1,2]'` for `'$'` of `[1, 2]`,
    /// NULL for NULL, `'["c1","c2"]'` for `'lax $.a[*].c'`, and a scalar is
    /// NULL without a wrapper.
    #[tokio::test]
    async fn json_query_as_flinks_docs_say() {
        assert_eq!(
            query(r#"SELECT JSON_QUERY('{ "a": { "b": 1 } }', '$.a')"#).await,
            [r#"{"b":1}"#]
        );
        assert_eq!(query("SELECT JSON_QUERY('[1, 2]', '$')").await, ["[1,2]"]);
        assert_eq!(query("SELECT JSON_QUERY(CAST(NULL AS VARCHAR), '$')").await, ["NULL"]);
        assert_eq!(
            query(r#"SELECT JSON_QUERY('{"a":[{"c":"c1"},{"c":"c2"}]}', 'lax $.a[*].c')"#).await,
            [r#"["c1","c2"]"#]
        );
        assert_eq!(query("SELECT JSON_QUERY('1', '$')").await, ["NULL"]);
        assert_eq!(
            query(r#"SELECT JSON_QUERY('{ "a": "[1,2]", "b": [1,2]}', '$.a')"#).await,
            ["NULL"]
        );
        assert_eq!(
            query(r#"SELECT JSON_QUERY('{ "a": "[1,2]", "b": [1,2]}', '$.b')"#).await,
            ["[1,2]"]
        );
        assert_eq!(query("SELECT JSON_QUERY('{}', 'lax $.invalid')").await, ["NULL"]);
        // Keys keep their order.
        assert_eq!(
            query(r#"SELECT JSON_QUERY('{"z": 1, "a": [true, null]}', '$')"#).await,
            [r#"{"z":1,"a":[true,null]}"#]
        );
    }

    /// Flink's docs (JSON_EXISTS): TRUE for `'$.a'` of `{"a": true}`, FALSE
    /// for `'$.b'`, TRUE for `'$.a[0].b'` of `{"a": [{ "b": 1 }]}`; FALSE for
    /// `'strict $.b'` (FALSE ON ERROR); NULL for NULL (Flink's tests).
    #[tokio::test]
    async fn json_exists_as_flinks_docs_say() {
        assert_eq!(query(r#"SELECT JSON_EXISTS('{"a": true}', '$.a')"#).await, ["true"]);
        assert_eq!(query(r#"SELECT JSON_EXISTS('{"a": true}', '$.b')"#).await, ["false"]);
        assert_eq!(
            query(r#"SELECT JSON_EXISTS('{"a": [{ "b": 1 }]}', '$.a[0].b')"#).await,
            ["true"]
        );
        assert_eq!(
            query(r#"SELECT JSON_EXISTS('{"a": true}', 'strict $.b')"#).await,
            ["false"]
        );
        assert_eq!(
            query("SELECT JSON_EXISTS(CAST(NULL AS VARCHAR), 'lax $')").await,
            ["NULL"]
        );
        assert_eq!(query("SELECT JSON_EXISTS('not json', '$')").await, ["false"]);
        // As Flink's SqlJsonUtils decides: JSON null is no value, and a
        // wildcard path finds an array (of nothing), which is one.
        assert_eq!(query(r#"SELECT JSON_EXISTS('{"a": null}', '$.a')"#).await, ["false"]);
        assert_eq!(query(r#"SELECT JSON_EXISTS('{"t": []}', '$.t[*]')"#).await, ["true"]);
        // The clauses, as the dialect writes them.
        assert_eq!(
            query(r#"SELECT JSON_EXISTS('{"a": true}', 'strict $.b', 'TRUE')"#).await,
            ["true"]
        );
        assert_eq!(
            query(r#"SELECT JSON_EXISTS('{"a": true}', 'strict $.b', 'UNKNOWN')"#).await,
            ["NULL"]
        );
        let e = query_err(r#"SELECT JSON_EXISTS('{"a": true}', 'strict $.b', 'ERROR')"#).await;
        assert!(e.contains("JSON_EXISTS: no value at 'strict $.b'"), "{e}");
    }

    #[tokio::test]
    async fn paths_weir_cannot_read_are_errors_naming_the_argument() {
        let e = query_err(r#"SELECT JSON_VALUE('{"a": [1]}', '$.a[0:1]')"#).await;
        assert!(e.contains("JSON_VALUE") && e.contains("argument 2"), "{e}");
        let e = query_err("SELECT JSON_QUERY(1, '$')").await;
        assert!(e.contains("JSON_QUERY") && e.contains("argument 1"), "{e}");
        let e = query_err("SELECT JSON_QUERY('[]', '$', 'SIDEWAYS', 'NULL', 'NULL')").await;
        assert!(e.contains("JSON_QUERY: unknown wrapper 'SIDEWAYS'"), "{e}");
    }
}
