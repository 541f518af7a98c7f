//! The `datagen` connector: Flink's data generator, a source of random or
//! sequential rows at a given rate, for trying queries and benchmarks.

mod field;
mod generate;
mod reader;
mod source;
mod split;

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use weir_engine::source::SourceConnector;

use crate::error::ConnectorError;
use crate::options::Options;
use crate::{types, values};
use field::{FieldGen, FieldOptions};
use source::DatagenSource;

const TABLE_OPTIONS: &[&str] = &["rows-per-second", "number-of-rows"];
const FIELD_OPTIONS: &[&str] = &[
    "kind",
    "min",
    "max",
    "max-past",
    "length",
    "var-len",
    "start",
    "end",
    "null-rate",
];

/// Flink's default `'rows-per-second'`.
const DEFAULT_ROWS_PER_SECOND: u64 = 10_000;

/// Builds the source from `'rows-per-second'`, `'number-of-rows'` and the
/// `'fields.<column>.<option>'` keys, whose columns must exist.
pub(crate) fn create(options: &Options, schema: SchemaRef) -> Result<Arc<dyn SourceConnector>, ConnectorError> {
    check_types(options.connector(), &schema)?;
    let mut per_field: Vec<FieldOptions> = vec![FieldOptions::new(); schema.fields().len()];
    for (key, value) in options.entries() {
        if TABLE_OPTIONS.contains(&key) {
            continue;
        }
        let (path, _) = key
            .strip_prefix("fields.")
            .and_then(|rest| rest.rsplit_once('.'))
            .filter(|(_, option)| FIELD_OPTIONS.contains(option))
            .ok_or_else(|| options.unknown(key, allowed(&schema)))?;
        // `fields.<column>.<option>`, or `fields.<column>.<part>….<option>`
        // for the parts of a ROW, ARRAY or MAP column.
        let rest = &key["fields.".len()..];
        let (index, option) = match column_index(&schema, path) {
            Some(i) => (i, &rest[path.len() + 1..]),
            None => {
                let (column, _) = path
                    .split_once('.')
                    .ok_or_else(|| options.unknown(key, allowed(&schema)))?;
                let i = column_index(&schema, column).ok_or_else(|| options.unknown(key, allowed(&schema)))?;
                (i, &rest[column.len() + 1..])
            }
        };
        per_field[index].insert(option, (key, value));
    }
    let fields = schema
        .fields()
        .iter()
        .zip(&per_field)
        .map(|(field, opts)| FieldGen::from_options(field, opts))
        .collect::<Result<Arc<[_]>, _>>()?;
    Ok(Arc::new(DatagenSource {
        schema,
        fields,
        rows_per_second: options
            .parse("rows-per-second", values::positive_integer)?
            .unwrap_or(DEFAULT_ROWS_PER_SECOND),
        number_of_rows: options.parse("number-of-rows", values::non_negative_integer)?,
    }))
}

/// The column a `fields.<column>.*` key names: exactly, or else ignoring
/// case when that is unambiguous (unquoted SQL identifiers may have been
/// case-folded).
fn column_index(schema: &Schema, column: &str) -> Option<usize> {
    let fields = schema.fields();
    fields.iter().position(|f| f.name() == column).or_else(|| {
        let mut matches = fields
            .iter()
            .enumerate()
            .filter(|(_, f)| f.name().eq_ignore_ascii_case(column));
        match (matches.next(), matches.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        }
    })
}

/// Refuses a column whose values datagen cannot make: of a type no
/// connector reads, or holding one (in a ROW, ARRAY or MAP).
fn check_types(connector: &str, schema: &Schema) -> Result<(), ConnectorError> {
    fn makes(dt: &DataType) -> bool {
        match dt {
            DataType::Struct(fields) => fields.iter().all(|f| makes(f.data_type())),
            DataType::List(element) => makes(element.data_type()),
            DataType::Map(entries, _) => makes(entries.data_type()),
            other => types::is_supported(other),
        }
    }
    match schema.fields().iter().find(|f| !makes(f.data_type())) {
        Some(f) => Err(ConnectorError::Unsupported {
            connector: connector.to_string(),
            what: format!(
                "column '{}' has type {}, which is not supported (supported: {}, and ROW, ARRAY and MAP of them)",
                f.name(),
                types::sql_name(f.data_type()),
                types::SUPPORTED
            ),
        }),
        None => Ok(()),
    }
}

fn allowed(schema: &Schema) -> String {
    let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    format!(
        "{}, and fields.<column>.<{}> for the columns {}",
        TABLE_OPTIONS.join(", "),
        FIELD_OPTIONS.join("|"),
        columns.join(", ")
    )
}
