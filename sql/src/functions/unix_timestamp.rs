//! Flink's `UNIX_TIMESTAMP()` (now, in epoch seconds) and
//! `UNIX_TIMESTAMP(text[, pattern])` (a time in a Java pattern, `yyyy-MM-dd
//! HH:mm:ss` by default, as epoch seconds). DataFusion has no such
//! function.
//!
//! As Flink's, parsing reads a prefix of the text (what follows the
//! pattern is ignored), an offset in the text (`X`) wins over Weir's zone
//! (UTC), and text that does not parse gives `Long.MIN_VALUE`
//! (-9223372036854775808) rather than NULL or an error.

use std::sync::Arc;

use crate::time_zone::LocalZone;

use chrono::NaiveDateTime;
use chrono::format::{Item, Parsed, parse_and_remainder};
use datafusion::arrow::array::{Array, AsArray, Int64Array, Int64Builder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};

use super::date_format::{Patterns, is_text};
use super::java_pattern::JavaPattern;

/// What Flink returns for text its pattern does not parse.
const UNPARSED: i64 = i64::MIN;

/// `UNIX_TIMESTAMP([text[, pattern]])`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct UnixTimestamp {
    signature: Signature,
    /// The session's zone: a text without an offset is its wall-clock time.
    zone: LocalZone,
}

impl UnixTimestamp {
    /// The function reading times without an offset in `zone`.
    pub fn new(zone: &LocalZone) -> Self {
        Self {
            zone: zone.clone(),
            // Volatile for the clock of the form without arguments.
            signature: Signature::one_of(
                vec![TypeSignature::Nullary, TypeSignature::Any(1), TypeSignature::Any(2)],
                Volatility::Volatile,
            ),
        }
    }
}

impl ScalarUDFImpl for UnixTimestamp {
    fn name(&self) -> &str {
        "unix_timestamp"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        for (i, t) in args.iter().enumerate() {
            if !is_text(t) {
                return plan_err!("UNIX_TIMESTAMP takes a string (argument {}), not {t}", i + 1);
            }
        }
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(text) = args.args.first() else {
            // The clock, read once per batch.
            let now = weir_engine::message::now_ms().div_euclid(1000);
            return Ok(ColumnarValue::Array(Arc::new(Int64Array::from_value(
                now,
                args.number_rows,
            ))));
        };
        let mut patterns = match args.args.get(1) {
            Some(p) => Patterns::new("UNIX_TIMESTAMP", 2, p)?,
            None => Patterns::default_pattern("UNIX_TIMESTAMP")?,
        };
        let texts = cast(&text.to_array(args.number_rows)?, &DataType::Utf8)?;
        let texts = texts.as_string::<i32>();
        let mut out = Int64Builder::with_capacity(texts.len());
        // The parse items of the last pattern, kept while it repeats.
        let mut items: Option<(JavaPattern, Vec<Item<'static>>)> = None;
        for (row, text) in texts.iter().enumerate() {
            let (Some(text), Some(pattern)) = (text, patterns.get(row)?) else {
                out.append_null();
                continue;
            };
            if items.as_ref().is_none_or(|(p, _)| p != pattern) {
                let parse = pattern.parse_items().map_err(|why| {
                    DataFusionError::Execution(format!("UNIX_TIMESTAMP: the pattern (argument 2) cannot parse: {why}"))
                })?;
                items = Some((pattern.clone(), parse));
            }
            let Some((_, parse)) = &items else {
                return exec_err!("UNIX_TIMESTAMP: no pattern");
            };
            out.append_value(seconds(text, parse, &self.zone).unwrap_or(UNPARSED));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// The epoch seconds of the time at the start of `text`; what the pattern
/// leaves out is Java's default (1970-01-01, midnight, AM); a time without
/// an offset is `zone`'s wall-clock time, as Flink reads it.
fn seconds(text: &str, items: &[Item<'static>], zone: &LocalZone) -> Option<i64> {
    let mut parsed = Parsed::new();
    parse_and_remainder(&mut parsed, text, items.iter()).ok()?;
    let (local, offset) = completed(parsed)?;
    match offset {
        Some(offset) => Some(local.and_utc().timestamp() - i64::from(offset)),
        None => Some(zone.to_utc(local.and_utc().timestamp_millis()).div_euclid(1000)),
    }
}

/// The wall-clock time of `parsed` with what the pattern left out set to
/// Java's default (1970-01-01, midnight, AM), and the offset the text gave,
/// if any; `None` when the fields do not make a time.
pub(super) fn completed(mut parsed: Parsed) -> Option<(NaiveDateTime, Option<i32>)> {
    if parsed.year().is_none() && parsed.year_mod_100().is_none() {
        parsed.set_year(1970).ok()?;
    }
    if parsed.month().is_none() && parsed.ordinal().is_none() {
        parsed.set_month(1).ok()?;
    }
    if parsed.day().is_none() && parsed.ordinal().is_none() {
        parsed.set_day(1).ok()?;
    }
    if parsed.hour_mod_12().is_none() {
        parsed.set_hour(0).ok()?;
    }
    if parsed.hour_div_12().is_none() {
        parsed.set_ampm(false).ok()?;
    }
    if parsed.minute().is_none() {
        parsed.set_minute(0).ok()?;
    }
    if parsed.second().is_none() {
        parsed.set_second(0).ok()?;
    }
    let offset = parsed.offset();
    let local = parsed.to_naive_datetime_with_offset(offset.unwrap_or(0)).ok()?;
    Some((local, offset))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{query, query_err};

    /// Flink's docs (docs/data/sql_functions.yml, "UNIX_TIMESTAMP"), whose
    /// examples run in Europe/Berlin (UTC+1 in 1970); Weir's zone is UTC, so
    /// a time without an offset is an hour later: 25201 + 3600.
    #[tokio::test]
    async fn parses_as_flinks_docs_say() {
        assert_eq!(
            query("SELECT UNIX_TIMESTAMP('1970-01-01 08:00:01.001', 'yyyy-MM-dd HH:mm:ss.SSS')").await,
            ["28801"]
        );
        // The offset in the text wins.
        assert_eq!(
            query("SELECT UNIX_TIMESTAMP('1970-01-01 08:00:01.001 +0800', 'yyyy-MM-dd HH:mm:ss.SSS X')").await,
            ["1"]
        );
        // What follows the pattern is ignored.
        assert_eq!(
            query("SELECT UNIX_TIMESTAMP('1970-01-01 08:00:01.001 +0800', 'yyyy-MM-dd HH:mm:ss.SSS')").await,
            ["28801"]
        );
        // Text the pattern does not parse: Long.MIN_VALUE.
        assert_eq!(
            query("SELECT UNIX_TIMESTAMP('1970-01-01 08:00:01.001', 'yyyy-MM-dd HH:mm:ss.SSS X')").await,
            ["-9223372036854775808"]
        );
    }

    #[tokio::test]
    async fn default_pattern_nulls_and_the_clock() {
        assert_eq!(
            query("SELECT UNIX_TIMESTAMP('2026-01-02 03:04:05')").await,
            ["1767323045"]
        );
        assert_eq!(
            query("SELECT UNIX_TIMESTAMP('02/01/2026', 'dd/MM/yyyy')").await,
            ["1767312000"]
        );
        assert_eq!(query("SELECT UNIX_TIMESTAMP(CAST(NULL AS VARCHAR))").await, ["NULL"]);
        let now: i64 = query("SELECT UNIX_TIMESTAMP()").await[0].parse().unwrap();
        // After this test was written, and in seconds rather than millis.
        assert!(now > 1_767_225_600 && now < 10_000_000_000, "{now}");
        let e = query_err("SELECT UNIX_TIMESTAMP('x', 'yyyy-qq')").await;
        assert!(e.contains("UNIX_TIMESTAMP") && e.contains("argument 2"), "{e}");
    }
}
