//! SQL column types (Flink's names) to Arrow types.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Fields, TimeUnit};
use datafusion::sql::sqlparser::ast::{
    ArrayElemTypeDef, DataType as SqlType, ExactNumberInfo, ObjectName, StructField, TimezoneInfo,
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
            timestamp(p, t, position)?;
            crate::time_zone::ltz_type()
        }
        SqlType::Custom(name, args) if is_name(name, "STRING") && args.is_empty() => DataType::Utf8,
        // `ROW` without its fields (with them it is a STRUCT by now).
        SqlType::Custom(name, _) if is_name(name, "ROW") => {
            return Err(SqlError::plan("ROW needs at least one field: ROW<name TYPE, …>", position));
        }
        // Flink's `ROW<…>`, which the parser reads as `STRUCT<…>`
        // (`crate::dialect::row_types_as_structs`).
        SqlType::Struct(fields, _) => DataType::Struct(row_fields(fields, position)?),
        SqlType::Array(ArrayElemTypeDef::AngleBracket(element)) => {
            DataType::List(Arc::new(Field::new_list_field(to_arrow(element, position)?, true)))
        }
        SqlType::Map(key, value) => map_type(to_arrow(key, position)?, to_arrow(value, position)?),
        _ => return Err(unsupported()),
    })
}

/// The fields of a `ROW<name TYPE, …>`: every one named (Flink has no
/// anonymous fields), each name once, all nullable (Flink's `NOT NULL`
/// on a field is not parsed).
fn row_fields(fields: &[StructField], position: Option<Position>) -> Result<Fields> {
    if fields.is_empty() {
        return Err(SqlError::plan("ROW needs at least one field: ROW<name TYPE, …>", position));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(fields.len());
    for f in fields {
        let Some(name) = &f.field_name else {
            return Err(SqlError::plan(
                format!("ROW field of type {} needs a name: ROW<name TYPE, …>", f.field_type),
                position,
            ));
        };
        if f.options.is_some() {
            return Err(SqlError::unsupported(format!("OPTIONS on ROW field '{}'", name.value), position));
        }
        if !seen.insert(name.value.as_str()) {
            return Err(SqlError::plan(format!("ROW field '{}' is declared twice", name.value), position));
        }
        out.push(Field::new(&name.value, to_arrow(&f.field_type, position)?, true));
    }
    Ok(out.into())
}

/// `MAP<key, value>` as Arrow lays maps out: a list of `entries` structs
/// of a non-null `key` and a nullable `value`, in the order they came
/// (Flink's maps are unordered, so keys are not sorted).
fn map_type(key: DataType, value: DataType) -> DataType {
    let entries = Fields::from(vec![Field::new("key", key, false), Field::new("value", value, true)]);
    DataType::Map(Arc::new(Field::new("entries", DataType::Struct(entries), false)), false)
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

/// SQL spelling of an Arrow type, for DESCRIBE and messages: Flink's
/// names, so that a type shown can be declared again as shown.
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
        DataType::Struct(fields) => {
            let fields: Vec<String> =
                fields.iter().map(|f| format!("{} {}", field_name(f.name()), nested_name(f.data_type()))).collect();
            format!("ROW<{}>", fields.join(", "))
        }
        DataType::List(item) | DataType::LargeList(item) | DataType::FixedSizeList(item, _) => {
            format!("ARRAY<{}>", nested_name(item.data_type()))
        }
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                format!("MAP<{}, {}>", nested_name(kv[0].data_type()), nested_name(kv[1].data_type()))
            }
            _ => t.to_string(),
        },
        other => other.to_string(),
    }
}

/// The name of a type inside ROW, ARRAY or MAP: Flink's `STRING` for
/// text, as Flink's DESCRIBE shows nested fields.
fn nested_name(t: &DataType) -> String {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "STRING".into(),
        other => sql_name(other),
    }
}

/// A ROW field's name as it must be written to be read back: backquoted
/// unless it is a plain identifier (letters, digits and `_`, not first a
/// digit).
fn field_name(name: &str) -> String {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain { name.to_string() } else { format!("`{}`", name.replace('`', "``")) }
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::parser::Parser;
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;

    use super::*;
    use crate::dialect::{WeirDialect, nested_types};

    /// A declared type as `CREATE TABLE` reads it (same tokens rewrite).
    fn declared(sql: &str) -> Result<DataType> {
        let dialect = WeirDialect::default();
        let mut tokens = Tokenizer::new(&dialect, sql).tokenize_with_location().expect("tokens");
        nested_types(&mut tokens)?;
        let t = Parser::new(&dialect)
            .with_tokens_with_locations(tokens)
            .parse_data_type()
            .map_err(|e| SqlError::Syntax { message: e.to_string(), position: None })?;
        to_arrow(&t, None)
    }

    fn row(fields: Vec<Field>) -> DataType {
        DataType::Struct(fields.into())
    }

    fn list(item: DataType) -> DataType {
        DataType::List(Arc::new(Field::new("item", item, true)))
    }

    #[test]
    fn nested_types_map_to_arrow() {
        assert_eq!(
            declared("ROW<id BIGINT, `dateTime` TIMESTAMP(3), name STRING>").unwrap(),
            row(vec![
                Field::new("id", DataType::Int64, true),
                Field::new("dateTime", TIMESTAMP_MS, true),
                Field::new("name", DataType::Utf8, true),
            ])
        );
        assert_eq!(declared("ARRAY<INT>").unwrap(), list(DataType::Int32));
        let DataType::Map(entries, sorted) = declared("MAP<STRING, BIGINT>").unwrap() else { panic!("a map") };
        assert!(!sorted);
        assert_eq!(entries.name(), "entries");
        let DataType::Struct(kv) = entries.data_type() else { panic!("entries") };
        assert_eq!((kv[0].name().as_str(), kv[0].is_nullable(), kv[0].data_type()), ("key", false, &DataType::Utf8));
        assert_eq!((kv[1].name().as_str(), kv[1].is_nullable(), kv[1].data_type()), ("value", true, &DataType::Int64));
        // Nested arbitrarily, `>>` closing two at once; Flink's ROW(…) form.
        assert_eq!(
            declared("ARRAY<ROW<a ARRAY<DECIMAL(10, 2)>>>").unwrap(),
            list(row(vec![Field::new("a", list(DataType::Decimal128(10, 2)), true)]))
        );
        assert_eq!(
            declared("ROW(a INT, b ROW(c STRING))").unwrap(),
            declared("ROW<a INT, b ROW<c STRING>>").unwrap()
        );
    }

    #[test]
    fn describe_names_round_trip() {
        for sql in [
            "ROW<id BIGINT, name STRING>",
            "ARRAY<INT>",
            "MAP<STRING, BIGINT>",
            "ROW<`dateTime` TIMESTAMP(3), tags ARRAY<STRING>, attrs MAP<STRING, ROW<x DOUBLE, d DATE>>>",
            "ARRAY<ARRAY<DECIMAL(10, 2)>>",
            "ROW<`a b` BOOLEAN, `x``y` TINYINT>",
        ] {
            let t = declared(sql).unwrap();
            let name = sql_name(&t);
            assert_eq!(declared(&name).unwrap(), t, "{sql} shown as {name}");
        }
        assert_eq!(sql_name(&declared("ROW<id BIGINT, name VARCHAR>").unwrap()), "ROW<id BIGINT, name STRING>");
        assert_eq!(sql_name(&declared("MAP<VARCHAR, BIGINT>").unwrap()), "MAP<STRING, BIGINT>");
        assert_eq!(sql_name(&declared("ARRAY<INT>").unwrap()), "ARRAY<INT>");
        assert_eq!(sql_name(&declared("ROW<`dateTime` TIMESTAMP(3)>").unwrap()), "ROW<dateTime TIMESTAMP(3)>");
    }

    #[test]
    fn malformed_nested_types_are_errors() {
        for (sql, want) in [
            ("ARRAY<>", "Expected"),
            ("ARRAY<INT", "Expected"),
            ("ROW<>", "Expected"),
        ("ROW", "needs at least one field"),
            ("MAP<STRING>", "Expected"),
            ("ROW<INT>", "needs a name"),
            ("ROW<a INT, a BIGINT>", "declared twice"),
            ("ROW<a INTERVAL>", "INTERVAL"),
            ("ARRAY<TIMESTAMP(6)>", "millisecond"),
        ] {
            let e = declared(sql).expect_err(sql).to_string();
            assert!(e.contains(want), "{sql}: {e}");
        }
    }
}
