//! SQL column types (Flink's names) to Arrow types.

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::sql::sqlparser::ast::{
    DataType as SqlType, ExactNumberInfo, ObjectName, TimezoneInfo,
};

use crate::error::{Position, Result, SqlError};

/// The Arrow type of `TIMESTAMP(3)`, the type of every event-time column.
pub const TIMESTAMP_MS: DataType = DataType::Timestamp(TimeUnit::Millisecond, None);

/// Maps a declared column type to Arrow.
pub fn to_arrow(t: &SqlType, position: Option<Position>) -> Result<DataType> {
    let unsupported = || SqlError::unsupported(format!("column type {t}"), position);
    Ok(match t {
        SqlType::BigInt(_) | SqlType::Int8(_) | SqlType::Int64 => DataType::Int64,
        SqlType::Int(_) | SqlType::Integer(_) | SqlType::Int4(_) | SqlType::Int32 => DataType::Int32,
        SqlType::SmallInt(_) | SqlType::Int2(_) | SqlType::Int16 => DataType::Int16,
        SqlType::TinyInt(_) => DataType::Int8,
        SqlType::Double(_) | SqlType::DoublePrecision | SqlType::Float64 | SqlType::Float8 => {
            DataType::Float64
        }
        SqlType::Float(_) | SqlType::Real | SqlType::Float4 | SqlType::Float32 => DataType::Float32,
        SqlType::Boolean | SqlType::Bool => DataType::Boolean,
        SqlType::Varchar(_)
        | SqlType::Char(_)
        | SqlType::Character(_)
        | SqlType::CharacterVarying(_)
        | SqlType::String(_)
        | SqlType::Text => DataType::Utf8,
        SqlType::Bytea | SqlType::Varbinary(_) | SqlType::Binary(_) | SqlType::Bytes(_) => DataType::Binary,
        SqlType::Date => DataType::Date32,
        SqlType::Decimal(info) | SqlType::Numeric(info) | SqlType::Dec(info) => {
            let (p, s) = match info {
                ExactNumberInfo::None => (10, 0),
                ExactNumberInfo::Precision(p) => (*p, 0),
                ExactNumberInfo::PrecisionAndScale(p, s) => (*p, *s as u64),
            };
            if p == 0 || p > 38 || s > p {
                return Err(SqlError::plan(
                    format!("DECIMAL({p}, {s}): precision must be 1..38 and scale at most the precision"),
                    position,
                ));
            }
            DataType::Decimal128(p as u8, s as i8)
        }
        SqlType::Timestamp(precision, tz) => {
            if matches!(tz, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) {
                return Err(unsupported());
            }
            timestamp(*precision, t, position)?
        }
        SqlType::Custom(name, args) if is_name(name, "TIMESTAMP_LTZ") => {
            let p = match args.as_slice() {
                [] => None,
                [p] => Some(p.parse::<u64>().map_err(|_| unsupported())?),
                _ => return Err(unsupported()),
            };
            timestamp(p, t, position)?
        }
        SqlType::Custom(name, args) if is_name(name, "STRING") && args.is_empty() => DataType::Utf8,
        _ => return Err(unsupported()),
    })
}

fn is_name(name: &ObjectName, want: &str) -> bool {
    name.to_string().eq_ignore_ascii_case(want)
}

/// Weir keeps event times in milliseconds: precisions above 3 would be
/// silently truncated, so they are refused.
fn timestamp(precision: Option<u64>, t: &SqlType, position: Option<Position>) -> Result<DataType> {
    match precision {
        None | Some(0..=3) => Ok(TIMESTAMP_MS),
        Some(_) => Err(SqlError::Unsupported {
            construct: format!("column type {t}"),
            detail: Some("timestamps have millisecond precision: use TIMESTAMP(3)".into()),
            position,
        }),
    }
}

/// SQL spelling of an Arrow type, for DESCRIBE and messages.
pub fn sql_name(t: &DataType) -> String {
    match t {
        DataType::Int64 => "BIGINT".into(),
        DataType::Int32 => "INT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Float32 => "FLOAT".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "BYTES".into(),
        DataType::Date32 => "DATE".into(),
        DataType::Decimal128(p, s) => format!("DECIMAL({p}, {s})"),
        DataType::Timestamp(TimeUnit::Millisecond, None) => "TIMESTAMP(3)".into(),
        DataType::Timestamp(TimeUnit::Millisecond, Some(_)) => "TIMESTAMP_LTZ(3)".into(),
        other => other.to_string(),
    }
}
