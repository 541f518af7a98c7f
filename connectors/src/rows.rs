//! A source of rows given in the query itself: Flink reads `VALUES (…), (…)`
//! in a streaming query as a bounded, insert-only stream, and so does
//! Weir. One partition replays the rows; its position is the number of
//! rows sent, so a restored job goes on after them.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use weir_engine::error::Result;
use weir_engine::source::{Assignment, PARTITION_ENDED, Positions, SourceConnector, SourceReader};

use crate::paced::{Generate, PacedReader, Progress};

/// Rows per batch at most.
const MAX_ROWS: u64 = 8192;

/// The rows of a `VALUES` list as a source.
#[derive(Debug)]
pub struct RowsSource {
    rows: RecordBatch,
}

impl RowsSource {
    /// A source of `rows`.
    pub fn connector(rows: RecordBatch) -> Arc<dyn SourceConnector> {
        Arc::new(Self { rows })
    }
}

impl SourceConnector for RowsSource {
    fn describe(&self) -> String {
        format!("values rows={}", self.rows.num_rows())
    }

    fn schema(&self) -> SchemaRef {
        self.rows.schema()
    }

    /// One partition: the rows keep their order, as Flink's do.
    fn partitions(&self, _parallelism: usize) -> Result<usize> {
        Ok(1)
    }

    fn open(&self, assignment: Assignment, _report_bad_records: bool, resume: &Positions) -> Result<Box<dyn SourceReader>> {
        let rows = self.rows.num_rows() as u64;
        let partitions = assignment
            .partitions
            .into_iter()
            .filter_map(|p| {
                let position = resume.get(&p).copied().unwrap_or(0);
                (position != PARTITION_ENDED).then(|| Progress::new(p, position, Some(rows), ()))
            })
            .collect();
        Ok(Box::new(PacedReader::new(Replay { rows: self.rows.clone() }, partitions, None, MAX_ROWS)))
    }
}

/// Slices the rows from a partition's position on.
struct Replay {
    rows: RecordBatch,
}

impl Generate for Replay {
    type State = ();

    fn generate(&mut self, part: &mut Progress<()>, units: u64) -> Result<RecordBatch> {
        let start = (part.position as usize).min(self.rows.num_rows());
        let len = (units as usize).min(self.rows.num_rows() - start);
        Ok(self.rows.slice(start, len))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, AsArray};
    use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema};
    use weir_engine::source::SourceEvent;

    use super::*;

    /// Every row once, in order; a reader resumed at position 2 sends the
    /// rest.
    #[tokio::test]
    async fn rows_are_replayed_once_from_the_position() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![5, 6, 7]))]).expect("a batch");
        let source = RowsSource::connector(batch);
        for (from, want) in [(0, vec![5, 6, 7]), (2, vec![7])] {
            let assignment = Assignment { subtask: 0, parallelism: 1, total: 1, partitions: vec![0] };
            let mut resume = Positions::new();
            resume.insert(0, from);
            let mut reader = source.open(assignment, false, &resume).expect("a reader");
            let mut got = Vec::new();
            while let Some(event) = reader.next().await.expect("read") {
                if let SourceEvent::Batch { batch, .. } = event {
                    got.extend(batch.column(0).as_primitive::<Int64Type>().values().iter().copied());
                }
            }
            assert_eq!(got, want);
        }
    }
}
