//! The `memory` connector: an in-process table. Jobs append to it; a plain
//! `SELECT` reads what it holds at that moment as a DataFusion batch query.
//! It is the default table of `LATE DATA INTO` when none was declared.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::interleave_record_batch;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::{MemTable, TableType};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
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

    /// The rows held now: with a key, the latest row of each key.
    pub fn snapshot(&self) -> DfResult<Vec<RecordBatch>> {
        let batches = self.batches.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let key = self.key.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match key {
            Some(key) if !batches.is_empty() => Ok(vec![latest_per_key(&self.schema, &batches, &key)?]),
            _ => Ok(batches),
        }
    }
}

/// Keeps the last row of every key, in the order the keys first came.
fn latest_per_key(schema: &SchemaRef, batches: &[RecordBatch], key: &[usize]) -> DfResult<RecordBatch> {
    let fields: Vec<SortField> = key.iter().map(|k| SortField::new(schema.field(*k).data_type().clone())).collect();
    let converter = RowConverter::new(fields)?;
    let mut slot: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut winners: Vec<(usize, usize)> = Vec::new();
    for (b, batch) in batches.iter().enumerate() {
        let columns: Vec<_> = key.iter().map(|k| Arc::clone(batch.column(*k))).collect();
        let rows = converter.convert_columns(&columns)?;
        for (r, row) in rows.iter().enumerate() {
            match slot.get(row.as_ref()) {
                Some(i) => winners[*i] = (b, r),
                None => {
                    slot.insert(row.as_ref().to_vec(), winners.len());
                    winners.push((b, r));
                }
            }
        }
    }
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    Ok(interleave_record_batch(&refs, &winners)?)
}

impl SinkConnector for MemoryTable {
    fn describe(&self) -> String {
        "memory".into()
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
