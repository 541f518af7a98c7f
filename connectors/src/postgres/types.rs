//! Which column types a lookup reads, and how: each column is cast in the
//! query to the PostgreSQL type matching its declared type, so any column
//! Postgres can cast (an `integer` declared `BIGINT`, a `varchar(20)`
//! declared `VARCHAR`) reads without a mismatch.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float32Array, Float64Array, Int16Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::common::ScalarValue;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;


/// The PostgreSQL type a column of `dt` is read as, if Weir can map it.
pub(super) fn pg_type(dt: &DataType) -> Option<&'static str> {
    Some(match dt {
        DataType::Boolean => "bool",
        DataType::Int16 => "int2",
        DataType::Int32 => "int4",
        DataType::Int64 => "int8",
        DataType::Float32 => "float4",
        DataType::Float64 => "float8",
        DataType::Utf8 => "text",
        DataType::Timestamp(TimeUnit::Millisecond, None) => "timestamp",
        _ => return None,
    })
}

/// A key value as a query parameter (typed as its column, see
/// [`pg_type`]); `None` for a type no key column has.
pub(super) fn param(v: &ScalarValue) -> Option<Box<dyn ToSql + Send + Sync>> {
    Some(match v {
        ScalarValue::Boolean(Some(b)) => Box::new(*b),
        ScalarValue::Int16(Some(n)) => Box::new(*n),
        ScalarValue::Int32(Some(n)) => Box::new(*n),
        ScalarValue::Int64(Some(n)) => Box::new(*n),
        ScalarValue::Float32(Some(n)) => Box::new(*n),
        ScalarValue::Float64(Some(n)) => Box::new(*n),
        ScalarValue::Utf8(Some(s)) => Box::new(s.clone()),
        ScalarValue::TimestampMillisecond(Some(ms), None) => {
            Box::new(UNIX_EPOCH + std::time::Duration::from_millis(*ms as u64))
        }
        _ => return None,
    })
}

fn millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// The rows of a lookup's answer as a batch of `schema`; the query selected
/// the columns in order, cast as [`pg_type`] says.
pub(super) fn batch(schema: &SchemaRef, rows: &[Row]) -> Result<RecordBatch, String> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (i, f) in schema.fields().iter().enumerate() {
        let bad = |e: tokio_postgres::Error| format!("column '{}': {e}", f.name());
        macro_rules! column {
            ($array:ty, $t:ty) => {
                Arc::new(rows.iter().map(|r| r.try_get::<_, Option<$t>>(i)).collect::<Result<$array, _>>().map_err(bad)?)
                    as ArrayRef
            };
        }
        columns.push(match f.data_type() {
            DataType::Boolean => column!(BooleanArray, bool),
            DataType::Int16 => column!(Int16Array, i16),
            DataType::Int32 => column!(Int32Array, i32),
            DataType::Int64 => column!(Int64Array, i64),
            DataType::Float32 => column!(Float32Array, f32),
            DataType::Float64 => column!(Float64Array, f64),
            DataType::Utf8 => column!(StringArray, String),
            DataType::Timestamp(TimeUnit::Millisecond, None) => Arc::new(
                rows.iter()
                    .map(|r| r.try_get::<_, Option<SystemTime>>(i).map(|t| t.map(millis)))
                    .collect::<Result<TimestampMillisecondArray, _>>()
                    .map_err(bad)?,
            ),
            other => return Err(format!("column '{}': type {other} cannot be read", f.name())),
        });
    }
    RecordBatch::try_new(Arc::clone(schema), columns).map_err(|e| e.to_string())
}
