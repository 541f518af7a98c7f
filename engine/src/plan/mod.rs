//! The streaming plan: stages of chained operators joined by exchanges.
//!
//! The SQL planner builds a tree of stream nodes from DataFusion's logical
//! plan (`node.rs`); one pass splits it into stages (`stages.rs`); the
//! runtime instantiates one task per stage and parallel subtask. `Display`
//! (`explain.rs`) is what `EXPLAIN` prints; each operator is an
//! [`OperatorSpec`] (`operator.rs`) defined next to the operator.

use std::sync::Arc;

use datafusion::physical_plan::PhysicalExpr;

use crate::sink::SinkConnector;
use crate::source::SourcePlan;
use crate::spill::StateBackend;

mod explain;
pub mod node;
mod operator;
mod reuse_sources;
mod source_columns;
mod stages;
mod statement_set;

pub use explain::{columns, exprs};
pub use node::{Distribution, NodeOp, Properties, StateGrowth, StreamNode, WindowColumns};
pub use operator::{OperatorContext, OperatorPlan, OperatorSpec, StateShape};
pub use reuse_sources::reuse_sources;
pub use source_columns::read_only_what_is_used;
pub use stages::split;
pub use statement_set::join;

/// A job: stages in topological order (inputs before their consumers).
#[derive(Debug)]
pub struct StreamPlan {
    pub stages: Vec<Stage>,
    /// Where its keyed state lives: memory, or memory up to a budget and
    /// local disk beyond (`state.backend.type`), for every operator that
    /// can spill.
    pub state: Arc<StateBackend>,
}

/// A set of identical parallel tasks, each running the same operator chain.
#[derive(Debug)]
pub struct Stage {
    pub parallelism: usize,
    pub input: StageInput,
    pub chain: Vec<OperatorPlan>,
    /// `None` when a later stage reads this one through an exchange.
    pub sink: Option<SinkPlan>,
    /// `LATE DATA INTO`: the side table of the stage's window aggregate.
    pub late_sink: Option<SinkPlan>,
}

/// Where a stage's rows come from.
#[derive(Debug)]
pub enum StageInput {
    Source(Arc<SourcePlan>),
    /// Earlier stages through exchanges: one, or two for a join (its left
    /// side first; the join sees each row's input by this order).
    Exchange(Vec<Upstream>),
}

/// An earlier stage a stage reads, and how its rows are spread.
#[derive(Debug)]
pub struct Upstream {
    pub from: usize,
    pub partitioning: Partitioning,
}

/// How rows of an upstream stage are spread over a stage's subtasks.
#[derive(Debug, Clone)]
pub enum Partitioning {
    /// Subtask i feeds subtask i (same parallelism).
    Forward,
    /// By key: every row with the same key reaches the same subtask.
    Hash(Vec<Arc<dyn PhysicalExpr>>),
    /// Everything to one subtask.
    Single,
}

/// The sink that ends the last stage.
#[derive(Debug, Clone)]
pub struct SinkPlan {
    pub table: String,
    pub connector: Arc<dyn SinkConnector>,
    /// Columns of the sink's row that identify it (group columns and window
    /// of a windowed aggregation), for upsert sinks.
    pub upsert_key: Option<Vec<usize>>,
}

impl StreamPlan {
    /// A plan of `stages` whose state lives in memory (the session gives it
    /// its backend when it starts the job).
    pub fn new(stages: Vec<Stage>) -> Self {
        Self { stages, state: StateBackend::memory() }
    }

    /// The name the sink of stage `stage` writes under for job `job_id`
    /// (its file names, its Kafka transactional ids), and the name of its
    /// prepared output in checkpoints: the job's id and `sink` for the last
    /// sink, as a job of one INSERT has; for the other sinks of a statement
    /// set, their ordinal among the plan's sinks (stage numbers change with
    /// parallelism, which chains stages differently), so that two sinks
    /// never share a name.
    pub fn sink_job(&self, job_id: &str, stage: usize) -> (String, String) {
        let sinks = self.stages.iter().filter(|s| s.sink.is_some()).count();
        let ordinal = self.stages[..stage.min(self.stages.len())].iter().filter(|s| s.sink.is_some()).count();
        match ordinal + 1 >= sinks {
            true => (job_id.to_string(), "sink".to_string()),
            false => (format!("{job_id}-sink{ordinal}"), format!("sink{ordinal}")),
        }
    }

    /// The stages that read stage `stage` through exchanges, in stage
    /// order: one, or several for a source read several times alike.
    pub fn consumers(&self, stage: usize) -> Vec<usize> {
        let reads = |s: &Stage| matches!(&s.input, StageInput::Exchange(ups) if ups.iter().any(|u| u.from == stage));
        self.stages.iter().enumerate().filter(|(_, s)| reads(s)).map(|(i, _)| i).collect()
    }

    /// The tables the plan reads and writes, in plan order.
    pub fn tables(&self) -> impl Iterator<Item = &str> {
        self.stages.iter().flat_map(|stage| {
            let source = match &stage.input {
                StageInput::Source(s) => Some(s.table.as_str()),
                StageInput::Exchange(_) => None,
            };
            source
                .into_iter()
                .chain(stage.sink.as_ref().map(|s| s.table.as_str()))
                .chain(stage.late_sink.as_ref().map(|s| s.table.as_str()))
        })
    }
}
