//! Weir's connectors: the sources and sinks a table's `WITH (…)` options
//! name, built on the engine's `SourceConnector` and `SinkConnector`.
//!
//! Where things live: `filesystem/` (JSON and CSV files, both ways),
//! `datagen/` (generated rows), `nexmark/` (the Nexmark benchmark's
//! events), `rows.rs` (a query's `VALUES` as a bounded stream), `print.rs`
//! and `blackhole.rs` (sinks);
//! `options.rs` and `values.rs` read option values the way Flink does.

mod blackhole;
mod changelog;
mod datagen;
mod error;
mod filesystem;
mod full_cache;
/// Entry points of the fuzz targets in `fuzz/`; not Weir's API.
#[doc(hidden)]
pub mod fuzzing;
mod kafka;
mod legacy_options;
mod memory;
mod nexmark;
mod options;
mod paced;
mod postgres;
mod print;
pub mod rows;
mod temporal;
mod types;
mod values;

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use weir_engine::lookup::LookupSource;
use weir_engine::sink::SinkConnector;
use weir_engine::source::SourceConnector;

pub use error::ConnectorError;
use options::{CONNECTOR_KEY, Options};

/// Names of all connectors (for error messages and completion).
pub const CONNECTORS: &[&str] =
    &["blackhole", "datagen", "filesystem", "jdbc", "kafka", "memory", "nexmark", "postgres", "print", "upsert-kafka"];

/// The connectors of one table, built from its WITH options.
#[derive(Debug, Clone)]
pub struct ConnectorTable {
    /// The `'connector'` option, e.g. `filesystem`.
    pub connector: String,
    /// `None` if the table cannot be read.
    pub source: Option<Arc<dyn SourceConnector>>,
    /// `None` if the table cannot be written.
    pub sink: Option<Arc<dyn SinkConnector>>,
    /// `Some` for tables a plain `SELECT` reads at once, as a batch query
    /// (memory tables), rather than as a stream.
    pub batch: Option<Arc<dyn TableProvider>>,
    /// `Some` for tables rows can be looked up in, by key, in a lookup join
    /// (`postgres`, never read as a stream; `filesystem`, also read as one).
    pub lookup: Option<Arc<dyn LookupSource>>,
}

/// A memory table with `schema`, for `LATE DATA INTO` tables that were not
/// declared.
pub fn memory_table(schema: SchemaRef) -> ConnectorTable {
    let t = Arc::new(memory::MemoryTable::new(schema));
    ConnectorTable {
        connector: "memory".into(),
        source: None,
        sink: Some(t.clone()),
        batch: Some(t),
        lookup: None,
    }
}

/// A `METADATA` column: the connector fills column `index` of the table's
/// connector schema with `key` of each record (Kafka's `offset`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataColumn {
    pub index: usize,
    pub key: String,
}

/// Validates `options` (the WITH (...) map, keys as written, including
/// 'connector') for a table whose physical columns are `schema`, and builds
/// its connectors, so that mistakes surface at CREATE TABLE rather than when
/// a job starts.
///
/// Unknown connector, unknown option key, missing required option or
/// invalid value: an error naming the option, the value and what is allowed.
/// A table declared `PARTITIONED BY (partition_keys)` (columns of
/// `schema`) must be a `filesystem` one (as in Flink, where a Kafka table
/// refuses it): its files lie in one directory per value. The table's
/// `PRIMARY KEY (…) NOT ENFORCED` (`primary_key`, columns of `schema`) is
/// the key a `postgres` sink upserts on.
pub fn create_table(
    table: &str,
    options: &BTreeMap<String, String>,
    schema: SchemaRef,
    metadata: &[MetadataColumn],
    partition_keys: &[String],
    primary_key: &[String],
) -> Result<ConnectorTable, ConnectorError> {
    let known = || CONNECTORS.join(", ");
    let options = legacy_options::translate(options)?;
    let options = options.as_ref();
    let name = options
        .get(CONNECTOR_KEY)
        .ok_or_else(|| ConnectorError::MissingConnector {
            table: table.to_string(),
            known: known(),
        })?;
    if name != "kafka"
        && name != "upsert-kafka"
        && let Some(m) = metadata.first()
    {
        return Err(ConnectorError::Unsupported {
            connector: name.clone(),
            what: format!("no METADATA columns (column '{}' asks for '{}')", schema.field(m.index).name(), m.key),
        });
    }
    if name != "filesystem" && !partition_keys.is_empty() {
        return Err(ConnectorError::Unsupported {
            connector: name.clone(),
            what: "PARTITIONED BY (only 'filesystem' tables are partitioned)".into(),
        });
    }
    let (source, sink) = match name.as_str() {
        "blackhole" => (
            None,
            Some(blackhole::create(
                &Options::new("blackhole", options),
                schema,
            )?),
        ),
        "datagen" => (
            Some(datagen::create(&Options::new("datagen", options), schema)?),
            None,
        ),
        "filesystem" => {
            let (source, sink, lookup) =
                filesystem::create(&Options::new("filesystem", options), schema, partition_keys)?;
            return Ok(ConnectorTable {
                connector: name.clone(),
                source: Some(source),
                sink: Some(sink),
                batch: None,
                lookup,
            });
        }
        "kafka" => {
            let (source, sink) = kafka::create(&Options::new("kafka", options), schema, metadata)?;
            (Some(source), Some(sink))
        }
        "upsert-kafka" => {
            let (source, sink) =
                kafka::create_upsert(&Options::new("upsert-kafka", options), schema, metadata, primary_key)?;
            (Some(source), Some(sink))
        }
        "memory" => {
            Options::new("memory", options).check_keys(&[])?;
            return Ok(memory_table(schema));
        }
        "nexmark" => (
            Some(nexmark::create(&Options::new("nexmark", options), schema)?),
            None,
        ),
        // Flink's JDBC connector, for PostgreSQL URLs: the same table.
        "postgres" | "jdbc" => {
            let connector = if name == "jdbc" { "jdbc" } else { "postgres" };
            let (lookup, sink) = postgres::create(&Options::new(connector, options), schema, primary_key)?;
            return Ok(ConnectorTable {
                connector: name.clone(),
                source: None,
                sink: Some(sink),
                batch: None,
                lookup: Some(lookup),
            });
        }
        "print" => (
            None,
            Some(print::create(&Options::new("print", options), schema)?),
        ),
        other => {
            return Err(ConnectorError::UnknownConnector {
                name: other.to_string(),
                known: known(),
            });
        }
    };
    Ok(ConnectorTable {
        connector: name.clone(),
        source,
        sink,
        batch: None,
        lookup: None,
    })
}
