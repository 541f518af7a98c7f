//! The datagen source connector: one partition per subtask.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use weir_engine::error::Result;
use weir_engine::source::{Assignment, PARTITION_ENDED, Positions, SourceConnector, SourceReader};

use super::field::{FieldGen, Kind};
use super::reader::{DatagenRows, MAX_BATCH, PartitionGen};
use crate::paced::PacedReader;
use super::split::share;

/// The most bytes of values a generated batch holds (a row wider than
/// this still makes a batch of one).
const BATCH_BYTES: usize = 16 << 20;

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
    /// count and a contiguous share of every sequence, continuing after the
    /// first `position` rows of that share (0 on a fresh start).
    fn partition(&self, index: usize, parts: usize, position: u64) -> PartitionGen {
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
                    // Past the end of the share only when the share is used
                    // up (or empty): then no value is generated from it.
                    let next = i128::from(start) + offset as i128 + i128::from(position);
                    i64::try_from(next).unwrap_or(i64::MAX)
                }
                Kind::Random(_) | Kind::Unread => 0,
            })
            .collect();
        PartitionGen::new(index, position, limit, next)
    }

    /// Rows per batch at most: [`MAX_BATCH`], fewer when rows are wide, so
    /// that a batch stays within [`BATCH_BYTES`] (8192 rows of 64 KiB
    /// strings would be half a gigabyte, and several are in flight).
    fn max_batch_rows(&self) -> u64 {
        let row_bytes: usize = self.fields.iter().map(FieldGen::value_bytes).sum();
        (BATCH_BYTES / row_bytes.max(1)).clamp(1, MAX_BATCH as usize) as u64
    }
}

impl SourceConnector for DatagenSource {
    fn describe(&self) -> String {
        let mut s = format!("datagen rows-per-second={}", self.rows_per_second);
        if let Some(n) = self.number_of_rows {
            s.push_str(&format!(" number-of-rows={n}"));
        }
        let unread: Vec<&str> = (self.fields.iter().zip(self.schema.fields()))
            .filter(|(g, _)| matches!(g.kind, Kind::Unread))
            .map(|(_, f)| f.name().as_str())
            .collect();
        if !unread.is_empty() {
            s.push_str(&format!(" unread={}", unread.join(",")));
        }
        s
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Random columns the job does not read are left null. Sequences are
    /// made all the same: they bound the rows and cost next to nothing.
    fn only_columns(&self, read: &[usize]) -> Option<Arc<dyn SourceConnector>> {
        let unread = |(i, f): &(usize, &FieldGen)| {
            !read.contains(i) && matches!(f.kind, Kind::Random(_)) && self.schema.field(*i).is_nullable()
        };
        if !self.fields.iter().enumerate().any(|f| unread(&f)) {
            return None;
        }
        let fields = self.fields.iter().enumerate().map(|f| match unread(&f) {
            true => FieldGen { kind: Kind::Unread, null_rate: None, ..f.1.clone() },
            false => f.1.clone(),
        });
        Some(Arc::new(DatagenSource { fields: fields.collect(), schema: self.schema.clone(), ..*self }))
    }

    fn partitions(&self, parallelism: usize) -> Result<usize> {
        Ok(parallelism)
    }

    /// Generated rows always decode, so there is never a bad record to report.
    /// A resumed partition continues its sequences and its row budget where
    /// the checkpoint left them; random columns just go on generating.
    fn open(
        &self,
        assignment: Assignment,
        _report_bad_records: bool,
        resume: &Positions,
    ) -> Result<Box<dyn SourceReader>> {
        let parts = assignment.parallelism.max(1);
        let rate = self.rows_per_second as f64 / parts as f64;
        let generators = assignment
            .partitions
            .into_iter()
            .filter_map(|p| {
                let position = resume.get(&p).copied().unwrap_or(0);
                (position != PARTITION_ENDED).then(|| self.partition(p, parts, position))
            })
            .collect();
        Ok(Box::new(PacedReader::new(
            DatagenRows::new(self.schema.clone(), Arc::clone(&self.fields)),
            generators,
            Some(rate),
            self.max_batch_rows(),
        )))
    }
}
