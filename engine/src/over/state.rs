//! An OVER aggregation's checkpoint, as Arrow batches per key group so that
//! a job restores at another parallelism: the rows waiting for the
//! watermark, each key's retained frame rows (keys are computed again from
//! them), and each key's unbounded accumulators with its key columns.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{concat_batches, take_record_batch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::ScalarValue;

use super::operator::Over;
use super::{OverFunction, OverPlan};
use crate::checkpoint::codec::{Decoder, Encoder};
use crate::error::{EngineError, Result, ResultExt};
use crate::message::{EventTime, WATERMARK_MIN};

/// Indices of the functions whose frame is unbounded (their accumulators
/// are state; bounded frames are rebuilt from the retained rows).
fn unbounded(plan: &OverPlan) -> Vec<usize> {
    plan.functions
        .iter()
        .enumerate()
        .filter(|(_, f)| matches!(f, OverFunction::Aggregate { frame, .. } if frame.unbounded()))
        .map(|(i, _)| i)
        .collect()
}

impl Over {
    pub(super) fn encode_state(&mut self) -> Result<Vec<u8>> {
        let ctx = || format!("{}: snapshot", self.name);
        let mut e = Encoder::default();
        e.i64(self.watermark);
        let schema = Arc::clone(&self.plan.input_schema);
        let pending = self.pending.all(&self.name)?;
        let keys = self.keys.columns(&pending)?;
        e.batches_by_key_group(&pending, &keys)?;
        let retained: Vec<&RecordBatch> = self.states.iter().filter_map(|s| s.retained.as_ref()).collect();
        let retained = concat_batches(&schema, retained).context(ctx)?;
        let keys = self.keys.columns(&retained)?;
        e.batches_by_key_group(&retained, &keys)?;
        // Unbounded accumulators, one row per key.
        let functions = unbounded(&self.plan);
        let holders: Vec<usize> = match functions.is_empty() {
            true => Vec::new(),
            false => (0..self.states.len())
                .filter(|s| self.states[*s].accumulators.iter().any(Option::is_some))
                .collect(),
        };
        let (key_columns, mut fields) = self.keys.decode(holders.iter().map(|s| self.states[*s].key.as_ref()))?;
        let mut columns = key_columns.clone();
        for f in &functions {
            let OverFunction::Aggregate { function, .. } = &self.plan.functions[*f] else {
                continue;
            };
            let mut states: Vec<Vec<ScalarValue>> = Vec::new();
            for s in &holders {
                let slot = &mut self.states[*s].accumulators[*f];
                let acc = match slot {
                    Some(acc) => acc,
                    None => slot.insert(function.create_accumulator().context(ctx)?),
                };
                let values = acc.state().context(ctx)?;
                if states.is_empty() {
                    states = vec![Vec::with_capacity(holders.len()); values.len()];
                }
                for (j, v) in values.into_iter().enumerate() {
                    states[j].push(v);
                }
            }
            for (j, values) in states.into_iter().enumerate() {
                let array = ScalarValue::iter_to_array(values).context(ctx)?;
                fields.push(Field::new(format!("f{f}_{j}"), array.data_type().clone(), true));
                columns.push(array);
            }
        }
        if holders.is_empty() {
            e.u64(0);
        } else {
            fields.push(Field::new("present", DataType::Boolean, false));
            let present = datafusion::arrow::array::BooleanArray::from(vec![true; holders.len()]);
            columns.push(Arc::new(present));
            let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).context(ctx)?;
            e.batches_by_key_group(&batch, &key_columns)?;
        }
        Ok(e.bytes)
    }

    pub(super) fn decode_state(&mut self, states: &[&[u8]], owns: &dyn Fn(usize) -> bool) -> Result<()> {
        // The slowest subtask's watermark: no row is late that was not.
        let mut watermark = None::<EventTime>;
        for state in states {
            let mut d = Decoder::new(state);
            let w = d.i64()?;
            watermark = Some(watermark.map_or(w, |m| m.min(w)));
            for _ in 0..d.u64()? {
                let key_group = d.u64()? as usize;
                let batch = d.batch()?;
                if owns(key_group) {
                    let rows = self.input_rows(&batch)?;
                    self.pending.push(rows);
                }
            }
            for _ in 0..d.u64()? {
                let key_group = d.u64()? as usize;
                let batch = d.batch()?;
                if owns(key_group) {
                    self.restore_retained(&batch)?;
                }
            }
            for _ in 0..d.u64()? {
                let key_group = d.u64()? as usize;
                let batch = d.batch()?;
                if owns(key_group) {
                    self.restore_accumulators(&batch)?;
                }
            }
            d.finish()?;
        }
        self.watermark = watermark.unwrap_or(WATERMARK_MIN);
        Ok(())
    }

    /// Stored rows as rows of the input, refused when their columns differ.
    fn input_rows(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let input = &self.plan.input_schema;
        let fits = batch.num_columns() == input.fields().len()
            && input
                .fields()
                .iter()
                .zip(batch.columns())
                .all(|(f, c)| f.data_type().equals_datatype(c.data_type()));
        match fits {
            true => RecordBatch::try_new(Arc::clone(input), batch.columns().to_vec())
                .map_err(|e| EngineError::State(format!("{}: stored rows: {e}", self.name))),
            false => Err(EngineError::State(format!(
                "{}: stored rows have other columns than the query's",
                self.name
            ))),
        }
    }

    fn restore_retained(&mut self, batch: &RecordBatch) -> Result<()> {
        let rows = self.input_rows(batch)?;
        let keys = self.keys.encode(&rows)?;
        // Each key's rows, in their order (a key's rows were written together).
        let mut per_key: Vec<(u32, Vec<u32>)> = Vec::new();
        let mut at: HashMap<u32, usize> = HashMap::new();
        for r in 0..rows.num_rows() {
            let s = self.state_of(keys.as_ref().map_or(&[], |k| k.row(r).data()));
            let i = *at.entry(s).or_insert_with(|| {
                per_key.push((s, Vec::new()));
                per_key.len() - 1
            });
            per_key[i].1.push(r as u32);
        }
        for (s, picks) in per_key {
            let picked =
                take_record_batch(&rows, &UInt32Array::from(picks)).context(|| format!("{}: restoring", self.name))?;
            self.states[s as usize].retained = Some(picked);
        }
        Ok(())
    }

    fn restore_accumulators(&mut self, batch: &RecordBatch) -> Result<()> {
        let name = self.name.clone();
        let damaged = || EngineError::State(format!("{name}: stored accumulators do not fit the query's"));
        let ctx = || format!("{name}: restoring accumulators");
        let n_keys = self.plan.partition.len();
        let functions = unbounded(&self.plan);
        if batch.num_columns() <= n_keys {
            return Err(damaged());
        }
        let keys = self
            .keys
            .encode_columns(&batch.columns()[..n_keys])
            .map_err(|_| damaged())?;
        let mut at = n_keys;
        let mut per_function = Vec::new();
        for f in &functions {
            let OverFunction::Aggregate { function, .. } = &self.plan.functions[*f] else {
                continue;
            };
            let types: Vec<DataType> = function
                .create_accumulator()
                .and_then(|mut a| a.state())
                .context(ctx)?
                .iter()
                .map(ScalarValue::data_type)
                .collect();
            let columns = batch.columns().get(at..at + types.len()).ok_or_else(damaged)?.to_vec();
            if !types
                .iter()
                .zip(&columns)
                .all(|(t, c)| t.equals_datatype(c.data_type()))
            {
                return Err(damaged());
            }
            at += types.len();
            per_function.push((*f, Arc::clone(function), columns));
        }
        if at + 1 != batch.num_columns() {
            return Err(damaged());
        }
        for r in 0..batch.num_rows() {
            let s = self.state_of(keys.as_ref().map_or(&[], |k| k.row(r).data())) as usize;
            for (f, function, columns) in &per_function {
                let mut acc = function.create_accumulator().context(ctx)?;
                let row: Vec<ArrayRef> = columns.iter().map(|c| c.slice(r, 1)).collect();
                acc.merge_batch(&row).context(ctx)?;
                self.states[s].accumulators[*f] = Some(acc);
            }
        }
        Ok(())
    }
}
