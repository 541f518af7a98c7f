//! What the records fuzz target (`fuzz/fuzz_targets/records.rs`) drives:
//! the JSON and CSV decoding of the filesystem and Kafka sources, from a
//! table's format options to the batch of a chunk of records.
//!
//! A record, however malformed, must give a decode error (or a row), never
//! a panic, and every record must be accounted for: a row, or a bad record.
//! Not part of Weir's API.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use weir_engine::EngineError;

use crate::filesystem::decode::RecordDecoder;
use crate::filesystem::format::Format;
use crate::filesystem::lines::LineChunk;
use crate::options::Options;

/// A column of every type connectors decode, one of them NOT NULL.
fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("tiny", DataType::Int8, true),
        Field::new("small", DataType::Int16, true),
        Field::new("int", DataType::Int32, true),
        Field::new("real", DataType::Float32, true),
        Field::new("double", DataType::Float64, true),
        Field::new("flag", DataType::Boolean, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("price", DataType::Decimal128(10, 2), true),
        Field::new("day", DataType::Date32, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
    ]))
}

/// The `WITH` options the bits of `b` choose: the format, and its options.
fn options(b: u8) -> BTreeMap<String, String> {
    let bit = |i: u8| b & (1 << i) != 0;
    let mut o = BTreeMap::new();
    let mut set = |k: &str, v: &str| {
        o.insert(k.to_string(), v.to_string());
    };
    if bit(0) {
        set("format", "csv");
        set("csv.field-delimiter", [",", ";", "|", "\t"][usize::from(b >> 2 & 3)]);
        if bit(4) {
            set("csv.quote-character", "'");
        }
        if bit(5) {
            set("csv.null-literal", "NULL");
        }
    } else {
        set("format", "json");
        if bit(2) {
            set("json.timestamp-format.standard", "ISO-8601");
        }
    }
    o
}

/// Decodes the records of `input` as a source would, and checks that each
/// is either a row or a bad record.
///
/// The first byte chooses the format and its options (bit 0: CSV, then its
/// delimiter, quote and null literal; else JSON), whether bad records are
/// tolerated (bit 1) and whether records come as Kafka messages (bit 6:
/// separated by NUL bytes, so that they may hold line breaks, and possibly
/// none at all) rather than as a file's non-blank lines.
pub fn decode(input: &[u8]) -> Result<(), EngineError> {
    let Some((&b, records)) = input.split_first() else {
        return Ok(());
    };
    let map = options(b);
    let format = Format::from_options(&Options::new("filesystem", &map))
        .map_err(|e| EngineError::Connector(e.to_string()))?;
    let tolerant = b & 2 != 0;
    let kafka = b & 64 != 0;
    let mut chunk = LineChunk::default();
    let separator = if kafka { b'\0' } else { b'\n' };
    for (number, record) in (1..).zip(records.split(|c| *c == separator)) {
        // A file's reader skips blank lines, as Flink's line formats do.
        if kafka || !record.iter().all(u8::is_ascii_whitespace) {
            chunk.push(record, number);
        }
    }
    // A file's reader hands over no empty chunk; a Kafka reader may, when a
    // poll brought only tombstones.
    if chunk.is_empty() && !kafka {
        return Ok(());
    }
    let decoder = RecordDecoder::new(format, schema());
    let decoded = decoder.decode(&chunk, Path::new("fuzz"), 0, tolerant)?;
    // The fuzzer's oracle: a record lost or counted twice fails the run.
    let rows = decoded.batch.num_rows();
    let kept = decoded.kept.as_ref().map_or(chunk.len(), Vec::len);
    assert_eq!(rows, kept, "every row comes from one kept record");
    assert!(
        decoded.kept.is_some() || decoded.bad.is_empty(),
        "bad records are reported with the records kept"
    );
    assert!(
        decoded.bad.len() + kept <= chunk.len() && (decoded.bad.is_empty() || kept < chunk.len()),
        "a record is a row or a bad record, not both"
    );
    Ok(())
}
