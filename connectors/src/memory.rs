//! The `memory` connector: an in-process table. Jobs append to it; a plain
//! `SELECT` reads what it holds at that moment as a DataFusion batch query.
//! It is the default table of `LATE DATA INTO` when none was declared, and
//! the table of a materialized view, where a changelog's changes apply.

use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::{MemTable, TableType};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use weir_engine::changelog;
use weir_engine::error::Result;
use weir_engine::sink::{SinkConnector, SinkWriter};


/// Rows held in memory, shared by the jobs that write them and the queries
/// that read them.
#[derive(Debug)]
pub struct MemoryTable {
    schema: SchemaRef,
    batches: Arc<Mutex<Vec<RecordBatch>>>,
    /// Columns identifying a row: a later row with the same key replaces
    /// an earlier one (a re-fired window). `None`: every row is kept.
    key: Mutex<Option<Vec<usize>>>,
}

impl MemoryTable {
    pub fn new(schema: SchemaRef) -> Self {
        Self {
            schema,
            batches: Arc::new(Mutex::new(Vec::new())),
            key: Mutex::new(None),
        }
    }

    /// The rows held now: with a key, the latest row of each key; the
    /// changes of a changelog applied.
    pub fn snapshot(&self) -> DfResult<Vec<RecordBatch>> {
        let batches = self.batches.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let key = self.key.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if batches.is_empty() {
            return Ok(batches);
        }
        Ok(vec![changelog::materialize(&self.schema, &batches, key.as_deref())?])
    }
}

impl SinkConnector for MemoryTable {
    fn describe(&self) -> String {
        "memory".into()
    }

    fn accepts_changes(&self) -> bool {
        true
    }

    fn set_upsert_key(&self, key: &[usize]) {
        *self.key.lock().unwrap_or_else(|p| p.into_inner()) = Some(key.to_vec());
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn open(&self, _job_id: &str, _subtask: usize, _parallelism: usize) -> Result<Box<dyn SinkWriter>> {
        Ok(Box::new(Append {
            batches: Arc::clone(&self.batches),
        }))
    }
}

struct Append {
    batches: Arc<Mutex<Vec<RecordBatch>>>,
}

#[async_trait::async_trait]
impl SinkWriter for Append {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        self.batches.lock().unwrap_or_else(|p| p.into_inner()).push(batch);
        Ok(())
    }

    async fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

#[async_trait::async_trait]
impl TableProvider for MemoryTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let table = MemTable::try_new(self.schema.clone(), vec![self.snapshot()?])?;
        table.scan(state, projection, filters, limit).await
    }
}
