//! Flink's arithmetic functions DataFusion lacks: `MOD(a, b)` (DataFusion
//! has the `%` operator), the remainder of `a` divided by `b`, negative
//! only when `a` is, as Java's `%` (Arrow's `rem` kernel, over the whole
//! array); and `TRUNCATE(n[, d])`, `n` cut (towards zero) to `d` decimal
//! places, where DataFusion's `trunc` keeps a float and is not Flink's name.

use std::fmt::Write;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Decimal128Array, Float64Array, Int64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::compute::kernels::numeric::rem;
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Field, FieldRef, Float64Type, Int64Type};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::type_coercion::binary::type_union_resolution;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

/// `MOD(a, b)` over the arguments' common numeric type; NULL when either is
/// NULL; an error when an integer `b` is 0 (Java's ArithmeticException).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct Mod {
    signature: Signature,
}

impl Mod {
    pub(super) fn new() -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for Mod {
    fn name(&self) -> &str {
        "mod"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let [a, b] = args else {
            return plan_err!("MOD takes 2 arguments, not {}", args.len());
        };
        for (i, t) in [a, b].into_iter().enumerate() {
            if !(t.is_numeric() || *t == DataType::Null) {
                return plan_err!("MOD takes numbers (argument {}), not {t}", i + 1);
            }
        }
        let common = match type_union_resolution(&[a.clone(), b.clone()]) {
            Some(DataType::Null) | None => DataType::Int32,
            Some(t) => t,
        };
        Ok(vec![common.clone(), common])
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args[0].clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let a = args.args[0].to_array(rows)?;
        let b = args.args[1].to_array(rows)?;
        Ok(ColumnarValue::Array(rem(&a, &b)?))
    }
}

/// `TRUNCATE(n[, d])`: `n` truncated towards zero to `d` decimal places
/// (default 0); a negative `d` zeroes digits left of the point; NULL when
/// either is NULL. The type is `n`'s, except that a DECIMAL truncated by a
/// constant `d` gets Flink's type: scale `d` (0 for a negative `d`) and
/// precision `1 + p - s + d`. A float is truncated in its shortest decimal
/// form (`4.35` stays `4.3` at one place, not the `4.34999…` it is stored
/// as), as Flink's goes through a DECIMAL.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct Truncate {
    signature: Signature,
}

impl Truncate {
    pub(super) fn new() -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

/// The places of a constant `d` argument (0 without one); `None` when it is
/// not a constant.
fn constant_places(args: &ReturnFieldArgs) -> Option<i64> {
    match args.scalar_arguments.get(1) {
        None => Some(0),
        Some(Some(s)) => match s.cast_to(&DataType::Int64) {
            Ok(ScalarValue::Int64(Some(d))) => Some(d),
            _ => None,
        },
        Some(None) => None,
    }
}

impl ScalarUDFImpl for Truncate {
    fn name(&self) -> &str {
        "truncate"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        if args.is_empty() || args.len() > 2 {
            return plan_err!("TRUNCATE takes 1 or 2 arguments (number[, places]), not {}", args.len());
        }
        let n = match &args[0] {
            DataType::Null => DataType::Float64,
            t if t.is_integer() => DataType::Int64,
            t @ (DataType::Float32 | DataType::Float64 | DataType::Decimal128(..)) => t.clone(),
            DataType::Float16 => DataType::Float32,
            DataType::Decimal32(p, s) | DataType::Decimal64(p, s) => DataType::Decimal128(*p, *s),
            t => return plan_err!("TRUNCATE takes a number (argument 1), not {t}"),
        };
        let mut out = vec![n];
        if let Some(d) = args.get(1) {
            if !(d.is_integer() || *d == DataType::Null) {
                return plan_err!("TRUNCATE takes an integer number of places (argument 2), not {d}");
            }
            out.push(DataType::Int64);
        }
        Ok(out)
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args[0].clone())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let t = args.arg_fields[0].data_type();
        let t = match (t, constant_places(&args)) {
            (DataType::Decimal128(p, s), Some(d)) if d < i64::from(*s) => {
                let s = i64::from(*s);
                let scale = d.max(0);
                let precision = (1 + i64::from(*p) - s + scale).clamp(1, 38);
                DataType::Decimal128(precision as u8, scale as i8)
            }
            _ => t.clone(),
        };
        Ok(Arc::new(Field::new(self.name(), t, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let n = args.args[0].to_array(rows)?;
        let places = match args.args.get(1) {
            Some(d) => d.to_array(rows)?,
            None => Arc::new(Int64Array::from_value(0, rows)),
        };
        let places = places.as_primitive::<Int64Type>();
        let out: ArrayRef = match (n.data_type(), args.return_field.data_type()) {
            (DataType::Decimal128(_, s), DataType::Decimal128(p_out, scale_out)) => {
                let (s, s_out) = (i64::from(*s), i64::from(*scale_out));
                let values = n.as_primitive::<Decimal128Type>();
                let out: Decimal128Array = values
                    .iter()
                    .zip(places.iter())
                    .map(|(v, d)| {
                        let (v, d) = (v?, d?);
                        // Cut at `d` places, then to the result's scale (at
                        // most `s`; exact, the digits below are zero).
                        Some(cut_i128(v, s.saturating_sub(d)) / pow10_i128(s - s_out).unwrap_or(1))
                    })
                    .collect();
                Arc::new(out.with_precision_and_scale(*p_out, *scale_out)?)
            }
            (DataType::Int64, _) => {
                let values = n.as_primitive::<Int64Type>();
                let out: Int64Array = values
                    .iter()
                    .zip(places.iter())
                    .map(|(v, d)| Some(if d? >= 0 { v? } else { cut_i64(v?, d?.saturating_neg()) }))
                    .collect();
                Arc::new(out)
            }
            (DataType::Float32 | DataType::Float64, _) => {
                let values = cast(&n, &DataType::Float64)?;
                let mut text = String::new();
                let out: Float64Array = values
                    .as_primitive::<Float64Type>()
                    .iter()
                    .zip(places.iter())
                    .map(|(v, d)| Some(truncate_float(v?, d?, &mut text)))
                    .collect();
                cast(&out, n.data_type())?
            }
            (t, _) => return exec_err!("TRUNCATE: cannot truncate {t}"),
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// 10^k, if it fits an i128 (k ≤ 38).
fn pow10_i128(k: i64) -> Option<i128> {
    u32::try_from(k).ok().and_then(|k| 10i128.checked_pow(k))
}

/// `v` with its last `k` digits zeroed (towards zero); `v` when `k` ≤ 0.
fn cut_i128(v: i128, k: i64) -> i128 {
    if k <= 0 {
        return v;
    }
    match pow10_i128(k) {
        Some(f) => v / f * f,
        None => 0,
    }
}

/// `v` with its last `k` digits zeroed (towards zero).
fn cut_i64(v: i64, k: i64) -> i64 {
    match u32::try_from(k).ok().and_then(|k| 10i64.checked_pow(k)) {
        Some(f) => v / f * f,
        None => 0,
    }
}

/// `x` truncated to `d` places in its shortest decimal form (Rust's
/// `Display`, which never uses an exponent), written into `text`.
fn truncate_float(x: f64, d: i64, text: &mut String) -> f64 {
    if !x.is_finite() {
        return x;
    }
    text.clear();
    if write!(text, "{}", x.abs()).is_err() {
        return x;
    }
    let point = text.find('.').unwrap_or(text.len());
    let cut = if d >= 0 {
        let keep = usize::try_from(d).unwrap_or(usize::MAX).saturating_add(point + 1);
        text.truncate(keep.min(text.len()));
        text.trim_end_matches('.').parse::<f64>().unwrap_or(0.0)
    } else {
        let zeroed = usize::try_from(d.unsigned_abs()).unwrap_or(usize::MAX);
        if zeroed >= point {
            0.0
        } else {
            text.truncate(point - zeroed);
            text.parse::<f64>().unwrap_or(0.0) * 10f64.powi(i32::try_from(zeroed).unwrap_or(i32::MAX))
        }
    };
    if cut == 0.0 { 0.0 } else { cut.copysign(x) }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{query, query_err};
    use super::truncate_float;

    /// Flink's docs (docs/data/sql_functions.yml, "numeric1 % numeric2 /
    /// MOD"): "The result is negative only if numeric1 is negative."
    #[tokio::test]
    async fn remainder_has_the_sign_of_the_dividend() {
        assert_eq!(
            query("SELECT MOD(a, b) FROM (VALUES (7, 3), (-7, 3), (7, -3), (-7, -3), (NULL, 3)) t(a, b)").await,
            ["1", "-1", "1", "-1", "NULL"]
        );
        assert_eq!(query("SELECT MOD(CAST(10 AS BIGINT), CAST(4 AS INT))").await, ["2"]);
        assert_eq!(query("SELECT MOD(7.5, 2)").await, ["1.5"]);
        let e = query_err("SELECT MOD(a, b) FROM (VALUES (1, 0)) t(a, b)").await;
        assert!(e.to_lowercase().contains("divide by zero"), "{e}");
        let e = query_err("SELECT MOD('a', 2)").await;
        assert!(e.contains("MOD") && e.contains("argument 1"), "{e}");
    }

    /// Flink's docs: "42.324.truncate(2) to 42.32. and 42.324.truncate() to
    /// 42.0"; "integer2 can be negative to cause integer2 digits left of the
    /// decimal point of the value to become zero"; "Returns NULL if
    /// numeric1 or integer2 is NULL".
    #[tokio::test]
    async fn truncate_as_flinks_docs_say() {
        assert_eq!(query("SELECT TRUNCATE(42.324, 2)").await, ["42.32"]);
        assert_eq!(query("SELECT TRUNCATE(42.324)").await, ["42.0"]);
        assert_eq!(query("SELECT TRUNCATE(CAST(42.324 AS DECIMAL(5, 3)), 2)").await, ["42.32"]);
        assert_eq!(
            query("SELECT arrow_typeof(TRUNCATE(CAST(42.324 AS DECIMAL(5, 3)), 2))").await,
            ["Decimal128(5, 2)"]
        );
        assert_eq!(query("SELECT TRUNCATE(CAST(-42.329 AS DECIMAL(5, 3)), 1)").await, ["-42.3"]);
        assert_eq!(query("SELECT TRUNCATE(CAST(1234.5 AS DECIMAL(6, 1)), -2)").await, ["1200"]);
        assert_eq!(query("SELECT TRUNCATE(1234, -2)").await, ["1200"]);
        assert_eq!(query("SELECT TRUNCATE(-1299, -2)").await, ["-1200"]);
        assert_eq!(query("SELECT TRUNCATE(1234, 2)").await, ["1234"]);
        assert_eq!(query("SELECT TRUNCATE(-4.35, 1)").await, ["-4.3"]);
        assert_eq!(query("SELECT TRUNCATE(CAST(NULL AS DOUBLE), 1)").await, ["NULL"]);
        assert_eq!(query("SELECT TRUNCATE(1.5, CAST(NULL AS INT))").await, ["NULL"]);
        assert_eq!(
            query("SELECT TRUNCATE(x, d) FROM (VALUES (CAST(1.987 AS DECIMAL(4, 3)), 1), (CAST(1.987 AS DECIMAL(4, 3)), 2)) t(x, d)")
                .await,
            ["1.900", "1.980"]
        );
        let e = query_err("SELECT TRUNCATE('a', 1)").await;
        assert!(e.contains("TRUNCATE") && e.contains("argument 1"), "{e}");
    }

    #[test]
    fn floats_are_cut_in_their_decimal_form() {
        let mut t = String::new();
        assert_eq!(truncate_float(4.35, 1, &mut t), 4.3);
        assert_eq!(truncate_float(0.29, 2, &mut t), 0.29);
        assert_eq!(truncate_float(-0.05, 1, &mut t), 0.0);
        assert_eq!(truncate_float(123456.0, -3, &mut t), 123000.0);
        assert_eq!(truncate_float(99.0, -2, &mut t), 0.0);
        assert!(truncate_float(f64::NAN, 1, &mut t).is_nan());
    }
}
