//! `LIMIT n [OFFSET m]` on a stream, as Flink runs it: the first rows in
//! the order they arrive (after `ORDER BY rowtime`, in time order), skipped
//! and counted in one subtask, append-only. Past the limit the rows are
//! dropped while the input runs on, as in Flink. Its state is the count of
//! rows seen.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::UInt32Array;

use crate::checkpoint::chunk::{ChunkMap, ChunkWriter};
use crate::checkpoint::codec::{Decoder, Encoder};
use crate::error::Result;
use crate::message::StreamBatch;
use crate::operator::{Collector, Operator};
use crate::plan::{OperatorContext, OperatorSpec, StateGrowth, StateShape};

/// `LIMIT fetch OFFSET skip`.
#[derive(Debug)]
pub struct LimitPlan {
    /// Rows passed over first.
    pub skip: u64,
    /// Rows passed on after them; `None` for all.
    pub fetch: Option<u64>,
}

impl OperatorSpec for LimitPlan {
    fn name(&self) -> String {
        "Limit".into()
    }

    fn explain(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.fetch {
            Some(n) => writeln!(f, "  Limit: {n} rows after {} (the first to arrive)", self.skip),
            None => writeln!(f, "  Limit: every row after {} (the first to arrive)", self.skip),
        }
    }

    fn instantiate(self: Arc<Self>, name: String, _cx: &OperatorContext) -> Result<Box<dyn Operator>> {
        Ok(Box::new(Limit { plan: self, name, seen: 0 }))
    }

    /// The count of rows seen.
    fn state(&self) -> Option<StateShape> {
        Some(StateShape {
            kind: "Limit",
            signature: format!("rows seen; offset {}, fetch {:?}", self.skip, self.fetch),
            growth: StateGrowth::Bounded,
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The limiting subtask.
pub struct Limit {
    plan: Arc<LimitPlan>,
    name: String,
    /// Rows that arrived so far, passed on or not.
    seen: u64,
}

impl Operator for Limit {
    fn name(&self) -> &str {
        &self.name
    }

    fn on_batch(&mut self, batch: StreamBatch, out: &mut Collector) -> Result<()> {
        let (first, rows) = (self.seen, batch.num_rows() as u64);
        self.seen = first.saturating_add(rows);
        let end = self.plan.fetch.map_or(u64::MAX, |n| self.plan.skip.saturating_add(n));
        // This batch's rows `first..first + rows` within `skip..end`.
        let (from, to) = (first.max(self.plan.skip), (first + rows).min(end));
        if from >= to {
            return Ok(());
        }
        if from == first && to == first + rows {
            out.batch(batch);
            return Ok(());
        }
        let indices = UInt32Array::from_iter_values((from - first) as u32..(to - first) as u32);
        out.batch(batch.take(&indices)?);
        Ok(())
    }

    fn snapshot(&mut self, _checkpoint: u64, _chunks: &mut ChunkWriter) -> Result<Option<Vec<u8>>> {
        let mut e = Encoder::default();
        e.u64(self.seen);
        Ok(Some(e.bytes))
    }

    fn restore(&mut self, states: &[&[u8]], _chunks: &ChunkMap, _owns: &dyn Fn(usize) -> bool) -> Result<()> {
        for state in states {
            let mut d = Decoder::new(state);
            self.seen = self.seen.saturating_add(d.u64()?);
            d.finish()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::JobMetrics;
    use datafusion::arrow::array::{AsArray, Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::Int64Type;

    fn passed(skip: u64, fetch: Option<u64>, sizes: &[i64]) -> Vec<i64> {
        let metrics = Arc::new(JobMetrics::default());
        let state = crate::spill::StateBackend::memory();
        let cx = crate::plan::OperatorContext { subtask: 0, metrics: &metrics, state: &state };
        let mut limit = Arc::new(LimitPlan { skip, fetch }).instantiate("Limit".into(), &cx).unwrap();
        let mut out = Collector::default();
        let mut next = 0;
        for size in sizes {
            let values = Int64Array::from_iter_values(next..next + size);
            next += size;
            let batch = RecordBatch::try_from_iter([("v", Arc::new(values) as _)]).unwrap();
            limit.on_batch(StreamBatch::new(batch), &mut out).unwrap();
        }
        out.out
            .iter()
            .flat_map(|e| match e {
                crate::operator::Emitted::Data(b) => b.data.column(0).as_primitive::<Int64Type>().values().to_vec(),
                _ => Vec::new(),
            })
            .collect()
    }

    #[test]
    fn the_first_rows_after_the_offset_pass_across_batches() {
        assert_eq!(passed(0, Some(3), &[2, 2, 2]), vec![0, 1, 2]);
        assert_eq!(passed(3, Some(4), &[2, 2, 5]), vec![3, 4, 5, 6]);
        assert_eq!(passed(5, None, &[4, 4]), vec![5, 6, 7]);
        assert_eq!(passed(0, Some(0), &[4]), Vec::<i64>::new());
        assert_eq!(passed(0, Some(10), &[4, 0, 3]), (0..7).collect::<Vec<_>>());
    }
}
