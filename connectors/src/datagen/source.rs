//! The datagen source connector: one partition per subtask.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use weir_engine::error::Result;
use weir_engine::source::{SourceConnector, SourceReader};

use super::field::{FieldGen, Kind};
use super::reader::{DatagenReader, PartitionGen};
use super::split::share;

/// Generates rows at a steady rate; bounded by `'number-of-rows'` or by
/// its sequences.
#[derive(Debug)]
pub(crate) struct DatagenSource {
    pub(crate) schema: SchemaRef,
    /// One generator per column.
    pub(crate) fields: Arc<[FieldGen]>,
    /// Total over all subtasks.
    pub(crate) rows_per_second: u64,
    /// Total over all subtasks.
    pub(crate) number_of_rows: Option<u64>,
}

impl DatagenSource {
    /// What partition `index` of `parts` generates: its share of the row
    /// count and a contiguous share of every sequence.
    fn partition(&self, index: usize, parts: usize) -> PartitionGen {
        let mut limit = self
            .number_of_rows
            .map(|n| share(u128::from(n), parts, index).1 as u64);
        let next = self
            .fields
            .iter()
            .map(|field| match field.kind {
                Kind::Sequence { start, end } => {
                    let total = (i128::from(end) - i128::from(start) + 1) as u128;
                    let (offset, length) = share(total, parts, index);
                    let length = u64::try_from(length).unwrap_or(u64::MAX);
                    limit = Some(limit.map_or(length, |l| l.min(length)));
                    // An empty share may start past i64::MAX; it is never used.
                    i64::try_from(i128::from(start) + offset as i128).unwrap_or(i64::MAX)
                }
                Kind::Random(_) => 0,
            })
            .collect();
        PartitionGen::new(index, next, limit)
    }
}

impl SourceConnector for DatagenSource {
    fn describe(&self) -> String {
        match self.number_of_rows {
            Some(n) => format!(
                "datagen rows-per-second={} number-of-rows={n}",
                self.rows_per_second
            ),
            None => format!("datagen rows-per-second={}", self.rows_per_second),
        }
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn partitions(&self, parallelism: usize) -> Result<usize> {
        Ok(parallelism)
    }

    /// Generated rows always decode, so there is never a bad record to report.
    fn open(
        &self,
        partitions: Vec<usize>,
        parallelism: usize,
        _report_bad_records: bool,
    ) -> Result<Box<dyn SourceReader>> {
        let parts = parallelism.max(1);
        let rate = self.rows_per_second as f64 / parts as f64;
        let generators = partitions
            .into_iter()
            .map(|p| self.partition(p, parts))
            .collect();
        Ok(Box::new(DatagenReader::new(
            self.schema.clone(),
            Arc::clone(&self.fields),
            generators,
            rate,
        )))
    }
}
