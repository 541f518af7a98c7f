//! A ranking's checkpoint: the rows every partition holds, with their
//! arrival numbers, and (keep-first by event time) the keys whose first
//! row has left, with its time — as Arrow batches per key group, so that
//! a job restores at another parallelism. Partition and sort keys are
//! computed again from the rows on restore.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Int64Array, RecordBatch, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, UInt64Type};

use super::RankMode;
use super::operator::Rank;
use crate::checkpoint::codec::{Decoder, Encoder};
use crate::error::{EngineError, Result, ResultExt};
use crate::message::{EventTime, WATERMARK_MIN};

impl Rank {
    pub(super) fn encode_state(&mut self) -> Result<Vec<u8>> {
        let ctx = || format!("{}: snapshot", self.name);
        let mut e = Encoder::default();
        e.i64(self.watermark);
        e.u64(self.arrivals);
        let mut rows: Vec<&[u8]> = Vec::new();
        let mut seqs: Vec<u64> = Vec::new();
        let mut done: Vec<(&[u8], EventTime)> = Vec::new();
        for part in self.partitions.iter().flatten() {
            for (seq, row) in part.ranked.entries() {
                rows.push(row);
                seqs.push(seq);
            }
            if let Some(t) = part.emitted {
                done.push((&part.key, t));
            }
        }
        // The rows, with their partitions' key groups.
        let parser = self.rows.parser();
        let mut columns = self
            .rows
            .convert_rows(rows.iter().map(|r| parser.parse(r)))
            .context(ctx)?;
        columns.push(Arc::new(UInt64Array::from(seqs)));
        let mut fields: Vec<Field> = self
            .plan
            .input_schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(Field::new("arrival", DataType::UInt64, false));
        let kept = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).context(ctx)?;
        let keys = self.keys.columns(&kept)?;
        e.batches_by_key_group(&kept, &keys)?;
        // The keys whose first row has left.
        let (key_columns, mut fields) = self.keys.decode(done.iter().map(|(k, _)| *k))?;
        fields.push(Field::new("emitted", DataType::Int64, false));
        let mut columns = key_columns.clone();
        columns.push(Arc::new(Int64Array::from_iter_values(done.iter().map(|(_, t)| *t))));
        let done = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).context(ctx)?;
        e.batches_by_key_group(&done, &key_columns)?;
        Ok(e.bytes)
    }

    pub(super) fn decode_state(&mut self, states: &[&[u8]], owns: &dyn Fn(usize) -> bool) -> Result<()> {
        // The slowest subtask's watermark: no row is late that was not.
        let mut watermark = None::<EventTime>;
        for state in states {
            let mut d = Decoder::new(state);
            let w = d.i64()?;
            watermark = Some(watermark.map_or(w, |m| m.min(w)));
            self.arrivals = self.arrivals.max(d.u64()?);
            for _ in 0..d.u64()? {
                let key_group = d.u64()? as usize;
                let batch = d.batch()?;
                if owns(key_group) {
                    self.restore_rows(&batch)?;
                }
            }
            for _ in 0..d.u64()? {
                let key_group = d.u64()? as usize;
                let batch = d.batch()?;
                if owns(key_group) {
                    self.restore_done(&batch)?;
                }
            }
            d.finish()?;
        }
        self.watermark = watermark.unwrap_or(WATERMARK_MIN);
        // Windows the watermark has fired wait out their lateness.
        if let RankMode::Window { lateness, .. } = self.plan.mode
            && lateness > 0
        {
            let wm = self.watermark;
            let fired: Vec<(EventTime, u32)> = self
                .timers
                .iter()
                .copied()
                .filter(|(end, _)| wm != WATERMARK_MIN && end.saturating_sub(1) <= wm)
                .collect();
            for (end, p) in fired {
                self.timers.remove(&(end, p));
                self.partition(p).fired = true;
                self.expiry.insert((end.saturating_add(lateness), p));
            }
        }
        Ok(())
    }

    fn restore_rows(&mut self, batch: &RecordBatch) -> Result<()> {
        let name = self.name.clone();
        let input = Arc::clone(&self.plan.input_schema);
        let width = input.fields().len();
        let damaged = || EngineError::State(format!("{name}: ranked rows have other columns than the query's"));
        if batch.num_columns() != width + 1
            || !input
                .fields()
                .iter()
                .zip(batch.columns())
                .all(|(f, c)| f.data_type().equals_datatype(c.data_type()))
        {
            return Err(damaged());
        }
        let seqs = batch
            .column(width)
            .as_primitive_opt::<UInt64Type>()
            .ok_or_else(damaged)?
            .clone();
        let data = RecordBatch::try_new(input, batch.columns()[..width].to_vec()).map_err(|_| damaged())?;
        let (keys, sorts, rows) = self.encode(&data)?;
        let upserts = self.encode_upserts(&data)?;
        let times = match self.plan.mode {
            RankMode::Window { end_column: c, .. } | RankMode::FirstByEventTime { time_column: c } => Some(
                data.column(c)
                    .as_primitive_opt::<datafusion::arrow::datatypes::TimestampMillisecondType>()
                    .ok_or_else(damaged)?
                    .clone(),
            ),
            RankMode::Updating { .. } => None,
        };
        for r in 0..data.num_rows() {
            let p = self.partition_of(keys.as_ref().map_or(&[], |k| k.row(r).data()));
            let sort = sorts.as_ref().map_or(&[][..], |s| s.row(r).data());
            let fresh = self.partition(p).ranked.is_empty();
            self.partition(p)
                .ranked
                .insert(sort, seqs.value(r), Arc::from(rows.row(r).data()), None);
            if let Some(upserts) = &upserts {
                self.partition(p)
                    .by_key
                    .insert(upserts.row(r).data().into(), (sort.into(), seqs.value(r)));
            }
            let Some(times) = &times else { continue };
            if times.is_null(r) {
                return Err(damaged());
            }
            let t = times.value(r);
            if fresh {
                self.timers.insert((t, p));
            }
            if let RankMode::FirstByEventTime { .. } = self.plan.mode {
                self.partition(p).pending = Some(t);
            }
        }
        Ok(())
    }

    fn restore_done(&mut self, batch: &RecordBatch) -> Result<()> {
        let name = self.name.clone();
        let damaged = || EngineError::State(format!("{name}: deduplicated keys have other columns than the query's"));
        let n = batch.num_columns();
        let times = batch
            .column(n - 1)
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(damaged)?
            .clone();
        if n != self.keys.len() + 1 {
            return Err(damaged());
        }
        let keys = self
            .keys
            .encode_columns(&batch.columns()[..n - 1])
            .map_err(|_| damaged())?;
        for r in 0..batch.num_rows() {
            let p = self.partition_of(keys.as_ref().map_or(&[], |k| k.row(r).data()));
            self.partition(p).emitted = Some(times.value(r));
        }
        Ok(())
    }
}
