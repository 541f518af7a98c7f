//! Timestamps written exactly as Flink writes them, so that Weir's output
//! files and printed rows compare equal to Flink's, text for text.

use std::fmt::Write;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit, TimestampMillisecondType};
use datafusion::arrow::error::ArrowError;

/// How a layout separates the date from the time, and trims the seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Flink's json/csv `SQL` standard: `2026-01-01 00:00:10.5` — seconds
    /// always, the fraction with as few digits as it needs.
    Sql,
    /// Flink's json `ISO-8601` standard: `2026-01-01T00:00:10.5`.
    Iso8601,
    /// Java's `LocalDateTime.toString()`, as Flink's print connector shows
    /// rows: `2026-01-01T00:00`, `2026-01-01T00:00:10`, `…T00:00:10.500`.
    JavaLocal,
}

/// Writes epoch milliseconds in `layout`.
pub(crate) fn write_timestamp(out: &mut String, ms: i64, layout: Layout) {
    let days = ms.div_euclid(86_400_000);
    let of_day = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (h, mi, s, frac) = (of_day / 3_600_000, of_day / 60_000 % 60, of_day / 1000 % 60, of_day % 1000);
    let sep = if layout == Layout::Sql { ' ' } else { 'T' };
    let _ = write!(out, "{y:04}-{m:02}-{d:02}{sep}{h:02}:{mi:02}");
    if layout == Layout::JavaLocal {
        if s != 0 || frac != 0 {
            let _ = write!(out, ":{s:02}");
        }
        if frac != 0 {
            let _ = write!(out, ".{frac:03}");
        }
        return;
    }
    let _ = write!(out, ":{s:02}");
    if frac != 0 {
        let digits = format!("{frac:03}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
}

/// Replaces every `TIMESTAMP(3)` column by its text in `layout`, so that
/// arrow's writers emit Flink's strings.
pub(crate) fn format_timestamps(batch: &RecordBatch, layout: Layout) -> Result<RecordBatch, ArrowError> {
    let schema = batch.schema();
    if !schema
        .fields()
        .iter()
        .any(|f| matches!(f.data_type(), DataType::Timestamp(TimeUnit::Millisecond, _)))
    {
        return Ok(batch.clone());
    }
    let mut fields = Vec::with_capacity(schema.fields().len());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        match field.data_type() {
            DataType::Timestamp(TimeUnit::Millisecond, _) => {
                fields.push(Field::new(field.name(), DataType::Utf8, field.is_nullable()));
                columns.push(timestamp_text(column, layout));
            }
            _ => {
                fields.push(field.as_ref().clone());
                columns.push(Arc::clone(column));
            }
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

/// The text of every timestamp of `times` (a TIMESTAMP(3) column) in
/// `layout`; NULL stays NULL.
pub(crate) fn timestamp_text(times: &ArrayRef, layout: Layout) -> ArrayRef {
    let times = times.as_primitive::<TimestampMillisecondType>();
    let mut text = StringBuilder::with_capacity(times.len(), times.len() * 24);
    let mut scratch = String::with_capacity(32);
    for i in 0..times.len() {
        if times.is_null(i) {
            text.append_null();
        } else {
            scratch.clear();
            write_timestamp(&mut scratch, times.value(i), layout);
            text.append_value(&scratch);
        }
    }
    Arc::new(text.finish())
}

/// Year, month, day of days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(ms: i64, layout: Layout) -> String {
        let mut s = String::new();
        write_timestamp(&mut s, ms, layout);
        s
    }

    #[test]
    fn like_flink() {
        let t = 1_767_225_600_000; // 2026-01-01T00:00:00Z
        assert_eq!(show(t, Layout::JavaLocal), "2026-01-01T00:00");
        assert_eq!(show(t + 10_000, Layout::JavaLocal), "2026-01-01T00:00:10");
        assert_eq!(show(t + 10_500, Layout::JavaLocal), "2026-01-01T00:00:10.500");
        assert_eq!(show(t, Layout::Sql), "2026-01-01 00:00:00");
        assert_eq!(show(t + 10_500, Layout::Sql), "2026-01-01 00:00:10.5");
        assert_eq!(show(t + 10_123, Layout::Iso8601), "2026-01-01T00:00:10.123");
        assert_eq!(show(-1, Layout::Sql), "1969-12-31 23:59:59.999");
        assert_eq!(show(951_782_400_000, Layout::Sql), "2000-02-29 00:00:00");
    }
}
