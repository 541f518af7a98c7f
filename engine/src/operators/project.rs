//! Projection: `SELECT` expressions, computed columns, casts to a sink's
//! types.

use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::physical_plan::PhysicalExpr;

use crate::error::{Result, ResultExt};
use crate::message::StreamBatch;
use crate::operator::{Collector, Operator};

/// The expressions of a projection and the schema they produce.
#[derive(Debug)]
pub struct ProjectPlan {
    pub exprs: Vec<Arc<dyn PhysicalExpr>>,
    pub schema: SchemaRef,
}

impl ProjectPlan {
    /// Evaluates the projection on one batch.
    pub fn apply(&self, batch: &RecordBatch, name: &str) -> Result<RecordBatch> {
        let n = batch.num_rows();
        let columns = super::evaluate::columns(&self.exprs, batch).context(|| format!("{name}: evaluating"))?;
        // Zero columns is a projection too (a global COUNT(*) reads none):
        // the row count must survive it.
        let options = RecordBatchOptions::new().with_row_count(Some(n));
        RecordBatch::try_new_with_options(Arc::clone(&self.schema), columns, &options)
            .context(|| format!("{name}: building batch"))
    }
}

/// A projection subtask.
pub struct Project {
    plan: Arc<ProjectPlan>,
    name: String,
}

impl Project {
    pub fn new(plan: Arc<ProjectPlan>, name: String) -> Self {
        Self { plan, name }
    }
}

impl Operator for Project {
    fn name(&self) -> &str {
        &self.name
    }

    fn on_batch(&mut self, batch: StreamBatch, out: &mut Collector) -> Result<()> {
        let data = self.plan.apply(&batch.data, &self.name)?;
        out.batch(batch.with_data(data));
        Ok(())
    }
}
