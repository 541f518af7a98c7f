//! How a column's values travel to PostgreSQL when the sink writes them:
//! a whole Arrow column becomes one array parameter (`$1::int8[]`), which
//! the statement `unnest`s into rows, so a statement carries many rows in
//! as many parameters as the table has columns, and its text (prepared
//! once per connection) does not depend on the number of rows.
//!
//! Postgres's assignment casts take each array's element type to the
//! column's (an `int8` into an `integer` column, a `timestamp` into a
//! `timestamptz`, whose session time zone the sink sets to UTC). DECIMAL
//! and DATE travel as text and are cast in the statement, so that no
//! precision is lost and no date crate is needed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, Schema, TimeUnit,
    TimestampMillisecondType,
};
use tokio_postgres::types::ToSql;

use crate::error::ConnectorError;
use crate::types::sql_name;

/// A column's parameter: the array type it is sent as and the cast of an
/// element to the value written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Param {
    pub array_type: &'static str,
    pub cast: Option<&'static str>,
}

/// The parameter of a column of type `dt`, if the sink can write it.
pub(super) fn param(dt: &DataType) -> Option<Param> {
    let plain = |array_type| Some(Param { array_type, cast: None });
    match dt {
        DataType::Boolean => plain("bool[]"),
        DataType::Int8 | DataType::Int16 => plain("int2[]"),
        DataType::Int32 => plain("int4[]"),
        DataType::Int64 => plain("int8[]"),
        DataType::Float32 => plain("float4[]"),
        DataType::Float64 => plain("float8[]"),
        DataType::Utf8 => plain("text[]"),
        DataType::Timestamp(TimeUnit::Millisecond, None) => plain("timestamp[]"),
        DataType::Decimal128(_, _) => Some(Param {
            array_type: "text[]",
            cast: Some("numeric"),
        }),
        DataType::Date32 => Some(Param {
            array_type: "text[]",
            cast: Some("date"),
        }),
        _ => None,
    }
}

/// Refuses, at CREATE TABLE, a column the sink cannot write (and, as its
/// types are the lookup's and more, that lookups cannot read either).
pub(super) fn check(connector: &str, schema: &Schema) -> Result<(), ConnectorError> {
    match schema.fields().iter().find(|f| param(f.data_type()).is_none()) {
        Some(f) => Err(ConnectorError::Unsupported {
            connector: connector.into(),
            what: format!(
                "column '{}' has type {}, which PostgreSQL tables cannot hold in Weir (supported: BOOLEAN, TINYINT, \
                 SMALLINT, INT, BIGINT, FLOAT, DOUBLE, DECIMAL(p, s), VARCHAR, DATE, TIMESTAMP(3), TIMESTAMP_LTZ(3))",
                f.name(),
                sql_name(f.data_type())
            ),
        }),
        None => Ok(()),
    }
}

/// A parameter value: one column's values as a Postgres array.
pub(super) type Value<'a> = Box<dyn ToSql + Sync + Send + 'a>;

/// The instant `ms` milliseconds after the epoch (before it when negative).
fn instant(ms: i64) -> SystemTime {
    let d = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 { UNIX_EPOCH + d } else { UNIX_EPOCH - d }
}

/// Column `column` as the array parameter [`param`] says.
pub(super) fn value(column: &ArrayRef) -> Result<Value<'_>, String> {
    macro_rules! values {
        ($t:ty, $into:ty) => {
            Box::new(
                column
                    .as_primitive::<$t>()
                    .iter()
                    .map(|v| v.map(<$into>::from))
                    .collect::<Vec<Option<$into>>>(),
            )
        };
    }
    Ok(match column.data_type() {
        DataType::Boolean => Box::new(column.as_boolean().iter().collect::<Vec<_>>()),
        DataType::Int8 => values!(Int8Type, i16),
        DataType::Int16 => values!(Int16Type, i16),
        DataType::Int32 => values!(Int32Type, i32),
        DataType::Int64 => values!(Int64Type, i64),
        DataType::Float32 => values!(Float32Type, f32),
        DataType::Float64 => values!(Float64Type, f64),
        DataType::Utf8 => Box::new(column.as_string::<i32>().iter().collect::<Vec<Option<&str>>>()),
        DataType::Timestamp(TimeUnit::Millisecond, None) => Box::new(
            column
                .as_primitive::<TimestampMillisecondType>()
                .iter()
                .map(|v| v.map(instant))
                .collect::<Vec<_>>(),
        ),
        DataType::Decimal128(_, _) | DataType::Date32 => {
            let text = cast(column, &DataType::Utf8).map_err(|e| e.to_string())?;
            let text = text.as_string::<i32>();
            Box::new(
                (0..text.len())
                    .map(|i| text.is_valid(i).then(|| text.value(i).to_string()))
                    .collect::<Vec<_>>(),
            )
        }
        other => return Err(format!("type {} cannot be written", sql_name(other))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_millis_are_before_the_epoch() {
        assert_eq!(instant(-1500), UNIX_EPOCH - Duration::from_millis(1500));
        assert_eq!(instant(2500), UNIX_EPOCH + Duration::from_millis(2500));
    }
}
