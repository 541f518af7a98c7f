//! The `filesystem` connector: a file or directory of JSON or CSV lines,
//! read as a bounded source and written as Flink-style part files; a
//! partitioned table (`PARTITIONED BY`) in Hive-style `key=value`
//! directories (`partition/`).

pub(crate) mod decode;
mod depth;
pub(crate) mod encode;
pub(crate) mod format;
pub(crate) mod lines;
mod listing;
mod lookup;
mod nested;
mod partition;
mod sink;
mod source;
mod split;
mod timestamp;

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use weir_engine::lookup::LookupSource;
use weir_engine::sink::SinkConnector;
use weir_engine::source::SourceConnector;

use crate::error::ConnectorError;
use crate::options::Options;
use crate::{types, values};
use format::Format;

/// Options of the connector itself; the format and partition commits
/// ([`partition::COMMIT_OPTIONS`]) add their own.
const TABLE_OPTIONS: &[&str] = &[
    "path",
    "format",
    "source.monitor-interval",
    MAX_RECORD_OPTION,
    SPLIT_SIZE_OPTION,
    "sink.rolling-policy.file-size",
    ROLLOVER_INTERVAL,
    CHECK_INTERVAL,
    DEFAULT_NAME_OPTION,
    SHUFFLE_BY_PARTITION,
    lookup::CACHE_TTL,
];

/// `'sink.rolling-policy.rollover-interval'`: how long a part file may stay
/// open (checked when rows are written to it).
const ROLLOVER_INTERVAL: &str = "sink.rolling-policy.rollover-interval";
/// `'sink.rolling-policy.check-interval'`: accepted for Flink's DDL; Weir
/// checks the rollover interval at each write instead of on a timer.
const CHECK_INTERVAL: &str = "sink.rolling-policy.check-interval";
/// `'partition.default-name'`.
const DEFAULT_NAME_OPTION: &str = "partition.default-name";
/// `'sink.shuffle-by-partition.enable'`: accepted for Flink's DDL; Weir
/// does not reroute rows by partition before its sink.
const SHUFFLE_BY_PARTITION: &str = "sink.shuffle-by-partition.enable";

/// The longest line (record) a source reads, in Flink's memory-size
/// notation: a longer one is a record that cannot be decoded, so that a
/// line that never ends cannot take all memory.
pub(crate) const MAX_RECORD_OPTION: &str = "source.max-record-size";

/// Weir's own option: files bigger than this are read in splits of this
/// many bytes, by as many subtasks as there are (`split.rs`); unset, every
/// file is read whole.
const SPLIT_SIZE_OPTION: &str = "source.split-size";

/// The largest `'source.max-record-size'`: arrow's strings hold at most
/// 2 GiB, and a chunk of records is decoded in memory at once.
const MAX_MAX_RECORD: u64 = 1 << 30;

/// The sides of a filesystem table: read as a stream, written, and looked
/// up in.
type Sides = (Arc<dyn SourceConnector>, Arc<dyn SinkConnector>, Option<Arc<dyn LookupSource>>);

/// Flink's default `'sink.rolling-policy.file-size'`.
const DEFAULT_ROLL_BYTES: u64 = 128 << 20;

/// Builds the sides of a filesystem table: any such table can be read,
/// written and looked up in. `partition_keys` are its `PARTITIONED BY`
/// columns (none: an unpartitioned table).
pub(crate) fn create(options: &Options, schema: SchemaRef, partition_keys: &[String]) -> Result<Sides, ConnectorError> {
    let format = Format::from_options(options)?;
    let allowed: Vec<&str> = TABLE_OPTIONS
        .iter()
        .chain(format.option_keys())
        .chain(partition::COMMIT_OPTIONS)
        .chain(crate::full_cache::OPTIONS)
        .copied()
        .collect();
    options.check_keys(&allowed)?;
    let path = options.required("path")?;
    if path.trim().is_empty() {
        return Err(ConnectorError::invalid("path", path, "expected a file or directory path"));
    }
    if options.parse("source.monitor-interval", weir_engine::duration::parse_duration)?.is_some() {
        return Err(ConnectorError::Unsupported {
            connector: options.connector().to_string(),
            what: "continuous directory monitoring ('source.monitor-interval') is not supported yet".into(),
        });
    }
    let roll = sink::RollPolicy {
        bytes: options
            .parse("sink.rolling-policy.file-size", weir_engine::memory_size::parse_memory_size)?
            .unwrap_or(DEFAULT_ROLL_BYTES),
        interval: options.parse(ROLLOVER_INTERVAL, weir_engine::duration::parse_duration)?.filter(|d| !d.is_zero()),
    };
    options.parse(CHECK_INTERVAL, weir_engine::duration::parse_duration)?;
    options.parse(SHUFFLE_BY_PARTITION, values::boolean)?;
    let policy = partition::CommitPolicy::from_options(options)?.map(Arc::new);
    if format.is_changelog() && !partition_keys.is_empty() {
        return Err(ConnectorError::Unsupported {
            connector: options.connector().to_string(),
            what: format!("PARTITIONED BY with format '{}' (not yet)", format.name()),
        });
    }
    let layout = match partition_keys {
        [] => None,
        keys => {
            let default_name = options.get(DEFAULT_NAME_OPTION).unwrap_or(partition::DEFAULT_PARTITION_NAME);
            Some(Arc::new(partition::PartitionLayout::new(&schema, keys, default_name.to_string())?))
        }
    };
    let max_record = options
        .parse(MAX_RECORD_OPTION, |v| match weir_engine::memory_size::parse_memory_size(v)? {
            n if n <= MAX_MAX_RECORD => Ok(n as usize),
            _ => Err(format!("expected at most {} MiB", MAX_MAX_RECORD >> 20)),
        })?
        .unwrap_or(lines::DEFAULT_MAX_RECORD);
    let split_bytes = options.parse(SPLIT_SIZE_OPTION, weir_engine::memory_size::parse_memory_size)?;
    // The files hold the columns that are not partition columns.
    let file_schema = layout.as_ref().map_or(&schema, |l| l.data_schema());
    types::check_format_schema(options.connector(), format.family(), file_schema)?;
    let ttl = options.parse(lookup::CACHE_TTL, weir_engine::duration::parse_duration)?;
    let reload = crate::full_cache::reload(options, ttl)?;
    let path = local_path(path)?;
    let file_source =
        || source::FileSource::new(path.clone(), format.clone(), schema.clone(), max_record, split_bytes, layout.clone());
    let (source, loader) = (file_source(), lookup::FileLoader::new(file_source()));
    // A changelog's rows are changes, not a table to look rows up in.
    let lookup: Option<Arc<dyn LookupSource>> =
        (!format.is_changelog()).then(|| Arc::new(crate::full_cache::FullCache::new(Arc::new(loader), reload)) as _);
    let sink = sink::FileSink::new(path, format, schema, roll, layout, policy);
    Ok((Arc::new(source), Arc::new(sink), lookup))
}

/// `path` as a local path: as written, or from a `file://` URL (Flink
/// writes paths as URLs). Other schemes (`s3://`, `hdfs://`) are refused:
/// this connector reads and writes the local filesystem.
fn local_path(path: &str) -> Result<PathBuf, ConnectorError> {
    let Some((scheme, _)) = path.split_once("://") else {
        return Ok(PathBuf::from(path));
    };
    if !scheme.eq_ignore_ascii_case("file") {
        return Err(ConnectorError::invalid(
            "path",
            path,
            "expected a local path or a file:// URL (object storage is not supported yet)",
        ));
    }
    url::Url::parse(path)
        .ok()
        .and_then(|u| u.to_file_path().ok())
        .ok_or_else(|| ConnectorError::invalid("path", path, "expected a file:// URL of an absolute local path"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_file_urls_are_local_paths() {
        assert_eq!(local_path("/tmp/in").unwrap(), PathBuf::from("/tmp/in"));
        assert_eq!(local_path("in/part-0.json").unwrap(), PathBuf::from("in/part-0.json"));
        assert_eq!(local_path("file:///tmp/a%20b/in").unwrap(), PathBuf::from("/tmp/a b/in"));
        assert_eq!(local_path("FILE:///tmp/in").unwrap(), PathBuf::from("/tmp/in"));
        for bad in ["s3://bucket/in", "hdfs://nn/in", "file://relative/in"] {
            let e = local_path(bad).unwrap_err().to_string();
            assert!(e.contains("'path'") && e.contains(bad), "{bad}: {e}");
        }
    }
}
