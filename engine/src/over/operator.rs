//! One subtask of an OVER aggregation: rows wait for the watermark, then
//! leave in each key's time order with their window's values.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{concat, concat_batches, take_record_batch};
use datafusion::arrow::datatypes::TimestampMillisecondType;
use datafusion::common::hash_utils::RandomState;

use super::OverPlan;
use super::frames::{KeyState, compute};
use crate::error::{Result, ResultExt};
use crate::message::{EventTime, StreamBatch, WATERMARK_MIN};
use crate::metrics::OperatorMetrics;
use crate::operator::{Collector, Operator, StateSize};
use crate::partition_keys::PartitionKeys;
use crate::waiting::WaitingRows;
use crate::window::late::LateRows;

/// Not the exchange's seed, whose hashes the keys of one subtask share
/// bits of.
const SEED: u64 = 0x6f76_6572_5f6b_6579;

/// A subtask of an OVER aggregation.
pub struct Over {
    pub(super) plan: Arc<OverPlan>,
    pub(super) name: String,
    metrics: Arc<OperatorMetrics>,
    pub(super) keys: PartitionKeys,
    pub(super) index: HashMap<Box<[u8]>, u32, RandomState>,
    pub(super) states: Vec<KeyState>,
    /// Rows waiting for the watermark to pass them.
    pub(super) pending: WaitingRows,
    pub(super) watermark: EventTime,
}

impl Over {
    pub fn new(plan: Arc<OverPlan>, name: String, metrics: Arc<OperatorMetrics>) -> Result<Self> {
        let keys = PartitionKeys::new(&plan.partition, &plan.input_schema, &name)?;
        let pending = WaitingRows::new(Arc::clone(&plan.input_schema), plan.time_column);
        Ok(Self {
            plan,
            name,
            metrics,
            keys,
            index: HashMap::with_hasher(RandomState::with_seed(SEED)),
            states: Vec::new(),
            pending,
            watermark: WATERMARK_MIN,
        })
    }

    /// The key's state, made if new.
    pub(super) fn state_of(&mut self, key: &[u8]) -> u32 {
        if let Some(s) = self.index.get(key) {
            return *s;
        }
        let s = self.states.len() as u32;
        self.states.push(KeyState::new(key, self.plan.functions.len()));
        self.index.insert(key.into(), s);
        s
    }

    /// Computes and emits `ready`'s rows, each key's in time order.
    fn process(&mut self, ready: &RecordBatch, out: &mut Collector) -> Result<()> {
        let n = ready.num_rows();
        if n == 0 {
            return Ok(());
        }
        let name = self.name.clone();
        let ctx = || format!("{name}: ordering rows");
        let keys = self.keys.encode(ready)?;
        let times = self.pending.times(ready, &self.name)?.values().clone();
        let key = |i: usize| keys.as_ref().map_or(&[][..], |k| k.row(i).data());
        let mut order: Vec<u32> = (0..n as u32).collect();
        // Stable: rows of equal key and time stay in arrival order.
        order.sort_by(|a, b| {
            let (a, b) = (*a as usize, *b as usize);
            key(a).cmp(key(b)).then(times[a].cmp(&times[b]))
        });
        let sorted = take_record_batch(ready, &UInt32Array::from(order.clone())).context(ctx)?;
        let mut columns: Vec<Vec<ArrayRef>> = vec![Vec::new(); self.plan.functions.len()];
        let mut i = 0;
        while i < n {
            let k = key(order[i] as usize);
            let j = i + order[i..].iter().take_while(|o| key(**o as usize) == k).count();
            let s = self.state_of(k) as usize;
            let run = sorted.slice(i, j - i);
            let state = &mut self.states[s];
            let (frame, new) = match state.retained.take() {
                Some(kept) => {
                    let new = kept.num_rows();
                    (concat_batches(&sorted.schema(), [&kept, &run]).context(ctx)?, new)
                }
                None => (run, 0),
            };
            let frame_times =
                frame.column(self.plan.time_column).as_primitive::<TimestampMillisecondType>().values().clone();
            let values = compute(&self.plan, state, &frame, new, &frame_times, &self.name)?;
            for (f, v) in values.into_iter().enumerate() {
                columns[f].push(v);
            }
            i = j;
        }
        let mut output = sorted.columns().to_vec();
        for parts in columns {
            let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
            output.push(concat(&refs).context(ctx)?);
        }
        let batch = RecordBatch::try_new(Arc::clone(&self.plan.output_schema), output)
            .context(|| format!("{}: building results", self.name))?;
        self.metrics.rows_out.fetch_add(n as u64, Ordering::Relaxed);
        out.batch(StreamBatch::new(batch));
        Ok(())
    }
}

impl Operator for Over {
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
        if self.plan.processing_time {
            return self.process(data, out);
        }
        let mut late = LateRows::default();
        self.pending.admit(&batch, self.watermark, &mut late, &self.name)?;
        late.report(self.plan.late_output.as_deref(), &self.metrics, data, out)
    }

    fn on_watermark(&mut self, watermark: EventTime, out: &mut Collector) -> Result<()> {
        if watermark > self.watermark {
            self.watermark = watermark;
            if !self.pending.is_empty() {
                let ready = self.pending.ready(watermark, &self.name)?;
                self.process(&ready, out)?;
            }
        }
        out.watermark(watermark);
        Ok(())
    }

    /// The waiting rows, and each key's kept rows and accumulators
    /// estimated from a sample of keys, as the group aggregate does.
    fn state_size(&self) -> StateSize {
        const SAMPLE: usize = 64;
        let pending = self.pending.bytes();
        let sampled: usize = self
            .states
            .iter()
            .take(SAMPLE)
            .map(|s| {
                let rows = s.retained.as_ref().map_or(0, |b| b.get_array_memory_size());
                let accs: usize = s.accumulators.iter().flatten().map(|a| a.size()).sum();
                rows + accs + s.key.len() * 2 + 64
            })
            .sum();
        StateSize {
            bytes: pending + sampled * self.states.len() / self.states.len().clamp(1, SAMPLE),
            keys: Some(self.states.len()),
            spilled: 0,
        }
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
