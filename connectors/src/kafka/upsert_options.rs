//! Flink's `upsert-kafka` connector's options, checked as Flink checks
//! them and translated to the kafka connector's: the `PRIMARY KEY` is the
//! message key (`'key.fields'`), reading starts at the topic's beginning
//! (a compacted topic is the table), and the source reads a changelog
//! (`upsert.rs`).

use std::collections::BTreeMap;

use datafusion::arrow::datatypes::SchemaRef;

use super::{SourceAndSink, build};
use crate::MetadataColumn;
use crate::changelog::Protocol;
use crate::error::ConnectorError;
use crate::options::Options;

/// The connector's own options, besides `properties.*` and the formats'
/// (`key.<format>.*`, `value.<format>.*`).
const UPSERT_OPTIONS: &[&str] = &[
    "topic",
    "key.format",
    "value.format",
    "key.fields-prefix",
    "value.fields-include",
    "scan.bounded.mode",
    BUFFER_ROWS,
    BUFFER_INTERVAL,
    "sink.delivery-guarantee",
    "sink.transactional-id-prefix",
];

/// `'sink.buffer-flush.*'`: Flink's sink buffers rows this long to write
/// each key's latest once; Weir's sends rows into the checkpoint's open
/// transaction as they come, which a read_committed reader sees at once,
/// so the options are checked and have no effect.
const BUFFER_ROWS: &str = "sink.buffer-flush.max-rows";
const BUFFER_INTERVAL: &str = "sink.buffer-flush.interval";

/// Builds the two sides of an `upsert-kafka` table whose `PRIMARY KEY`
/// is `primary_key`.
pub(crate) fn create_upsert(
    options: &Options,
    schema: SchemaRef,
    metadata: &[MetadataColumn],
    primary_key: &[String],
) -> Result<SourceAndSink, ConnectorError> {
    if primary_key.is_empty() {
        // Flink's words.
        return Err(ConnectorError::Unsupported {
            connector: "upsert-kafka".into(),
            what: "'upsert-kafka' tables require to define a PRIMARY KEY constraint. The PRIMARY KEY specifies \
                   which columns should be read from or write to the Kafka message key. The PRIMARY KEY also \
                   defines records in the 'upsert-kafka' table should update or delete on which keys."
                .into(),
        });
    }
    let key_format = options.required("key.format")?;
    let value_format = options.required("value.format")?;
    if Protocol::named(value_format).is_some() {
        return Err(ConnectorError::invalid(
            "value.format",
            value_format,
            "the value of an upsert topic is a row, not a change ('upsert-kafka' needs an insert-only format \
             such as 'json' or 'csv')",
        ));
    }
    let key_prefix = format!("key.{key_format}.");
    let value_prefix = format!("value.{value_format}.");
    for (key, _) in options.entries() {
        let known = UPSERT_OPTIONS.contains(&key)
            || key.starts_with("properties.")
            || key.starts_with(&key_prefix)
            || key.starts_with(&value_prefix);
        if !known {
            return Err(options.unknown(
                key,
                format!(
                    "{}, properties.*, {key_prefix}*, {value_prefix}*",
                    UPSERT_OPTIONS.join(", ")
                ),
            ));
        }
    }
    let rows = options.parse(BUFFER_ROWS, |v| {
        v.parse::<u64>().map_err(|_| "expected a number of rows".to_string())
    })?;
    let interval = options.parse(BUFFER_INTERVAL, weir_engine::duration::parse_duration)?;
    if rows.is_some_and(|r| r > 0) != interval.is_some_and(|i| !i.is_zero()) {
        return Err(ConnectorError::invalid(
            BUFFER_ROWS,
            &rows.unwrap_or(0).to_string(),
            format!("'{BUFFER_ROWS}' and '{BUFFER_INTERVAL}' must be set to be greater than zero together"),
        ));
    }
    let mut translated: BTreeMap<String, String> = options
        .entries()
        .filter(|(k, _)| *k != BUFFER_ROWS && *k != BUFFER_INTERVAL)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    translated.insert("key.fields".into(), primary_key.join(";"));
    translated.insert("scan.startup.mode".into(), "earliest-offset".into());
    build(&Options::new("upsert-kafka", &translated), schema, metadata, true)
}
