//! Flink's string functions DataFusion lacks or means otherwise:
//! `SPLIT_INDEX(text, separator, index)`, `HASH_CODE(text)`, `LOCATE(needle,
//! text[, from])`, `CONCAT(…)` (NULL when any argument is; DataFusion's
//! skips NULLs) and `CHR(code)` (the code modulo 256; DataFusion's refuses
//! 0 and takes any code point). (`INITCAP` is DataFusion's, which is
//! Flink's: words are runs of letters and digits, each capitalized and the
//! rest lowercased.)

use std::fmt::Write;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int32Array, Int32Builder, StringArray, StringBuilder};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::{can_cast_types, cast};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{DataFusionError, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};

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

/// `CONCAT(text, …)`: the texts one after the other; NULL when any of them
/// is NULL (Flink's docs: "Returns NULL if any argument is NULL"), where
/// DataFusion's `concat` skips NULLs. Non-text arguments are cast to text.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct Concat {
    signature: Signature,
}

impl Concat {
    pub(super) fn new() -> Self {
        Self { signature: Signature::variadic_any(Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for Concat {
    fn name(&self) -> &str {
        "concat"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if args.is_empty() {
            return plan_err!("CONCAT takes at least one argument");
        }
        for (i, t) in args.iter().enumerate() {
            if !can_cast_types(t, &DataType::Utf8) {
                return plan_err!("CONCAT takes strings (argument {}), not {t}", i + 1);
            }
        }
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let texts: Vec<ArrayRef> =
            args.args.iter().map(|a| Ok(cast(&a.to_array(rows)?, &DataType::Utf8)?)).collect::<Result<_>>()?;
        let texts: Vec<&StringArray> = texts.iter().map(|t| t.as_string::<i32>()).collect();
        // A row is NULL where any argument is.
        let nulls = texts.iter().fold(None, |acc: Option<NullBuffer>, t| NullBuffer::union(acc.as_ref(), t.nulls()));
        let bytes = texts.iter().map(|t| t.value_data().len()).sum();
        let mut out = StringBuilder::with_capacity(rows, bytes);
        for row in 0..rows {
            if nulls.as_ref().is_some_and(|n| n.is_null(row)) {
                out.append_null();
                continue;
            }
            for t in &texts {
                out.write_str(t.value(row)).map_err(|e| DataFusionError::Execution(format!("CONCAT: {e}")))?;
            }
            out.append_value("");
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// `CHR(code)`: the character whose code is `code` modulo 256 (Flink's docs:
/// "chr(97) returns a, chr(353) returns a"; the description's "modulus …
/// divided by 255" is contradicted by that example, and 353 mod 256 is
/// 97); the empty string for a negative code; NULL for NULL. Codes 128–255
/// are Latin-1 characters, as Java's `char`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct Chr {
    signature: Signature,
}

impl Chr {
    pub(super) fn new() -> Self {
        Self { signature: Signature::any(1, Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for Chr {
    fn name(&self) -> &str {
        "chr"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if !(args[0].is_integer() || args[0] == DataType::Null) {
            return plan_err!("CHR takes an integer (argument 1), not {}", args[0]);
        }
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let codes = cast(&args.args[0].to_array(args.number_rows)?, &DataType::Int64)?;
        let codes = codes.as_primitive::<Int64Type>();
        let mut out = StringBuilder::with_capacity(codes.len(), codes.len() * 2);
        for code in codes.iter() {
            match code {
                None => out.append_null(),
                Some(c) if c < 0 => out.append_value(""),
                Some(c) => {
                    // 0..=255 are all characters (Latin-1).
                    let ch = char::from((c & 0xff) as u8);
                    out.write_char(ch).map_err(|e| DataFusionError::Execution(format!("CHR: {e}")))?;
                    out.append_value("");
                }
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// `LOCATE(needle, text[, from])`: the position (from 1, in characters) of
/// the first `needle` in `text` at or after position `from` (default 1; one
/// below 1 counts as 1), 0 when there is none; NULL when an argument is
/// NULL. An empty needle is found where the search starts. An INT, as
/// Flink's.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct Locate {
    signature: Signature,
}

impl Locate {
    pub(super) fn new() -> Self {
        Self { signature: Signature::one_of(vec![TypeSignature::Any(2), TypeSignature::Any(3)], Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for Locate {
    fn name(&self) -> &str {
        "locate"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        for (i, t) in args.iter().take(2).enumerate() {
            if !is_text(t) {
                return plan_err!("LOCATE takes a string (argument {}), not {t}", i + 1);
            }
        }
        if let Some(t) = args.get(2)
            && !(t.is_integer() || *t == DataType::Null)
        {
            return plan_err!("LOCATE takes an integer position (argument 3), not {t}");
        }
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let needles = cast(&args.args[0].to_array(rows)?, &DataType::Utf8)?;
        let texts = cast(&args.args[1].to_array(rows)?, &DataType::Utf8)?;
        let froms = match args.args.get(2) {
            Some(f) => Some(cast(&f.to_array(rows)?, &DataType::Int64)?),
            None => None,
        };
        let (needles, texts) = (needles.as_string::<i32>(), texts.as_string::<i32>());
        let froms = froms.as_ref().map(|f| f.as_primitive::<Int64Type>());
        let mut out = Int32Builder::with_capacity(rows);
        for row in 0..rows {
            let from = match froms {
                None => Some(1),
                Some(f) => (!f.is_null(row)).then(|| f.value(row)),
            };
            let (false, false, Some(from)) = (needles.is_null(row), texts.is_null(row), from) else {
                out.append_null();
                continue;
            };
            out.append_value(locate(needles.value(row), texts.value(row), from));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// The 1-based character position of `needle` in `text` from position
/// `from`, or 0.
fn locate(needle: &str, text: &str, from: i64) -> i32 {
    let skip = usize::try_from(from.saturating_sub(1)).unwrap_or(0);
    // The byte offset of the `skip`th character, if the text has it.
    let start = if skip == 0 {
        Some(0)
    } else {
        text.char_indices().map(|(i, _)| i).chain(std::iter::once(text.len())).nth(skip)
    };
    let Some(start) = start else { return 0 };
    match text[start..].find(needle) {
        Some(at) => {
            let chars = skip + text[start..start + at].chars().count() + 1;
            i32::try_from(chars).unwrap_or(i32::MAX)
        }
        None => 0,
    }
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

    /// Flink's docs: "CONCAT('AA', 'BB', 'CC') returns "AABBCC"" and
    /// "Returns NULL if any argument is NULL".
    #[tokio::test]
    async fn concat_is_null_if_any_argument_is() {
        assert_eq!(query("SELECT CONCAT('AA', 'BB', 'CC')").await, ["AABBCC"]);
        assert_eq!(query("SELECT CONCAT('AA', CAST(NULL AS VARCHAR), 'CC')").await, ["NULL"]);
        assert_eq!(
            query("SELECT CONCAT(a, '-', b) FROM (VALUES ('x', 'y'), ('x', NULL), (NULL, 'y')) t(a, b)").await,
            ["x-y", "NULL", "NULL"]
        );
        assert_eq!(query("SELECT CONCAT('n', 1)").await, ["n1"]);
        // CONCAT_WS skips NULLs, as Flink's docs say: concat_ws('~', 'AA',
        // Null(STRING), 'BB', '', 'CC') returns "AA~BB~~CC".
        assert_eq!(query("SELECT CONCAT_WS('~', 'AA', CAST(NULL AS VARCHAR), 'BB', '', 'CC')").await, ["AA~BB~~CC"]);
    }

    /// Flink's docs: "chr(97) returns a, chr(353) returns a".
    #[tokio::test]
    async fn chr_takes_the_code_modulo_256() {
        assert_eq!(query("SELECT CHR(97)").await, ["a"]);
        assert_eq!(query("SELECT CHR(353)").await, ["a"]);
        assert_eq!(query("SELECT CHR(c) FROM (VALUES (65), (-1), (233), (NULL)) t(c)").await, ["A", "", "é", "NULL"]);
        assert_eq!(query("SELECT CHAR_LENGTH(CHR(0))").await, ["1"]);
    }

    /// Flink's docs: "Returns the position of the first occurrence of
    /// string1 in string2 after position integer. Returns 0 if not found.
    /// Returns NULL if any of arguments is NULL."
    #[tokio::test]
    async fn locate_counts_characters_from_1() {
        assert_eq!(query("SELECT LOCATE('lo', 'hello')").await, ["4"]);
        assert_eq!(query("SELECT LOCATE('x', 'hello')").await, ["0"]);
        assert_eq!(query("SELECT LOCATE('l', 'hello', 4)").await, ["4"]);
        assert_eq!(query("SELECT LOCATE('l', 'hello', 5)").await, ["0"]);
        assert_eq!(query("SELECT LOCATE('l', 'hello', 0)").await, ["3"]);
        assert_eq!(query("SELECT LOCATE('b', 'äöb')").await, ["3"]);
        assert_eq!(query("SELECT LOCATE('b', 'äöbb', 4)").await, ["4"]);
        assert_eq!(query("SELECT LOCATE('', 'abc', 2)").await, ["2"]);
        assert_eq!(query("SELECT LOCATE('a', 'abc', 9)").await, ["0"]);
        assert_eq!(query("SELECT LOCATE(CAST(NULL AS VARCHAR), 'abc')").await, ["NULL"]);
        assert_eq!(query("SELECT LOCATE('a', 'abc', CAST(NULL AS INT))").await, ["NULL"]);
        assert_eq!(query("SELECT arrow_typeof(LOCATE('a', 'abc'))").await, ["Int32"]);
    }
}
