//! Flink's `TO_DATE(text[, pattern])` and `TO_TIMESTAMP(text[, pattern])`:
//! text read in a Java pattern ([`JavaPattern`]) to a DATE or a
//! `TIMESTAMP(3)`. DataFusion's namesakes read chrono's `%Y-%m-%d`
//! patterns, which a Flink user's `'yyyy/MM/dd'` is not (and its
//! `to_timestamp` returns nanoseconds); without a pattern Flink reads
//! `yyyy-MM-dd` (`yyyy-MM-dd HH:mm:ss[.fff]`).
//!
//! As Flink's: the whole text must match the pattern (no trailing text),
//! what the pattern leaves out is Java's default (1970-01-01, midnight),
//! and text that does not parse is NULL. A time with an offset (`X`) is
//! read as the UTC time it denotes (Weir's times are UTC).

use std::sync::Arc;

use chrono::format::{Item, Parsed, parse};
use chrono::{NaiveDate, NaiveDateTime};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Date32Builder, TimestampMillisecondBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};

use super::date_format::{Patterns, is_text, parse_flink_timestamp};
use super::java_pattern::JavaPattern;
use super::unix_timestamp::completed;

/// What a function makes of the time it read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Target {
    Date,
    Timestamp,
}

/// `TO_DATE` and `TO_TIMESTAMP`, to register (replacing DataFusion's).
pub(super) fn functions() -> [ScalarUDF; 2] {
    let f = |name, target| {
        ScalarUDF::from(ToTime {
            name,
            target,
            signature: Signature::one_of(vec![TypeSignature::Any(1), TypeSignature::Any(2)], Volatility::Immutable),
        })
    };
    [f("to_date", Target::Date), f("to_timestamp", Target::Timestamp)]
}

/// `TO_DATE(text[, pattern])` (a DATE) or `TO_TIMESTAMP(text[, pattern])`
/// (a `TIMESTAMP(3)`); NULL when either is NULL or the text does not parse.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ToTime {
    name: &'static str,
    target: Target,
    signature: Signature,
}

impl ScalarUDFImpl for ToTime {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        let name = self.name.to_uppercase();
        if !is_text(&args[0]) {
            return plan_err!("{name} takes a string (argument 1), not {}", args[0]);
        }
        if let Some(p) = args.get(1)
            && !is_text(p)
        {
            return plan_err!("{name} takes a string pattern (argument 2), not {p}");
        }
        Ok(match self.target {
            Target::Date => DataType::Date32,
            Target::Timestamp => crate::types::TIMESTAMP_MS,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name: &'static str = match self.target {
            Target::Date => "TO_DATE",
            Target::Timestamp => "TO_TIMESTAMP",
        };
        let texts = cast(&args.args[0].to_array(args.number_rows)?, &DataType::Utf8)?;
        let texts = texts.as_string::<i32>();
        let times: Box<dyn Iterator<Item = Result<Option<NaiveDateTime>>>> = match args.args.get(1) {
            // Flink's default format, read leniently (1- or 2-digit fields,
            // an optional fraction or time).
            None => Box::new(texts.iter().map(|t| Ok(t.and_then(parse_flink_timestamp)))),
            Some(p) => {
                let mut patterns = Patterns::new(name, 2, p)?;
                let mut items = Items::new(name);
                Box::new(texts.iter().enumerate().map(move |(row, text)| {
                    let (Some(text), Some(pattern)) = (text, patterns.get(row)?) else { return Ok(None) };
                    Ok(utc_time(text, items.get(pattern)?))
                }))
            }
        };
        let out: ArrayRef = match self.target {
            Target::Date => {
                let mut out = Date32Builder::with_capacity(texts.len());
                for time in times {
                    out.append_option(time?.map(|t| days_since_epoch(t.date())));
                }
                Arc::new(out.finish())
            }
            Target::Timestamp => {
                let mut out = TimestampMillisecondBuilder::with_capacity(texts.len());
                for time in times {
                    out.append_option(time?.map(|t| t.and_utc().timestamp_millis()));
                }
                Arc::new(out.finish())
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// The parse items of the last pattern, kept while it repeats.
pub(super) struct Items {
    function: &'static str,
    last: Option<(JavaPattern, Vec<Item<'static>>)>,
}

impl Items {
    pub(super) fn new(function: &'static str) -> Self {
        Self { function, last: None }
    }

    /// The items that parse `pattern`, or why it cannot be parsed.
    pub(super) fn get(&mut self, pattern: &JavaPattern) -> Result<&[Item<'static>]> {
        if self.last.as_ref().is_none_or(|(p, _)| p != pattern) {
            let items = pattern.parse_items().map_err(|why| {
                DataFusionError::Execution(format!("{}: the pattern (argument 2) cannot parse: {why}", self.function))
            })?;
            self.last = Some((pattern.clone(), items));
        }
        match &self.last {
            Some((_, items)) => Ok(items),
            None => exec_err!("{}: no pattern", self.function),
        }
    }
}

/// The UTC wall-clock time `text` denotes when the whole of it matches
/// `items`.
fn utc_time(text: &str, items: &[Item<'static>]) -> Option<NaiveDateTime> {
    let mut parsed = Parsed::new();
    parse(&mut parsed, text, items.iter()).ok()?;
    let (local, offset) = completed(parsed)?;
    local.checked_sub_signed(chrono::TimeDelta::seconds(i64::from(offset.unwrap_or(0))))
}

/// Arrow's DATE: days since 1970-01-01.
fn days_since_epoch(date: NaiveDate) -> i32 {
    // Every NaiveDate is within ±262,143 years: the day count fits an i32.
    (date - NaiveDate::default()).num_days() as i32
}

#[cfg(test)]
mod tests {
    use super::super::testing::{query, query_err};

    /// Flink's docs: TO_DATE "Converts a date string string1 with format
    /// string2 (by default 'yyyy-MM-dd') to a date".
    #[tokio::test]
    async fn to_date_reads_java_patterns() {
        assert_eq!(query("SELECT TO_DATE('2026-01-02')").await, ["2026-01-02"]);
        assert_eq!(query("SELECT TO_DATE('02/01/2026', 'dd/MM/yyyy')").await, ["2026-01-02"]);
        assert_eq!(query("SELECT TO_DATE('20260102', 'yyyyMMdd')").await, ["2026-01-02"]);
        assert_eq!(query("SELECT TO_DATE('Fri, 2 Jan 2026', 'EEE, d MMM yyyy')").await, ["2026-01-02"]);
        // Text that does not match the whole pattern: NULL.
        assert_eq!(query("SELECT TO_DATE('2026-01-02 x', 'yyyy-MM-dd')").await, ["NULL"]);
        assert_eq!(query("SELECT TO_DATE('not a date')").await, ["NULL"]);
        assert_eq!(query("SELECT TO_DATE(CAST(NULL AS VARCHAR), 'yyyy')").await, ["NULL"]);
        assert_eq!(query("SELECT arrow_typeof(TO_DATE('2026-01-02'))").await, ["Date32"]);
        assert_eq!(
            query("SELECT TO_DATE(s, p) FROM (VALUES ('2026-01-02', 'yyyy-MM-dd'), ('01.2026', 'MM.yyyy'), ('x', 'yyyy')) t(s, p)")
                .await,
            ["2026-01-02", "2026-01-01", "NULL"]
        );
    }

    /// Flink's docs: TO_TIMESTAMP "Converts date time string string1 with
    /// format string2 (by default: 'yyyy-MM-dd HH:mm:ss') under the 'UTC+0'
    /// time zone to a timestamp".
    #[tokio::test]
    async fn to_timestamp_reads_java_patterns() {
        assert_eq!(query("SELECT TO_TIMESTAMP('2026-01-02 03:04:05')").await, ["2026-01-02T03:04:05"]);
        assert_eq!(query("SELECT TO_TIMESTAMP('2026-01-02 03:04:05.678')").await, ["2026-01-02T03:04:05.678"]);
        assert_eq!(query("SELECT TO_TIMESTAMP('02.01.2026 03:04', 'dd.MM.yyyy HH:mm')").await, ["2026-01-02T03:04:00"]);
        assert_eq!(
            query("SELECT TO_TIMESTAMP('2026-01-02T03:04:05.678', 'yyyy-MM-dd''T''HH:mm:ss.SSS')").await,
            ["2026-01-02T03:04:05.678"]
        );
        assert_eq!(query("SELECT TO_TIMESTAMP('2026-01-02', 'yyyy-MM-dd')").await, ["2026-01-02T00:00:00"]);
        // An offset in the text: the UTC time it denotes.
        assert_eq!(
            query("SELECT TO_TIMESTAMP('2026-01-02 08:00:00 +0800', 'yyyy-MM-dd HH:mm:ss X')").await,
            ["2026-01-02T00:00:00"]
        );
        assert_eq!(query("SELECT TO_TIMESTAMP('2026-01-02 03', 'yyyy-MM-dd HH:mm')").await, ["NULL"]);
        assert_eq!(query("SELECT arrow_typeof(TO_TIMESTAMP('2026-01-02 03:04:05'))").await, ["Timestamp(ms)"]);
    }

    #[tokio::test]
    async fn bad_arguments_are_errors_naming_them() {
        let e = query_err("SELECT TO_DATE('2026', 'yyyy-qq')").await;
        assert!(e.contains("TO_DATE") && e.contains("argument 2"), "{e}");
        let e = query_err("SELECT TO_TIMESTAMP(1)").await;
        assert!(e.contains("TO_TIMESTAMP") && e.contains("argument 1"), "{e}");
    }
}
