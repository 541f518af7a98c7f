//! Physical expressions evaluated over a whole batch: what projections,
//! key exchanges, aggregations and joins all do to their inputs.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::error::Result;
use datafusion::physical_plan::PhysicalExpr;

/// The value of each of `exprs` for every row of `batch`, as arrays (a
/// scalar result is repeated for each row).
pub fn columns(exprs: &[Arc<dyn PhysicalExpr>], batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
    let n = batch.num_rows();
    exprs.iter().map(|e| e.evaluate(batch).and_then(|v| v.into_array(n))).collect()
}
