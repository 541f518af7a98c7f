//! One subtask of `MATCH_RECOGNIZE`: rows wait for the watermark, then
//! each partition's rows go through its matcher in time order, and every
//! match leaves as one row.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{cast, take_record_batch};
use datafusion::arrow::row::{RowConverter, Rows, SortField};
use datafusion::common::ScalarValue;
use datafusion::common::hash_utils::RandomState;

use super::MatchPlan;
use super::eval::{Matched, Row, Step};
use super::matcher::KeyMatcher;
use crate::error::{Result, ResultExt};
use crate::message::{EventTime, StreamBatch, WATERMARK_MIN};
use crate::metrics::OperatorMetrics;
use crate::operator::{Collector, Operator, StateSize};
use crate::waiting::WaitingRows;
use crate::window::late::LateRows;

/// Not the exchange's seed, whose hashes the keys of one subtask share
/// bits of.
const SEED: u64 = 0x6d61_7463_685f_6b79;

/// A subtask of `MATCH_RECOGNIZE`.
pub struct MatchRecognize {
    pub(super) plan: Arc<MatchPlan>,
    pub(super) name: String,
    metrics: Arc<OperatorMetrics>,
    /// Encodes partition keys; none without PARTITION BY.
    pub(super) keys: Option<RowConverter>,
    pub(super) index: HashMap<Box<[u8]>, u32, RandomState>,
    /// Partitions with attempts open (others are dropped: nothing of
    /// theirs is needed again).
    pub(super) partitions: Vec<KeyMatcher>,
    /// Rows waiting for the watermark to pass them.
    pub(super) pending: WaitingRows,
    pub(super) watermark: EventTime,
    /// The watermark sent on: held behind the first row of every open
    /// attempt, so that no match leaves behind it (its rows would be late
    /// for a window over MATCH_ROWTIME downstream).
    forwarded: EventTime,
}

impl MatchRecognize {
    /// A subtask of `plan`, reporting to `metrics` as `name`.
    pub fn new(plan: Arc<MatchPlan>, name: String, metrics: Arc<OperatorMetrics>) -> Result<Self> {
        let keys = match plan.partition.is_empty() {
            true => None,
            false => {
                let fields = plan
                    .partition
                    .iter()
                    .map(|c| SortField::new(plan.input_schema.field(*c).data_type().clone()))
                    .collect();
                Some(RowConverter::new(fields).context(|| format!("{name}: partition keys"))?)
            }
        };
        let pending = WaitingRows::new(Arc::clone(&plan.input_schema), plan.time_column);
        Ok(Self {
            plan,
            name,
            metrics,
            keys,
            index: HashMap::with_hasher(RandomState::with_seed(SEED)),
            partitions: Vec::new(),
            pending,
            watermark: WATERMARK_MIN,
            forwarded: WATERMARK_MIN,
        })
    }

    /// The partition columns of `data`, rows of the input (or with more
    /// columns after the input's).
    pub(super) fn partition_columns(&self, data: &RecordBatch) -> Vec<ArrayRef> {
        self.plan.partition.iter().map(|c| Arc::clone(data.column(*c))).collect()
    }

    /// The encoded partition keys of `data`'s rows.
    pub(super) fn encode_keys(&self, data: &RecordBatch) -> Result<Option<Rows>> {
        let Some(converter) = &self.keys else { return Ok(None) };
        let columns = self.partition_columns(data);
        Ok(Some(converter.convert_columns(&columns).context(|| format!("{}: partition keys", self.name))?))
    }

    /// The key's matcher, made if new.
    pub(super) fn partition_of(&mut self, key: &[u8]) -> usize {
        if let Some(s) = self.index.get(key) {
            return *s as usize;
        }
        self.partitions.push(KeyMatcher::new(key));
        let s = self.partitions.len() - 1;
        self.index.insert(key.into(), s as u32);
        s
    }

    /// `data`'s rows as the matcher reads them: their columns, then the
    /// derived values (`seq` is set when a matcher takes them).
    pub(super) fn rows(&self, data: &RecordBatch) -> Result<Vec<Row>> {
        let ctx = || format!("{}: reading rows", self.name);
        let n = data.num_rows();
        let mut columns: Vec<ArrayRef> = data.columns().to_vec();
        for e in &self.plan.derived {
            columns.push(e.evaluate(data).and_then(|v| v.into_array(n)).context(ctx)?);
        }
        let times = self.pending.times(data, &self.name)?;
        (0..n)
            .map(|r| {
                let values = columns
                    .iter()
                    .map(|c| ScalarValue::try_from_array(c, r))
                    .collect::<datafusion::error::Result<Vec<_>>>()
                    .context(ctx)?;
                Ok(Row { seq: 0, time: times.value(r), values })
            })
            .collect()
    }

    /// Feeds `ready`'s rows to their partitions, each's in time order;
    /// returns the matches found.
    fn process(&mut self, ready: &RecordBatch) -> Result<Vec<Vec<Step>>> {
        let n = ready.num_rows();
        if n == 0 {
            return Ok(Vec::new());
        }
        let keys = self.encode_keys(ready)?;
        let times = self.pending.times(ready, &self.name)?.values().clone();
        let key = |i: usize| keys.as_ref().map_or(&[][..], |k| k.row(i).data());
        let mut order: Vec<u32> = (0..n as u32).collect();
        // Stable: rows of equal key and time stay in arrival order.
        order.sort_by(|a, b| {
            let (a, b) = (*a as usize, *b as usize);
            key(a).cmp(key(b)).then(times[a].cmp(&times[b]))
        });
        let sorted = take_record_batch(ready, &UInt32Array::from(order.clone()))
            .context(|| format!("{}: ordering rows", self.name))?;
        let rows = self.rows(&sorted)?;
        let plan = Arc::clone(&self.plan);
        let mut matches = Vec::new();
        let mut current = None;
        for (i, row) in rows.into_iter().enumerate() {
            let k = key(order[i] as usize);
            let p = match current {
                Some((at, p)) if key(order[at] as usize) == k => p,
                _ => self.partition_of(k),
            };
            current = Some((i, p));
            matches.extend(self.partitions[p].feed(&plan, row)?);
        }
        Ok(matches)
    }

    /// One row per match: the partition columns of its first row, then
    /// its measures.
    fn output(&self, matches: &[Vec<Step>], out: &mut Collector) -> Result<()> {
        if matches.is_empty() {
            return Ok(());
        }
        let ctx = || format!("{}: building matches", self.name);
        let schema = &self.plan.output_schema;
        let mut columns: Vec<Vec<ScalarValue>> = vec![Vec::with_capacity(matches.len()); schema.fields().len()];
        for m in matches {
            let Some((first, _)) = m.first() else { continue };
            for (i, c) in self.plan.partition.iter().enumerate() {
                columns[i].push(first.values[*c].clone());
            }
            let whole = Matched { history: m, current: None };
            for (i, measure) in self.plan.measures.iter().enumerate() {
                columns[self.plan.partition.len() + i].push(measure.evaluate(whole)?);
            }
        }
        let arrays = columns
            .into_iter()
            .zip(schema.fields())
            .map(|(values, field)| {
                let array = ScalarValue::iter_to_array(values).context(ctx)?;
                match array.data_type() == field.data_type() {
                    true => Ok(array),
                    false => cast(&array, field.data_type()).context(ctx),
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let batch = RecordBatch::try_new(Arc::clone(schema), arrays).context(ctx)?;
        self.metrics.rows_out.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        out.batch(StreamBatch::new(batch));
        Ok(())
    }

    /// Drops the partitions without open attempts.
    fn compact(&mut self) {
        if self.partitions.iter().all(|p| !p.attempts.is_empty()) {
            return;
        }
        self.partitions.retain(|p| !p.attempts.is_empty());
        self.index.clear();
        for (i, p) in self.partitions.iter().enumerate() {
            self.index.insert(p.key.clone(), i as u32);
        }
    }
}

impl Operator for MatchRecognize {
    fn name(&self) -> &str {
        &self.name
    }

    fn on_batch(&mut self, batch: StreamBatch, out: &mut Collector) -> Result<()> {
        let data = &batch.data;
        let n = data.num_rows();
        if n == 0 {
            return Ok(());
        }
        self.metrics.rows_in.fetch_add(n as u64, Ordering::Relaxed);
        let mut late = LateRows::default();
        self.pending.admit(&batch, self.watermark, &mut late, &self.name)?;
        late.report(self.plan.late_output.as_deref(), &self.metrics, data, out)
    }

    fn on_watermark(&mut self, watermark: EventTime, out: &mut Collector) -> Result<()> {
        if watermark > self.watermark {
            self.watermark = watermark;
            let mut matches = match self.pending.is_empty() {
                true => Vec::new(),
                false => {
                    let ready = self.pending.ready(watermark, &self.name)?;
                    self.process(&ready)?
                }
            };
            let plan = Arc::clone(&self.plan);
            for p in &mut self.partitions {
                matches.extend(p.expire(&plan, watermark));
            }
            self.output(&matches, out)?;
            self.compact();
        }
        let open = self.partitions.iter().filter_map(KeyMatcher::earliest_open).min();
        let held = open.map_or(self.watermark, |t| self.watermark.min(t - 1));
        if held > self.forwarded {
            self.forwarded = held;
            out.watermark(held);
        }
        Ok(())
    }

    /// The waiting rows, and the rows each open attempt holds (a row
    /// shared by several threads is counted for each).
    fn state_size(&self) -> StateSize {
        let pending = self.pending.bytes();
        let held: usize = self
            .partitions
            .iter()
            .flat_map(|p| &p.attempts)
            .flat_map(|a| a.threads.iter().map(|t| &t.history).chain(&a.found))
            .map(|h| h.iter().map(|(r, _)| 48 + r.values.iter().map(ScalarValue::size).sum::<usize>()).sum::<usize>())
            .sum();
        StateSize { bytes: pending + held, keys: Some(self.partitions.len()), spilled: 0 }
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
