//! Record batches to the bytes of a part file.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json::LineDelimitedWriter;
use datafusion::arrow::{csv, json};

use super::format::Format;
use super::nested::format_nested_timestamps;
use crate::temporal::Layout;

/// Encodes whole batches in memory, so that the file is then written with
/// one async call per batch.
#[derive(Debug, Clone)]
pub(crate) struct BatchEncoder {
    format: Format,
}

impl BatchEncoder {
    pub(crate) fn new(format: Format) -> Self {
        Self { format }
    }

    /// The lines of `batch`, each ending in `\n`.
    ///
    /// JSON writes NULL as an explicit `null`, as Flink's json format does
    /// by default (`'json.encode.ignore-null-fields' = 'false'`), a ROW as
    /// an object, an ARRAY as an array and a MAP as an object. CSV writes
    /// NULL as `'csv.null-literal'`, or as an empty field without one.
    pub(crate) fn encode(&self, batch: &RecordBatch) -> Result<Vec<u8>, ArrowError> {
        match &self.format {
            Format::Json(options) => {
                let batch = timestamps_as_text(batch, options.timestamp_standard.layout())?;
                let mut writer: LineDelimitedWriter<Vec<u8>> = json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build(Vec::new());
                writer.write(&batch)?;
                writer.finish()?;
                Ok(writer.into_inner())
            }
            Format::Csv(options) => {
                let mut writer = csv::WriterBuilder::new()
                    .with_header(false)
                    .with_delimiter(options.delimiter)
                    .with_quote(options.quote)
                    .with_null(options.null_literal.clone().unwrap_or_default())
                    .build(Vec::new());
                writer.write(&timestamps_as_text(batch, Layout::Sql)?)?;
                Ok(writer.into_inner())
            }
            Format::Changelog(c) => Err(ArrowError::NotYetImplemented(format!(
                "writing format '{}' (Weir reads the changelog formats only; write 'json' or use an upsert sink)",
                c.protocol.name()
            ))),
        }
    }
}

/// `batch` with every TIMESTAMP(3), also inside ROW, ARRAY and MAP columns,
/// replaced by its text in `layout`, so that arrow's writers emit Flink's
/// strings.
fn timestamps_as_text(batch: &RecordBatch, layout: Layout) -> Result<RecordBatch, ArrowError> {
    let schema = batch.schema();
    let mut fields = Vec::with_capacity(schema.fields().len());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let column = format_nested_timestamps(column, layout)?;
        fields.push(Field::new(
            field.name(),
            column.data_type().clone(),
            field.is_nullable(),
        ));
        columns.push(column);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}
