//! Flink's `CONVERT_TZ(text, from_zone, to_zone)`, which DataFusion lacks:
//! a `yyyy-MM-dd HH:mm:ss` wall-clock time in one zone written as the
//! wall-clock time of the same instant in another, a STRING.
//!
//! As Flink's (a `SimpleDateFormat` parse), the text is read from its start
//! and what follows the seconds is ignored; text that does not parse is
//! NULL. Zones are read as Java's `TimeZone.getTimeZone` reads them
//! (`LocalZone::java_id`: full names, `PST`-style IDs, `GMT-08:00`), but an
//! unknown zone is an error naming it, where Java would silently use GMT.

use std::sync::Arc;

use chrono::DateTime;
use chrono::format::{Item, Parsed, parse_and_remainder};
use datafusion::arrow::array::{Array, AsArray, StringArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};

use super::date_format::is_text;
use super::java_pattern::{DEFAULT_PATTERN, JavaPattern};
use super::unix_timestamp::completed;
use crate::time_zone::LocalZone;

/// `CONVERT_TZ(text, from_zone, to_zone)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct ConvertTz {
    signature: Signature,
}

impl ConvertTz {
    pub(super) fn new() -> Self {
        Self {
            signature: Signature::any(3, Volatility::Immutable),
        }
    }
}

/// The zone of the last row, read again only when the next row names
/// another (zones are nearly always constants).
#[derive(Default)]
struct LastZone(Option<(String, LocalZone)>);

impl LastZone {
    fn get(&mut self, name: &str, argument: usize) -> Result<&LocalZone> {
        if self.0.as_ref().is_none_or(|(n, _)| n != name) {
            let zone = LocalZone::java_id(name)
                .map_err(|why| DataFusionError::Execution(format!("CONVERT_TZ (argument {argument}): {why}")))?;
            self.0 = Some((name.to_string(), zone));
        }
        match &self.0 {
            Some((_, zone)) => Ok(zone),
            None => Err(DataFusionError::Internal("CONVERT_TZ: zone not kept".into())),
        }
    }
}

impl ScalarUDFImpl for ConvertTz {
    fn name(&self) -> &str {
        "convert_tz"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        for (i, t) in args.iter().enumerate() {
            if !is_text(t) {
                return plan_err!("CONVERT_TZ takes strings (argument {}), not {t}", i + 1);
            }
        }
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let texts: Vec<StringArray> = args
            .args
            .iter()
            .map(|a| Ok(cast(&a.to_array(n)?, &DataType::Utf8)?.as_string::<i32>().clone()))
            .collect::<Result<_>>()?;
        let [texts, froms, tos] = texts.as_slice() else {
            return plan_err!("CONVERT_TZ takes three arguments");
        };
        let pattern = JavaPattern::new(DEFAULT_PATTERN).map_err(DataFusionError::Execution)?;
        let items = pattern.parse_items().map_err(DataFusionError::Execution)?;
        let (mut from_zone, mut to_zone) = (LastZone::default(), LastZone::default());
        let mut out = StringBuilder::with_capacity(n, n * 19);
        for row in 0..n {
            if texts.is_null(row) || froms.is_null(row) || tos.is_null(row) {
                out.append_null();
                continue;
            }
            let from = from_zone.get(froms.value(row), 2)?;
            let to = to_zone.get(tos.value(row), 3)?;
            let Some(instant) = instant_of(texts.value(row), &items, from) else {
                out.append_null();
                continue;
            };
            match DateTime::from_timestamp_millis(to.to_local(instant)) {
                Some(local) => {
                    // Written into the builder's buffer: no row allocates.
                    pattern
                        .format(&local.naive_utc(), &mut out)
                        .map_err(|e| DataFusionError::Execution(format!("CONVERT_TZ: {e}")))?;
                    out.append_value("");
                }
                None => out.append_null(),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// The instant (epoch milliseconds) of the wall-clock time at the start of
/// `text` in `zone`; `None` if it does not parse.
fn instant_of(text: &str, items: &[Item<'static>], zone: &LocalZone) -> Option<i64> {
    let mut parsed = Parsed::new();
    parse_and_remainder(&mut parsed, text, items.iter()).ok()?;
    let (local, _) = completed(parsed)?;
    Some(zone.to_utc(local.and_utc().timestamp_millis()))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{query, query_err};

    /// Flink's documented example (docs/data/sql_functions.yml).
    #[tokio::test]
    async fn flinks_example() {
        assert_eq!(
            query("SELECT convert_tz('1970-01-01 00:00:00', 'UTC', 'America/Los_Angeles')").await,
            ["1969-12-31 16:00:00"]
        );
    }

    /// Java's zone forms: a three-letter ID, a custom offset, a tz database
    /// name without a slash; summer time in Los Angeles (UTC-7).
    #[tokio::test]
    async fn java_zone_forms() {
        for (sql, expected) in [
            ("convert_tz('2024-07-01 12:00:00', 'PST', 'UTC')", "2024-07-01 19:00:00"),
            ("convert_tz('2024-01-01 12:00:00', 'PST', 'UTC')", "2024-01-01 20:00:00"),
            (
                "convert_tz('2024-01-01 00:30:00', 'GMT+08:00', 'UTC')",
                "2023-12-31 16:30:00",
            ),
            (
                "convert_tz('2024-01-01 00:30:00', 'Asia/Shanghai', 'GMT-08:00')",
                "2023-12-31 08:30:00",
            ),
            ("convert_tz('2024-01-01 00:00:00', 'UTC', 'EST')", "2023-12-31 19:00:00"),
            ("convert_tz('2024-01-01 00:00:00', 'UTC', 'CTT')", "2024-01-01 08:00:00"),
        ] {
            assert_eq!(query(&format!("SELECT {sql}")).await, [expected], "{sql}");
        }
    }

    /// Text after the seconds is ignored (Java's parse of a prefix);
    /// text that is no time and NULLs are NULL.
    #[tokio::test]
    async fn prefixes_nulls_and_bad_text() {
        assert_eq!(
            query("SELECT convert_tz('2024-01-01 10:00:00.123', 'UTC', 'Asia/Tokyo')").await,
            ["2024-01-01 19:00:00"]
        );
        assert_eq!(query("SELECT convert_tz('noon', 'UTC', 'Asia/Tokyo')").await, ["NULL"]);
        assert_eq!(query("SELECT convert_tz(NULL, 'UTC', 'Asia/Tokyo')").await, ["NULL"]);
        assert_eq!(
            query("SELECT convert_tz('2024-01-01 10:00:00', CAST(NULL AS VARCHAR), 'Asia/Tokyo')").await,
            ["NULL"]
        );
    }

    #[tokio::test]
    async fn unknown_zones_and_types_are_errors() {
        let e = query_err("SELECT convert_tz('2024-01-01 10:00:00', 'Mars/Olympus', 'UTC')").await;
        assert!(
            e.contains("CONVERT_TZ (argument 2): unknown time zone 'Mars/Olympus'"),
            "{e}"
        );
        let e = query_err("SELECT convert_tz(1, 'UTC', 'UTC')").await;
        assert!(e.contains("CONVERT_TZ takes strings (argument 1)"), "{e}");
    }
}
