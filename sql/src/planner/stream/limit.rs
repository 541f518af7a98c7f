//! `LIMIT n [OFFSET m]` on a stream (`engine/src/limit.rs`), also after an
//! `ORDER BY` of the time attribute (`time_sort.rs`): the first rows to
//! arrive, in one subtask, append-only. Over an updating result it would
//! have to follow the changes, as Flink's Top-N does, and is refused.

use datafusion::logical_expr::{FetchType, Limit, SkipType, Sort};
use weir_engine::limit::LimitPlan;
use weir_engine::plan::{Distribution, OperatorPlan};

use super::{Flow, StreamPlanner};
use crate::error::{Result, SqlError};

impl StreamPlanner<'_> {
    /// Plans `limit` over its input.
    pub(super) fn limit(&mut self, limit: &Limit) -> Result<Flow> {
        let (skip, fetch) = match (limit.get_skip_type(), limit.get_fetch_type()) {
            (Ok(SkipType::Literal(skip)), Ok(FetchType::Literal(fetch))) => (skip as u64, fetch.map(|n| n as u64)),
            _ => {
                return Err(SqlError::unsupported(
                    "LIMIT or OFFSET on a stream other than a constant number of rows",
                    None,
                ));
            }
        };
        let mut flow = self.plan(&limit.input)?;
        self.materialize(&mut flow)?;
        Self::limit_flow(&mut flow, skip, fetch)?;
        Ok(flow)
    }

    /// Plans `ORDER BY rowtime … LIMIT n`: the sort, then the first rows it
    /// lets go.
    pub(super) fn sorted_limit(&mut self, sort: &Sort, fetch: usize) -> Result<Flow> {
        let unlimited = Sort {
            fetch: None,
            ..sort.clone()
        };
        let mut flow = self.time_sort(&unlimited)?;
        Self::limit_flow(&mut flow, 0, Some(fetch as u64))?;
        Ok(flow)
    }

    fn limit_flow(flow: &mut Flow, skip: u64, fetch: Option<u64>) -> Result<()> {
        flow.refuse_changelog("LIMIT", None)?;
        flow.then(OperatorPlan::new(LimitPlan { skip, fetch }), Distribution::Single);
        Ok(())
    }
}
