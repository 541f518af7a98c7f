//! Record batches to the bytes of a part file.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json::LineDelimitedWriter;
use datafusion::arrow::{csv, json};

use super::format::Format;
use crate::temporal::{Layout, format_timestamps};

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
    /// by default (`'json.encode.ignore-null-fields' = 'false'`). CSV writes
    /// NULL as `'csv.null-literal'`, or as an empty field without one.
    pub(crate) fn encode(&self, batch: &RecordBatch) -> Result<Vec<u8>, ArrowError> {
        match &self.format {
            Format::Json(options) => {
                let batch = format_timestamps(batch, options.timestamp_standard.layout())?;
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
                writer.write(&format_timestamps(batch, Layout::Sql)?)?;
                Ok(writer.into_inner())
            }
        }
    }
}
