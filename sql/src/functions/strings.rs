//! Flink's string functions DataFusion lacks: `SPLIT_INDEX(text,
//! separator, index)` and `HASH_CODE(text)`. (`INITCAP` is DataFusion's,
//! which is Flink's: words are runs of letters and digits, each capitalized
//! and the rest lowercased.)

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Int32Array, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::plan_err;
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};

use super::date_format::is_text;

/// `SPLIT_INDEX(text, separator, index)`: the `index`th (from 0) piece of
/// `text` split at every occurrence of `separator` (literal text, empty
/// pieces kept); NULL when an argument is NULL, the index is negative or
/// beyond the last piece, or the text is empty. An empty separator splits
/// at whitespace, as Flink's (Commons Lang's whole-separator split).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct SplitIndex {
    signature: Signature,
}

impl SplitIndex {
    pub(super) fn new() -> Self {
        Self { signature: Signature::any(3, Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for SplitIndex {
    fn name(&self) -> &str {
        "split_index"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        for (i, t) in args.iter().take(2).enumerate() {
            if !is_text(t) {
                return plan_err!("SPLIT_INDEX takes a string (argument {}), not {t}", i + 1);
            }
        }
        if !(args[2].is_integer() || args[2] == DataType::Null) {
            return plan_err!("SPLIT_INDEX takes an integer index (argument 3), not {}", args[2]);
        }
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let texts = cast(&args.args[0].to_array(rows)?, &DataType::Utf8)?;
        let separators = cast(&args.args[1].to_array(rows)?, &DataType::Utf8)?;
        let indexes = cast(&args.args[2].to_array(rows)?, &DataType::Int64)?;
        let (texts, separators, indexes) =
            (texts.as_string::<i32>(), separators.as_string::<i32>(), indexes.as_primitive::<Int64Type>());
        let mut out = StringBuilder::with_capacity(rows, 0);
        for row in 0..rows {
            if texts.is_null(row) || separators.is_null(row) || indexes.is_null(row) {
                out.append_null();
                continue;
            }
            let (text, separator) = (texts.value(row), separators.value(row));
            let piece = usize::try_from(indexes.value(row)).ok().and_then(|i| {
                if text.is_empty() {
                    None
                } else if separator.is_empty() {
                    text.split(char::is_whitespace).nth(i)
                } else {
                    text.split(separator).nth(i)
                }
            });
            out.append_option(piece);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// `HASH_CODE(text)`: Java's `String.hashCode()`, an INT: `s[0]*31^(n-1) +
/// … + s[n-1]` over the UTF-16 code units, wrapping. Flink users partition
/// and sample by it, so it must equal the JVM's.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct HashCode {
    signature: Signature,
}

impl HashCode {
    pub(super) fn new() -> Self {
        Self { signature: Signature::any(1, Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for HashCode {
    fn name(&self) -> &str {
        "hash_code"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if !is_text(&args[0]) {
            return plan_err!("HASH_CODE takes a string (argument 1), not {}", args[0]);
        }
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let texts = cast(&args.args[0].to_array(args.number_rows)?, &DataType::Utf8)?;
        let hashes: Int32Array = texts.as_string::<i32>().iter().map(|t| t.map(java_hash)).collect();
        Ok(ColumnarValue::Array(Arc::new(hashes)))
    }
}

/// Java's `String.hashCode()` of `s`.
fn java_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(i32::from(unit)))
}

#[cfg(test)]
mod tests {
    use super::super::testing::query;

    /// Flink's docs (docs/data/sql_functions.yml): "Splits string1 by the
    /// delimiter string2, returns the integerth (zero-based) string of the
    /// split strings. Returns NULL if integer is negative. Returns NULL if
    /// any of arguments is NULL."
    #[tokio::test]
    async fn split_index_as_flinks_docs_say() {
        assert_eq!(
            query("SELECT SPLIT_INDEX(s, ',', i) FROM (VALUES ('a,b,,c', 0), ('a,b,,c', 1), ('a,b,,c', 2), ('a,b,,c', 3), ('a,b,,c', 4), ('a,b,,c', -1), (NULL, 0), ('', 0)) t(s, i)").await,
            ["a", "b", "", "c", "NULL", "NULL", "NULL", "NULL"]
        );
        assert_eq!(query("SELECT SPLIT_INDEX('k1=v1&&k2=v2', '&&', 1)").await, ["k2=v2"]);
        assert_eq!(query("SELECT SPLIT_INDEX('a,b', CAST(NULL AS VARCHAR), 0)").await, ["NULL"]);
    }

    /// Java: "".hashCode() is 0, "hello".hashCode() is 99162322,
    /// "Weir".hashCode() is 2692247 (wrapping past i32 for longer text).
    #[tokio::test]
    async fn hash_code_is_javas() {
        assert_eq!(
            query("SELECT HASH_CODE(s) FROM (VALUES (''), ('hello'), ('Weir'), ('a longer string to overflow'), (NULL)) t(s)").await,
            ["0", "99162322", "2692247", "-16138032", "NULL"]
        );
        assert_eq!(query("SELECT arrow_typeof(HASH_CODE('a'))").await, ["Int32"]);
    }

    /// INITCAP is DataFusion's, as Flink's docs describe it: "the first
    /// character of each word converted to uppercase and the rest
    /// characters to lowercase. Here a word means a sequences of
    /// alphanumeric characters."
    #[tokio::test]
    async fn initcap_is_flinks() {
        assert_eq!(query("SELECT INITCAP('hello wORLD-foo_bar 9lives')").await, ["Hello World-Foo_Bar 9lives"]);
    }
}
