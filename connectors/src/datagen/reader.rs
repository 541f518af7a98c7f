//! Making a partition's rows: each column from its generator.

use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::SchemaRef;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use weir_engine::error::{Result, ResultExt};

use super::field::FieldGen;
use crate::paced::{Generate, Progress};

/// Largest batch, reached when the rate is high or the reader is behind.
pub(crate) const MAX_BATCH: u64 = 8192;

/// A partition's progress: per column, the sequence value of its next row
/// (unused for random columns).
pub(crate) type PartitionGen = Progress<Vec<i64>>;

/// Makes the rows of a subtask's partitions.
pub(crate) struct DatagenRows {
    schema: SchemaRef,
    fields: Arc<[FieldGen]>,
    rng: SmallRng,
}

impl DatagenRows {
    pub(crate) fn new(schema: SchemaRef, fields: Arc<[FieldGen]>) -> Self {
        Self {
            schema,
            fields,
            rng: SmallRng::from_os_rng(),
        }
    }
}

impl Generate for DatagenRows {
    type State = Vec<i64>;

    fn generate(&mut self, part: &mut PartitionGen, rows: u64) -> Result<RecordBatch> {
        let now_ms = weir_engine::message::now_ms();
        let rows_usize = rows as usize;
        let columns = self
            .fields
            .iter()
            .zip(&mut part.state)
            .map(|(field, next)| {
                let column = field.generate(&mut self.rng, rows_usize, *next, now_ms);
                *next = next.saturating_add(rows as i64);
                column
            })
            .collect::<Result<Vec<_>, _>>()
            .context(|| "datagen: generating rows".into())?;
        let options = RecordBatchOptions::new().with_row_count(Some(rows_usize));
        RecordBatch::try_new_with_options(self.schema.clone(), columns, &options)
            .context(|| "datagen: building a batch".into())
    }
}
