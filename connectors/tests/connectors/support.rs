//! Helpers shared by the tests.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use weir_connectors::{ConnectorError, ConnectorTable, create_table};
use weir_engine::source::{SourceConnector, SourceEvent};

/// A WITH map from pairs.
pub fn with(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn schema(fields: &[(&str, DataType)]) -> SchemaRef {
    Arc::new(Schema::new(
        fields
            .iter()
            .map(|(name, dt)| Field::new(*name, dt.clone(), true))
            .collect::<Vec<_>>(),
    ))
}

pub fn table(pairs: &[(&str, &str)], schema: SchemaRef) -> Result<ConnectorTable, ConnectorError> {
    create_table("t", &with(pairs), schema)
}

/// What one reader produced, in order.
#[derive(Debug, PartialEq)]
pub enum Event {
    /// Partition and row count.
    Batch(usize, usize),
    End(usize),
}

/// Reads `partitions` with one reader to the end: the events and all rows.
pub async fn read(
    source: &Arc<dyn SourceConnector>,
    partitions: Vec<usize>,
    parallelism: usize,
) -> weir_engine::Result<(Vec<Event>, RecordBatch)> {
    let mut reader = source.open(partitions, parallelism)?;
    let mut events = Vec::new();
    let mut batches = Vec::new();
    while let Some(event) = reader.next().await? {
        match event {
            SourceEvent::Batch { partition, batch } => {
                events.push(Event::Batch(partition, batch.num_rows()));
                batches.push(batch);
            }
            SourceEvent::PartitionEnd(p) => events.push(Event::End(p)),
        }
    }
    let all = concat_batches(&source.schema(), &batches).expect("batches share the source schema");
    Ok((events, all))
}

/// Reads every partition of `source` as one subtask.
pub async fn read_all(source: &Arc<dyn SourceConnector>) -> weir_engine::Result<RecordBatch> {
    let n = source.partitions(1)?;
    Ok(read(source, (0..n).collect(), 1).await?.1)
}
