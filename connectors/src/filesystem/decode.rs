//! Chunks of lines to record batches of the table's columns, with the exact
//! line of a record that cannot be decoded.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, Scalar, StringArray};
use datafusion::arrow::compute::kernels::cmp::eq;
use datafusion::arrow::compute::{CastOptions, cast_with_options, nullif};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::{csv, json};
use weir_engine::EngineError;

use super::format::{CsvFormat, Format};
use super::lines::LineChunk;
use super::timestamp::{TIMESTAMP_MS, parse_timestamps};

/// Longest excerpt of a bad line quoted in an error.
const EXCERPT_CHARS: usize = 200;

/// Decodes the lines of one table's files.
#[derive(Debug)]
pub(crate) struct RecordDecoder {
    format: Format,
    /// The table's columns: what batches leave with.
    schema: SchemaRef,
    /// What arrow's decoder produces: TIMESTAMP columns (JSON) or all
    /// columns (CSV) as nullable Utf8, converted afterwards with cast kernels
    /// that accept more forms than the decoders do.
    text_schema: SchemaRef,
}

impl RecordDecoder {
    pub(crate) fn new(format: Format, schema: SchemaRef) -> Self {
        let text_fields: Vec<Field> = schema
            .fields()
            .iter()
            .map(|f| {
                let as_text = match format {
                    Format::Json(_) => f.data_type() == &TIMESTAMP_MS,
                    Format::Csv(_) => true,
                };
                let dt = if as_text {
                    DataType::Utf8
                } else {
                    f.data_type().clone()
                };
                // NOT NULL is checked against the table's schema at the end,
                // with a clearer message than the decoders give.
                Field::new(f.name(), dt, true)
            })
            .collect();
        Self {
            format,
            schema,
            text_schema: Arc::new(Schema::new(text_fields)),
        }
    }

    /// Decodes every line of `chunk` (read from `path`) into one batch.
    ///
    /// When the chunk fails, its lines are decoded one at a time to report
    /// the first bad one: the common case stays a single vectorised pass.
    pub(crate) fn decode(
        &self,
        chunk: &LineChunk,
        path: &Path,
    ) -> Result<RecordBatch, EngineError> {
        self.decode_lines(chunk.bytes(), chunk.len())
            .map_err(|chunk_err| self.locate(chunk, path, &chunk_err))
    }

    fn locate(&self, chunk: &LineChunk, path: &Path, chunk_err: &ArrowError) -> EngineError {
        for i in 0..chunk.len() {
            if let Err(e) = self.decode_lines(chunk.line(i), 1) {
                return EngineError::Connector(format!(
                    "{}:{}: cannot decode record: {}: {}",
                    path.display(),
                    chunk.number(i),
                    single_line_reason(&e),
                    excerpt(chunk.line(i))
                ));
            }
        }
        // Every line decodes alone, so the lines only fail together.
        EngineError::Connector(format!(
            "{}:{}-{}: cannot decode records: {}",
            path.display(),
            chunk.number(0),
            chunk.number(chunk.len() - 1),
            reason(chunk_err)
        ))
    }

    /// Decodes `bytes`, which must hold exactly `lines` records.
    fn decode_lines(&self, bytes: &[u8], lines: usize) -> Result<RecordBatch, ArrowError> {
        let columns = match &self.format {
            Format::Json(_) => self.decode_json(bytes, lines)?,
            Format::Csv(csv) => self.decode_csv(csv, bytes, lines)?,
        };
        RecordBatch::try_new(self.schema.clone(), columns)
    }

    fn decode_json(&self, bytes: &[u8], lines: usize) -> Result<Vec<ArrayRef>, ArrowError> {
        let one_per_line =
            || ArrowError::JsonError("expected exactly one JSON object per line".into());
        let mut decoder = json::ReaderBuilder::new(self.text_schema.clone())
            .with_batch_size(lines)
            // Numbers in TIMESTAMP columns (epoch milliseconds) arrive as
            // text; in VARCHAR columns they become their text, as in Flink.
            .with_coerce_primitive(true)
            .build_decoder()?;
        let read = decoder.decode(bytes)?;
        // The decoder stops after `lines` objects: anything but whitespace
        // left over is a second object on some line.
        if decoder.has_partial_record() || !bytes[read..].iter().all(u8::is_ascii_whitespace) {
            return Err(one_per_line());
        }
        let batch = decoder.flush()?.ok_or_else(one_per_line)?;
        if batch.num_rows() != lines {
            return Err(one_per_line());
        }
        self.schema
            .fields()
            .iter()
            .zip(batch.columns())
            .map(|(field, column)| match field.data_type() {
                dt if dt == &TIMESTAMP_MS => parse_timestamps(column, field.name()),
                _ => Ok(Arc::clone(column)),
            })
            .collect()
    }

    fn decode_csv(
        &self,
        format: &CsvFormat,
        bytes: &[u8],
        lines: usize,
    ) -> Result<Vec<ArrayRef>, ArrowError> {
        let one_per_line = || ArrowError::CsvError("expected exactly one record per line".into());
        let mut decoder = csv::ReaderBuilder::new(self.text_schema.clone())
            .with_header(false)
            .with_delimiter(format.delimiter)
            .with_quote(format.quote)
            .with_batch_size(lines)
            .build_decoder();
        let read = decoder.decode(bytes)?;
        let batch = decoder.flush()?.ok_or_else(one_per_line)?;
        // Fewer records than lines: a quoted field spans a line break.
        if read != bytes.len() || batch.num_rows() != lines {
            return Err(one_per_line());
        }
        let null_literal = format
            .null_literal
            .as_deref()
            .map(|literal| Scalar::new(StringArray::from_iter_values([literal])));
        let strict = CastOptions {
            safe: false,
            ..Default::default()
        };
        self.schema
            .fields()
            .iter()
            .zip(batch.columns())
            .map(|(field, text)| {
                let text = match &null_literal {
                    Some(literal) => nullif(text, &eq(text, literal)?)?,
                    None => Arc::clone(text),
                };
                match field.data_type() {
                    dt if dt == &TIMESTAMP_MS => parse_timestamps(&text, field.name()),
                    DataType::Utf8 => Ok(text),
                    dt => cast_with_options(&text, dt, &strict).map_err(|e| {
                        ArrowError::CastError(format!("column '{}': {}", field.name(), reason(&e)))
                    }),
                }
            })
            .collect()
    }
}

/// An arrow error's message without its "Xxx error: " prefix, which says
/// nothing to someone fixing a data file.
fn reason(e: &ArrowError) -> String {
    match e {
        ArrowError::JsonError(s)
        | ArrowError::CsvError(s)
        | ArrowError::CastError(s)
        | ArrowError::ParseError(s)
        | ArrowError::ComputeError(s)
        | ArrowError::InvalidArgumentError(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The reason for a line decoded on its own: arrow's CSV decoder counts it
/// as line 1, while the caller reports the real line number.
fn single_line_reason(e: &ArrowError) -> String {
    reason(e)
        .replace(" for line 1 and field", " in field")
        .replace(" for line 1", "")
}

/// The text of a bad line as quoted in errors.
fn excerpt(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches(['\r', '\n']);
    match text.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}
