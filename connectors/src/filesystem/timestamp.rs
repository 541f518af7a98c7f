//! TIMESTAMP(3) values from text, in every form Flink users write them.

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::kernels::zip::zip;
use datafusion::arrow::compute::{CastOptions, cast_with_options, is_not_null};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::arrow::error::ArrowError;

/// The TIMESTAMP(3) column type.
pub(crate) const TIMESTAMP_MS: DataType = DataType::Timestamp(TimeUnit::Millisecond, None);

/// Converts a Utf8 column to TIMESTAMP(3), accepting Flink's SQL format
/// (`2026-01-01 00:00:00[.000]`), ISO-8601 (`2026-01-01T00:00:00[.123][Z|+01:00]`)
/// and epoch milliseconds (`1767225600000`), so that one table reads data
/// from any of the usual producers.
///
/// The whole column is parsed with arrow's cast kernels; values that are
/// neither form make the error name the first of them.
pub(crate) fn parse_timestamps(text: &ArrayRef, column: &str) -> Result<ArrayRef, ArrowError> {
    let lenient = CastOptions {
        safe: true,
        ..Default::default()
    };
    let dates = cast_with_options(text, &TIMESTAMP_MS, &lenient)?;
    if dates.null_count() == text.null_count() {
        return Ok(dates);
    }
    // An Int64 column casts to TIMESTAMP(3) by taking its values as epoch
    // milliseconds.
    let epoch = cast_with_options(
        &cast_with_options(text, &DataType::Int64, &lenient)?,
        &TIMESTAMP_MS,
        &lenient,
    )?;
    let merged = zip(&is_not_null(&dates)?, &dates, &epoch)?;
    if merged.null_count() == text.null_count() {
        return Ok(merged);
    }
    let bad = (0..text.len())
        .find(|&i| text.is_valid(i) && merged.is_null(i))
        .map(|i| text.as_string::<i32>().value(i))
        .unwrap_or_default();
    Err(ArrowError::ParseError(format!(
        "invalid TIMESTAMP '{bad}' for column '{column}' (expected 'yyyy-MM-dd HH:mm:ss[.SSS]', \
         ISO-8601 or epoch milliseconds)"
    )))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::StringArray;
    use datafusion::arrow::datatypes::TimestampMillisecondType;

    use super::*;

    fn parse(values: Vec<Option<&str>>) -> Result<Vec<Option<i64>>, ArrowError> {
        let text: ArrayRef = Arc::new(StringArray::from(values));
        let ts = parse_timestamps(&text, "ts")?;
        Ok(ts
            .as_primitive::<TimestampMillisecondType>()
            .iter()
            .collect())
    }

    #[test]
    fn accepts_sql_iso_and_epoch_forms() {
        let base = 1_767_225_600_000; // 2026-01-01T00:00:00Z
        let parsed = parse(vec![
            Some("2026-01-01 00:00:00.000"),
            Some("2026-01-01 00:00:01"),
            Some("2026-01-01T00:00:00Z"),
            Some("2026-01-01T00:00:00.123"),
            Some("2026-01-01T01:00:00+01:00"),
            Some("1767225600250"),
            None,
        ])
        .unwrap();
        assert_eq!(
            parsed,
            vec![
                Some(base),
                Some(base + 1000),
                Some(base),
                Some(base + 123),
                Some(base),
                Some(base + 250),
                None
            ]
        );
    }

    #[test]
    fn names_the_first_bad_value() {
        let err = parse(vec![
            Some("2026-01-01 00:00:00"),
            Some("yesterday"),
            Some("noon"),
        ])
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("invalid TIMESTAMP 'yesterday' for column 'ts'"),
            "{err}"
        );
    }
}
