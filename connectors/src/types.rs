//! The column types every connector reads and writes.

use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};

use crate::error::ConnectorError;

/// SQL names of the supported types, for error messages.
pub(crate) const SUPPORTED: &str = "TINYINT, SMALLINT, INT, BIGINT, FLOAT, DOUBLE, BOOLEAN, VARCHAR, \
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
        DataType::Struct(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .map(|f| format!("{} {}", f.name(), nested_name(f.data_type())))
                .collect();
            format!("ROW<{}>", fields.join(", "))
        }
        DataType::List(item) => format!("ARRAY<{}>", nested_name(item.data_type())),
        DataType::Map(_, _) => match map_key_value(dt) {
            Some((k, v)) => format!("MAP<{}, {}>", nested_name(k), nested_name(v)),
            None => format!("{dt} (Arrow)"),
        },
        other => format!("{other} (Arrow)"),
    }
}

/// A type's name inside ROW, ARRAY or MAP, where Flink shows text as
/// `STRING`.
fn nested_name(dt: &DataType) -> String {
    match dt {
        DataType::Utf8 => "STRING".into(),
        other => sql_name(other),
    }
}

/// The key and value types of a MAP.
fn map_key_value(dt: &DataType) -> Option<(&DataType, &DataType)> {
    let DataType::Map(entries, _) = dt else {
        return None;
    };
    match entries.data_type() {
        DataType::Struct(kv) if kv.len() == 2 => Some((kv[0].data_type(), kv[1].data_type())),
        _ => None,
    }
}

/// Why the JSON format cannot hold the nested type `dt`, if it cannot:
/// ROW, ARRAY and MAP nest supported types at any depth, and a MAP's keys
/// are text, since JSON object keys are (Flink's json format refuses other
/// keys too).
fn json_refuses(dt: &DataType) -> Option<String> {
    match dt {
        DataType::Struct(fields) => fields.iter().find_map(|f| json_refuses(f.data_type())),
        DataType::List(item) => json_refuses(item.data_type()),
        DataType::Map(_, _) => match map_key_value(dt) {
            Some((DataType::Utf8, v)) => json_refuses(v),
            Some((k, _)) => Some(format!(
                "MAP keys must be STRING in the 'json' format, not {}",
                sql_name(k)
            )),
            None => Some("this MAP layout is not supported".into()),
        },
        dt if is_supported(dt) => None,
        dt => Some(format!(
            "{} is not supported inside ROW, ARRAY or MAP (supported: {SUPPORTED})",
            sql_name(dt)
        )),
    }
}

/// Whether `dt` is a ROW, ARRAY or MAP.
fn is_nested(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Struct(_) | DataType::List(_) | DataType::Map(_, _)
    )
}

/// Refuses, at CREATE time, a column that `format` (`json` or `csv`)
/// cannot hold, naming it: JSON holds ROW, ARRAY and MAP columns too, CSV
/// (one text field per column) does not.
pub(crate) fn check_format_schema(
    connector: &str,
    format: &str,
    schema: &Schema,
) -> Result<(), ConnectorError> {
    let refused = |f: &Field, why: String| ConnectorError::Unsupported {
        connector: connector.to_string(),
        what: format!(
            "column '{}' has type {}: {why}",
            f.name(),
            sql_name(f.data_type())
        ),
    };
    let (nested, flat): (Vec<_>, Vec<_>) = schema
        .fields()
        .iter()
        .cloned()
        .partition(|f| is_nested(f.data_type()));
    for f in &nested {
        let why = match format {
            "json" => json_refuses(f.data_type()),
            _ => Some(format!(
                "the '{format}' format cannot hold ROW, ARRAY or MAP columns (use 'format' = 'json')"
            )),
        };
        if let Some(why) = why {
            return Err(refused(f, why));
        }
    }
    check_schema(connector, &Schema::new(flat))
}

/// Refuses a table at CREATE time rather than failing its first job: a
/// column of a type no connector reads or writes (ROW, ARRAY and MAP
/// included: [`check_format_schema`] lets formats that hold them pass).
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
