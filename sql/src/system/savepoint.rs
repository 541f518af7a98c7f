//! `weir_savepoint('path')`: the stateful parts of a savepoint (or of a
//! job's checkpoint store, local or on object storage) as rows — id, kind,
//! signature, size, and a window aggregate's size per key group — read
//! with `weir_engine::checkpoint::inspect`. Also called `weir.savepoint`:
//! DataFusion looks a table function up by the first part of its name
//! only, so `dotted.rs` renames that spelling to this one before planning.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session as CatalogSession, TableFunctionImpl, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;
use weir_engine::checkpoint::inspect::{self, PartSize};

/// The table function's name.
pub const NAME: &str = "weir_savepoint";

/// Makes a [`SavepointTable`] of its one string argument.
#[derive(Debug)]
pub(super) struct SavepointFunction;

impl TableFunctionImpl for SavepointFunction {
    fn call(&self, args: &[Expr]) -> DfResult<Arc<dyn TableProvider>> {
        match args {
            [Expr::Literal(ScalarValue::Utf8(Some(p)) | ScalarValue::Utf8View(Some(p)), _)] => {
                Ok(Arc::new(SavepointTable { path: p.clone(), schema: schema() }))
            }
            _ => Err(DataFusionError::Plan(format!(
                "{NAME} takes one string: a savepoint directory, a job's checkpoint directory or an object-storage URL"
            ))),
        }
    }
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("checkpoint", DataType::UInt64, false),
        Field::new("state_id", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, true),
        Field::new("signature", DataType::Utf8, true),
        Field::new("key_group", DataType::UInt64, true),
        Field::new("bytes", DataType::UInt64, false),
        Field::new("tasks", DataType::UInt64, false),
    ]))
}

/// The store at `path`, read when the query runs (not when it is planned),
/// off the runtime: sled and object-storage reads block.
#[derive(Debug)]
struct SavepointTable {
    path: String,
    schema: SchemaRef,
}

#[async_trait]
impl TableProvider for SavepointTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn CatalogSession,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let path = self.path.clone();
        let parts =
            tokio::task::spawn_blocking(move || inspect::read_latest(&path).and_then(|cp| inspect::part_sizes(&cp)))
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?
                .map_err(|e| DataFusionError::Execution(format!("{NAME}('{}'): {e}", self.path)))?;
        let batch = batch(&self.schema, &parts)?;
        MemTable::try_new(Arc::clone(&self.schema), vec![vec![batch]])?.scan(state, projection, filters, limit).await
    }
}

fn batch(schema: &SchemaRef, parts: &[PartSize]) -> DfResult<RecordBatch> {
    let text = |f: fn(&PartSize) -> Option<&str>| Arc::new(parts.iter().map(f).collect::<StringArray>()) as ArrayRef;
    let num = |f: fn(&PartSize) -> Option<u64>| Arc::new(parts.iter().map(f).collect::<UInt64Array>()) as ArrayRef;
    let columns = vec![
        num(|p| Some(p.checkpoint)),
        text(|p| Some(p.state_id.as_str())),
        text(|p| p.kind.as_deref()),
        text(|p| p.signature.as_deref()),
        num(|p| p.key_group.map(|g| g as u64)),
        num(|p| Some(p.bytes)),
        num(|p| Some(p.tasks as u64)),
    ];
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}
