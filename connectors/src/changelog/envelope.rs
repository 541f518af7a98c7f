//! The shape of each protocol's records, as the Arrow schema the JSON
//! decoder reads them into: only the fields Weir uses (the decoder skips
//! the others, such as Debezium's `transaction` or Canal's `sqlType`).

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};

use super::metadata::Path;
use super::{ChangelogFormat, Protocol};

/// The envelope schema of `format` for rows of `row` (the table's
/// physical columns), with the fields its `metadata` reads.
pub(super) fn schema(format: &ChangelogFormat, row: &Fields) -> SchemaRef {
    // Any column may be missing from a record (Canal's `old` holds only
    // the changed ones): NOT NULL is checked on the rows made.
    let row = DataType::Struct(
        row.iter()
            .map(|f| Arc::new(f.as_ref().clone().with_nullable(true)))
            .collect(),
    );
    let text = |name: &str| Field::new(name, DataType::Utf8, true);
    let long = |name: &str| Field::new(name, DataType::Int64, true);
    let mut fields = match format.protocol {
        Protocol::Debezium => vec![
            Field::new("before", row.clone(), true),
            Field::new("after", row, true),
            text("op"),
        ],
        Protocol::Canal => {
            let rows = DataType::List(Arc::new(Field::new_list_field(row, true)));
            vec![
                Field::new("data", rows.clone(), true),
                Field::new("old", rows, true),
                text("type"),
                text("database"),
                text("table"),
                Field::new("isDdl", DataType::Boolean, true),
            ]
        }
        Protocol::Maxwell => vec![
            Field::new("data", row.clone(), true),
            Field::new("old", row, true),
            text("type"),
        ],
    };
    let mut source = Vec::new();
    for (_, key) in &format.metadata {
        let field = match key.data_type() {
            DataType::Utf8 => text,
            _ => long,
        };
        match key.field(format.protocol) {
            Path::Top(name) if !fields.iter().any(|f| f.name() == name) => fields.push(field(name)),
            Path::Source(name) if !source.iter().any(|f: &Field| f.name() == name) => source.push(field(name)),
            _ => {}
        }
    }
    if !source.is_empty() {
        fields.push(Field::new("source", DataType::Struct(source.into()), true));
    }
    if format.protocol == Protocol::Debezium && format.schema_include {
        return Arc::new(Schema::new(vec![Field::new(
            "payload",
            DataType::Struct(fields.into()),
            true,
        )]));
    }
    Arc::new(Schema::new(fields))
}
