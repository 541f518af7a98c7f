//! Flink's functions that write JSON, which DataFusion lacks:
//! `JSON_STRING(value)`, `JSON_OBJECT(…)` and `JSON_ARRAY(…)`, and the
//! `IS JSON` predicate. The constructors' and the predicate's syntax is read
//! by the dialect (`dialect/json.rs`), which calls the functions here with
//! a first argument saying what the SQL said around the values.
//!
//! Values are written by arrow-json's encoders, as Weir's json format
//! writes them (compact, nested ROWs as objects, MAPs as objects, ARRAYs as
//! arrays, timestamps as ISO text), so JSON text made here reads back as
//! the same values.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StringArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::arrow::json::writer::{EncoderOptions, NullableEncoder, make_encoder};
use datafusion::common::{DataFusionError, ScalarValue, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

use super::date_format::is_text;
use super::json_path::{Json, parse};

/// Which function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    String,
    Object,
    Array,
    IsJson,
}

/// `JSON_STRING`, `JSON_OBJECT`, `JSON_ARRAY` and `IS JSON`, to register.
pub(super) fn functions() -> Vec<ScalarUDF> {
    [
        ("json_string", Kind::String, Signature::any(1, Volatility::Immutable)),
        (
            "json_object",
            Kind::Object,
            Signature::variadic_any(Volatility::Immutable),
        ),
        (
            "json_array",
            Kind::Array,
            Signature::variadic_any(Volatility::Immutable),
        ),
        ("is_json", Kind::IsJson, Signature::any(2, Volatility::Immutable)),
    ]
    .into_iter()
    .map(|(name, kind, signature)| ScalarUDF::from(JsonBuild { name, kind, signature }))
    .collect()
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonBuild {
    name: &'static str,
    kind: Kind,
    signature: Signature,
}

impl ScalarUDFImpl for JsonBuild {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match self.kind {
            Kind::IsJson => {
                if !is_text(&args[0]) {
                    return plan_err!("IS JSON tests a string, not {}", args[0]);
                }
                Ok(DataType::Boolean)
            }
            Kind::Object if args.len() % 2 == 0 => {
                plan_err!("JSON_OBJECT takes a key and a value each time (KEY k VALUE v)")
            }
            Kind::Object => {
                for (i, key) in args.iter().skip(1).step_by(2).enumerate() {
                    if !is_text(key) {
                        return plan_err!("JSON_OBJECT: key {} is a {key}, not a string", i + 1);
                    }
                }
                Ok(DataType::Utf8)
            }
            _ => Ok(DataType::Utf8),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let arrays = args.args.iter().map(|a| a.to_array(n)).collect::<Result<Vec<_>>>()?;
        let out: ArrayRef = match self.kind {
            Kind::IsJson => Arc::new(is_json(&arrays[0], &args.args[1])?),
            Kind::String => Arc::new(json_string(&arrays[0])?),
            Kind::Object | Kind::Array => {
                let Some(ColumnarValue::Scalar(ScalarValue::Utf8(Some(flags)))) = args.args.first() else {
                    return exec_err!("{}: its first argument is not what the SQL reader writes", self.name);
                };
                Arc::new(construct(self.kind, flags, &arrays[1..], n)?)
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// How values are written: explicit nulls in nested ROWs, as Flink's
/// Jackson writes them.
fn options() -> EncoderOptions {
    EncoderOptions::default().with_explicit_nulls(true)
}

/// A field for an argument's values (arrow-json's encoders want one).
fn field_of(values: &ArrayRef) -> FieldRef {
    Arc::new(Field::new("value", values.data_type().clone(), true))
}

/// `JSON_STRING(value)`: the value as JSON text; NULL for NULL.
fn json_string(values: &ArrayRef) -> Result<StringArray> {
    let field = field_of(values);
    let options = options();
    let mut encoder = make_encoder(&field, values.as_ref(), &options)?;
    let mut out = StringBuilder::with_capacity(values.len(), values.len() * 8);
    let mut buf = Vec::new();
    for row in 0..values.len() {
        if encoder.is_null(row) {
            out.append_null();
            continue;
        }
        buf.clear();
        encoder.encode(row, &mut buf);
        out.append_value(text(&buf)?);
    }
    Ok(out.finish())
}

/// Each value of `values` as the JSON text a constructor writes for it
/// (`None` for NULL); with `json`, text values are JSON an inner
/// constructor made, taken as they are. The JSON aggregates
/// (`json_agg.rs`) write their items so, as `JSON_ARRAY` would.
pub(super) fn value_texts(values: &ArrayRef, json: bool) -> Result<Vec<Option<String>>> {
    if json && is_text(values.data_type()) {
        let texts = cast(values, &DataType::Utf8)?;
        return Ok(texts.as_string::<i32>().iter().map(|t| t.map(String::from)).collect());
    }
    let field = field_of(values);
    let options = options();
    let mut encoder = make_encoder(&field, values.as_ref(), &options)?;
    let mut buf = Vec::new();
    (0..values.len())
        .map(|row| {
            if encoder.is_null(row) {
                return Ok(None);
            }
            buf.clear();
            encoder.encode(row, &mut buf);
            text(&buf).map(|t| Some(t.to_string()))
        })
        .collect()
}

/// What a value is to a constructor.
enum Part<'a> {
    /// Written by its encoder.
    Encoded(NullableEncoder<'a>),
    /// JSON text of an inner constructor, inserted as it is.
    Json(&'a StringArray),
}

impl Part<'_> {
    fn is_null(&self, row: usize) -> bool {
        match self {
            Part::Encoded(e) => e.is_null(row),
            Part::Json(a) => a.is_null(row),
        }
    }

    fn write(&mut self, row: usize, buf: &mut Vec<u8>) {
        match self {
            Part::Encoded(e) => e.encode(row, buf),
            Part::Json(a) => buf.extend_from_slice(a.value(row).as_bytes()),
        }
    }
}

/// `JSON_OBJECT` (keys and values alternate in `args`) or `JSON_ARRAY`
/// over `n` rows; `flags` is `NULL:` or `ABSENT:` and a letter a value
/// (`J`: JSON text to insert as is).
fn construct(kind: Kind, flags: &str, args: &[ArrayRef], n: usize) -> Result<StringArray> {
    let name = if kind == Kind::Object {
        "JSON_OBJECT"
    } else {
        "JSON_ARRAY"
    };
    let Some((on_null, letters)) = flags.split_once(':') else {
        return exec_err!("{name}: its first argument is not what the SQL reader writes");
    };
    let absent_on_null = on_null == "ABSENT";
    let per_value = if kind == Kind::Object { 2 } else { 1 };
    if letters.len() * per_value != args.len() {
        return exec_err!("{name}: {} arguments for {} values", args.len(), letters.len());
    }
    let fields: Vec<FieldRef> = args.iter().map(field_of).collect();
    let texts: Vec<Option<StringArray>> = args
        .iter()
        .map(|a| {
            Ok(is_text(a.data_type())
                .then(|| cast(a, &DataType::Utf8))
                .transpose()?
                .map(|a| a.as_string::<i32>().clone()))
        })
        .collect::<Result<_>>()?;
    let options = options();
    let mut keys: Vec<NullableEncoder> = Vec::new();
    let mut values: Vec<Part> = Vec::new();
    for (i, letter) in letters.chars().enumerate() {
        let v = i * per_value + per_value - 1;
        if kind == Kind::Object {
            keys.push(make_encoder(&fields[v - 1], args[v - 1].as_ref(), &options)?);
        }
        values.push(match (letter, &texts[v]) {
            ('J', Some(json)) => Part::Json(json),
            _ => Part::Encoded(make_encoder(&fields[v], args[v].as_ref(), &options)?),
        });
    }
    let (open, close) = if kind == Kind::Object {
        (b'{', b'}')
    } else {
        (b'[', b']')
    };
    let mut out = StringBuilder::with_capacity(n, n * 16);
    let mut buf = Vec::new();
    for row in 0..n {
        buf.clear();
        buf.push(open);
        let mut first = true;
        for (i, value) in values.iter_mut().enumerate() {
            let null = value.is_null(row);
            if null && absent_on_null {
                continue;
            }
            if !first {
                buf.push(b',');
            }
            first = false;
            if let Some(key) = keys.get_mut(i) {
                if key.is_null(row) {
                    return exec_err!("JSON_OBJECT: key {} is NULL", i + 1);
                }
                key.encode(row, &mut buf);
                buf.push(b':');
            }
            if null {
                buf.extend_from_slice(b"null");
            } else {
                value.write(row, &mut buf);
            }
        }
        buf.push(close);
        out.append_value(text(&buf)?);
    }
    Ok(out.finish())
}

/// `text IS JSON kind`: never NULL (a NULL is not JSON).
fn is_json(texts: &ArrayRef, kind: &ColumnarValue) -> Result<BooleanArray> {
    let ColumnarValue::Scalar(ScalarValue::Utf8(Some(kind))) = kind else {
        return exec_err!("IS JSON: the kind is not what the SQL reader writes");
    };
    let texts = cast(texts, &DataType::Utf8)?;
    let texts = texts.as_string::<i32>();
    let test = |json: &Json| match kind.as_str() {
        "SCALAR" => !matches!(json, Json::Array(_) | Json::Object(_)),
        "ARRAY" => matches!(json, Json::Array(_)),
        "OBJECT" => matches!(json, Json::Object(_)),
        _ => true,
    };
    Ok(texts
        .iter()
        .map(|t| Some(t.and_then(parse).is_some_and(|j| test(&j))))
        .collect())
}

/// The UTF-8 text arrow-json wrote.
fn text(buf: &[u8]) -> Result<&str> {
    std::str::from_utf8(buf).map_err(|e| DataFusionError::Internal(format!("JSON text is not UTF-8: {e}")))
}

#[cfg(test)]
mod tests {
    use super::super::testing::query;

    /// Flink's documented examples (docs/data/sql_functions.yml). The
    /// calls are written as the dialect writes Flink's syntax.
    #[tokio::test]
    async fn flinks_examples() {
        for (sql, expected) in [
            ("json_string(CAST(NULL AS INT))", "NULL"),
            ("json_string(1)", "1"),
            ("json_string(TRUE)", "true"),
            ("json_string('Hello, World!')", "\"Hello, World!\""),
            ("json_string(make_array(1, 2))", "[1,2]"),
            ("json_object('NULL:')", "{}"),
            (
                "json_object('NULL:VV', 'K1', 'V1', 'K2', 'V2')",
                r#"{"K1":"V1","K2":"V2"}"#,
            ),
            ("json_object('NULL:V', 'K1', CAST(NULL AS VARCHAR))", r#"{"K1":null}"#),
            ("json_object('ABSENT:V', 'K1', CAST(NULL AS VARCHAR))", "{}"),
            (
                "json_object('NULL:J', 'K1', json_object('NULL:V', 'K2', 'V'))",
                r#"{"K1":{"K2":"V"}}"#,
            ),
            ("json_array('ABSENT:')", "[]"),
            ("json_array('ABSENT:VV', 1, '2')", r#"[1,"2"]"#),
            ("json_array('NULL:V', CAST(NULL AS VARCHAR))", "[null]"),
            ("json_array('ABSENT:V', CAST(NULL AS VARCHAR))", "[]"),
            ("json_array('ABSENT:J', json_array('ABSENT:V', 1))", "[[1]]"),
            // A string that merely looks like JSON is a string.
            ("json_array('ABSENT:V', '[1]')", r#"["[1]"]"#),
            ("json_object('NULL:V', 'q\"', 'a\nb')", r#"{"q\"":"a\nb"}"#),
        ] {
            assert_eq!(query(&format!("SELECT {sql}")).await, [expected], "{sql}");
        }
    }

    #[tokio::test]
    async fn is_json_as_flinks_docs() {
        for (text, kind, expected) in [
            ("'1'", "VALUE", "true"),
            ("'[]'", "VALUE", "true"),
            ("'{}'", "VALUE", "true"),
            ("'\"abc\"'", "VALUE", "true"),
            ("'abc'", "VALUE", "false"),
            ("CAST(NULL AS VARCHAR)", "VALUE", "false"),
            ("'1'", "SCALAR", "true"),
            ("'1'", "ARRAY", "false"),
            ("'1'", "OBJECT", "false"),
            ("'{}'", "SCALAR", "false"),
            ("'{}'", "ARRAY", "false"),
            ("'{}'", "OBJECT", "true"),
        ] {
            assert_eq!(
                query(&format!("SELECT is_json({text}, '{kind}')")).await,
                [expected],
                "{text} {kind}"
            );
        }
    }
}
