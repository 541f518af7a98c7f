//! The `kafka` connector, with Flink's option names: a source that reads
//! a topic's partitions from offsets kept in Weir's checkpoints, and a sink
//! that writes in one Kafka transaction per checkpoint (see
//! `docs/kafka.md` for the exactly-once protocol).

mod context;
mod key_columns;
mod layout;
mod metadata;
mod sink;
mod source;
mod transaction;
mod upsert;
mod upsert_options;

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::datatypes::SchemaRef;
use rdkafka::ClientConfig;
use weir_engine::sink::SinkConnector;
use weir_engine::source::SourceConnector;

use crate::error::ConnectorError;
use crate::options::Options;
use crate::MetadataColumn;
use layout::{LAYOUT_OPTIONS, RecordLayout};

/// Options of the connector itself; `properties.*` and the format's own
/// options come on top.
const TABLE_OPTIONS: &[&str] = &[
    "topic",
    "scan.startup.mode",
    "scan.startup.timestamp-millis",
    "scan.bounded.mode",
    "scan.topic-partition-discovery.interval",
    "sink.delivery-guarantee",
    "sink.transactional-id-prefix",
    "sink.partitioner",
];

/// `'scan.topic-partition-discovery.interval'` when not set (Flink's).
const DEFAULT_DISCOVERY_INTERVAL: Duration = Duration::from_secs(300);

/// How long a call to the broker may take before it is an error.
pub(crate) const BROKER_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a source starts reading a partition it has no checkpoint for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum StartupMode {
    Earliest,
    Latest,
    /// The offsets committed for `properties.group.id`; earliest where none.
    GroupOffsets,
    Timestamp(i64),
}

/// `'sink.delivery-guarantee'`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Guarantee {
    ExactlyOnce,
    AtLeastOnce,
    None,
}

/// The two sides of a kafka table.
type SourceAndSink = (Arc<dyn SourceConnector>, Arc<dyn SinkConnector>);

/// Builds the two sides of a kafka table.
pub(crate) fn create(
    options: &Options,
    schema: SchemaRef,
    metadata: &[MetadataColumn],
) -> Result<SourceAndSink, ConnectorError> {
    build(options, schema, metadata, false)
}

pub(crate) use upsert_options::create_upsert;

/// The two sides of a kafka table; with `upsert`, of an `upsert-kafka`
/// one (whose options were translated to the kafka connector's).
fn build(
    options: &Options,
    schema: SchemaRef,
    metadata: &[MetadataColumn],
    upsert: bool,
) -> Result<SourceAndSink, ConnectorError> {
    // `value.*` keys are the value format's metadata (Flink's prefix).
    let (of_format, of_record): (Vec<MetadataColumn>, Vec<MetadataColumn>) =
        metadata.iter().cloned().partition(|m| m.key.starts_with(FORMAT_METADATA_PREFIX));
    let metadata = metadata::Fields::new(&schema, &of_record)?;
    // The record's own columns: what the key and value formats hold.
    let values = metadata.values(&schema);
    let (mut layout, format_keys) = RecordLayout::from_options(options, &values)?;
    format_metadata(&mut layout, &schema, &of_record, &of_format)?;
    for (key, _) in options.entries() {
        let known = TABLE_OPTIONS.contains(&key) || LAYOUT_OPTIONS.contains(&key) || format_keys.iter().any(|k| k == key);
        if !key.starts_with("properties.") && !known {
            let allowed: Vec<&str> = TABLE_OPTIONS
                .iter()
                .chain(LAYOUT_OPTIONS)
                .copied()
                .chain(format_keys.iter().map(String::as_str))
                .collect();
            return Err(options.unknown(key, format!("{}, properties.*", allowed.join(", "))));
        }
    }
    // Flink's partitioners; Weir sends keyed records by their key's hash
    // and others as librdkafka spreads them, which none of these contradict.
    match options.get("sink.partitioner") {
        None | Some("default" | "fixed" | "round-robin") => {}
        Some(other) => {
            return Err(ConnectorError::invalid(
                "sink.partitioner",
                other,
                "expected 'default', 'fixed' or 'round-robin' (partitioner classes are Java)",
            ));
        }
    }
    let topic = options.required("topic")?.to_string();
    if topic.contains(';') {
        return Err(ConnectorError::Unsupported {
            connector: "kafka".into(),
            what: format!("one topic per table ('topic' = '{topic}' lists several)"),
        });
    }
    options.required("properties.bootstrap.servers")?;
    if options.get("properties.transactional.id").is_some() {
        return Err(ConnectorError::invalid(
            "properties.transactional.id",
            options.get("properties.transactional.id").unwrap_or_default(),
            "set by Weir per job; use 'sink.transactional-id-prefix'",
        ));
    }
    let config = client_config(options);
    // Flink's default is the group's offsets; a table without a group (a
    // sink, or a quick look at a topic) reads from the start instead.
    let default_startup = if options.get("properties.group.id").is_some() { "group-offsets" } else { "earliest-offset" };
    let startup = match options.get("scan.startup.mode").unwrap_or(default_startup) {
        "earliest-offset" => StartupMode::Earliest,
        "latest-offset" => StartupMode::Latest,
        "group-offsets" => StartupMode::GroupOffsets,
        "timestamp" => StartupMode::Timestamp(
            options
                .parse("scan.startup.timestamp-millis", |v| v.parse::<i64>().map_err(|_| "expected milliseconds since the epoch".to_string()))?
                .ok_or_else(|| ConnectorError::MissingOption {
                    connector: "kafka".into(),
                    key: "scan.startup.timestamp-millis".into(),
                })?,
        ),
        other => {
            return Err(ConnectorError::invalid(
                "scan.startup.mode",
                other,
                "expected 'earliest-offset', 'latest-offset', 'group-offsets' or 'timestamp'",
            ));
        }
    };
    if matches!(startup, StartupMode::GroupOffsets) && options.get("properties.group.id").is_none() {
        return Err(ConnectorError::invalid(
            "scan.startup.mode",
            "group-offsets",
            "needs 'properties.group.id' (or choose 'earliest-offset')",
        ));
    }
    let bounded = match options.get("scan.bounded.mode").unwrap_or("unbounded") {
        "unbounded" => false,
        "latest-offset" => true,
        other => return Err(ConnectorError::invalid("scan.bounded.mode", other, "expected 'unbounded' or 'latest-offset'")),
    };
    // Flink's default since FLIP-288: every 5 minutes; '0' turns it off. A
    // bounded read stops at the partitions it started with.
    let discovery = options
        .parse("scan.topic-partition-discovery.interval", weir_engine::duration::parse_duration)?
        .unwrap_or(DEFAULT_DISCOVERY_INTERVAL);
    let discovery = (!discovery.is_zero() && !bounded).then_some(discovery);
    let guarantee = match options.get("sink.delivery-guarantee").unwrap_or("exactly-once") {
        "exactly-once" => Guarantee::ExactlyOnce,
        "at-least-once" => Guarantee::AtLeastOnce,
        "none" => Guarantee::None,
        other => {
            return Err(ConnectorError::invalid(
                "sink.delivery-guarantee",
                other,
                "expected 'exactly-once', 'at-least-once' or 'none'",
            ));
        }
    };
    let prefix = options.get("sink.transactional-id-prefix").unwrap_or("weir").to_string();
    let source = source::KafkaSource::new(
        config.clone(),
        topic.clone(),
        layout.clone(),
        schema,
        metadata,
        source::Reading { startup, bounded, discovery },
        upsert,
    );
    let sink = sink::KafkaSink::new(config, topic, layout, values, guarantee, prefix);
    Ok((Arc::new(source), Arc::new(sink)))
}

/// The prefix of the value format's `METADATA` keys (`value.source.table`).
const FORMAT_METADATA_PREFIX: &str = "value.";

/// Gives the value format the `METADATA` columns it fills (`of_format`,
/// columns of `schema`), at their places among the record's columns (all
/// but `of_record`); only the changelog formats have such keys.
fn format_metadata(
    layout: &mut RecordLayout,
    schema: &datafusion::arrow::datatypes::Schema,
    of_record: &[MetadataColumn],
    of_format: &[MetadataColumn],
) -> Result<(), ConnectorError> {
    let Some(first) = of_format.first() else {
        return Ok(());
    };
    let name = |m: &MetadataColumn| schema.field(m.index).name().clone();
    let crate::filesystem::format::Format::Changelog(format) = &mut layout.value_format else {
        return Err(ConnectorError::Unsupported {
            connector: "kafka".into(),
            what: format!(
                "column '{}': no METADATA '{}' (the value's metadata are those of the changelog formats: \
                 'debezium-json', 'canal-json', 'maxwell-json')",
                name(first),
                first.key
            ),
        });
    };
    for m in of_format {
        let key = &m.key[FORMAT_METADATA_PREFIX.len()..];
        let parsed = crate::changelog::metadata::MetadataKey::parse(format.protocol, key).map_err(|known| {
            ConnectorError::Unsupported {
                connector: "kafka".into(),
                what: format!(
                    "column '{}': format '{}' has no METADATA '{key}' (known, after 'value.': {known})",
                    name(m),
                    format.protocol.name()
                ),
            }
        })?;
        let declared = schema.field(m.index).data_type();
        if !datafusion::arrow::compute::can_cast_types(&parsed.data_type(), declared) {
            return Err(ConnectorError::Unsupported {
                connector: "kafka".into(),
                what: format!("column '{}': METADATA '{}' cannot be {declared}", name(m), m.key),
            });
        }
        let place = m.index - of_record.iter().filter(|r| r.index < m.index).count();
        format.metadata.push((place, parsed));
    }
    Ok(())
}

/// librdkafka's settings: every `'properties.<key>'` as `<key>`.
fn client_config(options: &Options) -> ClientConfig {
    let mut config = ClientConfig::new();
    for (key, value) in options.entries() {
        if let Some(key) = key.strip_prefix("properties.") {
            config.set(key, value);
        }
    }
    config
}

/// A Kafka error with what Weir was doing, for the user.
pub(crate) fn kafka_error(context: impl std::fmt::Display, e: rdkafka::error::KafkaError) -> weir_engine::EngineError {
    weir_engine::EngineError::Connector(format!("kafka: {context}: {e}"))
}
