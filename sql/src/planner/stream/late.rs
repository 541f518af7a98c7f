//! `LATE DATA INTO` for the operators other than a window aggregation that
//! drop rows behind the watermark: an OVER window, a window Top-N and a
//! keep-first deduplication by event time. They take the clause when it
//! comes alone (`ALLOWED LATENESS` and `EMIT EARLY` are a window
//! aggregation's), and send their late rows, whole, to the side table.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use weir_engine::plan::SinkPlan;
use weir_engine::window::late::LateOutputPlan;

use super::StreamPlanner;
use crate::error::Result;

impl StreamPlanner<'_> {
    /// The side table for late rows of `row`, when the query names one and
    /// nothing else.
    pub(super) fn take_late_data(&mut self, row: &SchemaRef) -> Result<Option<(Arc<LateOutputPlan>, SinkPlan)>> {
        let alone = self
            .clauses
            .as_ref()
            .is_some_and(|c| c.late_data_into.is_some() && c.allowed_lateness == 0 && c.emit_early.is_none());
        let Some(clauses) = self.clauses.take_if(|_| alone) else {
            return Ok(None);
        };
        let Some(target) = &clauses.late_data_into else {
            return Ok(None);
        };
        let (plan, sink) = self.late_output(target, row, clauses.position)?;
        Ok(Some((Arc::new(plan), sink)))
    }
}
