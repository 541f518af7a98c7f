//! Expand: each row once per grouping set, for `GROUPING SETS`, `ROLLUP`
//! and `CUBE`. Every copy carries the set's keys (the others NULL) and the
//! set's grouping id, so that one keyed aggregation downstream computes
//! every set's groups, as Flink's and Spark's Expand feed theirs.

use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, UInt32Array};
use datafusion::arrow::compute::interleave_record_batch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::physical_plan::PhysicalExpr;

use crate::error::{Result, ResultExt};
use crate::message::StreamBatch;
use crate::operator::{Collector, Operator};
use crate::operators::project::ProjectPlan;
use crate::plan::{OperatorContext, OperatorSpec, exprs};

/// One projection per grouping set, all of the same schema.
#[derive(Debug)]
pub struct ExpandPlan {
    pub sets: Vec<ProjectPlan>,
}

impl ExpandPlan {
    /// The projections `sets`, each of `schema`.
    pub fn new(sets: Vec<Vec<Arc<dyn PhysicalExpr>>>, schema: SchemaRef) -> Self {
        Self { sets: sets.into_iter().map(|exprs| ProjectPlan { exprs, schema: Arc::clone(&schema) }).collect() }
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

    fn instantiate(self: Arc<Self>, name: String, _cx: &OperatorContext) -> Result<Box<dyn Operator>> {
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
        if batch.row_watermarks.is_none() {
            for set in &self.plan.sets {
                let data = set.apply(&batch.data, &self.name)?;
                out.batch(batch.with_data(data));
            }
            return Ok(());
        }
        // With a watermark after every row (on-event), a row's copies stay
        // together before the next row's watermark: a window downstream
        // must not fire between one set's copy of a row and another's.
        let copies: Vec<RecordBatch> =
            self.plan.sets.iter().map(|set| set.apply(&batch.data, &self.name)).collect::<Result<_>>()?;
        let rows = batch.num_rows();
        let order: Vec<(usize, usize)> = (0..rows).flat_map(|r| (0..copies.len()).map(move |s| (s, r))).collect();
        let refs: Vec<&RecordBatch> = copies.iter().collect();
        let data = interleave_record_batch(&refs, &order).context(|| format!("{}: expanding", self.name))?;
        let repeated = UInt32Array::from_iter_values(order.iter().map(|&(_, r)| r as u32));
        out.batch(batch.derived(data, &repeated)?);
        Ok(())
    }
}
