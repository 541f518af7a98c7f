//! The `datagen` connector: Flink's data generator, a source of random or
//! sequential rows at a given rate, for trying queries and benchmarks.

mod field;
mod generate;
mod reader;
mod source;
mod split;

use std::sync::Arc;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
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
    "start",
    "end",
    "null-rate",
];

/// Flink's default `'rows-per-second'`.
const DEFAULT_ROWS_PER_SECOND: u64 = 10_000;

/// Builds the source from `'rows-per-second'`, `'number-of-rows'` and the
/// `'fields.<column>.<option>'` keys, whose columns must exist.
pub(crate) fn create(
    options: &Options,
    schema: SchemaRef,
) -> Result<Arc<dyn SourceConnector>, ConnectorError> {
    types::check_schema(options.connector(), &schema)?;
    let mut per_field: Vec<FieldOptions> = vec![FieldOptions::new(); schema.fields().len()];
    for (key, value) in options.entries() {
        if TABLE_OPTIONS.contains(&key) {
            continue;
        }
        let (column, option) = key
            .strip_prefix("fields.")
            .and_then(|rest| rest.rsplit_once('.'))
            .filter(|(_, option)| FIELD_OPTIONS.contains(option))
            .ok_or_else(|| options.unknown(key, allowed(&schema)))?;
        let index =
            column_index(&schema, column).ok_or_else(|| options.unknown(key, allowed(&schema)))?;
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

fn allowed(schema: &Schema) -> String {
    let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    format!(
        "{}, and fields.<column>.<{}> for the columns {}",
        TABLE_OPTIONS.join(", "),
        FIELD_OPTIONS.join("|"),
        columns.join(", ")
    )
}
