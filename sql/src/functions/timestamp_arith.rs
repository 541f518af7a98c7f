//! Flink's `TIMESTAMPADD(unit, n, time)` and `TIMESTAMPDIFF(unit, time1,
//! time2)`, which DataFusion lacks. Flink writes the unit as a keyword
//! (`TIMESTAMPADD(DAY, 1, ts)`), which DataFusion would read as a column;
//! the planner (`planner::flink_calls`) writes it as the string `'DAY'`,
//! which these take.
//!
//! Units: `MICROSECOND`, `MILLISECOND`, `SECOND`, `MINUTE`, `HOUR`, `DAY`,
//! `WEEK`, `MONTH`, `QUARTER`, `YEAR` (also with ODBC's `SQL_TSI_`
//! prefix). Months are calendar months, as Calcite's (Flink's) arithmetic:
//! adding one to January 31 gives the last day of February, and the months
//! between two times are the most that can be added to the first without
//! passing the second. Times are UTC wall-clock times.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Months, NaiveDateTime};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int32Builder, PrimitiveBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type, TimeUnit, TimestampMicrosecondType};
use datafusion::common::{DataFusionError, ScalarValue, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::types::TIMESTAMP_MS;

/// A unit of `TIMESTAMPADD` and `TIMESTAMPDIFF`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    /// A fixed length, in microseconds.
    Fixed(i64),
    /// A number of calendar months.
    Months(u32),
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

impl Unit {
    /// The unit a keyword names (any case, `SQL_TSI_` prefix allowed).
    fn of(name: &str) -> Option<Self> {
        let name = name.trim().to_ascii_uppercase();
        let name = name.strip_prefix("SQL_TSI_").unwrap_or(&name);
        Some(match name {
            "MICROSECOND" | "FRAC_SECOND" => Unit::Fixed(1),
            "MILLISECOND" => Unit::Fixed(1_000),
            "SECOND" => Unit::Fixed(1_000_000),
            "MINUTE" => Unit::Fixed(60_000_000),
            "HOUR" => Unit::Fixed(3_600_000_000),
            "DAY" => Unit::Fixed(MICROS_PER_DAY),
            "WEEK" => Unit::Fixed(7 * MICROS_PER_DAY),
            "MONTH" => Unit::Months(1),
            "QUARTER" => Unit::Months(3),
            "YEAR" => Unit::Months(12),
            _ => return None,
        })
    }

    /// Whether the unit is whole days or longer (a DATE plus it is a DATE).
    fn is_dated(self) -> bool {
        match self {
            Unit::Fixed(micros) => micros % MICROS_PER_DAY == 0,
            Unit::Months(_) => true,
        }
    }
}

/// The unit of a call: its first argument, a constant string.
fn unit_of(function: &str, value: Option<&ScalarValue>) -> Result<Unit> {
    let name = match value {
        Some(ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s))) => s,
        _ => return plan_err!("{function} takes a time unit such as DAY or MONTH (argument 1)"),
    };
    Unit::of(name).ok_or_else(|| {
        DataFusionError::Plan(format!(
            "{function}: '{name}' is not a time unit (argument 1); use MICROSECOND, MILLISECOND, SECOND, MINUTE, \
             HOUR, DAY, WEEK, MONTH, QUARTER or YEAR"
        ))
    })
}

/// The unit argument at run time.
fn unit_at_run_time(function: &str, value: &ColumnarValue) -> Result<Unit> {
    match value {
        ColumnarValue::Scalar(s) => unit_of(function, Some(s)),
        ColumnarValue::Array(_) => plan_err!("{function} takes a constant time unit (argument 1)"),
    }
}

/// A type `TIMESTAMPADD` and `TIMESTAMPDIFF` take times of.
fn is_time(t: &DataType) -> bool {
    matches!(t, DataType::Date32 | DataType::Date64 | DataType::Timestamp(..) | DataType::Null)
}

/// `TIMESTAMPADD` and `TIMESTAMPDIFF`, to register.
pub(super) fn functions() -> [ScalarUDF; 2] {
    [
        ScalarUDF::from(TimestampAdd { signature: Signature::any(3, Volatility::Immutable) }),
        ScalarUDF::from(TimestampDiff { signature: Signature::any(3, Volatility::Immutable) }),
    ]
}

/// Times as microseconds since the epoch (a date at its midnight).
fn micros_of(value: &ColumnarValue, rows: usize) -> Result<Vec<Option<i64>>> {
    let values = value.to_array(rows)?;
    let values = match values.data_type() {
        DataType::Null => cast(&values, &DataType::Date32)?,
        _ => values,
    };
    let micros = cast(&values, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
    Ok(micros.as_primitive::<TimestampMicrosecondType>().iter().collect())
}

fn datetime(micros: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp_micros(micros).map(|t| t.naive_utc())
}

/// `t` plus `n` months (clamped to the month's last day).
fn add_months(t: NaiveDateTime, n: i64) -> Option<NaiveDateTime> {
    let months = Months::new(u32::try_from(n.unsigned_abs()).ok()?);
    if n >= 0 { t.checked_add_months(months) } else { t.checked_sub_months(months) }
}

/// `TIMESTAMPADD(unit, n, time)`: the time `n` units later (earlier when
/// negative); a DATE stays a DATE for units of whole days or more and is a
/// `TIMESTAMP(3)` for smaller ones; NULL when `n` or the time is NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TimestampAdd {
    signature: Signature,
}

impl ScalarUDFImpl for TimestampAdd {
    fn name(&self) -> &str {
        "timestampadd"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args[2].clone())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let unit = unit_of("TIMESTAMPADD", args.scalar_arguments.first().copied().flatten())?;
        let n = args.arg_fields[1].data_type();
        if !(n.is_integer() || *n == DataType::Null) {
            return plan_err!("TIMESTAMPADD takes an integer count (argument 2), not {n}");
        }
        let t = args.arg_fields[2].data_type();
        let out = match t {
            DataType::Date32 | DataType::Date64 | DataType::Null if unit.is_dated() => DataType::Date32,
            DataType::Date32 | DataType::Date64 | DataType::Null => TIMESTAMP_MS,
            DataType::Timestamp(..) => t.clone(),
            other => return plan_err!("TIMESTAMPADD takes a date or timestamp (argument 3), not {other}"),
        };
        Ok(Arc::new(Field::new(self.name(), out, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let unit = unit_at_run_time("TIMESTAMPADD", &args.args[0])?;
        let counts = cast(&args.args[1].to_array(rows)?, &DataType::Int64)?;
        let counts = counts.as_primitive::<Int64Type>();
        let times = micros_of(&args.args[2], rows)?;
        let mut out = PrimitiveBuilder::<TimestampMicrosecondType>::with_capacity(rows);
        for (row, time) in times.into_iter().enumerate() {
            let (Some(t), false) = (time, counts.is_null(row)) else {
                out.append_null();
                continue;
            };
            let n = counts.value(row);
            let later = match unit {
                Unit::Fixed(micros) => n.checked_mul(micros).and_then(|d| t.checked_add(d)),
                Unit::Months(m) => datetime(t)
                    .and_then(|dt| add_months(dt, n.checked_mul(i64::from(m))?))
                    .map(|dt| dt.and_utc().timestamp_micros()),
            };
            match later {
                Some(later) => out.append_value(later),
                None => return exec_err!("TIMESTAMPADD: {n} units from the time in row {row} is out of range"),
            }
        }
        let micros: ArrayRef = Arc::new(out.finish());
        let target = args.return_field.data_type();
        let out = match target {
            // A date plus days is whole days: the cast is exact.
            DataType::Date32 => cast(&micros, &DataType::Timestamp(TimeUnit::Microsecond, None))
                .and_then(|m| cast(&m, &DataType::Date32))?,
            t => cast(&micros, t)?,
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// `TIMESTAMPDIFF(unit, time1, time2)`: the whole units from `time1` to
/// `time2`, negative when `time2` is earlier, an INT (Flink's type; a
/// count beyond it wraps, as Java's narrowing cast); NULL when either time
/// is NULL. A DATE is its midnight.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TimestampDiff {
    signature: Signature,
}

impl ScalarUDFImpl for TimestampDiff {
    fn name(&self) -> &str {
        "timestampdiff"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        unit_of("TIMESTAMPDIFF", args.scalar_arguments.first().copied().flatten())?;
        for i in 1..3 {
            let t = args.arg_fields[i].data_type();
            if !is_time(t) {
                return plan_err!("TIMESTAMPDIFF takes a date or timestamp (argument {}), not {t}", i + 1);
            }
        }
        Ok(Arc::new(Field::new(self.name(), DataType::Int32, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let unit = unit_at_run_time("TIMESTAMPDIFF", &args.args[0])?;
        let firsts = micros_of(&args.args[1], rows)?;
        let seconds = micros_of(&args.args[2], rows)?;
        let mut out = Int32Builder::with_capacity(rows);
        for (first, second) in firsts.into_iter().zip(seconds) {
            let (Some(a), Some(b)) = (first, second) else {
                out.append_null();
                continue;
            };
            let count = match unit {
                // Whole units, towards zero.
                Unit::Fixed(micros) => (i128::from(b) - i128::from(a)) / i128::from(micros),
                Unit::Months(m) => match (datetime(a), datetime(b)) {
                    (Some(a), Some(b)) => i128::from(months_between(a, b) / i64::from(m)),
                    _ => return exec_err!("TIMESTAMPDIFF: a time is out of range"),
                },
            };
            out.append_value(count as i32);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// The most whole months that can be added to `from` without passing `to`
/// (negative, and symmetric, when `to` is earlier).
fn months_between(from: NaiveDateTime, to: NaiveDateTime) -> i64 {
    if to < from {
        return -months_between(to, from);
    }
    let calendar = |t: NaiveDateTime| i64::from(t.year()) * 12 + i64::from(t.month0());
    // The calendar difference is at most one too many.
    let mut m = calendar(to) - calendar(from);
    while m > 0 && add_months(from, m).is_none_or(|t| t > to) {
        m -= 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::super::testing::{query, query_err};

    /// Flink's docs: "TIMESTAMPADD(WEEK, 1, DATE '2003-01-02') returns
    /// 2003-01-09"; "TIMESTAMPDIFF(DAY, TIMESTAMP '2003-01-02 10:00:00',
    /// TIMESTAMP '2003-01-03 10:00:00') leads to 1". (The unit is a string
    /// here: the planner writes Flink's keyword so.)
    #[tokio::test]
    async fn as_flinks_docs_say() {
        assert_eq!(query("SELECT TIMESTAMPADD('WEEK', 1, DATE '2003-01-02')").await, ["2003-01-09"]);
        assert_eq!(
            query("SELECT TIMESTAMPDIFF('DAY', TIMESTAMP '2003-01-02 10:00:00', TIMESTAMP '2003-01-03 10:00:00')")
                .await,
            ["1"]
        );
    }

    #[tokio::test]
    async fn adds_calendar_months_and_fixed_lengths() {
        let ts = "CAST(TIMESTAMP '2026-01-31 10:20:30.456' AS TIMESTAMP(3))";
        let add = |unit: &str, n: i64| format!("SELECT TIMESTAMPADD('{unit}', {n}, {ts})");
        assert_eq!(query(&add("MONTH", 1)).await, ["2026-02-28T10:20:30.456"]);
        assert_eq!(query(&add("QUARTER", -1)).await, ["2025-10-31T10:20:30.456"]);
        assert_eq!(query(&add("YEAR", 2)).await, ["2028-01-31T10:20:30.456"]);
        assert_eq!(query(&add("HOUR", 14)).await, ["2026-02-01T00:20:30.456"]);
        assert_eq!(query(&add("SECOND", -31)).await, ["2026-01-31T10:19:59.456"]);
        assert_eq!(query(&add("MILLISECOND", 544)).await, ["2026-01-31T10:20:31"]);
        assert_eq!(query(&add("sql_tsi_day", 1)).await, ["2026-02-01T10:20:30.456"]);
        assert_eq!(query(&format!("SELECT arrow_typeof(TIMESTAMPADD('DAY', 1, {ts}))")).await, ["Timestamp(ms)"]);
        // A date stays a date for days or more, a timestamp for less.
        assert_eq!(query("SELECT TIMESTAMPADD('MONTH', 1, DATE '2024-01-31')").await, ["2024-02-29"]);
        assert_eq!(query("SELECT TIMESTAMPADD('HOUR', 25, DATE '2024-01-31')").await, ["2024-02-01T01:00:00"]);
        assert_eq!(query("SELECT TIMESTAMPADD('DAY', CAST(NULL AS INT), DATE '2024-01-31')").await, ["NULL"]);
        assert_eq!(
            query("SELECT TIMESTAMPADD('DAY', n, DATE '2024-01-31') FROM (VALUES (1), (-31), (NULL)) t(n)").await,
            ["2024-02-01", "2023-12-31", "NULL"]
        );
    }

    /// Whole units towards zero; months as the most that fit (Calcite's:
    /// January 31 to February 28 is a month, since one month after January
    /// 31 is February 28).
    #[tokio::test]
    async fn differences_are_whole_units() {
        let diff =
            |unit: &str, a: &str, b: &str| format!("SELECT TIMESTAMPDIFF('{unit}', TIMESTAMP '{a}', TIMESTAMP '{b}')");
        assert_eq!(query(&diff("HOUR", "2026-01-01 00:00:00", "2026-01-01 05:59:59")).await, ["5"]);
        assert_eq!(query(&diff("HOUR", "2026-01-01 05:59:59", "2026-01-01 00:00:00")).await, ["-5"]);
        assert_eq!(query(&diff("SECOND", "2026-01-01 00:00:00", "2026-01-01 00:01:00.9")).await, ["60"]);
        assert_eq!(query(&diff("WEEK", "2026-01-01 00:00:00", "2026-01-15 00:00:00")).await, ["2"]);
        assert_eq!(query(&diff("MONTH", "2026-01-31 00:00:00", "2026-02-28 00:00:00")).await, ["1"]);
        assert_eq!(query(&diff("MONTH", "2026-01-15 12:00:00", "2026-02-15 11:59:59")).await, ["0"]);
        assert_eq!(query(&diff("MONTH", "2026-02-15 11:59:59", "2026-01-15 12:00:00")).await, ["0"]);
        assert_eq!(query(&diff("MONTH", "2026-03-15 00:00:00", "2026-01-15 00:00:00")).await, ["-2"]);
        assert_eq!(query(&diff("YEAR", "2015-12-31 23:59:59", "2017-01-01 00:00:00")).await, ["1"]);
        assert_eq!(query(&diff("QUARTER", "2019-06-01 07:01:11", "2020-06-01 07:01:11")).await, ["4"]);
        assert_eq!(
            query("SELECT TIMESTAMPDIFF('DAY', DATE '2026-01-01', TIMESTAMP '2026-01-03 12:00:00')").await,
            ["2"]
        );
        assert_eq!(query("SELECT TIMESTAMPDIFF('DAY', DATE '2026-01-01', CAST(NULL AS DATE))").await, ["NULL"]);
        assert_eq!(
            query("SELECT arrow_typeof(TIMESTAMPDIFF('DAY', DATE '2026-01-01', DATE '2026-01-02'))").await,
            ["Int32"]
        );
    }

    #[tokio::test]
    async fn bad_units_and_arguments_are_errors_naming_them() {
        let e = query_err("SELECT TIMESTAMPADD('FORTNIGHT', 1, DATE '2026-01-01')").await;
        assert!(e.contains("TIMESTAMPADD") && e.contains("argument 1") && e.contains("FORTNIGHT"), "{e}");
        let e = query_err("SELECT TIMESTAMPDIFF('DAY', 1, DATE '2026-01-01')").await;
        assert!(e.contains("TIMESTAMPDIFF") && e.contains("argument 2"), "{e}");
        let e = query_err("SELECT TIMESTAMPADD('DAY', 'x', DATE '2026-01-01')").await;
        assert!(e.contains("TIMESTAMPADD") && e.contains("argument 2"), "{e}");
    }
}
