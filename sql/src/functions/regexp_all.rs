//! Flink's `REGEXP_EXTRACT_ALL(text, regex[, group])` and
//! `REGEXP_SUBSTR(text, regex)`, which DataFusion lacks (its
//! `regexp_count` and `regexp_instr` are Flink's `REGEXP_COUNT` and
//! `REGEXP_INSTR` already). The expressions are read as `regexp.rs` reads
//! them; an invalid one is an error naming the function and argument.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, ListBuilder, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Int64Type};
use datafusion::common::plan_err;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};

use super::date_format::is_text;
use super::regexp::{Compiled, Texts};

/// Which function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    /// `REGEXP_EXTRACT_ALL`: the group (default 1) of every match, an
    /// `ARRAY<STRING>` (a group that took no part in a match is NULL);
    /// NULL when an argument is NULL or the group does not exist.
    ExtractAll,
    /// `REGEXP_SUBSTR`: the first match; NULL when none.
    Substr,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct RegexpAll {
    kind: Kind,
    signature: Signature,
}

/// `REGEXP_EXTRACT_ALL` and `REGEXP_SUBSTR`, to register.
pub(super) fn functions() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::from(RegexpAll {
            kind: Kind::ExtractAll,
            signature: Signature::one_of(
                vec![TypeSignature::Any(2), TypeSignature::Any(3)],
                Volatility::Immutable,
            ),
        }),
        ScalarUDF::from(RegexpAll {
            kind: Kind::Substr,
            signature: Signature::any(2, Volatility::Immutable),
        }),
    ]
}

impl RegexpAll {
    fn upper(&self) -> &'static str {
        match self.kind {
            Kind::ExtractAll => "REGEXP_EXTRACT_ALL",
            Kind::Substr => "REGEXP_SUBSTR",
        }
    }
}

impl ScalarUDFImpl for RegexpAll {
    fn name(&self) -> &str {
        match self.kind {
            Kind::ExtractAll => "regexp_extract_all",
            Kind::Substr => "regexp_substr",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        for (i, t) in args.iter().take(2).enumerate() {
            if !is_text(t) {
                return plan_err!("{} takes a string (argument {}), not {t}", self.upper(), i + 1);
            }
        }
        if let Some(t) = args.get(2)
            && !(t.is_integer() || *t == DataType::Null)
        {
            return plan_err!("{} takes an integer group index (argument 3), not {t}", self.upper());
        }
        Ok(match self.kind {
            Kind::ExtractAll => DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
            Kind::Substr => DataType::Utf8,
        })
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
        let mut compiled = Compiled::of_argument(self.upper(), 2);
        if self.kind == Kind::Substr {
            let mut out = StringBuilder::with_capacity(rows, 0);
            for row in 0..rows {
                let (Some(text), Some(pattern)) = (texts.get(row), patterns.get(row)) else {
                    out.append_null();
                    continue;
                };
                out.append_option(compiled.get(pattern)?.find(text).map(|m| m.as_str()));
            }
            return Ok(ColumnarValue::Array(Arc::new(out.finish())));
        }
        let mut out = ListBuilder::new(StringBuilder::new());
        for row in 0..rows {
            let group = match groups {
                None => Some(1),
                Some(g) => (!g.is_null(row)).then(|| g.value(row)),
            };
            let (Some(text), Some(pattern), Some(group)) = (texts.get(row), patterns.get(row), group) else {
                out.append_null();
                continue;
            };
            let re = compiled.get(pattern)?;
            let Some(group) = usize::try_from(group).ok().filter(|g| *g < re.captures_len()) else {
                out.append_null();
                continue;
            };
            for captures in re.captures_iter(text) {
                out.values().append_option(captures.get(group).map(|m| m.as_str()));
            }
            out.append(true);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{query, query_err};

    /// Flink's docs: `REGEXP_EXTRACT_ALL('abc123def456ghi789',
    /// '[a-z]+(\d+)')` is `['123', '456', '789']`; `REGEXP_SUBSTR('Steven
    /// Jones and Stephen Smith are the best players', 'Ste(v|ph)en')` is
    /// `Steven`.
    #[tokio::test]
    async fn as_documented() {
        assert_eq!(
            query(r"SELECT REGEXP_EXTRACT_ALL('abc123def456ghi789', '[a-z]+(\d+)')").await,
            ["[123, 456, 789]"]
        );
        assert_eq!(
            query(r"SELECT REGEXP_EXTRACT_ALL('100-200, 300-400', '(\d+)-(\d+)', 0)").await,
            ["[100-200, 300-400]"]
        );
        assert_eq!(query(r"SELECT REGEXP_EXTRACT_ALL('a', '(\d+)', 2)").await, ["NULL"]);
        assert_eq!(query(r"SELECT REGEXP_EXTRACT_ALL('a', '(\d+)')").await, ["[]"]);
        assert_eq!(
            query("SELECT REGEXP_SUBSTR('Steven Jones and Stephen Smith are the best players', 'Ste(v|ph)en')").await,
            ["Steven"]
        );
        assert_eq!(
            query("SELECT REGEXP_SUBSTR('Mary had a little lamb', 'Ste(v|ph)en')").await,
            ["NULL"]
        );
        let e = query_err("SELECT REGEXP_SUBSTR('a', '(')").await;
        assert!(
            e.contains("REGEXP_SUBSTR: invalid regular expression (argument 2)"),
            "{e}"
        );
    }
}
