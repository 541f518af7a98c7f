//! Record batches to the bytes of a part file.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json::LineDelimitedWriter;
use datafusion::arrow::{csv, json};

use super::format::{Format, SQL_TIMESTAMP_PATTERN};

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
                let mut writer: LineDelimitedWriter<Vec<u8>> = json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .with_timestamp_format(options.timestamp_standard.pattern().to_string())
                    .build(Vec::new());
                writer.write(batch)?;
                writer.finish()?;
                Ok(writer.into_inner())
            }
            Format::Csv(options) => {
                let mut writer = csv::WriterBuilder::new()
                    .with_header(false)
                    .with_delimiter(options.delimiter)
                    .with_quote(options.quote)
                    .with_null(options.null_literal.clone().unwrap_or_default())
                    .with_timestamp_format(SQL_TIMESTAMP_PATTERN.to_string())
                    .build(Vec::new());
                writer.write(batch)?;
                Ok(writer.into_inner())
            }
        }
    }
}
