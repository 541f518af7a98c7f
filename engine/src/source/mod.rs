//! Sources: the connector side (readers of partitions) and the engine side
//! (computed columns and per-partition watermarks).

pub mod driver;
pub mod watermark;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;

use crate::error::Result;
use crate::operators::project::ProjectPlan;
use crate::window::late::LateOutputPlan;
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

    /// A checkpoint holding `positions` (of one subtask's partitions) is
    /// complete. Recovery never reads them back from the connector; this is
    /// for the outside world, e.g. a Kafka consumer group's lag.
    fn checkpoint_committed(&self, _positions: &Positions) {}

    /// Per partition, the broker's latest offset and the consumer group's
    /// committed one (`weir.kafka_lag`); empty for sources without a broker.
    /// Blocking: it asks the broker.
    fn broker_offsets(&self) -> Result<Vec<BrokerOffsets>> {
        Ok(Vec::new())
    }

    /// Whether a reader reads all its partitions at once (Kafka) rather
    /// than one after another (files): then each holds the watermark back
    /// from the start, not only once it has rows.
    fn reads_partitions_together(&self) -> bool {
        false
    }

    /// Whether the rows are a changelog (a CDC format, an upsert topic):
    /// each batch then carries [`crate::changelog::OP_COLUMN`] after the
    /// columns of [`SourceConnector::schema`], so that the planner knows
    /// which operators must take rows back.
    fn changelog(&self) -> bool {
        false
    }

    /// Whether readers find partitions that appear while the job runs
    /// (Kafka partition discovery): then a subtask that owns no partition
    /// yet may own one later, and is idle rather than ended.
    fn discovers_partitions(&self) -> bool {
        false
    }

    /// What a partition's position counts, when positions counted
    /// otherwise by an earlier version or other options would be misread
    /// (a file's lines, counted per split of a big file): it is part of
    /// the source's state signature, so that a checkpoint of positions
    /// counted otherwise is refused rather than restored wrongly. `None`
    /// for positions that always meant the same.
    fn positions(&self) -> Option<String> {
        None
    }

    /// This source making only the rows whose column `column` (of
    /// [`SourceConnector::schema`]) equals `value`, when it can skip the
    /// others where they are made (the nexmark events table makes one
    /// kind's events only); `None` when it cannot. The query's filter
    /// still runs above it.
    fn only_rows_where(
        &self,
        _column: usize,
        _value: &datafusion::common::ScalarValue,
    ) -> Option<Arc<dyn SourceConnector>> {
        None
    }

    /// This source making only the columns `read` (indices into
    /// [`SourceConnector::schema`], ascending) and nulls in the others, when
    /// making a column costs (a generator's text) and it can skip it;
    /// `None` when it skips nothing. A projection right above the source
    /// drops the others ([`SourcePlan::read`]). A column declared NOT NULL
    /// is made anyway, and the rows are the same rows either way.
    fn only_columns(&self, _read: &[usize]) -> Option<Arc<dyn SourceConnector>> {
        None
    }

    /// Opens the reader of one subtask over the partitions `assignment`
    /// gives it.
    ///
    /// With `report_bad_records` (the query routes them to a side table),
    /// records that cannot be decoded are reported in
    /// [`SourceEvent::Batch::bad_records`] instead of failing the read,
    /// whatever the table's own `'<format>.ignore-parse-errors'` says.
    ///
    /// `resume` holds, for partitions read before (recovery from a
    /// checkpoint), the position to continue from: the `position` of the
    /// last event of that partition the checkpoint covered, or
    /// [`PARTITION_ENDED`]; other partitions start at their beginning.
    fn open(
        &self,
        assignment: Assignment,
        report_bad_records: bool,
        resume: &Positions,
    ) -> Result<Box<dyn SourceReader>>;
}

/// The partitions one reader reads.
#[derive(Debug, Clone)]
pub struct Assignment {
    /// Partition `p` belongs to subtask `p % parallelism`, partitions found
    /// while the job runs too.
    pub subtask: usize,
    pub parallelism: usize,
    /// How many partitions the source had when the job started
    /// ([`SourceConnector::partitions`]): any beyond are new.
    pub total: usize,
    /// This subtask's partitions among them.
    pub partitions: Vec<usize>,
}

/// Where one partition of a broker's topic stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerOffsets {
    pub topic: String,
    pub partition: usize,
    /// The offset the next record written will get.
    pub high_watermark: u64,
    /// The group's committed offset (the next to read), if it has one.
    pub committed: Option<u64>,
}

/// Per partition, how far a reader got: an offset in the connector's own
/// unit (records for files and generators, later Kafka offsets).
pub type Positions = BTreeMap<usize, u64>;

/// The position of a partition that has ended: it is not read again.
pub const PARTITION_ENDED: u64 = u64::MAX;

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
    /// Rows of one partition, in the partition's order, with the records
    /// read with them that could not be decoded (reported instead of failing
    /// the job, so that they are counted and can reach the late-data side
    /// table). `position` is where the partition stands after this event:
    /// reopening with it continues right after these records. Rows and bad
    /// records come in one event so that a checkpoint never splits them.
    Batch {
        partition: usize,
        batch: RecordBatch,
        bad_records: Vec<BadRecord>,
        position: u64,
    },
    /// A partition has no more rows: it stops holding the watermark back.
    PartitionEnd(usize),
    /// The reader found a new partition and reads it from its beginning:
    /// it holds the watermark back like the reader's first partitions.
    PartitionAdded(usize),
}

/// A record a connector could not decode: enough for a user to find and fix
/// it in the input.
#[derive(Debug, Clone)]
pub struct BadRecord {
    /// The partition it was read from.
    pub partition: usize,
    /// Where it is, e.g. `/data/in.json:17`.
    pub location: String,
    /// The raw record, cut after 200 characters (then ending in `...`) so
    /// that one huge line cannot flood logs.
    pub text: String,
    /// Why it could not be decoded.
    pub error: String,
}

/// A table scan: the connector, its computed columns and its watermark.
#[derive(Debug, Clone)]
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
    /// Readers report undecodable records instead of failing: the query has
    /// a `LATE DATA INTO` table for them.
    pub report_bad_records: bool,
    /// The `LATE DATA INTO` table's columns, when undecodable records go
    /// there (with `reason = 'decode_error'`).
    pub late_output: Option<Arc<LateOutputPlan>>,
    /// The columns of the connector's schema the job reads, ascending
    /// (what every reader of a shared source reads, as Flink's scan reuse
    /// unions their projections); `None` for all. Set by the plan's last
    /// pass (`plan/source_columns.rs`); readers open
    /// [`SourcePlan::reading`].
    pub read: Option<Vec<usize>>,
}

impl SourcePlan {
    /// Whether `other` reads exactly what this plan reads — the same
    /// connector of the same table, with the same columns, computed
    /// columns, watermark and handling of bad records — so that one reader
    /// can feed both (`plan/reuse_sources.rs`). A connector narrowed by a
    /// filter (`SourceConnector::only_rows_where`: each read of Flink
    /// nexmark's `bid` view makes its own) is the same when it says and
    /// holds the same. The columns each reads do not matter: the shared
    /// reader makes what either reads.
    pub fn same_reading(&self, other: &SourcePlan) -> bool {
        let same_connector = Arc::ptr_eq(&self.connector, &other.connector)
            || self.connector.describe() == other.connector.describe();
        let all_columns = |p: &SourcePlan| format!("{:?}", SourcePlan { read: None, ..p.clone() });
        same_connector && all_columns(self) == all_columns(other)
    }

    /// The connector as the job reads it: making only the columns of
    /// [`SourcePlan::read`] when it can skip the others.
    pub fn reading(&self) -> Arc<dyn SourceConnector> {
        self.read
            .as_deref()
            .and_then(|read| self.connector.only_columns(read))
            .unwrap_or_else(|| Arc::clone(&self.connector))
    }
}
