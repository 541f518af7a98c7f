//! Flink's `SPLIT(text, delimiter)`, which DataFusion lacks under that
//! name: an `ARRAY<STRING>` of the pieces between every occurrence of the
//! literal delimiter, empty pieces kept (`'a,,b'` is `['a', '', 'b']`); the
//! text alone when the delimiter is not in it; every character when the
//! delimiter is empty; NULL when an argument is NULL. (DataFusion's
//! `string_to_array` keeps an empty delimiter's text whole.)

use std::sync::Arc;

use datafusion::arrow::array::{ListBuilder, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::plan_err;
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};

use super::date_format::is_text;
use super::regexp::Texts;

/// `SPLIT(text, delimiter)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct Split {
    signature: Signature,
}

impl Split {
    pub(super) fn new() -> Self {
        Self {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for Split {
    fn name(&self) -> &str {
        "split"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        for (i, t) in args.iter().enumerate() {
            if !is_text(t) {
                return plan_err!("SPLIT takes a string (argument {}), not {t}", i + 1);
            }
        }
        Ok(DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let texts = Texts::new(&args.args[0])?;
        let delimiters = Texts::new(&args.args[1])?;
        let mut out = ListBuilder::new(StringBuilder::new());
        for row in 0..args.number_rows {
            let (Some(text), Some(delimiter)) = (texts.get(row), delimiters.get(row)) else {
                out.append_null();
                continue;
            };
            if delimiter.is_empty() {
                let mut buffer = [0u8; 4];
                for c in text.chars() {
                    out.values().append_value(c.encode_utf8(&mut buffer));
                }
            } else {
                for piece in text.split(delimiter) {
                    out.values().append_value(piece);
                }
            }
            out.append(true);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{query, query_err};

    /// Flink's docs: `SPLIT('abcdefg', 'c')` is `['ab', 'defg']`,
    /// `SPLIT('abcdefg', '')` every letter, `SPLIT('abcdefg', 'h')` the
    /// whole text.
    #[tokio::test]
    async fn as_documented() {
        assert_eq!(query("SELECT SPLIT('abcdefg', 'c')").await, ["[ab, defg]"]);
        assert_eq!(query("SELECT SPLIT('abc', '')").await, ["[a, b, c]"]);
        assert_eq!(query("SELECT SPLIT('abcdefg', 'h')").await, ["[abcdefg]"]);
        assert_eq!(query("SELECT SPLIT(',a,,b,', ',')").await, ["[, a, , b, ]"]);
        assert_eq!(query("SELECT SPLIT('a', CAST(NULL AS VARCHAR))").await, ["NULL"]);
        let e = query_err("SELECT SPLIT(1, ',')").await;
        assert!(e.contains("SPLIT takes a string (argument 1)"), "{e}");
    }
}
