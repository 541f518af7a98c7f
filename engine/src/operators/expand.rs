//! Expand: each row once per grouping set, for `GROUPING SETS`, `ROLLUP`
//! and `CUBE`. Every copy carries the set's keys (the others NULL) and the
//! set's grouping id, so that one keyed aggregation downstream computes
//! every set's groups, as Flink's and Spark's Expand feed theirs.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::physical_plan::PhysicalExpr;

use crate::error::Result;
use crate::message::StreamBatch;
use crate::metrics::JobMetrics;
use crate::operator::{Collector, Operator};
use crate::operators::project::ProjectPlan;
use crate::plan::{OperatorSpec, exprs};

/// One projection per grouping set, all of the same schema.
#[derive(Debug)]
pub struct ExpandPlan {
    pub sets: Vec<ProjectPlan>,
}

impl ExpandPlan {
    /// The projections `sets`, each of `schema`.
    pub fn new(sets: Vec<Vec<Arc<dyn PhysicalExpr>>>, schema: SchemaRef) -> Self {
        Self {
            sets: sets.into_iter().map(|exprs| ProjectPlan { exprs, schema: Arc::clone(&schema) }).collect(),
        }
    }
}

impl OperatorSpec for ExpandPlan {
    fn name(&self) -> String {
        "Expand".into()
    }

    fn explain(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "  Expand: {} grouping sets", self.sets.len())?;
        for set in &self.sets {
            writeln!(f, "    [{}]", exprs(&set.exprs))?;
        }
        Ok(())
    }

    fn instantiate(self: Arc<Self>, name: String, _subtask: usize, _metrics: &Arc<JobMetrics>) -> Result<Box<dyn Operator>> {
        Ok(Box::new(Expand { plan: self, name }))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// An expand subtask.
pub struct Expand {
    plan: Arc<ExpandPlan>,
    name: String,
}

impl Operator for Expand {
    fn name(&self) -> &str {
        &self.name
    }

    fn on_batch(&mut self, batch: StreamBatch, out: &mut Collector) -> Result<()> {
        for set in &self.plan.sets {
            let data = set.apply(&batch.data, &self.name)?;
            out.batch(batch.with_data(data));
        }
        Ok(())
    }
}
