//! One subtask of a ranking: partitions, their rankings, and what leaves
//! when (see the module doc of `rank`).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int8Array, RecordBatch, UInt64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::TimestampMillisecondType;
use datafusion::arrow::row::{RowConverter, Rows, SortField};
use datafusion::common::hash_utils::RandomState;

use super::ranked::{Entry, Ranked};
use super::{RankMode, RankPlan};
use crate::changelog::{self, RowKind};
use crate::error::{EngineError, Result, ResultExt};
use crate::message::{EventTime, StreamBatch, WATERMARK_MIN};
use crate::metrics::{DropReason, OperatorMetrics};
use crate::operator::{Collector, Operator};
use crate::window::late::LateRows;

/// Not the exchange's seed, whose hashes the keys of one subtask share
/// bits of.
const SEED: u64 = 0x7261_6e6b_5f6b_6579;

/// One partition of the ranking.
pub(super) struct Partition {
    pub(super) key: Box<[u8]>,
    pub(super) ranked: Ranked,
    /// The batch that last touched it, to take its ranks before the
    /// batch's changes once.
    touched: u64,
    /// First by event time: the time of the row waiting for the watermark,
    /// and of the row emitted (the key then takes no other).
    pub(super) pending: Option<EventTime>,
    pub(super) emitted: Option<EventTime>,
}

/// A subtask of a ranking.
pub struct Rank {
    pub(super) plan: Arc<RankPlan>,
    pub(super) name: String,
    metrics: Arc<OperatorMetrics>,
    /// Encoders of partition keys (none without PARTITION BY), sort keys
    /// (none without ORDER BY) and whole rows.
    pub(super) keys: Option<RowConverter>,
    sorts: Option<RowConverter>,
    pub(super) rows: RowConverter,
    pub(super) index: HashMap<Box<[u8]>, u32, RandomState>,
    pub(super) partitions: Vec<Option<Partition>>,
    free: Vec<u32>,
    /// Arrival numbers handed out so far.
    pub(super) arrivals: u64,
    pub(super) watermark: EventTime,
    /// When partitions fire: window ends, or first rows' times.
    pub(super) timers: BTreeSet<(EventTime, u32)>,
    batch_no: u64,
}

/// Rows leaving the operator, built into one batch.
#[derive(Default)]
struct Changes {
    rows: Vec<Arc<[u8]>>,
    ranks: Vec<u64>,
    kinds: Vec<i8>,
}

impl Changes {
    fn push(&mut self, row: &Arc<[u8]>, rank: u64, kind: RowKind) {
        self.rows.push(Arc::clone(row));
        self.ranks.push(rank);
        self.kinds.push(kind as i8);
    }
}

impl Rank {
    pub fn new(plan: Arc<RankPlan>, name: String, metrics: Arc<OperatorMetrics>) -> Result<Self> {
        let ctx = || format!("{name}: encoding rows");
        let input = &plan.input_schema;
        let keys = match plan.partition.is_empty() {
            true => None,
            false => {
                let fields = plan
                    .partition
                    .iter()
                    .map(|e| e.data_type(input).map(SortField::new))
                    .collect::<datafusion::error::Result<Vec<_>>>()
                    .context(ctx)?;
                Some(RowConverter::new(fields).context(ctx)?)
            }
        };
        let sorts = match plan.order.is_empty() {
            true => None,
            false => {
                let fields = plan
                    .order
                    .iter()
                    .map(|o| {
                        o.expr
                            .data_type(input)
                            .map(|t| SortField::new_with_options(t, o.options))
                    })
                    .collect::<datafusion::error::Result<Vec<_>>>()
                    .context(ctx)?;
                Some(RowConverter::new(fields).context(ctx)?)
            }
        };
        let fields = input
            .fields()
            .iter()
            .map(|f| SortField::new(f.data_type().clone()))
            .collect();
        let rows = RowConverter::new(fields)
            .map_err(|e| EngineError::Plan(format!("{name}: the ranked rows' columns cannot be kept ({e})")))?;
        Ok(Self {
            plan,
            name,
            metrics,
            keys,
            sorts,
            rows,
            index: HashMap::with_hasher(RandomState::with_seed(SEED)),
            partitions: Vec::new(),
            free: Vec::new(),
            arrivals: 0,
            watermark: WATERMARK_MIN,
            timers: BTreeSet::new(),
            batch_no: 0,
        })
    }

    /// The next arrival number: counting up ranks earlier rows first among
    /// equals, counting down later ones.
    pub(super) fn next_arrival(&mut self) -> u64 {
        self.arrivals += 1;
        match self.plan.later_wins_ties {
            true => u64::MAX - self.arrivals,
            false => self.arrivals,
        }
    }

    /// Encoded partition keys, sort keys and whole rows of `data`.
    pub(super) fn encode(&self, data: &RecordBatch) -> Result<(Option<Rows>, Option<Rows>, Rows)> {
        let (keys, sorts) = self.encode_keys(data)?;
        let rows = self
            .rows
            .convert_columns(data.columns())
            .context(|| format!("{}: encoding rows", self.name))?;
        Ok((keys, sorts, rows))
    }

    /// Encoded partition and sort keys of `data`.
    fn encode_keys(&self, data: &RecordBatch) -> Result<(Option<Rows>, Option<Rows>)> {
        let ctx = || format!("{}: encoding rows", self.name);
        let evaluate = |e: &Arc<dyn datafusion::physical_plan::PhysicalExpr>| -> Result<ArrayRef> {
            e.evaluate(data)
                .and_then(|v| v.into_array(data.num_rows()))
                .context(ctx)
        };
        let keys = match &self.keys {
            Some(c) => {
                let cols = crate::operators::evaluate::columns(&self.plan.partition, data).context(ctx)?;
                Some(c.convert_columns(&cols).context(ctx)?)
            }
            None => None,
        };
        let sorts = match &self.sorts {
            Some(c) => {
                let cols = self
                    .plan
                    .order
                    .iter()
                    .map(|o| evaluate(&o.expr))
                    .collect::<Result<Vec<_>>>()?;
                Some(c.convert_columns(&cols).context(ctx)?)
            }
            None => None,
        };
        Ok((keys, sorts))
    }

    /// Encodes the rows a batch inserted (`(partition, arrival, row)`, kept
    /// with empty bytes while the batch ranked them) that are still kept:
    /// most rows of a Top-N never enter, or leave within their batch.
    fn fill(&mut self, data: &RecordBatch, sorts: Option<&Rows>, inserted: &[(u32, u64, u32)]) -> Result<()> {
        if inserted.is_empty() {
            return Ok(());
        }
        let ctx = || format!("{}: encoding rows", self.name);
        let picks = datafusion::arrow::array::UInt32Array::from_iter_values(inserted.iter().map(|i| i.2));
        let taken = datafusion::arrow::compute::take_record_batch(data, &picks).context(ctx)?;
        let rows = self.rows.convert_columns(taken.columns()).context(ctx)?;
        for (j, (p, seq, r)) in inserted.iter().enumerate() {
            let sort = sorts.map_or(&[][..], |s| s.row(*r as usize).data());
            let row: Arc<[u8]> = Arc::from(rows.row(j).data());
            if let Some(part) = self.partitions[*p as usize].as_mut() {
                part.ranked.fill(sort, *seq, &row);
            }
        }
        Ok(())
    }

    /// The partition of `key`, made if new.
    pub(super) fn partition_of(&mut self, key: &[u8]) -> u32 {
        if let Some(p) = self.index.get(key) {
            return *p;
        }
        let partition = Partition {
            key: key.into(),
            ranked: Ranked::default(),
            touched: 0,
            pending: None,
            emitted: None,
        };
        let p = match self.free.pop() {
            Some(p) => {
                self.partitions[p as usize] = Some(partition);
                p
            }
            None => {
                self.partitions.push(Some(partition));
                (self.partitions.len() - 1) as u32
            }
        };
        self.index.insert(key.into(), p);
        p
    }

    pub(super) fn partition(&mut self, p: u32) -> &mut Partition {
        self.partitions[p as usize].as_mut().expect("indexed partitions exist")
    }

    fn drop_partition(&mut self, p: u32) {
        if let Some(part) = self.partitions[p as usize].take() {
            self.index.remove(&part.key);
            self.free.push(p);
        }
    }

    /// The ranks kept, as indices into a ranking.
    fn kept(&self) -> std::ops::Range<usize> {
        (self.plan.first as usize - 1)..self.plan.last as usize
    }

    fn on_updating_batch(&mut self, batch: &StreamBatch, out: &mut Collector) -> Result<()> {
        let (data, kinds) = changelog::split(&batch.data);
        // Over appends, only the rows still kept after the batch are
        // encoded whole; a changelog's retractions compare whole rows.
        let (keys, sorts) = self.encode_keys(&data)?;
        let rows = match kinds {
            Some(_) => Some(
                self.rows
                    .convert_columns(data.columns())
                    .context(|| format!("{}: encoding rows", self.name))?,
            ),
            None => None,
        };
        let capacity = self.plan.capacity();
        let last = self.plan.last as usize;
        self.batch_no += 1;
        let mut touched: Vec<(u32, Vec<Entry>)> = Vec::new();
        let mut inserted: Vec<(u32, u64, u32)> = Vec::new();
        let placeholder: Arc<[u8]> = Arc::from(Vec::new());
        for r in 0..data.num_rows() {
            let p = self.partition_of(keys.as_ref().map_or(&[], |k| k.row(r).data()));
            let batch_no = self.batch_no;
            let part = self.partition(p);
            if part.touched != batch_no {
                part.touched = batch_no;
                let before = part.ranked.top(last);
                touched.push((p, before));
            }
            let sort = sorts.as_ref().map_or(&[][..], |s| s.row(r).data());
            if let (Some(kinds), Some(rows)) = (&kinds, &rows)
                && kinds.get(r).retracts()
            {
                self.partition(p).ranked.retract(sort, rows.row(r).data());
                continue;
            }
            let seq = self.next_arrival();
            let ranked = &mut self.partition(p).ranked;
            if !ranked.enters(sort, seq, capacity) {
                continue;
            }
            match &rows {
                Some(rows) => ranked.insert(sort, seq, Arc::from(rows.row(r).data()), capacity),
                None => {
                    ranked.insert(sort, seq, Arc::clone(&placeholder), capacity);
                    inserted.push((p, seq, r as u32));
                }
            }
        }
        self.fill(&data, sorts.as_ref(), &inserted)?;
        let mut withdrawn = Changes::default();
        let mut added = Changes::default();
        for (p, before) in touched {
            let after: Vec<Entry> = self.partition(p).ranked.top(last);
            self.diff(&before, &after, &mut withdrawn, &mut added);
            if self.partition(p).ranked.is_empty() {
                self.drop_partition(p);
            }
        }
        withdrawn.rows.append(&mut added.rows);
        withdrawn.ranks.append(&mut added.ranks);
        withdrawn.kinds.append(&mut added.kinds);
        self.emit(withdrawn, out)
    }

    /// The changes from a partition's kept ranks `before` to `after`.
    fn diff(&self, before: &[Entry], after: &[Entry], withdrawn: &mut Changes, added: &mut Changes) {
        let kept = self.kept();
        fn at(rows: &[Entry], k: usize) -> Option<(u64, &Arc<[u8]>)> {
            rows.get(k).map(|(seq, row)| (*seq, row))
        }
        if self.plan.number {
            for k in kept {
                let rank = k as u64 + 1;
                match (at(before, k), at(after, k)) {
                    (Some((b, _)), Some((a, _))) if a == b => {}
                    (Some((_, b)), Some((_, a))) => {
                        withdrawn.push(b, rank, RowKind::UpdateBefore);
                        added.push(a, rank, RowKind::UpdateAfter);
                    }
                    (Some((_, b)), None) => withdrawn.push(b, rank, RowKind::Delete),
                    (None, Some((_, a))) => added.push(a, rank, RowKind::Insert),
                    (None, None) => {}
                }
            }
            return;
        }
        let range = |rows: &'_ [Entry]| -> Vec<Entry> {
            rows.get(kept.start..kept.end.min(rows.len())).unwrap_or(&[]).to_vec()
        };
        let (before, after) = (range(before), range(after));
        let gone: Vec<&Entry> = before.iter().filter(|b| !after.iter().any(|a| a.0 == b.0)).collect();
        let new: Vec<&Entry> = after.iter().filter(|a| !before.iter().any(|b| a.0 == b.0)).collect();
        // A Top-1 replaces its row: an update, as Flink's deduplication.
        let replaced = kept.len() == 1 && gone.len() == 1 && new.len() == 1;
        for (_, row) in gone {
            withdrawn.push(
                row,
                kept.start as u64 + 1,
                if replaced {
                    RowKind::UpdateBefore
                } else {
                    RowKind::Delete
                },
            );
        }
        for (_, row) in new {
            added.push(
                row,
                kept.start as u64 + 1,
                if replaced {
                    RowKind::UpdateAfter
                } else {
                    RowKind::Insert
                },
            );
        }
    }

    fn on_window_batch(&mut self, batch: &StreamBatch, end_column: usize, out: &mut Collector) -> Result<()> {
        let data = &batch.data;
        let ends = time_column(data, end_column, &self.name)?;
        let (keys, sorts) = self.encode_keys(data)?;
        let capacity = self.plan.capacity();
        let mut inserted: Vec<(u32, u64, u32)> = Vec::new();
        let placeholder: Arc<[u8]> = Arc::from(Vec::new());
        let row_wm = batch.row_watermarks.as_ref().map(|w| w.values());
        let mut late = LateRows::default();
        for r in 0..data.num_rows() {
            let wm = row_wm.map_or(self.watermark, |w| w[r].max(self.watermark));
            if ends.is_null(r) {
                late.push(r, DropReason::InvalidEventTime, wm);
                continue;
            }
            let end = ends.value(r);
            if wm != WATERMARK_MIN && end.saturating_sub(1) <= wm {
                late.push(r, DropReason::Late, wm);
                continue;
            }
            let p = self.partition_of(keys.as_ref().map_or(&[], |k| k.row(r).data()));
            if self.partition(p).ranked.is_empty() {
                self.timers.insert((end, p));
            }
            let sort = sorts.as_ref().map_or(&[][..], |s| s.row(r).data());
            let seq = self.next_arrival();
            let ranked = &mut self.partition(p).ranked;
            if ranked.enters(sort, seq, capacity) {
                ranked.insert(sort, seq, Arc::clone(&placeholder), capacity);
                inserted.push((p, seq, r as u32));
            }
        }
        self.fill(data, sorts.as_ref(), &inserted)?;
        late.report(self.plan.late_output.as_deref(), &self.metrics, data, out)
    }

    fn on_first_batch(&mut self, batch: &StreamBatch, time: usize, out: &mut Collector) -> Result<()> {
        let data = &batch.data;
        let times = time_column(data, time, &self.name)?;
        let (keys, sorts, rows) = self.encode(data)?;
        let row_wm = batch.row_watermarks.as_ref().map(|w| w.values());
        let mut late = LateRows::default();
        let mut now = Changes::default();
        for r in 0..data.num_rows() {
            // With per-row watermarks, first rows leave between the rows
            // that pass them, as Flink's on-event watermarks would.
            if let Some(w) = row_wm
                && w[r] > self.watermark
            {
                self.watermark = w[r];
                self.fire(w[r], &mut now);
            }
            let wm = self.watermark;
            if times.is_null(r) {
                late.push(r, DropReason::InvalidEventTime, wm);
                continue;
            }
            let t = times.value(r);
            let p = self.partition_of(keys.as_ref().map_or(&[], |k| k.row(r).data()));
            if let Some(first) = self.partition(p).emitted {
                // A later row of the key is a duplicate; an earlier one
                // came after the watermark made the first row final.
                if t < first {
                    late.push(r, DropReason::Late, wm);
                }
                continue;
            }
            let sort = sorts.as_ref().map_or(&[][..], |s| s.row(r).data());
            let seq = self.next_arrival();
            let part = self.partition(p);
            if !part.ranked.enters(sort, seq, Some(1)) {
                continue;
            }
            part.ranked.insert(sort, seq, Arc::from(rows.row(r).data()), Some(1));
            let before = part.pending.replace(t);
            if let Some(b) = before {
                self.timers.remove(&(b, p));
            }
            // Behind the watermark nothing earlier can come: it is final.
            if wm != WATERMARK_MIN && t <= wm {
                self.fire_first(p, &mut now);
            } else {
                self.timers.insert((t, p));
            }
        }
        self.emit(now, out)?;
        late.report(self.plan.late_output.as_deref(), &self.metrics, data, out)
    }

    /// Emits a partition's first row and keeps only its time.
    fn fire_first(&mut self, p: u32, now: &mut Changes) {
        let part = self.partition(p);
        if let Some((_, row)) = part.ranked.top(1).first() {
            now.push(row, 1, RowKind::Insert);
        }
        part.emitted = part.pending.take();
        part.ranked = Ranked::default();
    }

    /// Fires what the watermark `wm` passed into `now`.
    fn fire(&mut self, wm: EventTime, now: &mut Changes) {
        let kept = self.kept();
        while let Some(&(at, p)) = self.timers.first() {
            let due = match self.plan.mode {
                RankMode::Window { .. } => at.saturating_sub(1) <= wm,
                _ => at <= wm,
            };
            if !due {
                break;
            }
            self.timers.pop_first();
            match self.plan.mode {
                RankMode::Window { .. } => {
                    let top: Vec<Entry> = self.partition(p).ranked.top(kept.end);
                    for (k, (_, row)) in top.iter().enumerate().skip(kept.start) {
                        now.push(row, k as u64 + 1, RowKind::Insert);
                    }
                    self.drop_partition(p);
                }
                _ => self.fire_first(p, now),
            }
        }
    }

    /// Builds the output batch of `changes`.
    fn emit(&mut self, changes: Changes, out: &mut Collector) -> Result<()> {
        if changes.rows.is_empty() {
            return Ok(());
        }
        let ctx = || format!("{}: building results", self.name);
        let parser = self.rows.parser();
        let mut columns = self
            .rows
            .convert_rows(changes.rows.iter().map(|r| parser.parse(r)))
            .context(ctx)?;
        let schema = Arc::clone(&self.plan.output_schema);
        {
            let ranks: ArrayRef = Arc::new(UInt64Array::from(changes.ranks));
            let want = schema.field(columns.len()).data_type();
            columns.push(if ranks.data_type() == want {
                ranks
            } else {
                cast(&ranks, want).context(ctx)?
            });
        }
        if matches!(self.plan.mode, RankMode::Updating { changelog: true }) {
            columns.push(Arc::new(Int8Array::from(changes.kinds)));
        }
        let n = changes.rows.len();
        self.metrics.rows_out.fetch_add(n as u64, Ordering::Relaxed);
        out.batch(StreamBatch::new(RecordBatch::try_new(schema, columns).context(ctx)?));
        Ok(())
    }
}

/// A TIMESTAMP(3) column of the input.
fn time_column<'b>(
    data: &'b RecordBatch,
    column: usize,
    name: &str,
) -> Result<&'b datafusion::arrow::array::PrimitiveArray<TimestampMillisecondType>> {
    let c = data.column(column);
    c.as_primitive_opt::<TimestampMillisecondType>().ok_or_else(|| {
        EngineError::Plan(format!(
            "{name}: time column has type {}, expected TIMESTAMP(3)",
            c.data_type()
        ))
    })
}

impl Operator for Rank {
    fn name(&self) -> &str {
        &self.name
    }

    fn on_batch(&mut self, batch: StreamBatch, out: &mut Collector) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.metrics
            .rows_in
            .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        match self.plan.mode {
            RankMode::Updating { .. } => self.on_updating_batch(&batch, out),
            RankMode::Window { end_column } => self.on_window_batch(&batch, end_column, out),
            RankMode::FirstByEventTime { time_column } => self.on_first_batch(&batch, time_column, out),
        }
    }

    /// Fires what the watermark passed (per-row watermarks may have fired
    /// it already), then forwards it.
    fn on_watermark(&mut self, watermark: EventTime, out: &mut Collector) -> Result<()> {
        if watermark > self.watermark {
            self.watermark = watermark;
            let mut now = Changes::default();
            self.fire(watermark, &mut now);
            self.emit(now, out)?;
        }
        out.watermark(watermark);
        Ok(())
    }

    /// Estimated from a sample of partitions, as the group aggregate does:
    /// walking millions of them each time the gauge is read would cost.
    fn state_bytes(&self) -> usize {
        const SAMPLE: usize = 64;
        let live = self.index.len();
        let (n, bytes) = self
            .partitions
            .iter()
            .flatten()
            .take(SAMPLE)
            .fold((0, 0), |(n, b), p| (n + 1, b + p.ranked.bytes() + p.key.len() * 2 + 96));
        bytes * live / n.max(1)
    }

    fn snapshot(
        &mut self,
        _checkpoint: u64,
        _chunks: &mut crate::checkpoint::chunk::ChunkWriter,
    ) -> Result<Option<Vec<u8>>> {
        self.encode_state().map(Some)
    }

    fn restore(
        &mut self,
        states: &[&[u8]],
        _chunks: &crate::checkpoint::chunk::ChunkMap,
        owns: &dyn Fn(usize) -> bool,
    ) -> Result<()> {
        self.decode_state(states, owns)
    }
}
