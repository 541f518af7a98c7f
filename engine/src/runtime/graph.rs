//! A running job's shape as plain data: its stages, their parallelism,
//! operators and exchanges. The plan itself moves into the job's
//! supervisor (it instantiates every attempt from it), so front ends that
//! draw the job (the dashboard) read this copy, kept in the job's handle.

use crate::checkpoint::identity::state_ids;
use crate::plan::{Partitioning, StageInput, StateGrowth, StreamPlan, exprs};

/// The stages of a job in topological order, and `EXPLAIN`'s text of it.
#[derive(Debug, Clone, Default)]
pub struct JobGraph {
    pub stages: Vec<StageInfo>,
    /// What `EXPLAIN` prints for the plan, state ids included.
    pub explain: String,
}

/// One stage: a set of identical parallel tasks.
#[derive(Debug, Clone)]
pub struct StageInfo {
    pub stage: usize,
    pub parallelism: usize,
    /// The table it reads, for a source stage.
    pub source: Option<String>,
    /// The earlier stages it reads through exchanges.
    pub inputs: Vec<EdgeInfo>,
    /// Its chain, in order.
    pub operators: Vec<OperatorInfo>,
    pub sink: Option<String>,
    pub late_sink: Option<String>,
}

/// One operator of a stage's chain.
#[derive(Debug, Clone)]
pub struct OperatorInfo {
    pub name: String,
    /// The id its state is saved and measured under (`weir.memory`), if
    /// it keeps state.
    pub state_id: Option<String>,
    /// Whether nothing frees its state (what `EXPLAIN` warns about).
    pub unbounded: bool,
}

/// An exchange into a stage.
#[derive(Debug, Clone)]
pub struct EdgeInfo {
    pub from: usize,
    /// `forward`, `hash` or `single`.
    pub partitioning: &'static str,
    /// A hash exchange's keys, as `EXPLAIN` lists them.
    pub keys: Option<String>,
}

impl JobGraph {
    /// The graph of `plan` (with its UIDs applied, as the job runs it).
    pub fn of(plan: &StreamPlan) -> Self {
        let (ids, _) = state_ids(plan);
        let stages = plan
            .stages
            .iter()
            .zip(&ids)
            .enumerate()
            .map(|(i, (stage, ids))| {
                let (source, inputs) = match &stage.input {
                    StageInput::Source(s) => (Some(s.table.clone()), Vec::new()),
                    StageInput::Exchange(ups) => (None, ups.iter().map(edge).collect()),
                };
                let operators = stage
                    .chain
                    .iter()
                    .zip(&ids.operators)
                    .map(|(op, id)| OperatorInfo {
                        name: op.name(),
                        state_id: id.as_ref().map(|id| id.to_string()),
                        unbounded: op.state().is_some_and(|s| s.growth == StateGrowth::Unbounded),
                    })
                    .collect();
                StageInfo {
                    stage: i,
                    parallelism: stage.parallelism,
                    source,
                    inputs,
                    operators,
                    sink: stage.sink.as_ref().map(|s| s.table.clone()),
                    late_sink: stage.late_sink.as_ref().map(|s| s.table.clone()),
                }
            })
            .collect();
        Self { stages, explain: plan.to_string() }
    }
}

fn edge(up: &crate::plan::Upstream) -> EdgeInfo {
    let (partitioning, keys) = match &up.partitioning {
        Partitioning::Forward => ("forward", None),
        Partitioning::Single => ("single", None),
        Partitioning::Hash(keys) => ("hash", Some(exprs(keys))),
    };
    EdgeInfo { from: up.from, partitioning, keys }
}
