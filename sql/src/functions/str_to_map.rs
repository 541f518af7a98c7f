//! Flink's `STR_TO_MAP(text[, pairDelimiter, keyValueDelimiter])`, which
//! DataFusion lacks: `'a=1,b=2'` as the map `{a: 1, b: 2}`, a
//! `MAP<STRING, STRING>` laid out as Weir lays out a declared `MAP` column
//! (`entries` of `key` and `value`), so it can be inserted into one.
//!
//! As Flink's (Java's `String.split`): both delimiters are regular
//! expressions (`,` and `=` by default); trailing empty pairs are dropped;
//! a pair is split at its first key-value delimiter only, and a pair
//! without one is a key whose value is NULL; a key given twice keeps its
//! last value (Weir keeps the keys in the order they first came); an empty
//! text is an empty map.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{MapBuilder, MapFieldNames, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::{DataFusionError, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};
use regex::Regex;

use super::date_format::is_text;
use super::regexp::{Compiled, Texts};

/// `MAP<STRING, STRING>` as Weir declares maps (`types::map_type`).
fn map_of_strings() -> DataType {
    let entries =
        Fields::from(vec![Field::new("key", DataType::Utf8, false), Field::new("value", DataType::Utf8, true)]);
    DataType::Map(Arc::new(Field::new("entries", DataType::Struct(entries), false)), false)
}

/// `STR_TO_MAP(text[, pairDelimiter, keyValueDelimiter])`; NULL when an
/// argument is NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct StrToMap {
    signature: Signature,
}

impl StrToMap {
    pub(super) fn new() -> Self {
        Self { signature: Signature::one_of(vec![TypeSignature::Any(1), TypeSignature::Any(3)], Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for StrToMap {
    fn name(&self) -> &str {
        "str_to_map"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        for (i, t) in args.iter().enumerate() {
            if !is_text(t) {
                return plan_err!("STR_TO_MAP takes a string (argument {}), not {t}", i + 1);
            }
        }
        Ok(map_of_strings())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let texts = Texts::new(&args.args[0])?;
        let pair_delimiters = args.args.get(1).map(Texts::new).transpose()?;
        let kv_delimiters = args.args.get(2).map(Texts::new).transpose()?;
        let mut pair_regexes = Compiled::of_argument("STR_TO_MAP", 2);
        let mut kv_regexes = Compiled::of_argument("STR_TO_MAP", 3);
        let defaults = (regex("STR_TO_MAP", ",")?, regex("STR_TO_MAP", "=")?);
        let names = MapFieldNames { entry: "entries".into(), key: "key".into(), value: "value".into() };
        let mut out = MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new());
        let failed = |e: datafusion::arrow::error::ArrowError| DataFusionError::ArrowError(Box::new(e), None);
        // Reused for every row: the pairs, and each key's index among them.
        let mut pairs: Vec<(&str, Option<&str>)> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut pieces: Vec<&str> = Vec::new();
        for row in 0..rows {
            let Some(text) = texts.get(row) else {
                out.append(false).map_err(failed)?;
                continue;
            };
            let (pair_re, kv_re): (&Regex, &Regex) = match (&pair_delimiters, &kv_delimiters) {
                (Some(p), Some(k)) => match (p.get(row), k.get(row)) {
                    (Some(p), Some(k)) => (pair_regexes.get(p)?, kv_regexes.get(k)?),
                    _ => {
                        out.append(false).map_err(failed)?;
                        continue;
                    }
                },
                _ => (&defaults.0, &defaults.1),
            };
            pairs.clear();
            index.clear();
            if !text.is_empty() {
                java_split(pair_re, text, &mut pieces);
                for pair in &pieces {
                    let (key, value) = match first_split(kv_re, pair) {
                        Some((k, v)) => (k, Some(v)),
                        None => (*pair, None),
                    };
                    match index.get(key) {
                        Some(&i) => pairs[i].1 = value,
                        None => {
                            index.insert(key, pairs.len());
                            pairs.push((key, value));
                        }
                    }
                }
            }
            let (keys, values) = out.entries();
            for (key, value) in &pairs {
                keys.append_value(key);
                values.append_option(*value);
            }
            out.append(true).map_err(failed)?;
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

fn regex(function: &str, pattern: &str) -> Result<Regex> {
    Regex::new(pattern).map_err(|e| DataFusionError::Execution(format!("{function}: {e}")))
}

/// The pieces of `text` between matches of `re`, as Java's `split(regex)`:
/// a zero-width match at the start makes no empty first piece, trailing
/// empty pieces are dropped, and text without a match is one piece.
fn java_split<'t>(re: &Regex, text: &'t str, pieces: &mut Vec<&'t str>) {
    pieces.clear();
    let mut start = 0;
    for m in re.find_iter(text) {
        if m.end() == 0 {
            continue;
        }
        pieces.push(&text[start..m.start()]);
        start = m.end();
    }
    pieces.push(&text[start..]);
    while pieces.last() == Some(&"") {
        pieces.pop();
    }
}

/// `text` split at the first match of `re` (Java's `split(regex, 2)`), if
/// there is one.
fn first_split<'t>(re: &Regex, text: &'t str) -> Option<(&'t str, &'t str)> {
    let m = re.find_iter(text).find(|m| m.end() > 0)?;
    Some((&text[..m.start()], &text[m.end()..]))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{query, query_err};
    use super::{first_split, java_split};

    /// Flink's docs: "Returns a map after splitting the string1 into
    /// key/value pairs using delimiters. string2 is the pair delimiter,
    /// default is ','. And string3 is the key-value delimiter, default is
    /// '='. Both … are treated as regular expressions."
    #[tokio::test]
    async fn as_flinks_docs_say() {
        assert_eq!(query("SELECT STR_TO_MAP('k1=v1,k2=v2')").await, ["{k1: v1, k2: v2}"]);
        assert_eq!(query("SELECT STR_TO_MAP('k1=v1,k2=v2')['k2']").await, ["v2"]);
        assert_eq!(query("SELECT STR_TO_MAP('k1:v1;k2:v2', ';', ':')").await, ["{k1: v1, k2: v2}"]);
        // Regular expressions: '\|' is a literal bar, '\s*=\s*' any spacing.
        assert_eq!(query("SELECT STR_TO_MAP('a = 1|b= 2', '\\|', '\\s*=\\s*')").await, ["{a: 1, b: 2}"]);
        // No value, a repeated key, an empty value, trailing delimiters.
        assert_eq!(query("SELECT STR_TO_MAP('a,b=1,b=2,c=,d=x=y,,')").await, ["{a: NULL, b: 2, c: , d: x=y}"]);
        assert_eq!(query("SELECT STR_TO_MAP('a')['a'] IS NULL").await, ["true"]);
        assert_eq!(query("SELECT CARDINALITY(STR_TO_MAP(''))").await, ["0"]);
        assert_eq!(query("SELECT STR_TO_MAP(CAST(NULL AS VARCHAR))").await, ["NULL"]);
        assert_eq!(
            query("SELECT STR_TO_MAP(s)['x'] FROM (VALUES ('x=1'), ('y=2'), (NULL)) t(s)").await,
            ["1", "NULL", "NULL"]
        );
        let e = query_err("SELECT STR_TO_MAP('a=1', '(', '=')").await;
        assert!(e.contains("STR_TO_MAP") && e.contains("argument 2"), "{e}");
    }

    /// The map is a `MAP<STRING, STRING>` as a Weir table declares one.
    #[test]
    fn the_type_is_a_declared_maps() {
        use datafusion::sql::sqlparser::parser::Parser;
        use datafusion::sql::sqlparser::tokenizer::Tokenizer;

        use crate::dialect::{WeirDialect, nested_types};
        let dialect = WeirDialect::default();
        let mut tokens = Tokenizer::new(&dialect, "MAP<STRING, STRING>").tokenize_with_location().unwrap();
        nested_types(&mut tokens).unwrap();
        let declared = Parser::new(&dialect).with_tokens_with_locations(tokens).parse_data_type().unwrap();
        assert_eq!(crate::types::to_arrow(&declared, None).unwrap(), super::map_of_strings());
    }

    #[test]
    fn splits_as_java_does() {
        let re = |p: &str| regex::Regex::new(p).unwrap();
        let split = |p: &str, t: &str| {
            let mut pieces = Vec::new();
            java_split(&re(p), t, &mut pieces);
            pieces.into_iter().map(String::from).collect::<Vec<_>>()
        };
        assert_eq!(split(",", "a,b,,c,,"), ["a", "b", "", "c"]);
        assert_eq!(split(",", ",a"), ["", "a"]);
        assert_eq!(split(",", "abc"), ["abc"]);
        assert!(split(",", ",,").is_empty());
        assert_eq!(split("", "ab"), ["a", "b"]);
        assert_eq!(first_split(&re("="), "a=b=c"), Some(("a", "b=c")));
        assert_eq!(first_split(&re("="), "a="), Some(("a", "")));
        assert_eq!(first_split(&re("="), "a"), None);
    }
}
