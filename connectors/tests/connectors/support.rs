//! Helpers shared by the tests.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use weir_connectors::{ConnectorError, ConnectorTable, create_table};
use weir_engine::source::{Assignment, BadRecord, Positions, SourceConnector, SourceEvent};

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
    create_table("t", &with(pairs), schema, &[], &[], &[])
}

/// What one reader produced, in order.
#[derive(Debug, PartialEq)]
pub enum Event {
    /// Partition, row count, number of bad records and position after it.
    Batch(usize, usize, usize, u64),
    End(usize),
    Added(usize),
}

/// Everything one reader produced.
pub struct Read {
    pub events: Vec<Event>,
    /// All rows, in order.
    pub rows: RecordBatch,
    /// All bad records, in order.
    pub bad: Vec<BadRecord>,
}

/// Reads `partitions` with one reader to the end: the events and all rows.
pub async fn read(
    source: &Arc<dyn SourceConnector>,
    partitions: Vec<usize>,
    parallelism: usize,
) -> weir_engine::Result<(Vec<Event>, RecordBatch)> {
    let read = read_reporting(source, partitions, parallelism, false).await?;
    assert!(read.bad.is_empty(), "bad records without asking: {:?}", read.bad);
    Ok((read.events, read.rows))
}

/// Reads `partitions` with one reader opened with `report_bad_records`.
pub async fn read_reporting(
    source: &Arc<dyn SourceConnector>,
    partitions: Vec<usize>,
    parallelism: usize,
    report_bad_records: bool,
) -> weir_engine::Result<Read> {
    read_resumed(source, partitions, parallelism, report_bad_records, &Positions::new()).await
}

/// The assignment of a reader of `partitions` (all of one subtask's) at
/// `parallelism`.
pub fn assignment(partitions: Vec<usize>, parallelism: usize) -> Assignment {
    Assignment {
        subtask: partitions.first().map_or(0, |p| p % parallelism.max(1)),
        parallelism,
        total: partitions.iter().max().map_or(0, |p| p + 1),
        partitions,
    }
}

/// Reads `partitions` with one reader resumed at `resume`, as after a
/// restart from a checkpoint.
pub async fn read_resumed(
    source: &Arc<dyn SourceConnector>,
    partitions: Vec<usize>,
    parallelism: usize,
    report_bad_records: bool,
    resume: &Positions,
) -> weir_engine::Result<Read> {
    let mut reader = source.open(assignment(partitions, parallelism), report_bad_records, resume)?;
    let mut events = Vec::new();
    let mut batches = Vec::new();
    let mut bad = Vec::new();
    while let Some(event) = reader.next().await? {
        match event {
            SourceEvent::Batch {
                partition,
                batch,
                bad_records,
                position,
            } => {
                events.push(Event::Batch(
                    partition,
                    batch.num_rows(),
                    bad_records.len(),
                    position,
                ));
                batches.push(batch);
                bad.extend(bad_records);
            }
            SourceEvent::PartitionEnd(p) => events.push(Event::End(p)),
            SourceEvent::PartitionAdded(p) => events.push(Event::Added(p)),
        }
    }
    let rows = concat_batches(&source.schema(), &batches).expect("batches share the source schema");
    Ok(Read { events, rows, bad })
}

/// The names of every file in `dir`, hidden ones included, sorted.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Reads every partition of `source` as one subtask.
pub async fn read_all(source: &Arc<dyn SourceConnector>) -> weir_engine::Result<RecordBatch> {
    let n = source.partitions(1)?;
    Ok(read(source, (0..n).collect(), 1).await?.1)
}
