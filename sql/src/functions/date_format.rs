//! Flink's `DATE_FORMAT(value, pattern)` and `FROM_UNIXTIME(seconds[,
//! pattern])`: a time as text in a Java pattern ([`JavaPattern`]).
//! DataFusion's `date_format` is `to_char` with chrono's `%Y-%m-%d`
//! patterns, which prints Flink's `'yyyy-MM-dd'` back as the text
//! "yyyy-MM-dd"; its `from_unixtime` returns a TIMESTAMP where Flink's
//! returns a STRING. Both are replaced under their names.

use std::sync::Arc;

use crate::time_zone::LocalZone;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type, TimeUnit, TimestampMicrosecondType};
use datafusion::common::{DataFusionError, ScalarValue, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};

use super::java_pattern::{DEFAULT_PATTERN, JavaPattern};

/// The pattern argument of a call: one pattern for the whole batch when it
/// is a constant (read once), else one a row (re-read only when the text
/// changes from the row before).
pub(super) struct Patterns {
    function: &'static str,
    argument: usize,
    source: PatternSource,
    /// The last pattern read from a column, with its text.
    last: Option<(String, JavaPattern)>,
}

enum PatternSource {
    /// A constant: `None` when it is NULL.
    One(Option<JavaPattern>),
    Rows(StringArray),
}

impl Patterns {
    /// Reads the pattern argument `value` (argument number `argument` of
    /// `function`, for messages).
    pub(super) fn new(function: &'static str, argument: usize, value: &ColumnarValue) -> Result<Self> {
        let source = match value {
            ColumnarValue::Scalar(s) if s.is_null() => PatternSource::One(None),
            ColumnarValue::Scalar(
                ScalarValue::Utf8(Some(p)) | ScalarValue::LargeUtf8(Some(p)) | ScalarValue::Utf8View(Some(p)),
            ) => PatternSource::One(Some(read(function, argument, p)?)),
            ColumnarValue::Scalar(other) => {
                return exec_err!(
                    "{function}: the pattern (argument {argument}) must be a string, not {}",
                    other.data_type()
                );
            }
            ColumnarValue::Array(a) => PatternSource::Rows(cast(a, &DataType::Utf8)?.as_string::<i32>().clone()),
        };
        Ok(Self {
            function,
            argument,
            source,
            last: None,
        })
    }

    /// The default pattern, for calls without a pattern argument.
    pub(super) fn default_pattern(function: &'static str) -> Result<Self> {
        let pattern = read(function, 2, DEFAULT_PATTERN)?;
        Ok(Self {
            function,
            argument: 2,
            source: PatternSource::One(Some(pattern)),
            last: None,
        })
    }

    /// The pattern of `row`, `None` when it is NULL.
    pub(super) fn get(&mut self, row: usize) -> Result<Option<&JavaPattern>> {
        match &self.source {
            PatternSource::One(p) => Ok(p.as_ref()),
            PatternSource::Rows(texts) => {
                if texts.is_null(row) {
                    return Ok(None);
                }
                let text = texts.value(row);
                if self.last.as_ref().is_none_or(|(t, _)| t != text) {
                    self.last = Some((text.to_string(), read(self.function, self.argument, text)?));
                }
                Ok(self.last.as_ref().map(|(_, p)| p))
            }
        }
    }
}

/// Reads a pattern, or says which function's which argument is wrong.
fn read(function: &str, argument: usize, text: &str) -> Result<JavaPattern> {
    JavaPattern::new(text).map_err(|why| {
        DataFusionError::Execution(format!(
            "{function}: invalid date-time pattern (argument {argument}): {why}"
        ))
    })
}

/// `DATE_FORMAT(timestamp | date | string, pattern)`: the value in the
/// pattern, a STRING; NULL when either is NULL or a string value is not a
/// timestamp (`yyyy-MM-dd HH:mm:ss[.fff]`, or a date).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct DateFormat {
    signature: Signature,
}

impl DateFormat {
    pub(super) fn new() -> Self {
        Self {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for DateFormat {
    fn name(&self) -> &str {
        "date_format"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if !(is_time(&args[0]) || is_text(&args[0])) {
            return plan_err!(
                "DATE_FORMAT takes a timestamp, date or string (argument 1), not {}",
                args[0]
            );
        }
        if !is_text(&args[1]) {
            return plan_err!("DATE_FORMAT takes a string pattern (argument 2), not {}", args[1]);
        }
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let mut patterns = Patterns::new("DATE_FORMAT", 2, &args.args[1])?;
        let values = args.args[0].to_array(args.number_rows)?;
        let micros = timestamps(&values)?;
        format_all(&micros, &mut patterns).map(ColumnarValue::Array)
    }
}

/// `FROM_UNIXTIME(seconds[, pattern])`: epoch seconds as the session
/// zone's wall-clock text, `yyyy-MM-dd HH:mm:ss` by default; a STRING.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FromUnixtime {
    signature: Signature,
    zone: LocalZone,
}

impl FromUnixtime {
    /// The function writing times in `zone`.
    pub fn new(zone: &LocalZone) -> Self {
        Self {
            signature: Signature::one_of(
                vec![TypeSignature::Any(1), TypeSignature::Any(2)],
                Volatility::Immutable,
            ),
            zone: zone.clone(),
        }
    }
}

impl ScalarUDFImpl for FromUnixtime {
    fn name(&self) -> &str {
        "from_unixtime"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if !(args[0].is_numeric() || args[0] == DataType::Null) {
            return plan_err!(
                "FROM_UNIXTIME takes epoch seconds, a number (argument 1), not {}",
                args[0]
            );
        }
        if let Some(p) = args.get(1)
            && !is_text(p)
        {
            return plan_err!("FROM_UNIXTIME takes a string pattern (argument 2), not {p}");
        }
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let mut patterns = match args.args.get(1) {
            Some(p) => Patterns::new("FROM_UNIXTIME", 2, p)?,
            None => Patterns::default_pattern("FROM_UNIXTIME")?,
        };
        let seconds = cast(&args.args[0].to_array(args.number_rows)?, &DataType::Int64)?;
        let seconds = seconds.as_primitive::<Int64Type>();
        // Seconds beyond what a timestamp holds are NULL, as are NULLs.
        let zone = &self.zone;
        let micros: Vec<Option<i64>> = seconds
            .iter()
            .map(|s| {
                s.and_then(|s| s.checked_mul(1_000))
                    .map(|ms| zone.to_local(ms))
                    .and_then(|ms| ms.checked_mul(1_000))
            })
            .collect();
        let micros = datafusion::arrow::array::TimestampMicrosecondArray::from(micros);
        format_all(&micros, &mut patterns).map(ColumnarValue::Array)
    }
}

/// Formats each timestamp (microseconds, UTC) in its row's pattern.
fn format_all(
    micros: &datafusion::arrow::array::TimestampMicrosecondArray,
    patterns: &mut Patterns,
) -> Result<ArrayRef> {
    let mut out = StringBuilder::with_capacity(micros.len(), micros.len() * 20);
    for row in 0..micros.len() {
        let time = if micros.is_null(row) {
            None
        } else {
            to_datetime(micros.value(row))
        };
        match (time, patterns.get(row)?) {
            (Some(t), Some(pattern)) => {
                // Written straight into the builder's buffer: no row allocates.
                pattern
                    .format(&t, &mut out)
                    .map_err(|e| DataFusionError::Execution(format!("{}: {e}", patterns.function)))?;
                out.append_value("");
            }
            _ => out.append_null(),
        }
    }
    Ok(Arc::new(out.finish()))
}

/// Microseconds since the epoch as a wall-clock time; `None` out of
/// chrono's range.
fn to_datetime(micros: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp_micros(micros).map(|t| t.naive_utc())
}

/// The values of DATE_FORMAT's first argument as microsecond timestamps.
fn timestamps(values: &ArrayRef) -> Result<datafusion::arrow::array::TimestampMicrosecondArray> {
    let target = DataType::Timestamp(TimeUnit::Microsecond, None);
    if is_text(values.data_type()) {
        let texts = cast(values, &DataType::Utf8)?;
        let parsed: Vec<Option<i64>> = texts
            .as_string::<i32>()
            .iter()
            .map(|t| {
                t.and_then(parse_flink_timestamp)
                    .map(|t| t.and_utc().timestamp_micros())
            })
            .collect();
        return Ok(parsed.into());
    }
    Ok(cast(values, &target)?
        .as_primitive::<TimestampMicrosecondType>()
        .clone())
}

/// A timestamp string as Flink reads one for `DATE_FORMAT`: `yyyy-MM-dd
/// HH:mm:ss[.fff]` (or with a `T`), or a date alone.
pub(super) fn parse_flink_timestamp(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f"))
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M"))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
}

/// A type DATE_FORMAT formats directly.
fn is_time(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 | DataType::Null
    )
}

/// A string type (or an untyped NULL).
pub(super) fn is_text(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null
    )
}

#[cfg(test)]
mod tests {
    use super::super::testing::{query, query_err};

    /// Flink's docs (docs/data/sql_functions.yml, "DATE_FORMAT": "The format
    /// string is compatible with Java's SimpleDateFormat").
    #[tokio::test]
    async fn formats_timestamps_in_java_patterns() {
        assert_eq!(
            query("SELECT DATE_FORMAT(TIMESTAMP '2026-01-02 03:04:05.678', 'yyyy-MM-dd HH:mm:ss.SSS')").await,
            ["2026-01-02 03:04:05.678"]
        );
        assert_eq!(
            query("SELECT DATE_FORMAT(TIMESTAMP '2026-01-02 03:04:05.678', 'yyyy-MM-dd')").await,
            ["2026-01-02"]
        );
        assert_eq!(
            query("SELECT DATE_FORMAT(TIMESTAMP '2026-01-02 15:04:05', 'EEE d MMM yy, h:mm a, D')").await,
            ["Fri 2 Jan 26, 3:04 PM, 2"]
        );
        assert_eq!(
            query("SELECT DATE_FORMAT(TIMESTAMP '2026-01-02 03:04:05', 'yyyy-MM-dd''T''HH:mm')").await,
            ["2026-01-02T03:04"]
        );
        assert_eq!(
            query("SELECT DATE_FORMAT(DATE '1994-09-27', 'yyyy/MM/dd HH')").await,
            ["1994/09/27 00"]
        );
        // The type is a STRING.
        assert_eq!(
            query("SELECT arrow_typeof(DATE_FORMAT(TIMESTAMP '2026-01-02 03:04:05', 'yyyy'))").await,
            ["Utf8"]
        );
    }

    /// Flink also formats a timestamp string; one that is not is NULL.
    #[tokio::test]
    async fn formats_timestamp_strings() {
        assert_eq!(
            query("SELECT DATE_FORMAT('2026-01-02 03:04:05', 'dd.MM.yyyy HH:mm')").await,
            ["02.01.2026 03:04"]
        );
        assert_eq!(
            query("SELECT DATE_FORMAT('2026-01-02', 'yyyyMMdd')").await,
            ["20260102"]
        );
        assert_eq!(query("SELECT DATE_FORMAT('not a time', 'yyyy')").await, ["NULL"]);
    }

    #[tokio::test]
    async fn nulls_and_column_patterns() {
        assert_eq!(
            query("SELECT DATE_FORMAT(CAST(NULL AS TIMESTAMP), 'yyyy')").await,
            ["NULL"]
        );
        assert_eq!(
            query("SELECT DATE_FORMAT(TIMESTAMP '2026-01-02 03:04:05', CAST(NULL AS VARCHAR))").await,
            ["NULL"]
        );
        assert_eq!(
            query(
                "SELECT DATE_FORMAT(t, p) FROM (VALUES (TIMESTAMP '2026-01-02 03:04:05', 'yyyy'), \
                 (TIMESTAMP '2026-01-02 03:04:05', 'MM'), (NULL, 'dd'), (TIMESTAMP '2027-01-02 03:04:05', NULL)) v(t, p)"
            )
            .await,
            ["2026", "01", "NULL", "NULL"]
        );
    }

    #[tokio::test]
    async fn a_bad_pattern_is_an_error_naming_the_argument() {
        let e = query_err("SELECT DATE_FORMAT(TIMESTAMP '2026-01-02 03:04:05', 'yyyy-qq')").await;
        assert!(
            e.contains("DATE_FORMAT") && e.contains("argument 2") && e.contains("'q'"),
            "{e}"
        );
        let e = query_err("SELECT DATE_FORMAT(42, 'yyyy')").await;
        assert!(e.contains("DATE_FORMAT") && e.contains("argument 1"), "{e}");
    }

    /// Flink's docs: "FROM_UNIXTIME(44) returns '1970-01-01 00:00:44' if in
    /// UTC time zone" (Weir's times are UTC).
    #[tokio::test]
    async fn from_unixtime_is_text() {
        assert_eq!(query("SELECT FROM_UNIXTIME(44)").await, ["1970-01-01 00:00:44"]);
        assert_eq!(
            query("SELECT FROM_UNIXTIME(1767323045, 'yyyy-MM-dd''T''HH:mm')").await,
            ["2026-01-02T03:04"]
        );
        assert_eq!(query("SELECT FROM_UNIXTIME(CAST(NULL AS BIGINT))").await, ["NULL"]);
        let e = query_err("SELECT FROM_UNIXTIME(44, 'yyyy ''x')").await;
        assert!(e.contains("FROM_UNIXTIME") && e.contains("argument 2"), "{e}");
    }
}
