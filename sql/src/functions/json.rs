//! Flink's JSON query functions, which DataFusion lacks:
//! `JSON_VALUE(json, path [RETURNING type])`, `JSON_QUERY(json, path)` and
//! `JSON_EXISTS(json, path)`, with Flink's default behaviours (`NULL ON
//! EMPTY`, `NULL ON ERROR`, `WITHOUT ARRAY WRAPPER`, `FALSE ON ERROR`):
//! text that is not JSON, a path that finds nothing and a value of the
//! wrong kind are NULL (FALSE for `JSON_EXISTS`), never errors. A path
//! Weir cannot read (`[1:2]` slices, `?(…)` filters) is an error naming the
//! function and argument.
//!
//! `RETURNING type` arrives as a third argument, a NULL of that type
//! (`planner::flink_calls` writes the clause that way, as DataFusion's
//! planner refuses clauses); the value is converted as Flink converts it:
//! a number to an integer type is truncated towards zero, and what does
//! not convert (a word to INT, a value out of range) is NULL.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanBuilder, StringArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{DataFusionError, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};

use super::date_format::is_text;
use super::json_path::{Json, JsonPath, parse};
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
        let signature =
            Signature::one_of(arities.iter().map(|n| TypeSignature::Any(*n)).collect(), Volatility::Immutable);
        ScalarUDF::from(JsonFunction { name, kind, signature })
    };
    vec![
        f("json_value", Kind::Value, &[2, 3]),
        f("json_query", Kind::Query, &[2]),
        f("json_exists", Kind::Exists, &[2]),
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
        let docs = Texts::new(&args.args[0])?;
        let path_texts = Texts::new(&args.args[1])?;
        let mut paths = Paths { function, last: None };
        // The document of the last row, kept while the text repeats (a
        // constant is parsed once).
        let mut last_doc: Option<(usize, Option<Json>)> = None;
        let mut strings = StringBuilder::with_capacity(rows, rows * 8);
        let mut booleans = BooleanBuilder::with_capacity(if self.kind == Kind::Exists { rows } else { 0 });
        for row in 0..rows {
            let (Some(text), Some(path)) = (docs.get(row), path_texts.get(row)) else {
                strings.append_null();
                booleans.append_null();
                continue;
            };
            let path = paths.get(path)?;
            let reuse = matches!(&docs, Texts::One(_)) && last_doc.as_ref().is_some_and(|(r, _)| *r == 0);
            if !reuse {
                last_doc = Some((row, parse(text)));
            }
            let Some((_, doc)) = &last_doc else { return exec_err!("{function}: no document") };
            let Some(doc) = doc else {
                // Not JSON: the error behaviour.
                strings.append_null();
                booleans.append_value(false);
                continue;
            };
            let found = path.select(doc);
            match self.kind {
                Kind::Exists => booleans.append_value(!found.is_empty()),
                Kind::Value => {
                    let value = match found.as_slice() {
                        [one] if !path.is_indefinite() => one.scalar_text(),
                        _ => None,
                    };
                    strings.append_option(value);
                }
                Kind::Query => {
                    let written = if path.is_indefinite() {
                        if found.is_empty() { None } else { Some(Json::Array(found.into_iter().cloned().collect())) }
                    } else {
                        match found.as_slice() {
                            [one @ (Json::Array(_) | Json::Object(_))] => Some((*one).clone()),
                            _ => None,
                        }
                    };
                    match written {
                        Some(v) => {
                            v.write(&mut strings)
                                .map_err(|e| DataFusionError::Execution(format!("{function}: {e}")))?;
                            strings.append_value("");
                        }
                        None => strings.append_null(),
                    }
                }
            }
        }
        if self.kind == Kind::Exists {
            return Ok(ColumnarValue::Array(Arc::new(booleans.finish())));
        }
        let texts = strings.finish();
        let target = args.return_field.data_type();
        Ok(ColumnarValue::Array(if *target == DataType::Utf8 { Arc::new(texts) } else { convert(texts, target)? }))
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
        assert_eq!(query(r#"SELECT JSON_VALUE('{"a.b": [0.998,0.996]}', '$.["a.b"][0]')"#).await, ["0.998"]);
        assert_eq!(
            query(r#"SELECT JSON_VALUE('{"contains blank": "right"}', 'strict $.[''contains blank'']')"#).await,
            ["right"]
        );
        assert_eq!(query(r#"SELECT JSON_VALUE('{"n": 123456789.987654321}', '$.n')"#).await, ["123456789.987654321"]);
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
            assert_eq!(query(&format!("SELECT JSON_VALUE('{doc}', '{path}')")).await, ["NULL"], "{doc} {path}");
        }
        assert_eq!(query("SELECT JSON_VALUE(CAST(NULL AS VARCHAR), 'lax $')").await, ["NULL"]);
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
        assert_eq!(query(r#"SELECT JSON_VALUE('{"a": true}', '$.a', CAST(NULL AS BOOLEAN))"#).await, ["true"]);
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
        assert_eq!(query(r#"SELECT JSON_QUERY('{ "a": { "b": 1 } }', '$.a')"#).await, [r#"{"b":1}"#]);
        assert_eq!(query("SELECT JSON_QUERY('[1, 2]', '$')").await, ["[1,2]"]);
        assert_eq!(query("SELECT JSON_QUERY(CAST(NULL AS VARCHAR), '$')").await, ["NULL"]);
        assert_eq!(
            query(r#"SELECT JSON_QUERY('{"a":[{"c":"c1"},{"c":"c2"}]}', 'lax $.a[*].c')"#).await,
            [r#"["c1","c2"]"#]
        );
        assert_eq!(query("SELECT JSON_QUERY('1', '$')").await, ["NULL"]);
        assert_eq!(query(r#"SELECT JSON_QUERY('{ "a": "[1,2]", "b": [1,2]}', '$.a')"#).await, ["NULL"]);
        assert_eq!(query(r#"SELECT JSON_QUERY('{ "a": "[1,2]", "b": [1,2]}', '$.b')"#).await, ["[1,2]"]);
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
        assert_eq!(query(r#"SELECT JSON_EXISTS('{"a": [{ "b": 1 }]}', '$.a[0].b')"#).await, ["true"]);
        assert_eq!(query(r#"SELECT JSON_EXISTS('{"a": true}', 'strict $.b')"#).await, ["false"]);
        assert_eq!(query("SELECT JSON_EXISTS(CAST(NULL AS VARCHAR), 'lax $')").await, ["NULL"]);
        assert_eq!(query("SELECT JSON_EXISTS('not json', '$')").await, ["false"]);
        assert_eq!(query(r#"SELECT JSON_EXISTS('{"a": null}', '$.a')"#).await, ["true"]);
        assert_eq!(query(r#"SELECT JSON_EXISTS('{"t": []}', '$.t[*]')"#).await, ["false"]);
    }

    #[tokio::test]
    async fn paths_weir_cannot_read_are_errors_naming_the_argument() {
        let e = query_err(r#"SELECT JSON_VALUE('{"a": [1]}', '$.a[0:1]')"#).await;
        assert!(e.contains("JSON_VALUE") && e.contains("argument 2"), "{e}");
        let e = query_err("SELECT JSON_QUERY(1, '$')").await;
        assert!(e.contains("JSON_QUERY") && e.contains("argument 1"), "{e}");
    }
}
