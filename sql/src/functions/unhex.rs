//! Flink's `UNHEX(text)`, which DataFusion lacks (its `decode(x, 'hex')`
//! is Weir's charset `DECODE` here): the BYTES the hexadecimal digits
//! spell, two a byte, an odd first digit a byte of its own (`'ABC'` is
//! `0x0A 0xBC`); NULL when a character is no hex digit or the text is NULL.

use std::sync::Arc;

use datafusion::arrow::array::BinaryBuilder;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::plan_err;
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};

use super::date_format::is_text;
use super::regexp::Texts;

/// `UNHEX(text)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct Unhex {
    signature: Signature,
}

impl Unhex {
    pub(super) fn new() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

/// The bytes `text`'s hex digits spell, or `None` for another character.
fn unhex(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text
        .chars()
        .map(|c| c.to_digit(16).and_then(|d| u8::try_from(d).ok()))
        .collect::<Option<_>>()?;
    let (first, pairs) = digits.split_at(digits.len() % 2);
    Some(
        first
            .iter()
            .copied()
            .chain(pairs.chunks(2).map(|p| p[0] << 4 | p[1]))
            .collect(),
    )
}

impl ScalarUDFImpl for Unhex {
    fn name(&self) -> &str {
        "unhex"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if !is_text(&args[0]) {
            return plan_err!("UNHEX takes a string (argument 1), not {}", args[0]);
        }
        Ok(DataType::Binary)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let texts = Texts::new(&args.args[0])?;
        let mut out = BinaryBuilder::new();
        for row in 0..args.number_rows {
            out.append_option(texts.get(row).and_then(unhex));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::query;
    use super::unhex;

    /// `UNHEX(HEX('Hello'))` is the text's bytes; an odd digit count reads
    /// the first digit alone; a non-hex character is NULL.
    #[tokio::test]
    async fn digits_to_bytes() {
        assert_eq!(unhex("48656c6C6f"), Some(b"Hello".to_vec()));
        assert_eq!(unhex("ABC"), Some(vec![0x0A, 0xBC]));
        assert_eq!(unhex(""), Some(vec![]));
        assert_eq!(unhex("4G"), None);
        assert_eq!(query("SELECT DECODE(UNHEX(HEX('Flink')), 'UTF-8')").await, ["Flink"]);
        assert_eq!(query("SELECT UNHEX('zz')").await, ["NULL"]);
    }
}
