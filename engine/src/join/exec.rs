//! One join of two sets of rows, run by DataFusion's join operators: the
//! streaming joins decide *which* rows meet (a window's, or a new batch and
//! the other side's buffer); DataFusion does the per-row work and the
//! semantics of every join type, NULL keys and residual filters.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, BooleanArray, RecordBatch, RecordBatchOptions, new_null_array};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::{JoinSide, JoinType, NullEquality};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::joins::utils::JoinFilter;
use datafusion::physical_plan::joins::{HashJoinExec, NestedLoopJoinExec, PartitionMode};
use datafusion::physical_plan::{ExecutionPlan, PhysicalExpr};

use crate::error::{EngineError, Result, ResultExt};

/// A join condition, resolved against the two sides' schemas.
#[derive(Debug)]
pub struct JoinSpec {
    pub join_type: JoinType,
    pub left_schema: SchemaRef,
    pub right_schema: SchemaRef,
    /// Equi-join keys, left expression then right; empty for a join on a
    /// condition only.
    pub on: Vec<(Arc<dyn PhysicalExpr>, Arc<dyn PhysicalExpr>)>,
    /// The rest of the ON condition.
    pub filter: Option<JoinFilter>,
    /// The left columns then the right ones.
    pub output_schema: SchemaRef,
}

impl JoinSpec {
    /// Whether rows of `side` (0 left, 1 right) without a partner are
    /// kept, padded with NULLs (the preserved side of an outer join).
    pub fn outer(&self, side: usize) -> bool {
        match self.join_type {
            JoinType::Left => side == 0,
            JoinType::Right => side == 1,
            JoinType::Full => true,
            _ => false,
        }
    }

    /// A row of `side`'s columns `columns`, and NULLs for the other side's:
    /// the output of rows of an outer side that met no partner.
    pub fn padded(&self, side: usize, columns: Vec<ArrayRef>, name: &str) -> Result<Vec<ArrayRef>> {
        let rows = columns.first().map_or(0, |c| c.len());
        let other = if side == 0 {
            &self.right_schema
        } else {
            &self.left_schema
        };
        let nulls = other.fields().iter().map(|f| new_null_array(f.data_type(), rows));
        let out: Vec<ArrayRef> = match side {
            0 => columns.into_iter().chain(nulls).collect(),
            _ => nulls.chain(columns).collect(),
        };
        if out.len() != self.output_schema.fields().len() {
            return Err(EngineError::Plan(format!(
                "{name}: padded rows do not have the join's columns"
            )));
        }
        Ok(out)
    }

    /// The join keys of one side (0 left, 1 right): how its rows are
    /// partitioned, and split by key group in checkpoints.
    pub fn keys(&self, side: usize) -> Vec<Arc<dyn PhysicalExpr>> {
        self.on
            .iter()
            .map(|(l, r)| Arc::clone(if side == 0 { l } else { r }))
            .collect()
    }

    /// Whether each pair of rows (`left` row `i` with `right` row `i`)
    /// passes the non-equi part of the condition (`None`: there is none).
    /// A NULL result is not a pass, as in SQL.
    pub fn filter_pairs(&self, left: &RecordBatch, right: &RecordBatch, name: &str) -> Result<Option<BooleanArray>> {
        let Some(filter) = &self.filter else {
            return Ok(None);
        };
        let ctx = || format!("{name}: join condition");
        let columns = filter
            .column_indices()
            .iter()
            .map(|c| match c.side {
                JoinSide::Left => Ok(Arc::clone(left.column(c.index))),
                JoinSide::Right => Ok(Arc::clone(right.column(c.index))),
                JoinSide::None => Err(EngineError::Plan(format!(
                    "{name}: a join filter column of neither side"
                ))),
            })
            .collect::<Result<Vec<_>>>()?;
        let input = RecordBatch::try_new_with_options(
            Arc::clone(filter.schema()),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(left.num_rows())),
        )
        .context(ctx)?;
        let value = filter
            .expression()
            .evaluate(&input)
            .and_then(|v| v.into_array(input.num_rows()))
            .context(ctx)?;
        let value = value
            .as_boolean_opt()
            .ok_or_else(|| EngineError::Plan(format!("{name}: the join filter is not a boolean")))?;
        Ok(Some(value.clone()))
    }

    /// Joins `left` with `right`. The hash table is built over the smaller
    /// of the two (DataFusion swaps the inputs and restores the columns'
    /// order), so a new batch meets a large held side by probing it.
    pub fn run(&self, left: Vec<RecordBatch>, right: Vec<RecordBatch>, name: &str) -> Result<Vec<RecordBatch>> {
        let ctx = || format!("{name}: joining");
        let rows = |b: &[RecordBatch]| b.iter().map(RecordBatch::num_rows).sum::<usize>();
        let swap = rows(&left) > rows(&right);
        let l = MemorySourceConfig::try_new_exec(&[left], Arc::clone(&self.left_schema), None).context(ctx)?;
        let r = MemorySourceConfig::try_new_exec(&[right], Arc::clone(&self.right_schema), None).context(ctx)?;
        let plan: Arc<dyn ExecutionPlan> = if self.on.is_empty() {
            Arc::new(NestedLoopJoinExec::try_new(l, r, self.filter.clone(), &self.join_type, None).context(ctx)?)
        } else {
            let join = HashJoinExec::try_new(
                l,
                r,
                self.on.clone(),
                self.filter.clone(),
                &self.join_type,
                None,
                PartitionMode::CollectLeft,
                NullEquality::NullEqualsNothing,
                false,
            )
            .context(ctx)?;
            if swap {
                join.swap_inputs(PartitionMode::CollectLeft).context(ctx)?
            } else {
                Arc::new(join)
            }
        };
        // Both inputs are in memory and the plan has one partition: the
        // future completes without waiting on anything but its own polling.
        // Out of tokio's cooperative budget: DataFusion's streams yield when
        // it runs out, and tokio would hold that wake-up until this worker
        // returns to its scheduler, which it does not while blocked here.
        let collect = datafusion::physical_plan::collect(plan, Arc::new(TaskContext::default()));
        let batches = futures::executor::block_on(tokio::task::unconstrained(collect)).context(ctx)?;
        batches
            .into_iter()
            .filter(|b| b.num_rows() > 0)
            .map(|b| b.with_schema(Arc::clone(&self.output_schema)).context(ctx))
            .collect()
    }
}
