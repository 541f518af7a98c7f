//! `UNION ALL` of streams: every input's rows, in one stage that reads
//! them all. Its watermark is the least of the inputs' (the exchange
//! input combines them), and its checkpoints align the barriers of every
//! input, as a join's do.

use datafusion::logical_expr::Union;
use weir_engine::plan::{Distribution, NodeOp, Properties, StreamNode};

use super::{Flow, StreamPlanner};
use crate::error::{Result, SqlError};

impl StreamPlanner<'_> {
    pub(super) fn union_all(&mut self, union: &Union) -> Result<Flow> {
        let mut inputs = Vec::new();
        for input in &union.inputs {
            let mut flow = self.plan(input)?;
            flow.refuse_changelog("UNION ALL", None)?;
            self.materialize(&mut flow)?;
            inputs.push(flow);
        }
        let Some(first) = inputs.first() else {
            return Err(SqlError::plan("UNION ALL of no input", None));
        };
        // The rowtime and window columns stay where every input has them.
        let rowtime = first.props().rowtime.filter(|t| inputs.iter().all(|f| f.props().rowtime == Some(*t)));
        let window = first.props().window.filter(|w| inputs.iter().all(|f| f.props().window == Some(*w)));
        let properties = Properties { rowtime, window, ..Properties::default() };
        // Subtask i of each input feeds subtask i when they run alike;
        // otherwise everything meets in one subtask.
        let inputs = inputs.into_iter().map(|flow| (flow.node, Distribution::Aligned)).collect();
        Ok(Flow::new(StreamNode::over(NodeOp::Union, inputs, properties)))
    }
}
