//! The column types every connector reads and writes.

use datafusion::arrow::datatypes::{DataType, Schema, TimeUnit};

use crate::error::ConnectorError;

/// SQL names of the supported types, for error messages.
const SUPPORTED: &str = "TINYINT, SMALLINT, INT, BIGINT, FLOAT, DOUBLE, BOOLEAN, VARCHAR, \
                         DECIMAL(p, s), DATE, TIMESTAMP(3), TIMESTAMP_LTZ(3)";

/// Whether connectors can encode and decode values of `dt`.
pub(crate) fn is_supported(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Float32
            | DataType::Float64
            | DataType::Boolean
            | DataType::Utf8
            | DataType::Decimal128(_, _)
            | DataType::Date32
            | DataType::Timestamp(TimeUnit::Millisecond, None)
    )
}

/// The SQL name of a column type, since users wrote SQL, not Arrow.
pub(crate) fn sql_name(dt: &DataType) -> String {
    match dt {
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INT".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Utf8 => "VARCHAR".into(),
        DataType::Decimal128(p, s) => format!("DECIMAL({p}, {s})"),
        DataType::Date32 => "DATE".into(),
        DataType::Timestamp(TimeUnit::Millisecond, None) => "TIMESTAMP(3)".into(),
        other => format!("{other} (Arrow)"),
    }
}

/// Refuses a table at CREATE time rather than failing its first job.
pub(crate) fn check_schema(connector: &str, schema: &Schema) -> Result<(), ConnectorError> {
    match schema
        .fields()
        .iter()
        .find(|f| !is_supported(f.data_type()))
    {
        Some(f) => Err(ConnectorError::Unsupported {
            connector: connector.to_string(),
            what: format!(
                "column '{}' has type {}, which is not supported (supported: {SUPPORTED})",
                f.name(),
                sql_name(f.data_type())
            ),
        }),
        None => Ok(()),
    }
}
