//! Flink's `ENCODE(text, charset)` (a string to BYTES) and
//! `DECODE(bytes, charset)` (BYTES to a string) in the character sets
//! Flink names: `US-ASCII`, `ISO-8859-1`, `UTF-8`, `UTF-16BE`, `UTF-16LE`
//! and `UTF-16` (any case). They replace DataFusion's `encode`/`decode`,
//! which mean Base64 or hex.
//!
//! As Java's `String.getBytes` and `new String(bytes, charset)`: a
//! character the set cannot hold is written as `?`, bytes that are no
//! character read as U+FFFD; `UTF-16` writes a big-endian byte-order mark
//! and reads one if present (big-endian without one). Another character
//! set is an error naming it.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryBuilder, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

use super::date_format::is_text;

/// A character set Flink's functions take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Charset {
    Ascii,
    Latin1,
    Utf8,
    Utf16Be,
    Utf16Le,
    /// Big-endian with a byte-order mark when writing; the mark decides
    /// when reading.
    Utf16,
}

impl Charset {
    fn named(name: &str, function: &str) -> Result<Self> {
        Ok(match name.to_ascii_uppercase().as_str() {
            "US-ASCII" => Self::Ascii,
            "ISO-8859-1" => Self::Latin1,
            "UTF-8" => Self::Utf8,
            "UTF-16BE" => Self::Utf16Be,
            "UTF-16LE" => Self::Utf16Le,
            "UTF-16" => Self::Utf16,
            _ => {
                return Err(DataFusionError::Execution(format!(
                    "{function}: unknown character set '{name}': expected one of 'US-ASCII', 'ISO-8859-1', 'UTF-8', 'UTF-16BE', 'UTF-16LE', 'UTF-16'"
                )));
            }
        })
    }

    /// Appends `text` in this set to `out`.
    fn encode(self, text: &str, out: &mut Vec<u8>) {
        let units = |out: &mut Vec<u8>, big: bool| {
            for u in text.encode_utf16() {
                out.extend_from_slice(&if big { u.to_be_bytes() } else { u.to_le_bytes() });
            }
        };
        match self {
            Self::Ascii => out.extend(text.chars().map(|c| if c.is_ascii() { c as u8 } else { b'?' })),
            Self::Latin1 => out.extend(text.chars().map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))),
            Self::Utf8 => out.extend_from_slice(text.as_bytes()),
            Self::Utf16Be => units(out, true),
            Self::Utf16Le => units(out, false),
            Self::Utf16 => {
                out.extend_from_slice(&[0xFE, 0xFF]);
                units(out, true);
            }
        }
    }

    /// Appends the characters of `bytes` in this set to `out`.
    fn decode(self, bytes: &[u8], out: &mut String) {
        let units = |out: &mut String, bytes: &[u8], big: bool| {
            let chunks = bytes.chunks_exact(2);
            let odd = !chunks.remainder().is_empty();
            let units = chunks.map(|p| {
                if big {
                    u16::from_be_bytes([p[0], p[1]])
                } else {
                    u16::from_le_bytes([p[0], p[1]])
                }
            });
            out.extend(char::decode_utf16(units).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER)));
            if odd {
                out.push(char::REPLACEMENT_CHARACTER);
            }
        };
        match self {
            Self::Ascii => out.extend(bytes.iter().map(|&b| {
                if b.is_ascii() {
                    b as char
                } else {
                    char::REPLACEMENT_CHARACTER
                }
            })),
            Self::Latin1 => out.extend(bytes.iter().map(|&b| b as char)),
            Self::Utf8 => out.push_str(&String::from_utf8_lossy(bytes)),
            Self::Utf16Be => units(out, bytes, true),
            Self::Utf16Le => units(out, bytes, false),
            Self::Utf16 => match bytes {
                [0xFE, 0xFF, rest @ ..] => units(out, rest, true),
                [0xFF, 0xFE, rest @ ..] => units(out, rest, false),
                _ => units(out, bytes, true),
            },
        }
    }
}

/// `ENCODE` and `DECODE`, to register.
pub(super) fn functions() -> Vec<ScalarUDF> {
    [("encode", true), ("decode", false)]
        .into_iter()
        .map(|(name, encode)| {
            ScalarUDF::from(Coding {
                name,
                encode,
                signature: Signature::any(2, Volatility::Immutable),
            })
        })
        .collect()
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Coding {
    name: &'static str,
    encode: bool,
    signature: Signature,
}

impl Coding {
    fn function(&self) -> &'static str {
        if self.encode { "ENCODE" } else { "DECODE" }
    }
}

impl ScalarUDFImpl for Coding {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        let binary = matches!(
            args[0],
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::Null
        );
        if self.encode && !is_text(&args[0]) {
            return plan_err!("ENCODE takes a string (argument 1), not {}", args[0]);
        }
        if !self.encode && !binary {
            return plan_err!("DECODE takes BYTES (argument 1), not {}", args[0]);
        }
        if !is_text(&args[1]) {
            return plan_err!(
                "{} takes a character set name (argument 2), not {}",
                self.function(),
                args[1]
            );
        }
        Ok(if self.encode { DataType::Binary } else { DataType::Utf8 })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let charsets = cast(&args.args[1].to_array(n)?, &DataType::Utf8)?;
        let charsets = charsets.as_string::<i32>();
        // The set of the last row, read again only when a row names another.
        let mut last: Option<(&str, Charset)> = None;
        let mut charset_of = |row: usize| -> Result<Option<Charset>> {
            if charsets.is_null(row) {
                return Ok(None);
            }
            let name = charsets.value(row);
            match last {
                Some((l, c)) if l == name => Ok(Some(c)),
                _ => {
                    let c = Charset::named(name, self.function())?;
                    last = Some((name, c));
                    Ok(Some(c))
                }
            }
        };
        let values = args.args[0].to_array(n)?;
        let out: ArrayRef = if self.encode {
            let texts = cast(&values, &DataType::Utf8)?;
            let texts = texts.as_string::<i32>();
            let mut out = BinaryBuilder::with_capacity(n, texts.value_data().len());
            let mut buf = Vec::new();
            for row in 0..n {
                match (texts.is_null(row), charset_of(row)?) {
                    (false, Some(c)) => {
                        buf.clear();
                        c.encode(texts.value(row), &mut buf);
                        out.append_value(&buf);
                    }
                    _ => out.append_null(),
                }
            }
            Arc::new(out.finish())
        } else {
            let bytes = cast(&values, &DataType::Binary)?;
            let bytes = bytes.as_binary::<i32>();
            let mut out = StringBuilder::with_capacity(n, bytes.value_data().len());
            let mut buf = String::new();
            for row in 0..n {
                match (bytes.is_null(row), charset_of(row)?) {
                    (false, Some(c)) => {
                        buf.clear();
                        c.decode(bytes.value(row), &mut buf);
                        out.append_value(&buf);
                    }
                    _ => out.append_null(),
                }
            }
            Arc::new(out.finish())
        };
        Ok(ColumnarValue::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{query, query_err};

    /// Bytes as Java's `"…".getBytes(charset)` gives them (hex).
    #[tokio::test]
    async fn encodes_as_java() {
        for (text, charset, hex) in [
            ("héllo", "UTF-8", "68c3a96c6c6f"),
            ("héllo", "ISO-8859-1", "68e96c6c6f"),
            ("héllo", "US-ASCII", "683f6c6c6f"),
            ("h€", "UTF-16BE", "006820ac"),
            ("h€", "utf-16le", "6800ac20"),
            ("h", "UTF-16", "feff0068"),
            ("😀", "ISO-8859-1", "3f"),
        ] {
            let sql = format!("SELECT encode('{text}', '{charset}')");
            assert_eq!(query(&sql).await, [hex], "{sql}");
        }
    }

    /// Round trips, and bytes that are no character read as U+FFFD.
    #[tokio::test]
    async fn decodes_as_java() {
        for charset in ["US-ASCII", "ISO-8859-1", "UTF-8", "UTF-16BE", "UTF-16LE", "UTF-16"] {
            let text = if charset == "US-ASCII" {
                "plain text"
            } else if charset == "ISO-8859-1" {
                "café"
            } else {
                "café 😀"
            };
            let sql = format!("SELECT decode(encode('{text}', '{charset}'), '{charset}')");
            assert_eq!(query(&sql).await, [text], "{sql}");
        }
        assert_eq!(query("SELECT decode(X'68FF', 'UTF-8')").await, ["h\u{FFFD}"]);
        assert_eq!(query("SELECT decode(X'68FF', 'US-ASCII')").await, ["h\u{FFFD}"]);
        assert_eq!(query("SELECT decode(X'FFFE6800', 'UTF-16')").await, ["h"]);
        assert_eq!(query("SELECT decode(X'0068', 'UTF-16')").await, ["h"]);
        assert_eq!(query("SELECT decode(CAST(NULL AS BYTEA), 'UTF-8')").await, ["NULL"]);
    }

    #[tokio::test]
    async fn unknown_sets_and_types_are_errors() {
        let e = query_err("SELECT encode('a', 'EBCDIC')").await;
        assert!(e.contains("ENCODE: unknown character set 'EBCDIC'"), "{e}");
        let e = query_err("SELECT decode('a', 'UTF-8')").await;
        assert!(e.contains("DECODE takes BYTES (argument 1)"), "{e}");
    }
}
