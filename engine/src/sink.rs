//! Sinks: where a job's rows leave the engine.

use std::fmt::Debug;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;

use crate::error::Result;
use crate::message::EventTime;

/// A sink connector as declared by `CREATE TABLE … WITH (…)`.
pub trait SinkConnector: Send + Sync + Debug {
    /// One line for EXPLAIN.
    fn describe(&self) -> String;

    /// The columns the sink takes (the table's physical columns).
    fn schema(&self) -> SchemaRef;

    /// Tells the sink which columns identify a row of the job that writes it:
    /// a re-fired window's row replaces the earlier one with the same key.
    /// Append sinks keep every row and ignore it; upsert sinks keep the
    /// latest row per key.
    fn set_upsert_key(&self, _key: &[usize]) {}

    /// Whether the sink applies a changelog (`crate::changelog`): its
    /// writers then get batches with the changelog column last. Sinks that
    /// can only append refuse queries whose results change.
    fn accepts_changes(&self) -> bool {
        false
    }

    /// Recovery of subtask `subtask` of job `job_id` from a checkpoint:
    /// makes visible what `prepared` (the subtask's [`SinkWriter::prepare`]
    /// state in that checkpoint) lists, and discards the job's output that
    /// no completed checkpoint covers. With `withdraw_after`, the job
    /// resumes from that checkpoint although the sink committed output of
    /// newer ones (they were damaged or lost): that output is written again,
    /// so the sink removes what those commits made visible (a file can be
    /// deleted; a Kafka transaction cannot be undone, see
    /// [`Committed::Through`]).
    /// Sinks without two-phase commit have nothing to do.
    fn recover(
        &self,
        _job_id: &str,
        _subtask: usize,
        _prepared: Option<&[u8]>,
        _withdraw_after: Option<u64>,
    ) -> Result<()> {
        Ok(())
    }

    /// What output of job `job_id` the sink has already committed, so that
    /// a job whose state fell back (damaged, lost, or a savepoint) knows
    /// what it would write twice. Called before recovery, once per job; for
    /// a Kafka sink it also fences the job's earlier incarnation, so that
    /// nothing it left open can still commit.
    fn committed_checkpoint(&self, _job_id: &str) -> Result<Committed> {
        Ok(Committed::Untracked)
    }

    /// Opens the writer of one parallel subtask of job `job_id`.
    fn open(&self, job_id: &str, subtask: usize, parallelism: usize) -> Result<Box<dyn SinkWriter>>;
}

/// What a sink committed, as [`SinkConnector::committed_checkpoint`] tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    /// The sink keeps no record of checkpoints (it has no two-phase
    /// commit): the store alone decides.
    Untracked,
    /// The sink's own commit is the commit point of a checkpoint (a Kafka
    /// transaction carrying its id): its output up to this checkpoint is
    /// committed (0: none) and cannot be taken back. A job whose store is
    /// newer resumes from here; one whose store is older would repeat it.
    Through(u64),
    /// The sink commits after the store (files renamed once a checkpoint
    /// is complete): the newest checkpoint whose output is visible (0:
    /// none). Output newer than the restored checkpoint is withdrawn by
    /// [`SinkConnector::recover`].
    Withdrawable(u64),
}

impl Committed {
    /// The checkpoint up to which output is committed, if the sink tracks it.
    pub fn checkpoint(self) -> Option<u64> {
        match self {
            Committed::Untracked => None,
            Committed::Through(c) | Committed::Withdrawable(c) => Some(c),
        }
    }
}

/// Writes the rows of one sink subtask.
#[async_trait::async_trait]
pub trait SinkWriter: Send {
    async fn write(&mut self, batch: RecordBatch) -> Result<()>;

    /// The watermark after the rows written so far: a sink whose output
    /// depends on event time (a partitioned filesystem sink committing a
    /// partition once the watermark passes its time) keeps it; others
    /// ignore it.
    fn watermark(&mut self, _watermark: EventTime) {}

    /// Checkpoint `checkpoint` is taken: make everything written so far
    /// durable but not yet visible, and return what recovery needs to make
    /// it visible ([`SinkConnector::recover`]).
    async fn prepare(&mut self, _checkpoint: u64) -> Result<Vec<u8>> {
        Ok(Vec::new())
    }

    /// Checkpoint `checkpoint` completed: make what was prepared for it, and
    /// for earlier ones, visible.
    async fn commit(&mut self, _checkpoint: u64) -> Result<()> {
        Ok(())
    }

    /// Input ended: flush and make the output visible.
    async fn finish(&mut self) -> Result<()>;
}
