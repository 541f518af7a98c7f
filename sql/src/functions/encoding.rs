//! Flink's text encodings DataFusion lacks: `TO_BASE64(text)`,
//! `FROM_BASE64(text)`, `BIN(integer)` and `HEX(integer | text)`.
//! (DataFusion's `encode(x, 'base64')` and `to_hex` have other names and
//! other spellings: `to_hex` is lowercase, Flink's `HEX` uppercase.)

use std::fmt::Write;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_PAD_INDIFFERENT};
use datafusion::arrow::array::{Array, AsArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{DataFusionError, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

use super::date_format::is_text;

/// What a function of this file does to its argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Coding {
    /// `TO_BASE64(text)`: the UTF-8 bytes in standard Base64, padded.
    ToBase64,
    /// `FROM_BASE64(text)`: the Base64 decoded, read as UTF-8 (Java's
    /// decoder: padding optional; anything outside the alphabet is an
    /// error, as Flink's `IllegalArgumentException`).
    FromBase64,
    /// `BIN(integer)`: the 64-bit two's complement in binary digits
    /// (Java's `Long.toBinaryString`: `BIN(4)` is "100", `BIN(-1)` 64 ones).
    Bin,
    /// `HEX(integer)`: Java's `Long.toHexString`, uppercase; `HEX(text)`
    /// the UTF-8 bytes as uppercase hex pairs.
    Hex,
}

/// The functions of this file, to register.
pub(super) fn functions() -> Vec<ScalarUDF> {
    [("to_base64", Coding::ToBase64), ("from_base64", Coding::FromBase64), ("bin", Coding::Bin), ("hex", Coding::Hex)]
        .into_iter()
        .map(|(name, coding)| {
            ScalarUDF::from(Encode { name, coding, signature: Signature::any(1, Volatility::Immutable) })
        })
        .collect()
}

/// One of the encodings; NULL in, NULL out.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Encode {
    name: &'static str,
    coding: Coding,
    signature: Signature,
}

/// A binary type (hashed and encoded as its bytes).
fn is_binary(t: &DataType) -> bool {
    matches!(t, DataType::Binary | DataType::LargeBinary | DataType::BinaryView)
}

impl ScalarUDFImpl for Encode {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        let t = &args[0];
        let ok = match self.coding {
            Coding::ToBase64 | Coding::FromBase64 => is_text(t) || is_binary(t),
            Coding::Bin => t.is_integer() || *t == DataType::Null,
            Coding::Hex => t.is_integer() || is_text(t) || is_binary(t),
        };
        if !ok {
            let what = match self.coding {
                Coding::Bin => "an integer",
                Coding::Hex => "an integer or a string",
                _ => "a string",
            };
            return plan_err!("{} takes {what} (argument 1), not {t}", self.name.to_uppercase());
        }
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let values = args.args[0].to_array(args.number_rows)?;
        let rows = values.len();
        let failed = |e: std::fmt::Error| DataFusionError::Execution(format!("{}: {e}", self.name.to_uppercase()));
        let mut out = StringBuilder::with_capacity(rows, rows * 16);
        if values.data_type().is_integer() {
            let numbers = cast(&values, &DataType::Int64)?;
            for n in numbers.as_primitive::<Int64Type>().iter() {
                let Some(n) = n else {
                    out.append_null();
                    continue;
                };
                // Java prints a long's two's complement, unsigned.
                let bits = n as u64;
                match self.coding {
                    Coding::Bin => write!(out, "{bits:b}"),
                    _ => write!(out, "{bits:X}"),
                }
                .map_err(failed)?;
                out.append_value("");
            }
            return Ok(ColumnarValue::Array(Arc::new(out.finish())));
        }
        let bytes = cast(&values, &DataType::Binary)?;
        // Reused for every row's encoding or decoding.
        let mut text = String::new();
        let mut decoded = Vec::new();
        for value in bytes.as_binary::<i32>().iter() {
            let Some(value) = value else {
                out.append_null();
                continue;
            };
            match self.coding {
                Coding::ToBase64 => {
                    text.clear();
                    STANDARD.encode_string(value, &mut text);
                    out.append_value(&text);
                }
                Coding::FromBase64 => {
                    decoded.clear();
                    STANDARD_PAD_INDIFFERENT.decode_vec(value, &mut decoded).map_err(|e| {
                        DataFusionError::Execution(format!(
                            "FROM_BASE64: '{}' is not Base64 (argument 1): {e}",
                            String::from_utf8_lossy(value)
                        ))
                    })?;
                    out.append_value(String::from_utf8_lossy(&decoded));
                }
                _ => {
                    for b in value {
                        write!(out, "{b:02X}").map_err(failed)?;
                    }
                    out.append_value("");
                }
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{query, query_err};

    /// Flink's docs: "TO_BASE64('hello world') returns
    /// "aGVsbG8gd29ybGQ="", "FROM_BASE64('aGVsbG8gd29ybGQ=') returns "hello
    /// world""; both "NULL if string is NULL".
    #[tokio::test]
    async fn base64_as_flinks_docs_say() {
        assert_eq!(query("SELECT TO_BASE64('hello world')").await, ["aGVsbG8gd29ybGQ="]);
        assert_eq!(query("SELECT FROM_BASE64('aGVsbG8gd29ybGQ=')").await, ["hello world"]);
        // Java's decoder does not require the padding.
        assert_eq!(query("SELECT FROM_BASE64('aGVsbG8gd29ybGQ')").await, ["hello world"]);
        assert_eq!(query("SELECT FROM_BASE64(TO_BASE64('zwölf €'))").await, ["zwölf €"]);
        assert_eq!(query("SELECT TO_BASE64(CAST(NULL AS VARCHAR))").await, ["NULL"]);
        assert_eq!(query("SELECT FROM_BASE64(CAST(NULL AS VARCHAR))").await, ["NULL"]);
        assert_eq!(query("SELECT TO_BASE64('')").await, [""]);
        let e = query_err("SELECT FROM_BASE64('not base64!')").await;
        assert!(e.contains("FROM_BASE64") && e.contains("argument 1"), "{e}");
    }

    /// Flink's docs: "4.bin() returns "100" and 12.bin() returns "1100"";
    /// HEX: "a numeric 20 leads to "14", a numeric 100 leads to "64", a
    /// string "hello,world" leads to "68656C6C6F2C776F726C64"".
    #[tokio::test]
    async fn bin_and_hex_as_flinks_docs_say() {
        assert_eq!(query("SELECT BIN(4)").await, ["100"]);
        assert_eq!(query("SELECT BIN(12)").await, ["1100"]);
        assert_eq!(query("SELECT BIN(0)").await, ["0"]);
        assert_eq!(query("SELECT BIN(-1)").await, ["1".repeat(64)]);
        assert_eq!(query("SELECT BIN(CAST(NULL AS INT))").await, ["NULL"]);
        assert_eq!(query("SELECT HEX(20)").await, ["14"]);
        assert_eq!(query("SELECT HEX(100)").await, ["64"]);
        assert_eq!(query("SELECT HEX(255)").await, ["FF"]);
        assert_eq!(query("SELECT HEX(-1)").await, ["FFFFFFFFFFFFFFFF"]);
        assert_eq!(query("SELECT HEX('hello,world')").await, ["68656C6C6F2C776F726C64"]);
        assert_eq!(query("SELECT HEX(CAST(NULL AS VARCHAR))").await, ["NULL"]);
        let e = query_err("SELECT BIN('1')").await;
        assert!(e.contains("BIN") && e.contains("argument 1"), "{e}");
        let e = query_err("SELECT HEX(1.5)").await;
        assert!(e.contains("HEX") && e.contains("argument 1"), "{e}");
    }
}
