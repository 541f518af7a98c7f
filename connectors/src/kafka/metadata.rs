//! Kafka's `METADATA` columns, with Flink's keys: `topic`, `partition`,
//! `offset`, `timestamp` (the record's), and `key` (the message key as
//! text, for tables without `'key.fields'`). They are read only: a sink
//! writes a table's record columns and ignores its metadata ones.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringBuilder, TimestampMillisecondBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef, TimeUnit};
use weir_engine::EngineError;
use weir_engine::error::Result;

use crate::MetadataColumn;
use crate::error::ConnectorError;

/// The keys Weir's Kafka source fills.
const KEYS: &str = "'topic', 'partition', 'offset', 'timestamp', 'key'";

/// One metadata value of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Topic,
    Partition,
    Offset,
    Timestamp,
    /// The message key.
    Message,
}

/// Which columns of a table are metadata, and of what.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fields {
    /// (column in the table's connector schema, key), in column order.
    columns: Vec<(usize, Key)>,
}

impl Fields {
    pub(crate) fn new(schema: &Schema, columns: &[MetadataColumn]) -> std::result::Result<Self, ConnectorError> {
        let mut out = Vec::new();
        for c in columns {
            let key = match c.key.as_str() {
                "topic" => Key::Topic,
                "partition" => Key::Partition,
                "offset" => Key::Offset,
                "timestamp" => Key::Timestamp,
                "key" => Key::Message,
                other => {
                    return Err(ConnectorError::Unsupported {
                        connector: "kafka".into(),
                        what: format!(
                            "column '{}': no METADATA '{other}' (known: {KEYS})",
                            schema.field(c.index).name()
                        ),
                    });
                }
            };
            let natural = natural_type(key);
            let declared = schema.field(c.index).data_type();
            if !datafusion::arrow::compute::can_cast_types(&natural, declared) {
                return Err(ConnectorError::Unsupported {
                    connector: "kafka".into(),
                    what: format!("column '{}': METADATA '{}' cannot be {declared}", schema.field(c.index).name(), c.key),
                });
            }
            out.push((c.index, key));
        }
        Ok(Self { columns: out })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// The record's own columns of `schema` (all but the metadata ones).
    pub(crate) fn values(&self, schema: &Schema) -> SchemaRef {
        let fields: Vec<_> = (0..schema.fields().len())
            .filter(|i| !self.columns.iter().any(|(c, _)| c == i))
            .map(|i| schema.field(i).clone())
            .collect();
        Arc::new(Schema::new(fields))
    }

    /// What to collect while reading: only the values some column wants.
    pub(crate) fn collector(&self) -> Collector {
        let wants = |k: Key| self.columns.iter().any(|(_, key)| *key == k);
        Collector {
            offsets: Vec::new(),
            timestamps: wants(Key::Timestamp).then(TimestampMillisecondBuilder::new),
            keys: wants(Key::Message).then(StringBuilder::new),
        }
    }

    /// The table's row: `values` (decoded records) with the metadata
    /// columns of the records `kept` (indices into what `collected` holds)
    /// put in their places.
    pub(crate) fn assemble(
        &self,
        schema: &SchemaRef,
        values: RecordBatch,
        topic: &str,
        partition: usize,
        mut collected: Collector,
        kept: &[usize],
    ) -> Result<RecordBatch> {
        let take = |array: ArrayRef| -> Result<ArrayRef> {
            let indices = datafusion::arrow::array::UInt32Array::from_iter_values(kept.iter().map(|i| *i as u32));
            datafusion::arrow::compute::take(&array, &indices, None).map_err(|e| EngineError::Connector(format!("kafka: {e}")))
        };
        let n = kept.len();
        let offsets: ArrayRef = Arc::new(Int64Array::from(std::mem::take(&mut collected.offsets)));
        let timestamps = collected.timestamps.as_mut().map(|b| Arc::new(b.finish()) as ArrayRef);
        let keys = collected.keys.as_mut().map(|b| Arc::new(b.finish()) as ArrayRef);
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
        let mut value_columns = values.columns().iter();
        for (i, field) in schema.fields().iter().enumerate() {
            let array = match self.columns.iter().find(|(c, _)| *c == i).map(|(_, k)| *k) {
                None => Arc::clone(value_columns.next().ok_or_else(|| EngineError::Connector("kafka: missing record column".into()))?),
                Some(Key::Topic) => Arc::new(datafusion::arrow::array::StringArray::from(vec![topic; n])),
                Some(Key::Partition) => Arc::new(Int32Array::from(vec![partition as i32; n])),
                Some(Key::Offset) => take(Arc::clone(&offsets))?,
                Some(Key::Timestamp) => take(timestamps.clone().ok_or_else(|| EngineError::Connector("kafka: timestamps not collected".into()))?)?,
                Some(Key::Message) => take(keys.clone().ok_or_else(|| EngineError::Connector("kafka: keys not collected".into()))?)?,
            };
            let array = if array.data_type() == field.data_type() {
                array
            } else {
                cast(&array, field.data_type()).map_err(|e| EngineError::Connector(format!("kafka: METADATA column '{}': {e}", field.name())))?
            };
            columns.push(array);
        }
        // A changelog format's kinds stay last.
        let schema = match value_columns.next() {
            None => Arc::clone(schema),
            Some(kinds) => {
                columns.push(Arc::clone(kinds));
                let mut fields: Vec<_> = schema.fields().iter().cloned().collect();
                fields.push(Arc::new(weir_engine::changelog::op_field()));
                Arc::new(Schema::new(fields))
            }
        };
        RecordBatch::try_new(schema, columns).map_err(|e| EngineError::Connector(format!("kafka: {e}")))
    }
}

fn natural_type(key: Key) -> DataType {
    match key {
        Key::Topic | Key::Message => DataType::Utf8,
        Key::Partition => DataType::Int32,
        Key::Offset => DataType::Int64,
        Key::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, None),
    }
}

/// Metadata of the records of one batch, collected as they are read.
pub(crate) struct Collector {
    offsets: Vec<i64>,
    timestamps: Option<TimestampMillisecondBuilder>,
    keys: Option<StringBuilder>,
}

impl Collector {
    /// Records one message's metadata, in the order its record was added.
    pub(crate) fn push(&mut self, offset: i64, timestamp: Option<i64>, key: Option<&[u8]>) {
        self.offsets.push(offset);
        if let Some(t) = &mut self.timestamps {
            t.append_option(timestamp);
        }
        if let Some(k) = &mut self.keys {
            k.append_option(key.map(String::from_utf8_lossy));
        }
    }
}
