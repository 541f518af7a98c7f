//! Flink's one-string codecs, which DataFusion lacks: `URL_ENCODE` and
//! `URL_DECODE` (Java's `URLEncoder` / `URLDecoder` in UTF-8, the
//! `application/x-www-form-urlencoded` form: a space is `+`), `JSON_QUOTE`
//! and `JSON_UNQUOTE`. NULL in, NULL out; `URL_DECODE` of text that is no
//! such encoding (a bad `%` escape, bytes that are no UTF-8) is NULL, as
//! Flink's docs say.

use std::fmt::Write;
use std::sync::Arc;

use datafusion::arrow::array::StringBuilder;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::plan_err;
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

use super::date_format::is_text;
use super::regexp::Texts;

/// A function of one string to a string (or NULL).
#[derive(Debug)]
struct Codec {
    name: &'static str,
    apply: fn(&str) -> Option<String>,
    signature: Signature,
}

/// Told apart by name (each name has one function).
impl PartialEq for Codec {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Codec {}

impl std::hash::Hash for Codec {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state)
    }
}

/// `URL_ENCODE`, `URL_DECODE`, `JSON_QUOTE` and `JSON_UNQUOTE`, to
/// register.
pub(super) fn functions() -> Vec<ScalarUDF> {
    let codec = |name, apply| {
        ScalarUDF::from(Codec {
            name,
            apply,
            signature: Signature::any(1, Volatility::Immutable),
        })
    };
    vec![
        codec("url_encode", url_encode),
        codec("url_decode", url_decode),
        codec("json_quote", json_quote),
        codec("json_unquote", json_unquote),
    ]
}

impl ScalarUDFImpl for Codec {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if !is_text(&args[0]) {
            return plan_err!(
                "{} takes a string (argument 1), not {}",
                self.name.to_uppercase(),
                args[0]
            );
        }
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let texts = Texts::new(&args.args[0])?;
        let mut out = StringBuilder::with_capacity(rows, 0);
        for row in 0..rows {
            out.append_option(texts.get(row).and_then(self.apply));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// Java's `URLEncoder.encode(s, UTF_8)`: letters, digits and `.-*_` kept,
/// a space `+`, every other byte `%XX` (capitals).
fn url_encode(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => out.push(char::from(b)),
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    Some(out)
}

/// Java's `URLDecoder.decode(s, UTF_8)`: `+` a space, `%XX` a byte; `None`
/// for a bad escape or bytes that are no UTF-8.
fn url_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Flink's `JSON_QUOTE`: the text in double quotes, with `"`, `\`, `/`
/// and the control characters escaped.
fn json_quote(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    Some(out)
}

/// Flink's `JSON_UNQUOTE`: a JSON string literal's content; any other text
/// (not quoted, or not a valid literal) unchanged.
fn json_unquote(s: &str) -> Option<String> {
    Some(unquoted(s).unwrap_or_else(|| s.to_string()))
}

fn unquoted(s: &str) -> Option<String> {
    let body = s.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return None,
            c if c < ' ' => return None,
            '\\' => out.push(match chars.next()? {
                '"' => '"',
                '\\' => '\\',
                '/' => '/',
                'b' => '\u{8}',
                'f' => '\u{c}',
                'n' => '\n',
                'r' => '\r',
                't' => '\t',
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    let unit = u16::from_str_radix(&hex, 16).ok().filter(|_| hex.len() == 4)?;
                    if (0xD800..0xDC00).contains(&unit) {
                        // A surrogate pair: the low half must follow.
                        let rest: String = chars.by_ref().take(6).collect();
                        let low = rest.strip_prefix("\\u").and_then(|h| u16::from_str_radix(h, 16).ok())?;
                        char::decode_utf16([unit, low]).next()?.ok()?
                    } else {
                        char::from_u32(u32::from(unit))?
                    }
                }
                _ => return None,
            }),
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::super::testing::query;
    use super::*;

    /// Java's URLEncoder: `a b&c=ü` is `a+b%26c%3D%C3%BC`; Flink's docs:
    /// `URL_ENCODE('http://www.apache.org/?name=test')` … round trips.
    #[test]
    fn url_codecs_are_javas() {
        assert_eq!(url_encode("a b&c=ü.-*_~").as_deref(), Some("a+b%26c%3D%C3%BC.-*_%7E"));
        assert_eq!(
            url_encode("https://flink.apache.org/?q=a b").as_deref(),
            Some("https%3A%2F%2Fflink.apache.org%2F%3Fq%3Da+b")
        );
        assert_eq!(url_decode("a+b%26c%3D%C3%BC").as_deref(), Some("a b&c=ü"));
        assert_eq!(url_decode("%zz"), None);
        assert_eq!(url_decode("100%"), None);
        assert_eq!(url_decode("%C3"), None);
    }

    /// Flink's docs (JSON_QUOTE / JSON_UNQUOTE): `JSON_QUOTE('[1,2,3]')`
    /// is `"[1,2,3]"`, `JSON_UNQUOTE('"abc"')` is `abc`, `JSON_UNQUOTE('[1,
    /// 2, 3]')` is unchanged.
    #[test]
    fn json_quoting_as_documented() {
        assert_eq!(json_quote("[1,2,3]").as_deref(), Some("\"[1,2,3]\""));
        assert_eq!(
            json_quote("a\"b\\c/d\n\u{1}").as_deref(),
            Some("\"a\\\"b\\\\c\\/d\\n\\u0001\"")
        );
        assert_eq!(json_unquote("\"abc\"").as_deref(), Some("abc"));
        assert_eq!(json_unquote("[1, 2, 3]").as_deref(), Some("[1, 2, 3]"));
        assert_eq!(
            json_unquote("\"\\ud83d\\ude00 \\t\\/\"").as_deref(),
            Some("\u{1F600} \t/")
        );
        assert_eq!(json_unquote("\"bad \\x\"").as_deref(), Some("\"bad \\x\""));
        assert_eq!(
            json_unquote(&json_quote("a\"b\\\u{1}").unwrap()).as_deref(),
            Some("a\"b\\\u{1}")
        );
    }

    #[tokio::test]
    async fn run_as_functions() {
        assert_eq!(query("SELECT URL_ENCODE('a b')").await, ["a+b"]);
        assert_eq!(query("SELECT URL_DECODE(CAST(NULL AS VARCHAR))").await, ["NULL"]);
        assert_eq!(query("SELECT JSON_UNQUOTE(JSON_QUOTE('x'))").await, ["x"]);
    }
}
