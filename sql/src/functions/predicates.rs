//! Flink's `IS_ALPHA(value)`, `IS_DECIMAL(value)` and `IS_DIGIT(value)`,
//! which DataFusion lacks: whether a string is all letters, a number, all
//! digits. Each is a BOOLEAN that is never NULL: a NULL or empty string is
//! FALSE, as in Flink. A number is a decimal (and an integer all digits);
//! any other type is FALSE.
//!
//! Letters are Unicode letters (`char::is_alphabetic`, Java's
//! `Character.isLetter`), digits Unicode numerals (`char::is_numeric`,
//! which, unlike Java's `Character.isDigit`, also counts `²` and `½`).

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BooleanArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

use super::date_format::is_text;

/// Which test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Test {
    Alpha,
    Decimal,
    Digit,
}

/// `IS_ALPHA`, `IS_DECIMAL` and `IS_DIGIT`, to register.
pub(super) fn functions() -> Vec<ScalarUDF> {
    [("is_alpha", Test::Alpha), ("is_decimal", Test::Decimal), ("is_digit", Test::Digit)]
        .into_iter()
        .map(|(name, test)| ScalarUDF::from(Is { name, test, signature: Signature::any(1, Volatility::Immutable) }))
        .collect()
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Is {
    name: &'static str,
    test: Test,
    signature: Signature,
}

impl ScalarUDFImpl for Is {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let values = args.args[0].to_array(args.number_rows)?;
        let t = values.data_type();
        let out: BooleanArray = if is_text(t) && *t != DataType::Null {
            let texts = cast(&values, &DataType::Utf8)?;
            let test = match self.test {
                Test::Alpha => is_alpha,
                Test::Decimal => is_decimal,
                Test::Digit => is_digits,
            };
            texts.as_string::<i32>().iter().map(|s| Some(s.is_some_and(test))).collect()
        } else {
            // A number: a decimal, and all digits if it is an integer.
            let number = match self.test {
                Test::Alpha => false,
                Test::Decimal => t.is_numeric(),
                Test::Digit => t.is_integer(),
            };
            (0..values.len()).map(|row| Some(number && values.is_valid(row))).collect()
        };
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

fn is_alpha(s: &str) -> bool {
    !s.is_empty() && s.chars().all(char::is_alphabetic)
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.chars().all(char::is_numeric)
}

/// Whether Java reads `s` as an int, a long or a double: digits with an
/// optional sign, or Java's floating-point literal (`Double.parseDouble`:
/// surrounding whitespace, a sign, `NaN`, `Infinity`, a fraction, an
/// exponent, an `f`/`d` suffix, hexadecimal with a `p` exponent).
fn is_decimal(s: &str) -> bool {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    if is_digits(unsigned) {
        return true;
    }
    // Double.parseDouble trims characters up to the space.
    let s = s.trim_matches(|c: char| c <= ' ');
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    if s == "NaN" || s == "Infinity" {
        return true;
    }
    let s = s.strip_suffix(['f', 'F', 'd', 'D']).unwrap_or(s);
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        // Hex digits, an optional fraction, and a binary exponent.
        let Some((mantissa, exponent)) = hex.split_once(['p', 'P']) else { return false };
        return mantissa_ok(mantissa, |c| c.is_ascii_hexdigit()) && exponent_ok(exponent);
    }
    let (mantissa, exponent) = match s.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (s, None),
    };
    mantissa_ok(mantissa, |c| c.is_ascii_digit()) && exponent.is_none_or(exponent_ok)
}

/// Digits, with at most one `.`, and at least one digit.
fn mantissa_ok(m: &str, digit: impl Fn(char) -> bool) -> bool {
    let (int, frac) = m.split_once('.').unwrap_or((m, ""));
    !(int.is_empty() && frac.is_empty()) && int.chars().all(&digit) && frac.chars().all(&digit)
}

/// An exponent: an optional sign and decimal digits.
fn exponent_ok(e: &str) -> bool {
    let e = e.strip_prefix(['+', '-']).unwrap_or(e);
    !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::super::testing::query;
    use super::is_decimal;

    /// Flink's docs: IS_ALPHA "Returns true if all characters in string are
    /// letter, otherwise false"; IS_DIGIT "… are digit"; IS_DECIMAL "true if
    /// string can be parsed to a valid numeric".
    #[tokio::test]
    async fn as_flinks_docs_say() {
        let sql = |f: &str| {
            format!(
                "SELECT {f}(s) FROM (VALUES ('abc'), ('Ünï'), ('ab1'), ('123'), ('-12'), ('1.5e3'), (''), (' 1'), (NULL)) t(s)"
            )
        };
        let alpha = ["true", "true", "false", "false", "false", "false", "false", "false", "false"];
        assert_eq!(query(&sql("IS_ALPHA")).await, alpha);
        let digit = ["false", "false", "false", "true", "false", "false", "false", "false", "false"];
        assert_eq!(query(&sql("IS_DIGIT")).await, digit);
        // Java's Double.parseDouble trims the space of ' 1'.
        let decimal = ["false", "false", "false", "true", "true", "true", "false", "true", "false"];
        assert_eq!(query(&sql("IS_DECIMAL")).await, decimal);
        // Numbers: decimals; integers also digits.
        assert_eq!(
            query("SELECT CONCAT_WS(',', IS_DECIMAL(1.5), IS_DIGIT(7), IS_DIGIT(1.5), IS_ALPHA(7))").await,
            ["true,true,false,false"]
        );
        assert_eq!(query("SELECT IS_DIGIT(CAST(NULL AS INT))").await, ["false"]);
    }

    #[test]
    fn decimals_are_javas() {
        for yes in ["0", "+7", "-7", "1.", ".5", "1e10", "1E-3", "2.5d", "3f", "NaN", "-Infinity", "0x1p3", "0x.8P-1"] {
            assert!(is_decimal(yes), "{yes}");
        }
        for no in ["", ".", "e5", "1e", "1.2.3", "0x1", "abc", "1_000", "inf", "1e5x"] {
            assert!(!is_decimal(no), "{no}");
        }
    }
}
