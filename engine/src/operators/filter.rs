//! Filter: `WHERE` predicates.

use std::sync::Arc;

use datafusion::arrow::array::AsArray;
use datafusion::physical_plan::PhysicalExpr;

use crate::error::{EngineError, Result, ResultExt};
use crate::message::StreamBatch;
use crate::operator::{Collector, Operator};

/// A filter subtask: keeps the rows where the predicate is true (not NULL).
pub struct Filter {
    predicate: Arc<dyn PhysicalExpr>,
    name: String,
}

impl Filter {
    pub fn new(predicate: Arc<dyn PhysicalExpr>, name: String) -> Self {
        Self { predicate, name }
    }
}

impl Operator for Filter {
    fn name(&self) -> &str {
        &self.name
    }

    fn on_batch(&mut self, batch: StreamBatch, out: &mut Collector) -> Result<()> {
        let n = batch.num_rows();
        let mask = self
            .predicate
            .evaluate(&batch.data)
            .and_then(|v| v.into_array(n))
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
}
