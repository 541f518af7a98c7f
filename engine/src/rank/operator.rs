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

use super::ranked::Ranked;
use super::{RankMode, RankPlan};
use crate::changelog::RowKind;
use crate::error::{EngineError, Result, ResultExt};
use crate::message::{EventTime, StreamBatch, WATERMARK_MIN};
use crate::metrics::OperatorMetrics;
use crate::operator::{Collector, Operator, StateSize};
use crate::partition_keys::PartitionKeys;
use crate::spill::StateBudget;
use crate::spill::runs::Runs;

/// Not the exchange's seed, whose hashes the keys of one subtask share
/// bits of.
const SEED: u64 = 0x7261_6e6b_5f6b_6579;

/// One partition of the ranking.
pub(super) struct Partition {
    pub(super) key: Box<[u8]>,
    /// Its key group, as the exchange hashes its key: set under a state
    /// budget only (`spill.rs`), where runs and checkpoints are per key
    /// group.
    pub(super) key_group: u8,
    pub(super) ranked: Ranked,
    /// The batch that last touched it, to take its ranks before the
    /// batch's changes once.
    pub(super) touched: u64,
    /// Window Top-N with lateness: the window's ranks have left; rows
    /// that come now are re-fired results.
    pub(super) fired: bool,
    /// Window Top-N with lateness: each row's key (its group's) to where
    /// the row ranks, so that a re-fired result replaces it (boxed: other
    /// modes keep millions of partitions without it).
    pub(super) by_key: Option<Box<RowPlaces>>,
    /// First by event time: the time of the row waiting for the watermark,
    /// and of the row emitted (the key then takes no other).
    pub(super) pending: Option<EventTime>,
    pub(super) emitted: Option<EventTime>,
}

/// A row's own key → its sort key and arrival number.
pub(super) type RowPlaces = HashMap<Box<[u8]>, (Box<[u8]>, u64)>;

/// A subtask of a ranking.
pub struct Rank {
    pub(super) plan: Arc<RankPlan>,
    pub(super) name: String,
    pub(super) metrics: Arc<OperatorMetrics>,
    /// Encoders of partition keys (none without PARTITION BY), sort keys
    /// (none without ORDER BY) and whole rows.
    pub(super) keys: PartitionKeys,
    sorts: Option<RowConverter>,
    /// Encodes the rows' own keys, for window Top-N with lateness.
    upserts: Option<RowConverter>,
    pub(super) rows: RowConverter,
    pub(super) index: HashMap<Box<[u8]>, u32, RandomState>,
    pub(super) partitions: Vec<Option<Partition>>,
    pub(super) free: Vec<u32>,
    /// Arrival numbers handed out so far.
    pub(super) arrivals: u64,
    pub(super) watermark: EventTime,
    /// When partitions fire: window ends, or first rows' times.
    pub(super) timers: BTreeSet<(EventTime, u32)>,
    /// When fired windows kept for lateness are dropped.
    pub(super) expiry: BTreeSet<(EventTime, u32)>,
    batch_no: u64,
    /// Idle partitions, under a state TTL (`ttl.rs`), and the time of the
    /// batch's writes.
    pub(super) idle: Option<crate::state_ttl::Expiry>,
    pub(super) idle_now: i64,
    /// The subtask's share of the state budget (`None`: state stays in
    /// memory), the partitions spilled beyond it and their count.
    pub(super) budget: Option<StateBudget>,
    pub(super) runs: Runs,
    pub(super) spilled_partitions: usize,
    /// Scratch buffer for key hashes.
    pub(super) hashes: Vec<u64>,
}

/// Rows leaving the operator, built into one batch.
#[derive(Default)]
pub(super) struct Changes {
    rows: Vec<Arc<[u8]>>,
    ranks: Vec<u64>,
    kinds: Vec<i8>,
}

impl Changes {
    pub(super) fn push(&mut self, row: &Arc<[u8]>, rank: u64, kind: RowKind) {
        self.rows.push(Arc::clone(row));
        self.ranks.push(rank);
        self.kinds.push(kind as i8);
    }

    /// `more` after these.
    pub(super) fn append(&mut self, mut more: Changes) {
        self.rows.append(&mut more.rows);
        self.ranks.append(&mut more.ranks);
        self.kinds.append(&mut more.kinds);
    }
}

impl Rank {
    /// A subtask; with a `budget` its partitions spill beyond it (updating
    /// rankings and keep-first by event time, with PARTITION BY and no
    /// state TTL, `spill.rs`).
    pub fn new(
        plan: Arc<RankPlan>,
        name: String,
        metrics: Arc<OperatorMetrics>,
        budget: Option<StateBudget>,
    ) -> Result<Self> {
        let ctx = || format!("{name}: encoding rows");
        let input = &plan.input_schema;
        let keys = PartitionKeys::new(&plan.partition, input, &name)?;
        let sorts = match plan.order.is_empty() {
            true => None,
            false => {
                let fields = plan
                    .order
                    .iter()
                    .map(|o| o.expr.data_type(input).map(|t| SortField::new_with_options(t, o.options)))
                    .collect::<datafusion::error::Result<Vec<_>>>()
                    .context(ctx)?;
                Some(RowConverter::new(fields).context(ctx)?)
            }
        };
        let fields = input.fields().iter().map(|f| SortField::new(f.data_type().clone())).collect();
        let rows = RowConverter::new(fields)
            .map_err(|e| EngineError::Plan(format!("{name}: the ranked rows' columns cannot be kept ({e})")))?;
        let upserts = match plan.upsert_key.is_empty() {
            true => None,
            false => {
                let fields =
                    plan.upsert_key.iter().map(|c| SortField::new(input.field(*c).data_type().clone())).collect();
                Some(RowConverter::new(fields).context(ctx)?)
            }
        };
        let idle = match plan.mode {
            RankMode::Window { .. } => None,
            _ => plan.ttl.map(crate::state_ttl::Expiry::new),
        };
        let spills = matches!(plan.mode, RankMode::Updating { .. } | RankMode::FirstByEventTime { .. })
            && plan.ttl.is_none()
            && !plan.partition.is_empty();
        Ok(Self {
            plan,
            name,
            metrics,
            keys,
            sorts,
            upserts,
            rows,
            index: HashMap::with_hasher(RandomState::with_seed(SEED)),
            partitions: Vec::new(),
            free: Vec::new(),
            arrivals: 0,
            watermark: WATERMARK_MIN,
            timers: BTreeSet::new(),
            expiry: BTreeSet::new(),
            batch_no: 0,
            idle,
            idle_now: 0,
            budget: budget.filter(|_| spills),
            runs: Runs::default(),
            spilled_partitions: 0,
            hashes: Vec::new(),
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
        let rows = self.rows.convert_columns(data.columns()).context(|| format!("{}: encoding rows", self.name))?;
        Ok((keys, sorts, rows))
    }

    /// Encoded partition and sort keys of `data`.
    pub(super) fn encode_keys(&self, data: &RecordBatch) -> Result<(Option<Rows>, Option<Rows>)> {
        let ctx = || format!("{}: encoding rows", self.name);
        let evaluate = |e: &Arc<dyn datafusion::physical_plan::PhysicalExpr>| -> Result<ArrayRef> {
            e.evaluate(data).and_then(|v| v.into_array(data.num_rows())).context(ctx)
        };
        let keys = self.keys.encode(data)?;
        let sorts = match &self.sorts {
            Some(c) => {
                let cols = self.plan.order.iter().map(|o| evaluate(&o.expr)).collect::<Result<Vec<_>>>()?;
                Some(c.convert_columns(&cols).context(ctx)?)
            }
            None => None,
        };
        Ok((keys, sorts))
    }

    /// Encodes the rows a batch inserted (`(partition, arrival, row)`, kept
    /// with empty bytes while the batch ranked them) that are still kept:
    /// most rows of a Top-N never enter, or leave within their batch.
    pub(super) fn fill(
        &mut self,
        data: &RecordBatch,
        sorts: Option<&Rows>,
        inserted: &[(u32, u64, u32)],
    ) -> Result<()> {
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
            let p = *p;
            self.written(p);
            return p;
        }
        self.created(key);
        let partition = Partition {
            key: key.into(),
            key_group: 0,
            ranked: Ranked::default(),
            touched: 0,
            fired: false,
            by_key: None,
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
        self.written(p);
        p
    }

    /// The number of a new batch, by which partitions tell whether the
    /// batch touched them yet.
    pub(super) fn next_batch(&mut self) -> u64 {
        self.batch_no += 1;
        self.batch_no
    }

    /// The rows' own keys (window Top-N with lateness), encoded.
    pub(super) fn encode_upserts(&self, data: &RecordBatch) -> Result<Option<Rows>> {
        let Some(c) = &self.upserts else { return Ok(None) };
        let ctx = || format!("{}: encoding row keys", self.name);
        let columns: Vec<ArrayRef> = self.plan.upsert_key.iter().map(|k| Arc::clone(data.column(*k))).collect();
        Ok(Some(c.convert_columns(&columns).context(ctx)?))
    }

    pub(super) fn partition(&mut self, p: u32) -> &mut Partition {
        self.partitions[p as usize].as_mut().expect("indexed partitions exist")
    }

    pub(super) fn drop_partition(&mut self, p: u32) {
        if let Some(part) = self.partitions[p as usize].take() {
            self.index.remove(&part.key);
            self.free.push(p);
            if let Some(idle) = &mut self.idle {
                idle.vacate(p);
            }
        }
    }

    /// The ranks kept, as indices into a ranking.
    pub(super) fn kept(&self) -> std::ops::Range<usize> {
        (self.plan.first as usize - 1)..self.plan.last as usize
    }

    /// Fires what the watermark `wm` passed into `now`.
    pub(super) fn fire(&mut self, wm: EventTime, now: &mut Changes) {
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
                RankMode::Window { lateness, .. } => self.fire_window(p, at, lateness, now),
                _ => self.fire_first(p, now),
            }
        }
    }

    /// Builds the output batch of `changes`.
    pub(super) fn emit(&mut self, changes: Changes, out: &mut Collector) -> Result<()> {
        if changes.rows.is_empty() {
            return Ok(());
        }
        let ctx = || format!("{}: building results", self.name);
        let parser = self.rows.parser();
        let mut columns = self.rows.convert_rows(changes.rows.iter().map(|r| parser.parse(r))).context(ctx)?;
        let schema = Arc::clone(&self.plan.output_schema);
        {
            let ranks: ArrayRef = Arc::new(UInt64Array::from(changes.ranks));
            let want = schema.field(columns.len()).data_type();
            columns.push(if ranks.data_type() == want { ranks } else { cast(&ranks, want).context(ctx)? });
        }
        if self.plan.changelog_out() {
            columns.push(Arc::new(Int8Array::from(changes.kinds)));
        }
        let n = changes.rows.len();
        self.metrics.rows_out.fetch_add(n as u64, Ordering::Relaxed);
        out.batch(StreamBatch::new(RecordBatch::try_new(schema, columns).context(ctx)?));
        Ok(())
    }
}

/// A TIMESTAMP(3) column of the input.
pub(super) fn time_column<'b>(
    data: &'b RecordBatch,
    column: usize,
    name: &str,
) -> Result<&'b datafusion::arrow::array::PrimitiveArray<TimestampMillisecondType>> {
    let c = data.column(column);
    c.as_primitive_opt::<TimestampMillisecondType>().ok_or_else(|| {
        EngineError::Plan(format!("{name}: time column has type {}, expected TIMESTAMP(3)", c.data_type()))
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
        self.metrics.rows_in.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        self.start_batch();
        match self.plan.mode {
            RankMode::Updating { .. } => {
                self.on_updating_batch(&batch, out)?;
                self.keep_within_budget()
            }
            RankMode::Window { end_column, lateness } => self.on_window_batch(&batch, end_column, lateness, out),
            RankMode::FirstByEventTime { time_column } => {
                self.on_first_batch(&batch, time_column, out)?;
                self.keep_within_budget()
            }
        }
    }

    /// Fires what the watermark passed (per-row watermarks may have fired
    /// it already), then forwards it.
    fn on_watermark(&mut self, watermark: EventTime, out: &mut Collector) -> Result<()> {
        if watermark > self.watermark {
            self.watermark = watermark;
            let mut now = Changes::default();
            self.fire(watermark, &mut now);
            self.expire_windows(watermark);
            self.emit(now, out)?;
        }
        out.watermark(watermark);
        Ok(())
    }

    fn timer_interval(&self) -> Option<std::time::Duration> {
        self.idle.as_ref().map(crate::state_ttl::Expiry::check_every)
    }

    fn on_timer(&mut self, _out: &mut Collector) -> Result<()> {
        self.expire_idle();
        Ok(())
    }

    /// Estimated from a sample of partitions (`spill.rs`).
    fn state_size(&self) -> StateSize {
        let (own, tables) = self.resident_bytes();
        StateSize {
            bytes: own + tables + self.runs.memory(),
            keys: Some(self.index.len() + self.spilled_partitions),
            spilled: self.runs.disk(),
        }
    }

    fn snapshot(
        &mut self,
        checkpoint: u64,
        chunks: &mut crate::checkpoint::chunk::ChunkWriter,
    ) -> Result<Option<Vec<u8>>> {
        let out = self.snapshot_async(checkpoint)?()?;
        chunks.append(out.chunks);
        Ok(out.state)
    }

    /// The rows (shared, not copied) and keys are captured at the barrier
    /// and encoded off the task loop (`state.rs`).
    fn snapshot_async(&mut self, checkpoint: u64) -> Result<crate::checkpoint::snapshot::SnapshotJob> {
        self.snapshot_job(checkpoint)
    }

    fn checkpoint_complete(&mut self, checkpoint: u64) {
        self.runs.complete(checkpoint);
    }

    fn restore(
        &mut self,
        states: &[&[u8]],
        chunks: &crate::checkpoint::chunk::ChunkMap,
        owns: &dyn Fn(usize) -> bool,
    ) -> Result<()> {
        // Restored partitions' idle time starts again.
        self.start_batch();
        self.decode_state(states, chunks, owns)
    }
}
