//! A temporal join's checkpoint: the watermark, the waiting left rows and
//! the versions (right rows with a deletion flag), each as Arrow batches
//! per key group, so that a job restores at another parallelism. Keys are
//! computed again from the rows on restore.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::compute::kernels::aggregate::min;
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::datatypes::{DataType, Field, Schema};

use super::operator::{TemporalJoin, Waiting, time_column};
use crate::checkpoint::codec::{Decoder, Encoder};
use crate::error::{EngineError, Result, ResultExt};
use crate::message::EventTime;
use crate::operators::evaluate::columns;
use crate::runtime::exchange::{key_groups, rows_by_key_group};

/// Name of the deletion flag after a version's columns.
const DELETED: &str = "deleted";

impl TemporalJoin {
    pub(super) fn encode_state(&self) -> Result<Vec<u8>> {
        let ctx = || format!("{}: snapshot", self.name);
        let mut e = Encoder::default();
        e.i64(self.watermark);
        let mut parts = Vec::new();
        for w in &self.waiting {
            split_by_key_group(&w.rows, &self.plan.left_keys, &mut parts)?;
        }
        write_parts(&mut e, &parts)?;
        // The versions, with the flag after their columns.
        let parser = self.rows.parser();
        let mut cols = self
            .rows
            .convert_rows(self.versions.iter().map(|v| parser.parse(&v.row)))
            .context(ctx)?;
        let right = RecordBatch::try_new(Arc::clone(&self.plan.right_schema), cols.clone()).context(ctx)?;
        cols.push(Arc::new(BooleanArray::from_iter(
            self.versions.iter().map(|v| Some(v.deleted)),
        )));
        let mut fields: Vec<Field> = self
            .plan
            .right_schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(Field::new(DELETED, DataType::Boolean, false));
        let versions = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).context(ctx)?;
        let mut parts = Vec::new();
        let keys = columns(&self.plan.right_keys, &right).context(ctx)?;
        by_key_group(&versions, &keys, &mut parts)?;
        write_parts(&mut e, &parts)?;
        Ok(e.bytes)
    }

    pub(super) fn decode_state(&mut self, states: &[&[u8]], owns: &dyn Fn(usize) -> bool) -> Result<()> {
        // The slowest subtask's watermark: no row is late that was not.
        let mut watermark = None::<EventTime>;
        let left = Arc::clone(&self.plan.left_schema);
        for state in states {
            let mut d = Decoder::new(state);
            let w = d.i64()?;
            watermark = Some(watermark.map_or(w, |m| m.min(w)));
            for _ in 0..d.u64()? {
                let group = d.u64()? as usize;
                let rows = d.batch_of(&left)?;
                if owns(group)
                    && let Some(earliest) = min(time_column(&rows, self.plan.left_time, &self.name)?)
                {
                    self.waiting.push(Waiting { rows, earliest });
                }
            }
            for _ in 0..d.u64()? {
                let group = d.u64()? as usize;
                let batch = d.batch()?;
                if owns(group) {
                    self.restore_versions(&batch)?;
                }
            }
            d.finish()?;
        }
        if let Some(w) = watermark {
            self.watermark = w;
        }
        Ok(())
    }

    fn restore_versions(&mut self, batch: &RecordBatch) -> Result<()> {
        let schema = Arc::clone(&self.plan.right_schema);
        let width = schema.fields().len();
        let damaged = || EngineError::State(format!("{}: versions have other columns than the query's", self.name));
        if batch.num_columns() != width + 1 {
            return Err(damaged());
        }
        let deleted = batch.column(width).as_boolean_opt().ok_or_else(damaged)?.clone();
        let data = RecordBatch::try_new(schema, batch.columns()[..width].to_vec()).map_err(|_| damaged())?;
        self.add_versions(&data, |r| Some(deleted.is_valid(r) && deleted.value(r)))
    }
}

/// `batch`'s rows by the key group of `keys` (expressions over it).
fn split_by_key_group(
    batch: &RecordBatch,
    keys: &[Arc<dyn datafusion::physical_plan::PhysicalExpr>],
    parts: &mut Vec<(usize, RecordBatch)>,
) -> Result<()> {
    let keys = columns(keys, batch).context(|| "temporal join state: evaluating keys".into())?;
    by_key_group(batch, &keys, parts)
}

/// `batch`'s rows by the key group of `keys` (its rows' keys).
fn by_key_group(batch: &RecordBatch, keys: &[ArrayRef], parts: &mut Vec<(usize, RecordBatch)>) -> Result<()> {
    if batch.num_rows() == 0 {
        return Ok(());
    }
    let mut hashes = Vec::new();
    for (group, rows) in rows_by_key_group(&key_groups(keys, batch.num_rows(), &mut hashes)?) {
        parts.push((
            group,
            take_record_batch(batch, &rows).context(|| "temporal join state: splitting".into())?,
        ));
    }
    Ok(())
}

fn write_parts(e: &mut Encoder, parts: &[(usize, RecordBatch)]) -> Result<()> {
    e.u64(parts.len() as u64);
    for (group, batch) in parts {
        e.u64(*group as u64);
        e.batch(batch)?;
    }
    Ok(())
}
