//! The `METADATA` keys of the changelog formats, as Flink names them
//! (after the Kafka connector's `value.` prefix): where in the envelope
//! each value is, and its type.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, StructArray};
use datafusion::arrow::compute::kernels::numeric::mul;
use datafusion::arrow::compute::{cast, take};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::arrow::error::ArrowError;

use super::Protocol;

/// One value of an envelope a column can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetadataKey {
    /// When the CDC tool handled the change (Debezium `ts_ms`, Canal
    /// `ts`, Maxwell `ts` in seconds).
    IngestionTimestamp,
    /// When the database made the change (Debezium `source.ts_ms`, Canal
    /// `es`).
    SourceTimestamp,
    /// Debezium `source.db`, Canal and Maxwell `database`.
    Database,
    /// Debezium `source.schema`.
    Schema,
    /// Debezium `source.table`, Canal and Maxwell `table`.
    Table,
}

const TIMESTAMP: DataType = DataType::Timestamp(TimeUnit::Millisecond, None);

impl MetadataKey {
    /// The key `key` of `protocol`, or the keys it has (for the error).
    pub(crate) fn parse(protocol: Protocol, key: &str) -> Result<Self, &'static str> {
        let found = match (protocol, key) {
            (_, "ingestion-timestamp") => Some(Self::IngestionTimestamp),
            (Protocol::Debezium, "source.timestamp") | (Protocol::Canal, "event-timestamp") => {
                Some(Self::SourceTimestamp)
            }
            (Protocol::Debezium, "source.database") | (Protocol::Canal | Protocol::Maxwell, "database") => {
                Some(Self::Database)
            }
            (Protocol::Debezium, "source.schema") => Some(Self::Schema),
            (Protocol::Debezium, "source.table") | (Protocol::Canal | Protocol::Maxwell, "table") => Some(Self::Table),
            _ => None,
        };
        found.ok_or(match protocol {
            Protocol::Debezium => {
                "'ingestion-timestamp', 'source.timestamp', 'source.database', 'source.schema', 'source.table'"
            }
            Protocol::Canal => "'ingestion-timestamp', 'event-timestamp', 'database', 'table'",
            Protocol::Maxwell => "'ingestion-timestamp', 'database', 'table'",
        })
    }

    /// The column's type as Flink declares it (`TIMESTAMP_LTZ(3)`, read
    /// by Weir's connectors as the `TIMESTAMP(3)` of UTC, or `STRING`).
    pub(crate) fn data_type(self) -> DataType {
        match self {
            Self::IngestionTimestamp | Self::SourceTimestamp => TIMESTAMP,
            Self::Database | Self::Schema | Self::Table => DataType::Utf8,
        }
    }

    /// The envelope field that holds it: a top-level field, or one of
    /// Debezium's `source` struct.
    pub(crate) fn field(self, protocol: Protocol) -> Path {
        match (protocol, self) {
            (Protocol::Debezium, Self::IngestionTimestamp) => Path::Top("ts_ms"),
            (Protocol::Debezium, Self::SourceTimestamp) => Path::Source("ts_ms"),
            (Protocol::Debezium, Self::Database) => Path::Source("db"),
            (Protocol::Debezium, Self::Schema) => Path::Source("schema"),
            (Protocol::Debezium, Self::Table) => Path::Source("table"),
            (_, Self::IngestionTimestamp) => Path::Top("ts"),
            (_, Self::SourceTimestamp) => Path::Top("es"),
            (_, Self::Database) => Path::Top("database"),
            (_, Self::Schema) => Path::Top("schema"),
            (_, Self::Table) => Path::Top("table"),
        }
    }

    /// The values of the envelopes `rows` of `root`, of [`Self::data_type`].
    pub(crate) fn values(
        self,
        protocol: Protocol,
        root: &StructArray,
        rows: &datafusion::arrow::array::UInt32Array,
    ) -> Result<ArrayRef, ArrowError> {
        let missing = || ArrowError::SchemaError(format!("the envelope has no field for metadata {self:?}"));
        let raw = match self.field(protocol) {
            Path::Top(name) => root.column_by_name(name).ok_or_else(missing)?.clone(),
            Path::Source(name) => {
                let source = root.column_by_name("source").ok_or_else(missing)?.as_struct();
                let child = source.column_by_name(name).ok_or_else(missing)?;
                // A record without `source` has none of its values.
                match source.nulls() {
                    None => Arc::clone(child),
                    Some(nulls) => datafusion::arrow::compute::nullif(
                        child,
                        &datafusion::arrow::array::BooleanArray::new(!nulls.inner(), None),
                    )?,
                }
            }
        };
        let picked = take(&raw, rows, None)?;
        match self.data_type() {
            DataType::Utf8 => Ok(picked),
            timestamp => {
                // Maxwell counts seconds, the others milliseconds.
                let millis = match (protocol, self) {
                    (Protocol::Maxwell, Self::IngestionTimestamp) => mul(&picked, &Int64Array::new_scalar(1000))?,
                    _ => picked,
                };
                cast(&millis, &timestamp)
            }
        }
    }
}

/// Where an envelope holds a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Path {
    Top(&'static str),
    /// A field of Debezium's `source` block.
    Source(&'static str),
}
