//! `weir_savepoint_rows('path', 'state id')` (also `weir.savepoint_rows`):
//! one stateful part's saved state as rows, read with
//! `weir_engine::checkpoint::inspect::state_rows` — a window aggregate's
//! groups per key group and slice, a group aggregate's per key group, each
//! with its keys (named and typed as in the query) and its aggregates'
//! current values. Flink's State Processor API reads keyed state by
//! operator id the same way. The columns depend on the state, so the store
//! is read when the query is planned.

use std::sync::Arc;

use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::Expr;
use tokio::runtime::{Handle, RuntimeFlavor};
use weir_engine::checkpoint::inspect;

/// The table function's name.
pub const NAME: &str = "weir_savepoint_rows";

/// Makes a table of the state its two string arguments name.
#[derive(Debug)]
pub(super) struct SavepointRowsFunction;

impl TableFunctionImpl for SavepointRowsFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> DfResult<Arc<dyn TableProvider>> {
        let text = |e: &Expr| match e {
            Expr::Literal(ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)), _) => Some(s.clone()),
            _ => None,
        };
        let (Some(path), Some(state_id)) = (args.exprs().first().and_then(text), args.exprs().get(1).and_then(text))
        else {
            return Err(DataFusionError::Plan(format!(
                "{NAME} takes two strings: a savepoint directory, a job's checkpoint directory or an object-storage \
                 URL, and a state id as weir_savepoint lists it (e.g. 'WindowAggregate#0')"
            )));
        };
        if args.exprs().len() != 2 {
            return Err(DataFusionError::Plan(format!("{NAME} takes two arguments, not {}", args.exprs().len())));
        }
        let functions = args.session().aggregate_functions().clone();
        let lookup = move |name: &str| functions.get(name).cloned();
        let read = || inspect::read_latest(&path).and_then(|cp| inspect::state_rows(&cp, &state_id, &lookup));
        // Sled and object-storage reads block: a worker of a multi-threaded
        // runtime says so, so that its other tasks move elsewhere.
        let batch = match Handle::try_current() {
            Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(read),
            _ => read(),
        }
        .map_err(|e| DataFusionError::Execution(format!("{NAME}('{path}', '{state_id}'): {e}")))?;
        Ok(Arc::new(MemTable::try_new(batch.schema(), vec![vec![batch]])?))
    }
}
