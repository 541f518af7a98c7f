//! Flink's regular-expression functions: `REGEXP_EXTRACT(text, regex[,
//! group])` and `REGEXP(text, regex)`, which DataFusion lacks, and
//! `REGEXP_REPLACE(text, regex,
//! replacement)`, whose DataFusion namesake replaces only the first match
//! (PostgreSQL's, without the `'g'` flag) where Flink's replaces all, and
//! reads groups as `\1` where Java's replacement reads `$1`.
//!
//! The expressions are Rust's `regex` (DataFusion's own): Java's syntax for
//! what both have (classes, groups, quantifiers, `(?i)`); Java's
//! look-around and back-references are refused with the compiler's
//! message. A constant expression is compiled once per batch, a column's
//! once per distinct consecutive value.

use std::borrow::Cow;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BooleanBuilder, StringArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{DataFusionError, ScalarValue, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};
use regex::Regex;

use super::date_format::is_text;

/// One string argument: a constant for the batch or a column.
pub(super) enum Texts {
    One(Option<String>),
    Rows(StringArray),
}

impl Texts {
    pub(super) fn new(value: &ColumnarValue) -> Result<Self> {
        Ok(match value {
            ColumnarValue::Scalar(s) if s.is_null() => Texts::One(None),
            ColumnarValue::Scalar(
                ScalarValue::Utf8(Some(v)) | ScalarValue::LargeUtf8(Some(v)) | ScalarValue::Utf8View(Some(v)),
            ) => Texts::One(Some(v.clone())),
            ColumnarValue::Scalar(other) => {
                Texts::Rows(cast(&other.to_array()?, &DataType::Utf8)?.as_string::<i32>().clone())
            }
            ColumnarValue::Array(a) => Texts::Rows(cast(a, &DataType::Utf8)?.as_string::<i32>().clone()),
        })
    }

    pub(super) fn get(&self, row: usize) -> Option<&str> {
        match self {
            Texts::One(v) => v.as_deref(),
            Texts::Rows(a) => (!a.is_null(row)).then(|| a.value(row)),
        }
    }
}

/// Compiles each row's expression, reusing the last one while the text
/// repeats (a constant compiles once).
pub(super) struct Compiled {
    function: &'static str,
    argument: usize,
    last: Option<(String, Regex)>,
}

impl Compiled {
    /// For argument 2 of `function`.
    fn new(function: &'static str) -> Self {
        Self::of_argument(function, 2)
    }

    /// For argument number `argument` of `function` (for messages).
    pub(super) fn of_argument(function: &'static str, argument: usize) -> Self {
        Self {
            function,
            argument,
            last: None,
        }
    }

    pub(super) fn get(&mut self, pattern: &str) -> Result<&Regex> {
        if self.last.as_ref().is_none_or(|(p, _)| p != pattern) {
            let re = Regex::new(pattern).map_err(|e| {
                DataFusionError::Execution(format!(
                    "{}: invalid regular expression (argument {}) '{pattern}': {e}",
                    self.function, self.argument
                ))
            })?;
            self.last = Some((pattern.to_string(), re));
        }
        match &self.last {
            Some((_, re)) => Ok(re),
            None => exec_err!("{}: no regular expression", self.function),
        }
    }
}

/// `REGEXP_EXTRACT(text, regex[, group])`: the group (default 0, the
/// whole match, as Flink's two-argument `regexpExtract`; 1 the first group) of the first match; NULL when an argument is NULL, nothing
/// matches, the group does not exist or took no part in the match.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct RegexpExtract {
    signature: Signature,
}

impl RegexpExtract {
    pub(super) fn new() -> Self {
        Self {
            signature: Signature::one_of(
                vec![TypeSignature::Any(2), TypeSignature::Any(3)],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for RegexpExtract {
    fn name(&self) -> &str {
        "regexp_extract"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        for (i, t) in args.iter().take(2).enumerate() {
            if !is_text(t) {
                return plan_err!("REGEXP_EXTRACT takes a string (argument {}), not {t}", i + 1);
            }
        }
        if let Some(t) = args.get(2)
            && !(t.is_integer() || *t == DataType::Null)
        {
            return plan_err!("REGEXP_EXTRACT takes an integer group index (argument 3), not {t}");
        }
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let texts = Texts::new(&args.args[0])?;
        let patterns = Texts::new(&args.args[1])?;
        let groups = match args.args.get(2) {
            Some(g) => Some(cast(&g.to_array(rows)?, &DataType::Int64)?),
            None => None,
        };
        let groups = groups.as_ref().map(|g| g.as_primitive::<Int64Type>());
        let mut compiled = Compiled::new("REGEXP_EXTRACT");
        let mut out = StringBuilder::with_capacity(rows, 0);
        for row in 0..rows {
            let group = match groups {
                None => Some(0),
                Some(g) => (!g.is_null(row)).then(|| g.value(row)),
            };
            let (Some(text), Some(pattern), Some(group)) = (texts.get(row), patterns.get(row), group) else {
                out.append_null();
                continue;
            };
            let re = compiled.get(pattern)?;
            let found = usize::try_from(group)
                .ok()
                .and_then(|g| re.captures(text).and_then(|c| c.get(g)))
                .map(|m| m.as_str());
            out.append_option(found);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// `REGEXP_REPLACE(text, regex, replacement)`: every match replaced, the
/// replacement read as Java reads one (`$n` a group, `\x` the character x);
/// NULL when an argument is NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct RegexpReplace {
    signature: Signature,
}

impl RegexpReplace {
    pub(super) fn new() -> Self {
        Self {
            signature: Signature::any(3, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for RegexpReplace {
    fn name(&self) -> &str {
        "regexp_replace"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        for (i, t) in args.iter().enumerate() {
            if !is_text(t) {
                return plan_err!("REGEXP_REPLACE takes a string (argument {}), not {t}", i + 1);
            }
        }
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let texts = Texts::new(&args.args[0])?;
        let patterns = Texts::new(&args.args[1])?;
        let replacements = Texts::new(&args.args[2])?;
        let mut compiled = Compiled::new("REGEXP_REPLACE");
        // The last replacement translated, with its source and the
        // expression's group count it was read against.
        let mut translated: Option<(String, usize, String)> = None;
        let mut out = StringBuilder::with_capacity(rows, 0);
        for row in 0..rows {
            let (Some(text), Some(pattern), Some(replacement)) =
                (texts.get(row), patterns.get(row), replacements.get(row))
            else {
                out.append_null();
                continue;
            };
            let re = compiled.get(pattern)?;
            let groups = re.captures_len() - 1;
            if translated
                .as_ref()
                .is_none_or(|(r, g, _)| r != replacement || *g != groups)
            {
                translated = Some((replacement.to_string(), groups, java_replacement(replacement, groups)?));
            }
            let Some((_, _, rust)) = &translated else {
                return exec_err!("REGEXP_REPLACE: no replacement");
            };
            let replaced: Cow<str> = re.replace_all(text, rust.as_str());
            out.append_value(replaced);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// `REGEXP(text, regex)`: whether any part of the text (possibly empty)
/// matches; NULL when either is NULL. An empty expression is FALSE, as in
/// Flink.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct Regexp {
    signature: Signature,
}

impl Regexp {
    pub(super) fn new() -> Self {
        Self {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for Regexp {
    fn name(&self) -> &str {
        "regexp"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        for (i, t) in args.iter().enumerate() {
            if !is_text(t) {
                return plan_err!("REGEXP takes a string (argument {}), not {t}", i + 1);
            }
        }
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let texts = Texts::new(&args.args[0])?;
        let patterns = Texts::new(&args.args[1])?;
        let mut compiled = Compiled::new("REGEXP");
        let mut out = BooleanBuilder::with_capacity(rows);
        for row in 0..rows {
            match (texts.get(row), patterns.get(row)) {
                (Some(_), Some("")) => out.append_value(false),
                (Some(text), Some(pattern)) => out.append_value(compiled.get(pattern)?.is_match(text)),
                _ => out.append_null(),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// A Java replacement string as the `regex` crate's: `$n` takes as many
/// digits as name a group of the expression (`groups` of them), `${name}`
/// a named group, `\c` the character `c`; a literal `$` is `$$`.
fn java_replacement(java: &str, groups: usize) -> Result<String> {
    let bad = |why: &str| {
        DataFusionError::Execution(format!(
            "REGEXP_REPLACE: invalid replacement (argument 3) '{java}': {why}"
        ))
    };
    let mut out = String::with_capacity(java.len() + 4);
    let mut chars = java.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(escaped) => out.push(escaped),
                None => return Err(bad("it ends with a lone backslash")),
            },
            '$' => match chars.peek().copied() {
                Some('{') => {
                    chars.next();
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(n) if n.is_ascii_alphanumeric() => name.push(n),
                            _ => return Err(bad("a group name must be letters and digits closed by '}'")),
                        }
                    }
                    out.push_str(&format!("${{{name}}}"));
                }
                Some(d) if d.is_ascii_digit() => {
                    chars.next();
                    let mut group = d.to_digit(10).unwrap_or(0) as usize;
                    if group > groups {
                        return Err(bad(&format!("there is no group {group}")));
                    }
                    // Java takes a further digit while it names a group.
                    while let Some(next) = chars.peek().and_then(|n| n.to_digit(10)) {
                        let longer = group * 10 + next as usize;
                        if longer > groups {
                            break;
                        }
                        group = longer;
                        chars.next();
                    }
                    out.push_str(&format!("${{{group}}}"));
                }
                _ => {
                    return Err(bad(
                        "'$' must be followed by a group number or {name}; write \\$ for a dollar",
                    ));
                }
            },
            other => out.push(other),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{query, query_err};
    use super::java_replacement;

    /// Flink's docs (docs/data/sql_functions.yml): "REGEXP_EXTRACT('foothebar',
    /// 'foo(.*?)(bar)', 2) returns "bar"".
    #[tokio::test]
    async fn extract_as_flinks_docs_say() {
        assert_eq!(
            query("SELECT REGEXP_EXTRACT('foothebar', 'foo(.*?)(bar)', 2)").await,
            ["bar"]
        );
        // Without a group, the whole match (Flink's SqlFunctionUtils
        // regexpExtract(str, regex) is regexpExtract(str, regex, 0)).
        assert_eq!(
            query("SELECT REGEXP_EXTRACT('foothebar', 'foo(.*?)(bar)')").await,
            ["foothebar"]
        );
        assert_eq!(
            query("SELECT REGEXP_EXTRACT('Mozilla/5.0', '[^/]+')").await,
            ["Mozilla"]
        );
        assert_eq!(
            query("SELECT REGEXP_EXTRACT('foothebar', 'foo(.*?)(bar)', 0)").await,
            ["foothebar"]
        );
        // No match, a group beyond the expression's, a NULL: NULL.
        assert_eq!(query("SELECT REGEXP_EXTRACT('foothebar', 'x(y)')").await, ["NULL"]);
        assert_eq!(
            query("SELECT REGEXP_EXTRACT('foothebar', 'foo(.*?)(bar)', 3)").await,
            ["NULL"]
        );
        assert_eq!(
            query("SELECT REGEXP_EXTRACT('foothebar', 'foo(.*?)(bar)', -1)").await,
            ["NULL"]
        );
        assert_eq!(
            query("SELECT REGEXP_EXTRACT(CAST(NULL AS VARCHAR), 'a')").await,
            ["NULL"]
        );
        assert_eq!(
            query("SELECT REGEXP_EXTRACT(s, '(\\d+)') FROM (VALUES ('a12b'), ('none'), (NULL), ('7')) t(s)").await,
            ["12", "NULL", "NULL", "7"]
        );
    }

    /// Flink's docs: "'foobar'.regexpReplace('oo|ar', '') returns "fb"": every
    /// match, where DataFusion's replaced the first.
    #[tokio::test]
    async fn replace_replaces_every_match() {
        assert_eq!(query("SELECT REGEXP_REPLACE('foobar', 'oo|ar', '')").await, ["fb"]);
        assert_eq!(
            query("SELECT REGEXP_REPLACE('2026-01-02', '(\\d+)-(\\d+)-(\\d+)', '$3.$2.$1')").await,
            ["02.01.2026"]
        );
        assert_eq!(query("SELECT REGEXP_REPLACE('a.b', '\\.', '\\$')").await, ["a$b"]);
        assert_eq!(
            query("SELECT REGEXP_REPLACE(CAST(NULL AS VARCHAR), 'a', 'b')").await,
            ["NULL"]
        );
    }

    #[tokio::test]
    async fn bad_expressions_are_errors_naming_the_argument() {
        let e = query_err("SELECT REGEXP_EXTRACT('abc', '(a')").await;
        assert!(
            e.contains("REGEXP_EXTRACT") && e.contains("argument 2") && e.contains("'(a'"),
            "{e}"
        );
        let e = query_err("SELECT REGEXP_REPLACE('abc', 'a', '$2')").await;
        assert!(
            e.contains("REGEXP_REPLACE") && e.contains("argument 3") && e.contains("no group 2"),
            "{e}"
        );
        let e = query_err("SELECT REGEXP_EXTRACT(1, 'a')").await;
        assert!(e.contains("REGEXP_EXTRACT") && e.contains("argument 1"), "{e}");
    }

    #[test]
    fn java_replacements() {
        assert_eq!(java_replacement("$1-$2", 2).unwrap(), "${1}-${2}");
        // `$12` with two groups is group 1 then "2", as Java reads it.
        assert_eq!(java_replacement("$12", 2).unwrap(), "${1}2");
        assert_eq!(java_replacement("$12", 12).unwrap(), "${12}");
        assert_eq!(java_replacement("\\$\\\\${name}", 0).unwrap(), "$$\\${name}");
        assert!(java_replacement("$", 1).is_err());
        assert!(java_replacement("a\\", 1).is_err());
    }

    /// Flink's docs: REGEXP "Returns TRUE if any (possibly empty) substring
    /// of string1 matches the Java regular expression string2, otherwise
    /// FALSE. Returns NULL if any of arguments is NULL."
    #[tokio::test]
    async fn regexp_finds_a_match_anywhere() {
        assert_eq!(
            query("SELECT REGEXP(s, '[0-9]+') FROM (VALUES ('abc123'), ('abc'), (NULL)) t(s)").await,
            ["true", "false", "NULL"]
        );
        assert_eq!(query("SELECT REGEXP('abc', '^b')").await, ["false"]);
        assert_eq!(query("SELECT REGEXP('abc', 'x*')").await, ["true"]);
        assert_eq!(query("SELECT REGEXP('abc', '')").await, ["false"]);
        assert_eq!(query("SELECT REGEXP('abc', CAST(NULL AS VARCHAR))").await, ["NULL"]);
        let e = query_err("SELECT REGEXP('abc', '(')").await;
        assert!(e.contains("REGEXP") && e.contains("argument 2"), "{e}");
    }
}
