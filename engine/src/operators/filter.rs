//! Filter: `WHERE` predicates.

use std::sync::Arc;

use datafusion::arrow::array::AsArray;
use datafusion::physical_plan::PhysicalExpr;

use crate::current_watermark::with_watermark;
use crate::error::{EngineError, Result, ResultExt};
use crate::message::{EventTime, StreamBatch, WATERMARK_MIN};
use crate::operator::{Collector, Operator};
use crate::plan::{OperatorContext, OperatorSpec};

/// A `WHERE` predicate over the rows of a chain.
#[derive(Debug)]
pub struct FilterPlan {
    pub predicate: Arc<dyn PhysicalExpr>,
}

impl OperatorSpec for FilterPlan {
    fn name(&self) -> String {
        "Filter".into()
    }

    fn explain(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "  Filter: {}", self.predicate)
    }

    fn instantiate(self: Arc<Self>, name: String, _cx: &OperatorContext) -> Result<Box<dyn Operator>> {
        Ok(Box::new(Filter::new(Arc::clone(&self.predicate), name)))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// A filter subtask: keeps the rows where the predicate is true (not NULL).
pub struct Filter {
    predicate: Arc<dyn PhysicalExpr>,
    name: String,
    /// The last watermark passed on, for `CURRENT_WATERMARK`.
    watermark: EventTime,
}

impl Filter {
    pub fn new(predicate: Arc<dyn PhysicalExpr>, name: String) -> Self {
        Self { predicate, name, watermark: WATERMARK_MIN }
    }
}

impl Operator for Filter {
    fn name(&self) -> &str {
        &self.name
    }

    fn on_batch(&mut self, batch: StreamBatch, out: &mut Collector) -> Result<()> {
        let n = batch.num_rows();
        let mask = with_watermark(self.watermark, batch.row_watermarks.as_ref(), || {
            self.predicate.evaluate(&batch.data).and_then(|v| v.into_array(n))
        })
        .context(|| format!("{}: evaluating", self.name))?;
        let mask = mask
            .as_boolean_opt()
            .ok_or_else(|| EngineError::Plan(format!("{}: predicate is not boolean", self.name)))?;
        if mask.true_count() == n {
            out.batch(batch);
        } else {
            out.batch(batch.filter(mask)?);
        }
        Ok(())
    }

    fn on_watermark(&mut self, watermark: EventTime, out: &mut Collector) -> Result<()> {
        self.watermark = self.watermark.max(watermark);
        out.watermark(watermark);
        Ok(())
    }
}
