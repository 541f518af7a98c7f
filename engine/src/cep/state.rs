//! `MATCH_RECOGNIZE`'s checkpoint, as Arrow batches per key group so that a
//! job restores at another parallelism: the rows waiting for the
//! watermark; the rows open attempts hold, with their place in their
//! partition; and per partition, its attempts as the places of the rows
//! each thread matched with their variables (partition keys and derived
//! values are computed again from the rows).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryArray, RecordBatch, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, UInt64Type};
use datafusion::common::ScalarValue;

use super::eval::{Row, Step};
use super::matcher::{Attempt, Thread};
use super::operator::MatchRecognize;
use crate::checkpoint::codec::{Decoder, Encoder};
use crate::error::{EngineError, Result, ResultExt};
use crate::message::{EventTime, WATERMARK_MIN};

impl MatchRecognize {
    pub(super) fn encode_state(&mut self) -> Result<Vec<u8>> {
        let ctx = || format!("{}: snapshot", self.name);
        let mut e = Encoder::default();
        e.i64(self.watermark);
        let pending = self.pending.all(&self.name)?;
        e.batches_by_key_group(&pending, &self.partition_columns(&pending))?;
        // The rows the attempts hold, each once per partition.
        let mut held: Vec<&Arc<Row>> = Vec::new();
        let mut blobs = Vec::new();
        for p in &self.partitions {
            let mut seen = std::collections::HashSet::new();
            let mut blob = Encoder::default();
            blob.u64(p.attempts.len() as u64);
            for a in &p.attempts {
                blob.u64(a.start);
                blob.i64(a.start_time);
                let paths = a.threads.iter().map(|t| (Some(t.state), &t.history));
                let found = a.found.iter().map(|h| (None, h));
                blob.u64((a.threads.len() + a.found.iter().len()) as u64);
                for (state, history) in paths.chain(found) {
                    // A thread's state, or u64::MAX for the match found.
                    blob.u64(state.map_or(u64::MAX, |s| s as u64));
                    blob.u64(history.len() as u64);
                    for (row, var) in history {
                        blob.u64(row.seq);
                        blob.u64(*var as u64);
                        if seen.insert(row.seq) {
                            held.push(row);
                        }
                    }
                }
            }
            blobs.push(blob.bytes);
        }
        let input = &self.plan.input_schema;
        let mut columns: Vec<ArrayRef> = Vec::new();
        for (i, f) in input.fields().iter().enumerate() {
            let values: Vec<ScalarValue> = held.iter().map(|r| r.values[i].clone()).collect();
            columns.push(match values.is_empty() {
                true => datafusion::arrow::array::new_empty_array(f.data_type()),
                false => ScalarValue::iter_to_array(values).context(ctx)?,
            });
        }
        columns.push(Arc::new(UInt64Array::from_iter_values(held.iter().map(|r| r.seq))));
        let mut fields: Vec<Field> = input
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect();
        fields.push(Field::new("seq", DataType::UInt64, false));
        let rows = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).context(ctx)?;
        e.batches_by_key_group(&rows, &self.partition_columns(&rows))?;
        // The partitions' attempts.
        let key_columns = match &self.keys {
            Some(c) => {
                let parser = c.parser();
                c.convert_rows(self.partitions.iter().map(|p| parser.parse(&p.key)))
                    .context(ctx)?
            }
            None => Vec::new(),
        };
        let mut fields: Vec<Field> = key_columns
            .iter()
            .enumerate()
            .map(|(i, c)| Field::new(format!("k{i}"), c.data_type().clone(), true))
            .collect();
        fields.push(Field::new("next_seq", DataType::UInt64, false));
        fields.push(Field::new("attempts", DataType::Binary, false));
        let mut columns = key_columns.clone();
        columns.push(Arc::new(UInt64Array::from_iter_values(
            self.partitions.iter().map(|p| p.next_seq),
        )));
        columns.push(Arc::new(BinaryArray::from_iter_values(blobs.iter())));
        let attempts = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).context(ctx)?;
        e.batches_by_key_group(&attempts, &key_columns)?;
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
                    let rows = self.input_rows(&batch, 0)?;
                    self.pending.push(rows);
                }
            }
            let mut held: HashMap<(Box<[u8]>, u64), Arc<Row>> = HashMap::new();
            for _ in 0..d.u64()? {
                let key_group = d.u64()? as usize;
                let batch = d.batch()?;
                if owns(key_group) {
                    self.held_rows(&batch, &mut held)?;
                }
            }
            for _ in 0..d.u64()? {
                let key_group = d.u64()? as usize;
                let batch = d.batch()?;
                if owns(key_group) {
                    self.restore_attempts(&batch, &held)?;
                }
            }
            d.finish()?;
        }
        self.watermark = watermark.unwrap_or(WATERMARK_MIN);
        Ok(())
    }

    /// Stored rows as rows of the input (with `extra` columns after its
    /// own, dropped), refused when their columns differ.
    fn input_rows(&self, batch: &RecordBatch, extra: usize) -> Result<RecordBatch> {
        let input = &self.plan.input_schema;
        let fits = batch.num_columns() == input.fields().len() + extra
            && input
                .fields()
                .iter()
                .zip(batch.columns())
                .all(|(f, c)| f.data_type().equals_datatype(c.data_type()));
        match fits {
            true => RecordBatch::try_new(Arc::clone(input), batch.columns()[..input.fields().len()].to_vec())
                .map_err(|e| EngineError::State(format!("{}: stored rows: {e}", self.name))),
            false => Err(EngineError::State(format!(
                "{}: stored rows have other columns than the query's",
                self.name
            ))),
        }
    }

    fn held_rows(&self, batch: &RecordBatch, held: &mut HashMap<(Box<[u8]>, u64), Arc<Row>>) -> Result<()> {
        let rows = self.input_rows(batch, 1)?;
        let seqs = batch
            .column(batch.num_columns() - 1)
            .as_primitive_opt::<UInt64Type>()
            .ok_or_else(|| EngineError::State(format!("{}: stored rows have no places", self.name)))?;
        let keys = self.encode_keys(&rows)?;
        for (r, row) in self.rows(&rows)?.into_iter().enumerate() {
            let key: Box<[u8]> = keys.as_ref().map_or(Box::default(), |k| k.row(r).data().into());
            let seq = seqs.value(r);
            held.insert((key, seq), Arc::new(Row { seq, ..row }));
        }
        Ok(())
    }

    fn restore_attempts(&mut self, batch: &RecordBatch, held: &HashMap<(Box<[u8]>, u64), Arc<Row>>) -> Result<()> {
        let name = self.name.clone();
        let damaged = || EngineError::State(format!("{name}: stored attempts do not fit the query's pattern"));
        let n_keys = self.plan.partition.len();
        if batch.num_columns() != n_keys + 2 {
            return Err(damaged());
        }
        let keys = match &self.keys {
            Some(c) => Some(c.convert_columns(&batch.columns()[..n_keys]).map_err(|_| damaged())?),
            None => None,
        };
        let next_seqs = batch
            .column(n_keys)
            .as_primitive_opt::<UInt64Type>()
            .ok_or_else(damaged)?;
        let blobs = batch.column(n_keys + 1).as_binary_opt::<i32>().ok_or_else(damaged)?;
        let states = self.plan.nfa.states.len() as u64;
        let vars = self.plan.variables.len() as u64;
        for r in 0..batch.num_rows() {
            let key: Box<[u8]> = keys.as_ref().map_or(Box::default(), |k| k.row(r).data().into());
            let mut d = Decoder::new(blobs.value(r));
            let mut attempts = std::collections::VecDeque::new();
            for _ in 0..d.u64()? {
                let mut attempt = Attempt {
                    start: d.u64()?,
                    start_time: d.i64()?,
                    threads: Vec::new(),
                    found: None,
                };
                for _ in 0..d.u64()? {
                    let state = d.u64()?;
                    let mut history: Vec<Step> = Vec::new();
                    for _ in 0..d.u64()? {
                        let (seq, var) = (d.u64()?, d.u64()?);
                        let row = held.get(&(key.clone(), seq)).ok_or_else(damaged)?;
                        if var >= vars {
                            return Err(damaged());
                        }
                        history.push((Arc::clone(row), var as usize));
                    }
                    match state {
                        u64::MAX => attempt.found = Some(history),
                        s if s < states => attempt.threads.push(Thread {
                            state: s as usize,
                            history,
                        }),
                        _ => return Err(damaged()),
                    }
                }
                attempts.push_back(attempt);
            }
            d.finish()?;
            let p = self.partition_of(&key);
            self.partitions[p].next_seq = next_seqs.value(r);
            self.partitions[p].attempts = attempts;
        }
        Ok(())
    }
}
