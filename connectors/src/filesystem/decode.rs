//! Chunks of lines to record batches of the table's columns, with the exact
//! line of a record that cannot be decoded.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, Scalar, StringArray};
use datafusion::arrow::compute::kernels::cmp::eq;
use datafusion::arrow::compute::{CastOptions, cast_with_options, concat_batches, nullif};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::{csv, json};
use weir_engine::EngineError;
use weir_engine::error::ResultExt;
use weir_engine::source::BadRecord;

use super::MAX_RECORD_OPTION;
use super::depth::{MAX_JSON_DEPTH, too_deep};
use super::format::{CsvFormat, Format};
use crate::changelog::expand::Expander;
use super::lines::LineChunk;
use super::nested::{parse_nested_timestamps, timestamps_as_text};
use super::timestamp::{TIMESTAMP_MS, parse_timestamps};

/// Longest excerpt of a bad line quoted in an error.
const EXCERPT_CHARS: usize = 200;

/// What one chunk of lines decoded to.
pub(crate) struct DecodedChunk {
    /// The records that decoded, in file order.
    pub(crate) batch: RecordBatch,
    /// The records that did not, in file order (only when tolerant).
    pub(crate) bad: Vec<BadRecord>,
    /// The chunk's lines the batch's rows come from, when some were bad
    /// (`None`: every line, in order).
    pub(crate) kept: Option<Vec<usize>>,
}

/// Part of a chunk that failed to decode as a whole.
enum Piece {
    /// Consecutive lines that decode together.
    Rows(RecordBatch, Range<usize>),
    /// A line that cannot be decoded, or lines that decode alone but not
    /// together.
    Bad { lines: Range<usize>, reason: String },
}

/// Decodes the lines of one table's files.
#[derive(Debug)]
pub(crate) struct RecordDecoder {
    format: Format,
    /// The table's columns: what batches leave with.
    schema: SchemaRef,
    /// What arrow's decoder produces: TIMESTAMP values, also inside ROW,
    /// ARRAY and MAP columns (JSON) or all columns (CSV) as nullable Utf8,
    /// converted afterwards with cast kernels that accept more forms than
    /// the decoders do.
    text_schema: SchemaRef,
    /// A changelog format: `schema` is its envelope's, and the envelopes
    /// are turned into the table's rows once decoded.
    changelog: Option<Arc<Expander>>,
    /// `text_schema` with the columns arrow's decoder parses exactly as the
    /// conversion from text would, as themselves: CSV's numbers (same
    /// parser as the cast), JSON's top-level TIMESTAMP(3) columns (same
    /// parser; epoch milliseconds as numbers), so that no string is built
    /// per value first. `None` when there are none. A chunk it cannot
    /// decode is decoded again as text, whose conversions give the errors
    /// and accept the other forms (epoch milliseconds as strings, say).
    typed: Option<SchemaRef>,
}

impl RecordDecoder {
    pub(crate) fn new(format: Format, schema: SchemaRef) -> Self {
        if let Format::Changelog(changelog) = &format {
            let expander = Expander::new(changelog.clone(), &schema);
            let mut envelopes = Self::new(Format::Json(changelog.json()), expander.envelope_schema());
            envelopes.changelog = Some(Arc::new(expander));
            return envelopes;
        }
        let text_fields: Vec<Field> = schema
            .fields()
            .iter()
            .map(|f| {
                let dt = match format {
                    Format::Json(_) | Format::Changelog(_) => timestamps_as_text(f.data_type()),
                    Format::Csv(_) => DataType::Utf8,
                };
                // NOT NULL is checked against the table's schema at the end,
                // with a clearer message than the decoders give.
                Field::new(f.name(), dt, true)
            })
            .collect();
        let typed = match &format {
            Format::Csv(csv) if csv.null_literal.is_none() => {
                typed_schema(&schema, &text_fields, |dt| dt.is_integer() || dt.is_floating())
            }
            Format::Json(_) => typed_schema(&schema, &text_fields, |dt| dt == &TIMESTAMP_MS),
            _ => None,
        };
        Self {
            format,
            schema,
            text_schema: Arc::new(Schema::new(text_fields)),
            changelog: None,
            typed,
        }
    }

    /// Decodes every line of `chunk` (read from `path`, the file of
    /// `partition`) into one batch.
    ///
    /// A record that cannot be decoded fails the call, naming its line,
    /// unless `tolerant`: then the batch holds the other records and the bad
    /// ones are returned alongside, in file order.
    pub(crate) fn decode(
        &self,
        chunk: &LineChunk,
        path: &Path,
        partition: usize,
        tolerant: bool,
    ) -> Result<DecodedChunk, EngineError> {
        let mut decoded = self.decode_lines_of(chunk, path, partition, tolerant)?;
        // The oversized line comes after every other line of the chunk.
        if let Some(line) = chunk.oversized() {
            let location = format!("{}:{}", path.display(), line.number);
            let reason = format!(
                "the record is longer than {} bytes ('{MAX_RECORD_OPTION}'); the rest of the line is skipped",
                line.limit
            );
            let text = cut_excerpt(&line.prefix);
            if !tolerant {
                return Err(EngineError::Record(format!(
                    "{location}: cannot decode record: the record is longer than {} bytes \
                     (raise '{MAX_RECORD_OPTION}' if such records are expected): {text}",
                    line.limit
                )));
            }
            decoded.bad.push(BadRecord {
                partition,
                location,
                text,
                error: reason,
            });
        }
        match &self.changelog {
            Some(expander) => expand(expander, decoded, chunk, path, partition, tolerant),
            None => Ok(decoded),
        }
    }

    /// Decodes the lines of `chunk` (not its oversized line), as
    /// [`RecordDecoder::decode`] says.
    fn decode_lines_of(
        &self,
        chunk: &LineChunk,
        path: &Path,
        partition: usize,
        tolerant: bool,
    ) -> Result<DecodedChunk, EngineError> {
        if chunk.is_empty() {
            return Ok(DecodedChunk {
                batch: RecordBatch::new_empty(self.schema.clone()),
                bad: Vec::new(),
                kept: None,
            });
        }
        let all = 0..chunk.len();
        let deep = self.too_deep(chunk);
        let mut pieces = Vec::new();
        if deep.is_empty() {
            // The common case stays a single vectorised pass.
            match self.decode_lines(chunk.lines(all.clone()), chunk.len()) {
                Ok(batch) => {
                    return Ok(DecodedChunk {
                        batch,
                        bad: Vec::new(),
                        kept: None,
                    });
                }
                Err(e) => self.split(chunk, all, e, &mut pieces),
            }
        } else {
            // The records between too deep ones decode as usual.
            let mut start = 0;
            for line in deep.iter().copied().chain([chunk.len()]) {
                self.decode_run(chunk, start..line, &mut pieces);
                if line < chunk.len() {
                    pieces.push(Piece::Bad {
                        lines: line..line + 1,
                        reason: format!("nested deeper than {MAX_JSON_DEPTH} levels"),
                    });
                }
                start = line + 1;
            }
        }
        let mut good = Vec::with_capacity(pieces.len());
        let mut kept = Vec::new();
        let mut bad = Vec::new();
        for piece in pieces {
            let (lines, reason) = match piece {
                Piece::Rows(batch, lines) => {
                    good.push(batch);
                    kept.extend(lines);
                    continue;
                }
                Piece::Bad { lines, reason } => (lines, reason),
            };
            let first = chunk.number(lines.start);
            let last = chunk.number(lines.end - 1);
            let location = if first == last {
                format!("{}:{first}", path.display())
            } else {
                format!("{}:{first}-{last}", path.display())
            };
            let text = excerpt(chunk.lines(lines));
            if !tolerant {
                return Err(EngineError::Record(if first == last {
                    format!("{location}: cannot decode record: {reason}: {text}")
                } else {
                    format!("{location}: cannot decode records: {reason}")
                }));
            }
            bad.push(BadRecord {
                partition,
                location,
                text,
                error: reason,
            });
        }
        let batch = match <[RecordBatch; 1]>::try_from(good) {
            Ok([batch]) => batch,
            Err(good) => concat_batches(&self.schema, &good)
                .context(|| format!("{}: joining the records that decoded", path.display()))?,
        };
        Ok(DecodedChunk { batch, bad, kept: Some(kept) })
    }

    /// The lines of `chunk` too deeply nested for arrow's JSON decoder to
    /// report safely ([`super::depth`]); none for CSV.
    fn too_deep(&self, chunk: &LineChunk) -> Vec<usize> {
        match self.format {
            Format::Json(_) | Format::Changelog(_) => {
                (0..chunk.len()).filter(|&i| too_deep(chunk.lines(i..i + 1))).collect()
            }
            Format::Csv(_) => Vec::new(),
        }
    }

    /// Decodes the run `lines` of `chunk` into pieces (none if empty).
    fn decode_run(&self, chunk: &LineChunk, lines: Range<usize>, out: &mut Vec<Piece>) {
        if lines.is_empty() {
            return;
        }
        match self.decode_lines(chunk.lines(lines.clone()), lines.len()) {
            Ok(batch) => out.push(Piece::Rows(batch, lines)),
            Err(e) => self.split(chunk, lines, e, out),
        }
    }

    /// Splits `lines`, which failed to decode together with `err`, into
    /// runs that decode and records that do not, in order.
    ///
    /// Halving costs a few decodes per bad record, where decoding line by
    /// line would cost one per line of the chunk.
    fn split(&self, chunk: &LineChunk, lines: Range<usize>, err: ArrowError, out: &mut Vec<Piece>) {
        if lines.len() == 1 {
            out.push(Piece::Bad {
                lines,
                reason: single_line_reason(&err),
            });
            return;
        }
        let before = out.len();
        let mid = lines.start + lines.len() / 2;
        for half in [lines.start..mid, mid..lines.end] {
            self.decode_run(chunk, half, out);
        }
        // Every part decodes alone, so the lines only fail together (say, a
        // quoted CSV field spanning lines): none of them can be trusted.
        if out[before..].iter().all(|p| matches!(p, Piece::Rows(..))) {
            out.truncate(before);
            out.push(Piece::Bad {
                lines,
                reason: reason(&err),
            });
        }
    }

    /// Decodes `bytes`, which must hold exactly `lines` records.
    fn decode_lines(&self, bytes: &[u8], lines: usize) -> Result<RecordBatch, ArrowError> {
        let columns = match &self.format {
            Format::Json(_) | Format::Changelog(_) => self.decode_json(bytes, lines)?,
            Format::Csv(csv) => self.decode_csv(csv, bytes, lines)?,
        };
        RecordBatch::try_new(self.schema.clone(), columns)
    }

    fn decode_json(&self, bytes: &[u8], lines: usize) -> Result<Vec<ArrayRef>, ArrowError> {
        if let Some(typed) = &self.typed
            && let Ok(columns) = self.json_columns(typed, bytes, lines)
        {
            return Ok(columns);
        }
        self.json_columns(&self.text_schema, bytes, lines)
    }

    /// The table's columns from `bytes` decoded with `decoded` (a column
    /// decoded as its own type is kept, timestamps as text parsed).
    fn json_columns(&self, decoded: &SchemaRef, bytes: &[u8], lines: usize) -> Result<Vec<ArrayRef>, ArrowError> {
        let one_per_line =
            || ArrowError::JsonError("expected exactly one JSON object per line".into());
        let mut decoder = json::ReaderBuilder::new(decoded.clone())
            .with_batch_size(lines)
            // Numbers in TIMESTAMP columns decoded as text (epoch
            // milliseconds) arrive as text; in VARCHAR columns they become
            // their text, as in Flink.
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
                dt if dt == column.data_type() => Ok(Arc::clone(column)),
                dt => parse_nested_timestamps(column, dt, field.name()),
            })
            .collect()
    }

    fn decode_csv(
        &self,
        format: &CsvFormat,
        bytes: &[u8],
        lines: usize,
    ) -> Result<Vec<ArrayRef>, ArrowError> {
        if let Some(typed) = &self.typed
            && let Ok(columns) = self.csv_columns(format, typed, bytes, lines)
        {
            return Ok(columns);
        }
        self.csv_columns(format, &self.text_schema, bytes, lines)
    }

    /// The table's columns from `bytes` decoded with `decoded` (a column
    /// decoded as its own type is kept, one decoded as text converted).
    fn csv_columns(
        &self,
        format: &CsvFormat,
        decoded: &SchemaRef,
        bytes: &[u8],
        lines: usize,
    ) -> Result<Vec<ArrayRef>, ArrowError> {
        let one_per_line = || ArrowError::CsvError("expected exactly one record per line".into());
        let mut decoder = csv::ReaderBuilder::new(decoded.clone())
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
            .map(|(field, column)| {
                let text = match &null_literal {
                    Some(literal) if column.data_type() == &DataType::Utf8 => nullif(column, &eq(column, literal)?)?,
                    _ => Arc::clone(column),
                };
                match field.data_type() {
                    dt if dt == text.data_type() => Ok(text),
                    dt if dt == &TIMESTAMP_MS => parse_timestamps(&text, field.name()),
                    dt => cast_with_options(&text, dt, &strict).map_err(|e| {
                        ArrowError::CastError(format!("column '{}': {}", field.name(), reason(&e)))
                    }),
                }
            })
            .collect()
    }
}

/// `text` with the columns of `schema` whose type is `direct` as
/// themselves, if there are any.
fn typed_schema(schema: &SchemaRef, text: &[Field], direct: impl Fn(&DataType) -> bool) -> Option<SchemaRef> {
    if !schema.fields().iter().any(|f| direct(f.data_type())) {
        return None;
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .zip(text)
        .map(|(f, t)| match direct(f.data_type()) {
            true => Field::new(f.name(), f.data_type().clone(), true),
            false => t.clone(),
        })
        .collect();
    Some(Arc::new(Schema::new(fields)))
}

/// The rows of the envelopes `decoded` holds (lines of `chunk`): the
/// rows' lines become those of their envelopes, and an envelope that is no
/// change (an unknown operation, a missing before image) is a bad record
/// of its line.
fn expand(
    expander: &Expander,
    decoded: DecodedChunk,
    chunk: &LineChunk,
    path: &Path,
    partition: usize,
    tolerant: bool,
) -> Result<DecodedChunk, EngineError> {
    let lines = decoded.kept.unwrap_or_else(|| (0..decoded.batch.num_rows()).collect());
    let raw = |envelope: usize| chunk.lines(lines[envelope]..lines[envelope] + 1);
    let expanded = expander
        .expand(&decoded.batch, &raw)
        .map_err(|e| EngineError::Connector(format!("{}: decoding changes: {}", path.display(), reason(&e))))?;
    let mut bad = decoded.bad;
    for (envelope, why) in expanded.invalid {
        let line = lines[envelope];
        let location = format!("{}:{}", path.display(), chunk.number(line));
        let text = excerpt(chunk.lines(line..line + 1));
        if !tolerant {
            return Err(EngineError::Record(format!("{location}: cannot decode record: {why}: {text}")));
        }
        bad.push(BadRecord { partition, location, text, error: why });
    }
    let kept = expanded.envelopes.iter().map(|e| lines[*e as usize]).collect();
    Ok(DecodedChunk { batch: expanded.batch, bad, kept: Some(kept) })
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
        Some((cut, _)) => format!("{}...", printable(&text[..cut])),
        None => printable(text),
    }
}

/// The excerpt of a line that was cut, from its first bytes: always ends
/// in `...`, since the line goes on.
fn cut_excerpt(prefix: &[u8]) -> String {
    let text = String::from_utf8_lossy(prefix);
    let text = text.trim_end_matches(['\r', '\n']);
    let end = text.char_indices().nth(EXCERPT_CHARS).map_or(text.len(), |(i, _)| i);
    format!("{}...", printable(&text[..end]))
}

/// `text` with control characters but tabs escaped (`\0`, `\u{1b}`): an
/// excerpt goes to terminals and logs, where a line of NUL bytes would
/// show as blanks and escape sequences would act.
fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\t' {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}
