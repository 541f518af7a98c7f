//! The interval join: `a JOIN b ON … AND b.ts BETWEEN a.ts - X AND a.ts +
//! Y`. Each row is joined, when it arrives, with the rows of the other side
//! held so far; it is then held itself while a row of the other side that
//! is not late could still match it, so every pair is emitted exactly once,
//! by the later of its two rows.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::kernels::aggregate::max;

use crate::checkpoint::chunk::{ChunkMap, ChunkWriter};
use crate::checkpoint::codec::{Decoder, Encoder};
use crate::error::{EngineError, Result};
use crate::join::exec::JoinSpec;
use crate::join::index::KeyIndex;
use crate::join::sides::{SideRows, drop_late, times};
use crate::message::{EventTime, StreamBatch, WATERMARK_END, WATERMARK_MIN};
use crate::metrics::OperatorMetrics;
use crate::operator::{Collector, Operator};

/// An inner join whose condition bounds `right.time - left.time`, or,
/// without bounds, a regular inner join (Flink's), which keeps every row.
#[derive(Debug)]
pub struct IntervalJoinPlan {
    pub spec: JoinSpec,
    pub bounds: Option<TimeBounds>,
}

/// How the rows' times bound an interval join.
#[derive(Debug, Clone, Copy)]
pub struct TimeBounds {
    /// The rowtime column of each side's rows (left, right).
    pub time: [usize; 2],
    /// `right.time - left.time` is within `[lower, upper]` for every pair.
    pub lower: i64,
    pub upper: i64,
}

impl IntervalJoinPlan {
    /// How far behind the input watermark a joined row's times can be: the
    /// output watermark is held back by this much (without bounds, any:
    /// a regular join's output has no watermark but the end of input).
    pub fn delay(&self) -> i64 {
        self.bounds.map_or(i64::MAX, |b| b.upper.max(-b.lower).max(0))
    }
}

/// One subtask of an interval join.
pub struct IntervalJoin {
    plan: Arc<IntervalJoinPlan>,
    name: String,
    watermark: EventTime,
    sides: [SideRows; 2],
    /// The latest time of each held batch, side by side with `sides`:
    /// batches are dropped whole, without looking at their rows.
    latest: [Vec<EventTime>; 2],
    /// Each side's held rows by key, when the join has keys (without, every
    /// pair is a candidate and DataFusion's nested-loop join runs).
    index: [KeyIndex; 2],
    metrics: Arc<OperatorMetrics>,
}

impl IntervalJoin {
    pub fn new(plan: Arc<IntervalJoinPlan>, name: String, metrics: Arc<OperatorMetrics>) -> Self {
        Self {
            plan,
            name,
            watermark: WATERMARK_MIN,
            sides: [SideRows::default(), SideRows::default()],
            latest: [Vec::new(), Vec::new()],
            index: [KeyIndex::default(), KeyIndex::default()],
            metrics,
        }
    }

    fn keyed(&self) -> bool {
        !self.plan.spec.on.is_empty()
    }

    /// How far after its own time a row of `side` can still meet a row of
    /// the other side that is not late (whose time is not before the
    /// watermark).
    fn reach(bounds: &TimeBounds, side: usize) -> i64 {
        if side == 0 { bounds.upper } else { -bounds.lower }
    }

    /// Drops the oldest held batches once none of their rows can meet a
    /// row to come. Only whole batches from the front go, so that the
    /// index drops them in place; a row kept past its time fails the join's
    /// time condition meanwhile (and goes with its batch).
    fn evict(&mut self) {
        let Some(b) = self.plan.bounds else {
            return;
        };
        for side in 0..2 {
            let reach = Self::reach(&b, side);
            let gone = self.latest[side].iter().take_while(|last| last.saturating_add(reach) < self.watermark).count();
            if gone == 0 {
                continue;
            }
            self.index[side].drop_front(gone);
            self.latest[side].drain(..gone);
            for (batch, chunk) in self.sides[side].take().into_iter().skip(gone) {
                self.sides[side].push_held(batch, chunk);
            }
        }
    }

    /// Holds `batch` on `side`, with its time bounds.
    fn add(&mut self, side: usize, batch: RecordBatch) -> Result<()> {
        let Some(b) = self.plan.bounds else {
            self.hold(side, batch, EventTime::MAX);
            return Ok(());
        };
        if let Some(last) = max(times(&batch, b.time[side], &self.name)?) {
            self.hold(side, batch, last);
        }
        Ok(())
    }

    fn hold(&mut self, side: usize, batch: RecordBatch, latest: EventTime) {
        self.sides[side].push(batch);
        self.latest[side].push(latest);
    }
}

impl Operator for IntervalJoin {
    fn name(&self) -> &str {
        &self.name
    }

    fn on_batch(&mut self, _batch: StreamBatch, _out: &mut Collector) -> Result<()> {
        Err(EngineError::Plan(format!("{}: a join's rows must come with their side", self.name)))
    }

    fn on_input(&mut self, input: usize, batch: StreamBatch, out: &mut Collector) -> Result<()> {
        // A row behind the watermark is late, as in Flink's interval join:
        // the rows it could have met may be gone. (A row at the watermark,
        // e.g. a window result with its window_time, is not.) A regular
        // join keeps every row: none is late.
        let batch = match self.plan.bounds {
            Some(b) => drop_late(&batch, b.time[input], 1, self.watermark, &self.name, &self.metrics)?,
            None => {
                self.metrics.rows_in.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                batch.data
            }
        };
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let other = &self.sides[1 - input];
        if !other.batches().is_empty() {
            let joined = if self.keyed() {
                let index = &mut self.index[1 - input];
                index.join(&self.plan.spec, input, &batch, other.batches(), &self.name)?.into_iter().collect()
            } else if input == 0 {
                self.plan.spec.run(vec![batch.clone()], other.batches().to_vec(), &self.name)?
            } else {
                self.plan.spec.run(other.batches().to_vec(), vec![batch.clone()], &self.name)?
            };
            for b in joined {
                self.metrics.rows_out.fetch_add(b.num_rows() as u64, Ordering::Relaxed);
                out.batch(StreamBatch::new(b));
            }
        }
        self.add(input, batch)
    }

    fn on_watermark(&mut self, watermark: EventTime, out: &mut Collector) -> Result<()> {
        if watermark > self.watermark {
            self.watermark = watermark;
            self.evict();
        }
        // The end of a bounded input stays the end: it fires everything.
        out.watermark(if watermark == WATERMARK_END { watermark } else { watermark.saturating_sub(self.plan.delay()) });
        Ok(())
    }

    /// Held rows go to chunks once (a regular join holds every row for
    /// good): later checkpoints reference them.
    fn snapshot(&mut self, checkpoint: u64, chunks: &mut ChunkWriter) -> Result<Option<Vec<u8>>> {
        let mut e = Encoder::default();
        let mut hashes = Vec::new();
        e.i64(self.watermark);
        for side in 0..2 {
            let keys = self.plan.spec.keys(side);
            self.sides[side].snapshot(&keys, checkpoint, chunks, &mut e, &mut hashes)?;
        }
        Ok(Some(e.bytes))
    }

    fn checkpoint_complete(&mut self, checkpoint: u64) {
        for side in self.sides.iter_mut() {
            side.checkpoint_complete(checkpoint);
        }
    }

    fn restore(&mut self, states: &[&[u8]], chunks: &ChunkMap, owns: &dyn Fn(usize) -> bool) -> Result<()> {
        let mut watermark = None::<EventTime>;
        for state in states {
            let mut d = Decoder::new(state);
            let w = d.i64()?;
            watermark = Some(watermark.map_or(w, |m| m.min(w)));
            let schemas = [&self.plan.spec.left_schema, &self.plan.spec.right_schema];
            for (side, schema) in self.sides.iter_mut().zip(schemas) {
                side.restore(&mut d, chunks, schema, owns)?;
            }
            d.finish()?;
        }
        for side in 0..2 {
            self.latest[side].clear();
            self.index[side].clear();
            for (batch, _) in self.sides[side].take() {
                self.add(side, batch)?;
            }
        }
        if let Some(w) = watermark {
            self.watermark = w;
        }
        Ok(())
    }
}
