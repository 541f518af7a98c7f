//! Projection: `SELECT` expressions, computed columns, casts to a sink's
//! types.

use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::physical_plan::PhysicalExpr;

use crate::current_watermark::with_watermark;
use crate::error::{Result, ResultExt};
use crate::message::{EventTime, StreamBatch, WATERMARK_MIN};
use crate::operator::{Collector, Operator};
use crate::plan::{OperatorContext, OperatorSpec, exprs};

/// The expressions of a projection and the schema they produce.
#[derive(Debug)]
pub struct ProjectPlan {
    pub exprs: Vec<Arc<dyn PhysicalExpr>>,
    pub schema: SchemaRef,
}

impl ProjectPlan {
    /// Whether output column `column` is `PROCTIME()`: a table's
    /// computed columns are a projection, and its processing-time
    /// attribute is the column that calls it.
    pub fn is_proctime(&self, column: usize) -> bool {
        self.exprs.get(column).is_some_and(|e| {
            <dyn PhysicalExpr>::downcast_ref::<datafusion::physical_expr::ScalarFunctionExpr>(e.as_ref())
                .is_some_and(|f| f.name() == "proctime")
        })
    }
}

impl OperatorSpec for ProjectPlan {
    fn name(&self) -> String {
        "Project".into()
    }

    fn explain(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "  Project: {}", exprs(&self.exprs))
    }

    fn instantiate(self: Arc<Self>, name: String, _cx: &OperatorContext) -> Result<Box<dyn Operator>> {
        Ok(Box::new(Project::new(self, name)))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
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
    /// The last watermark passed on, for `CURRENT_WATERMARK`.
    watermark: EventTime,
}

impl Project {
    pub fn new(plan: Arc<ProjectPlan>, name: String) -> Self {
        Self { plan, name, watermark: WATERMARK_MIN }
    }
}

impl Operator for Project {
    fn name(&self) -> &str {
        &self.name
    }

    fn on_batch(&mut self, batch: StreamBatch, out: &mut Collector) -> Result<()> {
        let data =
            with_watermark(self.watermark, batch.row_watermarks.as_ref(), || self.plan.apply(&batch.data, &self.name))?;
        out.batch(batch.with_data(data));
        Ok(())
    }

    fn on_watermark(&mut self, watermark: EventTime, out: &mut Collector) -> Result<()> {
        self.watermark = self.watermark.max(watermark);
        out.watermark(watermark);
        Ok(())
    }
}
