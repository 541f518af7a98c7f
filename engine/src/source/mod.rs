//! Sources: the connector side (readers of partitions) and the engine side
//! (computed columns and per-partition watermarks).

pub mod driver;
pub mod watermark;

use std::fmt::Debug;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;

use crate::error::Result;
use crate::operators::project::ProjectPlan;
pub use watermark::WatermarkPlan;

/// A source connector as declared by `CREATE TABLE … WITH (…)`.
///
/// Its data is split into partitions (files, generator splits, later Kafka
/// partitions); each parallel subtask reads some of them.
pub trait SourceConnector: Send + Sync + Debug {
    /// One line for EXPLAIN, e.g. `filesystem path=/data format=json`.
    fn describe(&self) -> String;

    /// Columns the connector produces (the table's physical columns).
    fn schema(&self) -> SchemaRef;

    /// Number of partitions when the job runs with `parallelism` subtasks.
    fn partitions(&self, parallelism: usize) -> Result<usize>;

    /// Opens a reader over the given partitions.
    fn open(&self, partitions: Vec<usize>, parallelism: usize) -> Result<Box<dyn SourceReader>>;
}

/// Reads batches from the partitions of one subtask.
#[async_trait::async_trait]
pub trait SourceReader: Send {
    /// The next event, or `None` when every partition has ended (only
    /// bounded sources end).
    async fn next(&mut self) -> Result<Option<SourceEvent>>;
}

/// What a reader reports.
#[derive(Debug)]
pub enum SourceEvent {
    /// Rows of one partition, in the partition's order.
    Batch { partition: usize, batch: RecordBatch },
    /// A partition has no more rows: it stops holding the watermark back.
    PartitionEnd(usize),
}

/// A table scan: the connector, its computed columns and its watermark.
#[derive(Debug)]
pub struct SourcePlan {
    /// The table's name in the catalog.
    pub table: String,
    pub connector: Arc<dyn SourceConnector>,
    /// Physical columns to the table's full row (computed columns in
    /// declared order); `None` when the table has none.
    pub computed: Option<Arc<ProjectPlan>>,
    pub watermark: Option<WatermarkPlan>,
    /// Schema of the rows the scan emits.
    pub schema: SchemaRef,
}
