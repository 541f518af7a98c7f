//! The interval join: `a JOIN b ON … AND b.ts BETWEEN a.ts - X AND a.ts +
//! Y`. Each row is joined, when it arrives, with the rows of the other side
//! held so far; it is then held itself while a row of the other side that
//! is not late could still match it, so every pair is emitted exactly once,
//! by the later of its two rows.
//!
//! An outer interval join (LEFT, RIGHT, FULL) also remembers which held
//! rows of its outer sides met a partner; one that met none goes out padded
//! with NULLs once no partner can come (the watermark passed its time plus
//! the bound), as Flink's `TimeIntervalJoin` does. Its output only appends:
//! a padded row is sent once, when it is final.

mod spill;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use datafusion::arrow::array::{AsArray, BooleanArray, RecordBatch, UInt32Array};
use datafusion::arrow::compute::kernels::aggregate::max;
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::checkpoint::chunk::{ChunkMap, ChunkWriter};
use crate::checkpoint::codec::{Decoder, Encoder};
use crate::checkpoint::snapshot::{SnapshotJob, SnapshotOutput};
use crate::error::{EngineError, Result, ResultExt};
use crate::join::arrival_ttl::ArrivalTtl;
use crate::join::exec::JoinSpec;
use crate::join::index::{KeyIndex, Reach, TimeRange};
use crate::join::sides::{SideRows, drop_late, times};
use crate::message::{EventTime, StreamBatch, WATERMARK_END, WATERMARK_MIN};
use crate::metrics::{DropReason, OperatorMetrics};
use crate::operator::{Collector, Operator, StateSize};
use crate::spill::StateBudget;

/// An inner join whose condition bounds `right.time - left.time`, or,
/// without bounds, a regular inner join (Flink's), which keeps every row.
#[derive(Debug)]
pub struct IntervalJoinPlan {
    pub spec: JoinSpec,
    pub bounds: Option<TimeBounds>,
    /// A regular join's state TTL per side (left, right): a held row
    /// expires this long after it came (`arrival_ttl.rs`).
    pub ttl: [Option<std::time::Duration>; 2],
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

impl TimeBounds {
    /// The held rows of the other side a row of `side` can meet.
    pub(crate) fn reachable_from(&self, side: usize) -> TimeRange {
        match side {
            0 => TimeRange { probe: self.time[0], held: self.time[1], lower: self.lower, upper: self.upper },
            _ => TimeRange {
                probe: self.time[1],
                held: self.time[0],
                lower: self.upper.saturating_neg(),
                upper: self.lower.saturating_neg(),
            },
        }
    }
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
    /// On an outer side, side by side with its held batches: which rows
    /// met a partner (or went out padded already), and the earliest time
    /// of a row that did not (`EventTime::MAX`: none), below which a
    /// watermark need not look.
    matched: [Vec<Vec<bool>>; 2],
    due: [Vec<EventTime>; 2],
    /// A regular join under a state TTL: when its held batches came.
    arrivals: Option<ArrivalTtl>,
    /// The subtask's share of the job's state budget, with the spilling
    /// backend, when it can spill (`spill.rs`).
    budget: Option<StateBudget>,
    /// Scratch for key hashes.
    hashes: Vec<u64>,
    /// Parts of runs read by probes (logged when spilling).
    parts_read: u64,
    metrics: Arc<OperatorMetrics>,
}

impl IntervalJoin {
    pub fn new(plan: Arc<IntervalJoinPlan>, name: String, metrics: Arc<OperatorMetrics>) -> Self {
        Self {
            name,
            watermark: WATERMARK_MIN,
            sides: [SideRows::default(), SideRows::default()],
            latest: [Vec::new(), Vec::new()],
            index: [KeyIndex::default(), KeyIndex::default()],
            matched: [Vec::new(), Vec::new()],
            due: [Vec::new(), Vec::new()],
            arrivals: match plan.bounds {
                None => ArrivalTtl::new(plan.ttl),
                Some(_) => None,
            },
            budget: None,
            hashes: Vec::new(),
            parts_read: 0,
            metrics,
            plan,
        }
    }

    fn side_schema(&self, side: usize) -> &SchemaRef {
        if side == 0 { &self.plan.spec.left_schema } else { &self.plan.spec.right_schema }
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
            let watermark = self.watermark;
            self.sides[side].drop_runs(|run| run.latest().saturating_add(reach) < watermark);
            let gone = self.latest[side].iter().take_while(|last| last.saturating_add(reach) < watermark).count();
            self.drop_front(side, gone);
        }
    }

    /// Drops the first `gone` held batches of `side`; returns them.
    fn drop_front(&mut self, side: usize, gone: usize) -> Vec<RecordBatch> {
        if gone == 0 {
            return Vec::new();
        }
        self.index[side].drop_front(gone);
        self.latest[side].drain(..gone);
        if self.plan.spec.outer(side) {
            self.matched[side].drain(..gone);
            self.due[side].drain(..gone);
        }
        let mut dropped = Vec::with_capacity(gone);
        for (i, (batch, chunk)) in self.sides[side].take().into_iter().enumerate() {
            match i < gone {
                true => dropped.push(batch),
                false => self.sides[side].push_held(batch, chunk),
            }
        }
        dropped
    }

    /// Under a state TTL, drops the held batches that came a TTL ago.
    fn expire(&mut self) -> Result<()> {
        for side in 0..2 {
            let Some(gone) = self.arrivals.as_ref().map(|a| a.due(side)) else {
                return Ok(());
            };
            let dropped = self.drop_front(side, gone);
            if let Some(a) = &mut self.arrivals {
                a.dropped(side, &dropped, &self.plan.spec.keys(side), &self.name)?;
            }
        }
        Ok(())
    }

    /// Holds `batch` on `side`, with its time bounds and, on an outer
    /// side, which of its rows met a partner.
    fn add(&mut self, side: usize, batch: RecordBatch, matched: Vec<bool>) -> Result<()> {
        let Some(b) = self.plan.bounds else {
            self.sides[side].push(batch);
            self.latest[side].push(EventTime::MAX);
            if let Some(a) = &mut self.arrivals {
                a.held(side);
            }
            return Ok(());
        };
        let t = times(&batch, b.time[side], &self.name)?;
        let Some(last) = max(t) else {
            return Ok(());
        };
        if self.plan.spec.outer(side) {
            let due = (0..t.len()).filter(|i| !matched[*i]).map(|i| t.value(i)).min().unwrap_or(EventTime::MAX);
            self.matched[side].push(matched);
            self.due[side].push(due);
        }
        self.sides[side].push(batch);
        self.latest[side].push(last);
        Ok(())
    }

    /// Sends, padded with NULLs, the rows of outer sides that met no
    /// partner and can meet none now: their time plus their reach is
    /// before the watermark. Before the watermark goes on, so that they
    /// are not late downstream (their time is at or after the watermark
    /// sent before this one).
    fn pad_unmatched(&mut self, out: &mut Collector) -> Result<()> {
        let Some(b) = self.plan.bounds else {
            return Ok(());
        };
        for side in (0..2).filter(|s| self.plan.spec.outer(*s)) {
            let reach = Self::reach(&b, side);
            for i in 0..self.due[side].len() {
                if self.due[side][i].saturating_add(reach) >= self.watermark {
                    continue;
                }
                let batch = &self.sides[side].batches()[i];
                let t = times(batch, b.time[side], &self.name)?;
                let matched = &mut self.matched[side][i];
                let mut due = Vec::new();
                let mut next = EventTime::MAX;
                for (r, met) in matched.iter_mut().enumerate() {
                    match (*met, t.value(r).saturating_add(reach) < self.watermark) {
                        (true, _) => {}
                        (false, true) => {
                            *met = true;
                            due.push(r as u32);
                        }
                        (false, false) => next = next.min(t.value(r)),
                    }
                }
                self.due[side][i] = next;
                let rows =
                    take_record_batch(batch, &UInt32Array::from(due)).context(|| format!("{}: padding", self.name))?;
                let columns = self.plan.spec.padded(side, rows.columns().to_vec(), &self.name)?;
                let padded = RecordBatch::try_new(Arc::clone(&self.plan.spec.output_schema), columns)
                    .context(|| format!("{}: padding", self.name))?;
                self.metrics.rows_out.fetch_add(padded.num_rows() as u64, Ordering::Relaxed);
                out.batch(StreamBatch::new(padded));
            }
        }
        Ok(())
    }

    /// A held batch of an outer side with whether each row met a partner,
    /// as a checkpoint writes it.
    fn with_matched(batch: &RecordBatch, matched: &[bool], schema: &SchemaRef, name: &str) -> Result<RecordBatch> {
        let mut columns = batch.columns().to_vec();
        columns.push(Arc::new(BooleanArray::from(matched.to_vec())));
        RecordBatch::try_new(Arc::clone(schema), columns).context(|| format!("{name}: snapshot"))
    }

    /// A side's columns and `matched`.
    fn matched_schema(side: &SchemaRef) -> SchemaRef {
        let mut fields: Vec<Field> = side.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new("matched", DataType::Boolean, false));
        Arc::new(Schema::new(fields))
    }
}

impl Operator for IntervalJoin {
    fn name(&self) -> &str {
        &self.name
    }

    fn on_batch(&mut self, _batch: StreamBatch, _out: &mut Collector) -> Result<()> {
        Err(crate::operator::side_required(&self.name))
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
        if let Some(a) = &mut self.arrivals {
            let met = a.met(input, &batch, &self.plan.spec.keys(input), &self.name)?;
            self.metrics.add_dropped(DropReason::ExpiredState, met);
        }
        let other = &self.sides[1 - input];
        let mut matched = vec![false; if self.plan.spec.outer(input) { batch.num_rows() } else { 0 }];
        let mut joined = Vec::new();
        if !other.batches().is_empty() {
            joined = if self.keyed() {
                let index = &mut self.index[1 - input];
                let reach =
                    self.plan.bounds.map(|b| Reach { range: b.reachable_from(input), latest: &self.latest[1 - input] });
                let joined = index.join_pairs(&self.plan.spec, input, &batch, other.batches(), reach, &self.name)?;
                if let Some(j) = &joined {
                    for p in &j.probe {
                        if let Some(m) = matched.get_mut(*p as usize) {
                            *m = true;
                        }
                    }
                    if self.plan.spec.outer(1 - input) {
                        for (b, r) in &j.held {
                            self.matched[1 - input][*b][*r] = true;
                        }
                    }
                }
                joined.map(|j| j.rows).into_iter().collect()
            } else if input == 0 {
                self.plan.spec.run(vec![batch.clone()], other.batches().to_vec(), &self.name)?
            } else {
                self.plan.spec.run(other.batches().to_vec(), vec![batch.clone()], &self.name)?
            };
        }
        // The other side's spilled rows, after those in memory.
        joined.extend(self.probe_runs(input, &batch, &mut matched)?);
        for b in joined {
            self.metrics.rows_out.fetch_add(b.num_rows() as u64, Ordering::Relaxed);
            out.batch(StreamBatch::new(b));
        }
        self.add(input, batch, matched)?;
        self.keep_within_budget()
    }

    fn timer_interval(&self) -> Option<std::time::Duration> {
        self.arrivals.as_ref().map(ArrivalTtl::check_every)
    }

    fn on_timer(&mut self, _out: &mut Collector) -> Result<()> {
        self.expire()
    }

    fn on_watermark(&mut self, watermark: EventTime, out: &mut Collector) -> Result<()> {
        if watermark > self.watermark {
            self.watermark = watermark;
            self.pad_unmatched(out)?;
            self.evict();
        }
        // The end of a bounded input stays the end: it fires everything.
        out.watermark(if watermark == WATERMARK_END { watermark } else { watermark.saturating_sub(self.plan.delay()) });
        Ok(())
    }

    fn snapshot(&mut self, checkpoint: u64, chunks: &mut ChunkWriter) -> Result<Option<Vec<u8>>> {
        let taken = self.snapshot_async(checkpoint)?()?;
        chunks.append(taken.chunks);
        Ok(taken.state)
    }

    /// Held rows go to chunks once (a regular join holds every row for
    /// good): later checkpoints reference them. A spilled run not stored
    /// yet goes as its file, which the store links or streams: listing it
    /// reads nothing. The rows held in memory that no checkpoint stored
    /// are taken at the barrier (shared) and encoded off the task loop,
    /// into a spill file when the join spills. The rows of an outer side
    /// are written whole, here, with whether they met a partner, which
    /// changes after they were held.
    fn snapshot_async(&mut self, checkpoint: u64) -> Result<SnapshotJob> {
        let (mut e, mut chunks, mut fresh) = (Encoder::default(), ChunkWriter::default(), Vec::new());
        e.i64(self.watermark);
        for side in 0..2 {
            let keys = self.plan.spec.keys(side);
            if !self.plan.spec.outer(side) {
                fresh.extend(self.sides[side].snapshot(&keys, checkpoint, &mut chunks, &mut e));
                continue;
            }
            let schema = Self::matched_schema(self.side_schema(side));
            let mut rows = SideRows::default();
            for (batch, matched) in self.sides[side].batches().iter().zip(&self.matched[side]) {
                rows.push(Self::with_matched(batch, matched, &schema, &self.name)?);
            }
            rows.encode(&keys, &mut e, &mut self.hashes)?;
        }
        let target = self.budget.as_ref().map(StateBudget::target);
        Ok(Box::new(move || {
            for rows in fresh {
                rows.write(target.as_ref(), &mut chunks)?;
            }
            Ok(SnapshotOutput { state: Some(e.bytes), chunks })
        }))
    }

    fn state_size(&self) -> StateSize {
        StateSize {
            bytes: self.held_bytes(),
            keys: self.keyed().then(|| self.index.iter().map(KeyIndex::keys).sum()),
            spilled: self.spilled_bytes(),
        }
    }

    fn checkpoint_complete(&mut self, checkpoint: u64) {
        for side in self.sides.iter_mut() {
            side.checkpoint_complete(checkpoint);
        }
    }

    /// Under a budget, spills between the restored parts, so that memory
    /// stays about the share and one part.
    fn restore(&mut self, states: &[&[u8]], chunks: &ChunkMap, owns: &dyn Fn(usize) -> bool) -> Result<()> {
        let mut watermark = None::<EventTime>;
        for state in states {
            let mut d = Decoder::new(state);
            let w = d.i64()?;
            watermark = Some(watermark.map_or(w, |m| m.min(w)));
            for side in 0..2 {
                let schema = Arc::clone(self.side_schema(side));
                if !self.plan.spec.outer(side) {
                    for id in SideRows::chunk_ids(&mut d)? {
                        let bytes = chunks.get(id)?;
                        let mut chunk = Decoder::new(&bytes);
                        SideRows::decode_each(&mut chunk, &schema, owns, &mut |batch| {
                            self.add(side, batch, Vec::new())?;
                            self.keep_within_budget()
                        })?;
                        chunk.finish()?;
                    }
                    continue;
                }
                // An outer side's rows come with whether they met a partner.
                let mut rows = SideRows::default();
                rows.decode(&mut d, &Self::matched_schema(&schema), owns)?;
                let width = schema.fields().len();
                for b in rows.into_batches() {
                    let met = b.column(width).as_boolean_opt().ok_or_else(|| {
                        EngineError::State(format!("{}: held rows without whether they met a partner", self.name))
                    })?;
                    let met = met.iter().map(|m| m == Some(true)).collect();
                    let visible =
                        b.project(&(0..width).collect::<Vec<_>>()).context(|| format!("{}: restore", self.name))?;
                    self.add(side, visible, met)?;
                }
            }
            d.finish()?;
        }
        if let Some(w) = watermark {
            self.watermark = w;
        }
        Ok(())
    }
}
