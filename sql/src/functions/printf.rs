//! Flink's `PRINTF(format, value, …)`, which DataFusion lacks: Java's
//! `String.format(Locale.US, format, values)`, a NULL value printed as
//! `null`, NULL for a NULL format. Weir reads the specifiers Java's
//! `Formatter` documents for these types: `%[index$][flags][width]
//! [.precision]conversion` with `s`/`S`, `b`/`B`, `c`, `d`, `x`/`X`, `o`,
//! `f`, `e`/`E`, `%` and `n`, and the flags `-`, `0`, `+`, space, `,`, `(`
//! and `#`. Numbers round half up from their shortest decimal form, as
//! Java's do. A specifier Java refuses for the value (`%d` of a DOUBLE,
//! `%f` of an INT), a missing value or an unknown conversion is an error
//! naming the function, as Flink's job fails.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, ScalarValue, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};

use super::date_format::is_text;
use super::regexp::Texts;

/// `PRINTF(format, …)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct Printf {
    signature: Signature,
}

impl Printf {
    pub(super) fn new() -> Self {
        Self {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

/// One value as `Formatter` sees it.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Null,
    /// An integer and its type's width in bits (for `%x` of a negative).
    Int(i64, u32),
    Float(f64),
    /// A DECIMAL as its text.
    Decimal(String),
    Bool(bool),
    Text(String),
}

impl Value {
    fn of(s: ScalarValue) -> Value {
        if s.is_null() {
            return Value::Null;
        }
        match s {
            ScalarValue::Int8(Some(v)) => Value::Int(v.into(), 8),
            ScalarValue::Int16(Some(v)) => Value::Int(v.into(), 16),
            ScalarValue::Int32(Some(v)) => Value::Int(v.into(), 32),
            ScalarValue::Int64(Some(v)) => Value::Int(v, 64),
            ScalarValue::UInt8(Some(v)) => Value::Int(v.into(), 16),
            ScalarValue::UInt16(Some(v)) => Value::Int(v.into(), 32),
            ScalarValue::UInt32(Some(v)) => Value::Int(v.into(), 64),
            ScalarValue::Float32(Some(v)) => Value::Float(v.into()),
            ScalarValue::Float64(Some(v)) => Value::Float(v),
            ScalarValue::Boolean(Some(b)) => Value::Bool(b),
            ScalarValue::Utf8(Some(t)) | ScalarValue::LargeUtf8(Some(t)) | ScalarValue::Utf8View(Some(t)) => {
                Value::Text(t)
            }
            d @ (ScalarValue::Decimal128(..) | ScalarValue::Decimal256(..)) => Value::Decimal(d.to_string()),
            other => Value::Text(other.to_string()),
        }
    }

    /// Java's `String.valueOf`.
    fn text(&self) -> String {
        match self {
            Value::Null => "null".into(),
            Value::Int(v, _) => v.to_string(),
            Value::Float(f) => java_double(*f),
            Value::Decimal(d) => d.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Text(t) => t.clone(),
        }
    }
}

/// Java's `Double.toString`: the shortest decimal, with `.0` for whole
/// numbers and `E` notation outside `[1e-3, 1e7)`.
fn java_double(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    let a = f.abs();
    if a == 0.0 || (1e-3..1e7).contains(&a) {
        let s = f.to_string();
        return if s.contains('.') { s } else { format!("{s}.0") };
    }
    let s = format!("{f:e}");
    let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
    let mantissa = if mantissa.contains('.') {
        mantissa.to_string()
    } else {
        format!("{mantissa}.0")
    };
    format!("{mantissa}E{exponent}")
}

/// The digits and decimal exponent of a non-negative decimal text
/// (`"12.5"` is `("125", 2)`: the point after two digits).
fn decimal_digits(text: &str) -> (Vec<u8>, i32) {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let mut digits: Vec<u8> = int.bytes().chain(frac.bytes()).map(|b| b - b'0').collect();
    let mut point = int.len() as i32;
    while digits.len() > 1 && digits[0] == 0 {
        digits.remove(0);
        point -= 1;
    }
    (digits, point)
}

/// The shortest decimal digits of a finite float or a DECIMAL's text, as
/// (negative, digits, point).
fn digits_of(value: &Value) -> Option<(bool, Vec<u8>, i32)> {
    let text = match value {
        Value::Float(f) if f.is_finite() => {
            let s = format!("{:e}", f.abs());
            let (m, e) = s.split_once('e')?;
            let (digits, point) = decimal_digits(m);
            return Some((
                f.is_sign_negative() && *f != 0.0,
                digits,
                point + e.parse::<i32>().ok()?,
            ));
        }
        Value::Decimal(d) => d.clone(),
        _ => return None,
    };
    let negative = text.starts_with('-');
    let (digits, point) = decimal_digits(text.trim_start_matches('-'));
    Some((negative, digits, point))
}

/// `digits` (the point after `point` of them) rounded half up to keep
/// `keep` digits in all (`keep` may be 0 or less: all rounded away).
fn round_half_up(mut digits: Vec<u8>, mut point: i32, keep: i32) -> (Vec<u8>, i32) {
    if keep < 0 {
        return (vec![0], point);
    }
    let keep = keep as usize;
    if digits.len() <= keep {
        digits.resize(keep.max(1), 0);
        return (digits, point);
    }
    let up = digits[keep] >= 5;
    digits.truncate(keep);
    if up {
        let mut i = keep;
        loop {
            if i == 0 {
                digits.insert(0, 1);
                point += 1;
                break;
            }
            i -= 1;
            if digits[i] == 9 {
                digits[i] = 0;
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    if digits.is_empty() {
        digits.push(0);
    }
    (digits, point)
}

/// `%f`: the digits with `precision` places.
fn fixed(digits: Vec<u8>, point: i32, precision: usize) -> String {
    let (digits, point) = round_half_up(digits, point, point + precision as i32);
    let text: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
    let (int, frac) = if point <= 0 {
        ("0".to_string(), format!("{}{text}", "0".repeat((-point) as usize)))
    } else if point as usize >= text.len() {
        (
            format!("{text}{}", "0".repeat(point as usize - text.len())),
            String::new(),
        )
    } else {
        (text[..point as usize].to_string(), text[point as usize..].to_string())
    };
    let mut frac: String = frac.chars().chain(std::iter::repeat('0')).take(precision).collect();
    if precision == 0 {
        frac.clear();
    }
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    if precision == 0 {
        int.to_string()
    } else {
        format!("{int}.{frac}")
    }
}

/// `%e`: one digit, `precision` places, `e+XX`.
fn scientific(digits: Vec<u8>, point: i32, precision: usize) -> String {
    let zero = digits.iter().all(|d| *d == 0);
    let (digits, point) = round_half_up(digits, point, 1 + precision as i32);
    let exponent = if zero { 0 } else { point - 1 };
    let text: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
    let mantissa = if precision == 0 {
        text[..1].to_string()
    } else {
        format!("{}.{}", &text[..1], &text[1..])
    };
    format!(
        "{mantissa}e{}{:02}",
        if exponent < 0 { '-' } else { '+' },
        exponent.abs()
    )
}

/// Digits grouped by three with commas.
fn grouped(int: &str) -> String {
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One specifier.
struct Spec {
    flags: String,
    width: Option<usize>,
    precision: Option<usize>,
    conversion: char,
}

impl Spec {
    /// `body` padded to the width (zeros after the sign with `0`).
    fn pad(&self, body: String, numeric_sign_len: Option<usize>) -> String {
        let len = body.chars().count();
        let Some(width) = self.width.filter(|w| *w > len) else {
            return body;
        };
        let fill = width - len;
        if self.flags.contains('-') {
            format!("{body}{}", " ".repeat(fill))
        } else if let (true, Some(sign)) = (self.flags.contains('0'), numeric_sign_len) {
            format!("{}{}{}", &body[..sign], "0".repeat(fill), &body[sign..])
        } else {
            format!("{}{body}", " ".repeat(fill))
        }
    }

    /// A number's sign, grouping and parentheses around its digits.
    fn signed(&self, negative: bool, digits: String) -> (String, usize) {
        let (int, rest) = match digits.split_once('.') {
            Some((i, r)) => (i.to_string(), format!(".{r}")),
            None => (digits, String::new()),
        };
        let int = if self.flags.contains(',') { grouped(&int) } else { int };
        let body = format!("{int}{rest}");
        if negative && self.flags.contains('(') {
            (format!("({body})"), 1)
        } else if negative {
            (format!("-{body}"), 1)
        } else if self.flags.contains('+') {
            (format!("+{body}"), 1)
        } else if self.flags.contains(' ') {
            (format!(" {body}"), 1)
        } else {
            (body, 0)
        }
    }

    fn apply(&self, value: &Value) -> Result<String, String> {
        let mismatch = || format!("%{} cannot format {}", self.conversion, value.text());
        let text = match (self.conversion, value) {
            ('s' | 'S', v) => {
                let t = v.text();
                match self.precision {
                    Some(p) => t.chars().take(p).collect(),
                    None => t,
                }
            }
            ('b' | 'B', v) => match v {
                Value::Null => "false".into(),
                Value::Bool(b) => b.to_string(),
                _ => "true".into(),
            },
            ('c', Value::Null) => "null".into(),
            ('c', Value::Int(v, _)) => u32::try_from(*v)
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(mismatch)?
                .to_string(),
            ('c', Value::Text(t)) if t.chars().count() == 1 => t.clone(),
            ('d' | 'x' | 'X' | 'o' | 'f' | 'e' | 'E', Value::Null) => "null".into(),
            ('d', Value::Int(v, _)) => {
                let (body, sign) = self.signed(*v < 0, v.unsigned_abs().to_string());
                return Ok(self.pad(body, Some(sign)));
            }
            ('x' | 'X' | 'o', Value::Int(v, bits)) => {
                let mask = if *bits >= 64 { u64::MAX } else { (1u64 << bits) - 1 };
                let u = (*v as u64) & mask;
                let (digits, prefix) = if self.conversion == 'o' {
                    (format!("{u:o}"), "0")
                } else {
                    (format!("{u:x}"), "0x")
                };
                let body = if self.flags.contains('#') {
                    format!("{prefix}{digits}")
                } else {
                    digits
                };
                let body = if self.conversion == 'X' {
                    body.to_uppercase()
                } else {
                    body
                };
                let sign = if self.flags.contains('#') { prefix.len() } else { 0 };
                return Ok(self.pad(body, Some(sign)));
            }
            ('f' | 'e' | 'E', Value::Float(f)) if !f.is_finite() => {
                let t = java_double(*f);
                if *f > 0.0 && self.flags.contains('+') {
                    format!("+{t}")
                } else {
                    t
                }
            }
            ('f' | 'e' | 'E', v @ (Value::Float(_) | Value::Decimal(_))) => {
                let (negative, digits, point) = digits_of(v).ok_or_else(mismatch)?;
                let precision = self.precision.unwrap_or(6);
                let number = if self.conversion == 'f' {
                    fixed(digits, point, precision)
                } else {
                    scientific(digits, point, precision)
                };
                let (body, sign) = self.signed(negative, number);
                let body = if self.conversion == 'E' {
                    body.to_uppercase()
                } else {
                    body
                };
                return Ok(self.pad(body, Some(sign)));
            }
            _ => return Err(mismatch()),
        };
        let text = if self.conversion.is_ascii_uppercase() {
            text.to_uppercase()
        } else {
            text
        };
        Ok(self.pad(text, None))
    }
}

/// Java's `String.format(Locale.US, format, values)` for these values.
fn format(format: &str, values: &[Value]) -> Result<String, String> {
    let mut out = String::with_capacity(format.len());
    let mut chars = format.chars().peekable();
    let mut next = 0usize;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut number = String::new();
        while let Some(d) = chars.next_if(|c| c.is_ascii_digit()) {
            number.push(d);
        }
        let mut index = None;
        let mut flags = String::new();
        if !number.is_empty() && chars.next_if_eq(&'$').is_some() {
            index = Some(
                number
                    .parse::<usize>()
                    .map_err(|_| format!("bad index in '{format}'"))?,
            );
            number.clear();
        }
        if number.is_empty() {
            while let Some(f) = chars.next_if(|c| "-#+ 0,(".contains(*c)) {
                flags.push(f);
            }
            while let Some(d) = chars.next_if(|c| c.is_ascii_digit()) {
                number.push(d);
            }
        } else if let Some(zero) = number.strip_prefix('0') {
            // `%05d`: the `0` flag, then the width.
            flags.push('0');
            number = zero.to_string();
        }
        let width = (!number.is_empty())
            .then(|| number.parse::<usize>())
            .transpose()
            .map_err(|e| e.to_string())?;
        let mut precision = None;
        if chars.next_if_eq(&'.').is_some() {
            let mut p = String::new();
            while let Some(d) = chars.next_if(|c| c.is_ascii_digit()) {
                p.push(d);
            }
            precision = Some(
                p.parse::<usize>()
                    .map_err(|_| format!("a '.' without a precision in '{format}'"))?,
            );
        }
        let conversion = chars.next().ok_or_else(|| format!("'{format}' ends in a specifier"))?;
        let spec = Spec {
            flags,
            width,
            precision,
            conversion,
        };
        match conversion {
            '%' => out.push_str(&spec.pad("%".into(), None)),
            'n' => out.push('\n'),
            's' | 'S' | 'b' | 'B' | 'c' | 'd' | 'x' | 'X' | 'o' | 'f' | 'e' | 'E' => {
                let at = match index {
                    Some(i) => i.checked_sub(1).ok_or_else(|| "index 0$ names no value".to_string())?,
                    None => {
                        next += 1;
                        next - 1
                    }
                };
                let value = values
                    .get(at)
                    .ok_or_else(|| format!("no value for %{conversion} (value {})", at + 1))?;
                out.push_str(&spec.apply(value)?);
            }
            other => return Err(format!("unknown conversion %{other}")),
        }
    }
    Ok(out)
}

impl ScalarUDFImpl for Printf {
    fn name(&self) -> &str {
        "printf"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args.first() {
            Some(t) if is_text(t) => Ok(DataType::Utf8),
            Some(t) => plan_err!("PRINTF takes a string format (argument 1), not {t}"),
            None => plan_err!("PRINTF takes a format"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let formats = Texts::new(&args.args[0])?;
        let values: Vec<ArrayRef> = args.args[1..].iter().map(|a| a.to_array(rows)).collect::<Result<_>>()?;
        let mut out = StringBuilder::with_capacity(rows, 0);
        for row in 0..rows {
            let Some(f) = formats.get(row) else {
                out.append_null();
                continue;
            };
            let row_values: Vec<Value> = values
                .iter()
                .map(|a| Ok(Value::of(ScalarValue::try_from_array(a.as_ref(), row)?)))
                .collect::<Result<_>>()?;
            let text = format(f, &row_values).map_err(|e| DataFusionError::Execution(format!("PRINTF: {e}")))?;
            out.append_value(text);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{query, query_err};
    use super::{Value, format};

    fn f(fmt: &str, values: &[Value]) -> String {
        format(fmt, values).unwrap_or_else(|e| format!("error: {e}"))
    }

    /// What the JVM's `String.format(Locale.US, …)` prints for these.
    #[test]
    fn as_javas_formatter() {
        use Value::*;
        assert_eq!(f("%s-%d", &[Text("a".into()), Int(42, 32)]), "a-42");
        assert_eq!(
            f(
                "%5s|%-5s|%.2s",
                &[Text("ab".into()), Text("cd".into()), Text("xyz".into())]
            ),
            "   ab|cd   |xy"
        );
        assert_eq!(
            f(
                "%05d %+d %,d %(d",
                &[Int(42, 32), Int(7, 32), Int(1234567, 64), Int(-5, 32)]
            ),
            "00042 +7 1,234,567 (5)"
        );
        assert_eq!(
            f("%x %X %o %#x", &[Int(255, 32), Int(-1, 32), Int(8, 32), Int(255, 64)]),
            "ff FFFFFFFF 10 0xff"
        );
        assert_eq!(
            f(
                "%.2f %f %.1f %.0f",
                &[Float(1.005), Float(3.14159), Float(0.25), Float(2.5)]
            ),
            "1.01 3.141590 0.3 3"
        );
        assert_eq!(
            f("%e %.2E", &[Float(12345.678), Float(0.000123)]),
            "1.234568e+04 1.23E-04"
        );
        assert_eq!(
            f("%s %s %s", &[Float(1.0), Float(1e7), Float(0.0001)]),
            "1.0 1.0E7 1.0E-4"
        );
        assert_eq!(f("%b %b %B", &[Null, Int(0, 32), Bool(false)]), "false true FALSE");
        assert_eq!(f("%s %d %% %n", &[Null, Null]), "null null % \n");
        assert_eq!(f("%2$s %1$s %s", &[Text("a".into()), Text("b".into())]), "b a a");
        assert_eq!(
            f("%8.3f|%-8.1f|", &[Decimal("-3.14159".into()), Float(2.25)]),
            "  -3.142|2.3     |"
        );
        assert_eq!(f("%c%c", &[Int(65, 32), Text("b".into())]), "Ab");
        assert_eq!(f("%d", &[Float(1.5)]), "error: %d cannot format 1.5");
        assert_eq!(f("%f", &[Int(1, 32)]), "error: %f cannot format 1");
        assert_eq!(f("%s %s", &[Int(1, 32)]), "error: no value for %s (value 2)");
        assert_eq!(f("%q", &[]), "error: unknown conversion %q");
    }

    /// Flink's docs: `PRINTF('%s %d', 'Flink', 2)`-style calls; a NULL
    /// format is NULL, a NULL value `null`.
    #[tokio::test]
    async fn as_a_function() {
        assert_eq!(
            query("SELECT PRINTF('Hello %s, %d', 'Flink', 2)").await,
            ["Hello Flink, 2"]
        );
        assert_eq!(query("SELECT PRINTF('%.2f', CAST(1.005 AS DOUBLE))").await, ["1.01"]);
        assert_eq!(query("SELECT PRINTF('%s', CAST(NULL AS INT))").await, ["null"]);
        assert_eq!(query("SELECT PRINTF(CAST(NULL AS VARCHAR), 1)").await, ["NULL"]);
        let e = query_err("SELECT PRINTF('%d', 'x')").await;
        assert!(e.contains("PRINTF: %d cannot format x"), "{e}");
    }
}
