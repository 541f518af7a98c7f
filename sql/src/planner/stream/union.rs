//! `UNION ALL` of streams: every input's rows, in one stage that reads
//! them all. Its watermark is the least of the inputs' (the exchange
//! input combines them), and its checkpoints align the barriers of every
//! input, as a join's do.

use datafusion::logical_expr::Union;
use weir_engine::plan::{Partitioning, Upstream};

use super::{Flow, StreamPlanner};
use crate::error::{Result, SqlError};

impl StreamPlanner<'_> {
    pub(super) fn union_all(&mut self, union: &Union) -> Result<Flow> {
        let mut inputs = Vec::new();
        for input in &union.inputs {
            let mut flow = self.plan(input)?;
            flow.refuse_changelog("UNION ALL", None)?;
            if let Some(rel) = flow.window.take() {
                self.materialize(&mut flow, rel)?;
            }
            inputs.push(flow);
        }
        let Some(first) = inputs.first() else {
            return Err(SqlError::plan("UNION ALL of no input", None));
        };
        // The rowtime and window columns stay where every input has them.
        let time = first.time.filter(|t| inputs.iter().all(|f| f.time == Some(*t)));
        let windowed = first.windowed.filter(|w| {
            inputs.iter().all(|f| f.windowed.is_some_and(|o| o.spec == w.spec && o.start == w.start && o.end == w.end))
        });
        // Subtask i of each input feeds subtask i when they run alike;
        // otherwise everything meets in one subtask.
        let parallelism = first.parallelism;
        let (partitioning, parallelism) = match inputs.iter().all(|f| f.parallelism == parallelism) {
            true => (Partitioning::Forward, parallelism),
            false => (Partitioning::Single, 1),
        };
        let upstreams = inputs
            .into_iter()
            .map(|flow| Upstream { from: self.end_stage(flow), partitioning: partitioning.clone() })
            .collect();
        Ok(Flow { time, windowed, ..Flow::reading(upstreams, parallelism) })
    }
}
