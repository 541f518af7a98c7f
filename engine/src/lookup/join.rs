//! The lookup join operator. Each batch's distinct keys are looked up once
//! (or found in the cache); the batch waits in a queue until its keys are
//! answered, then is joined with their rows by [`JoinSpec::run`]. Ordered
//! output emits the queue from its head; unordered output emits rows as
//! their keys are answered, but no row passes a watermark queued before
//! it, nor a watermark a row before it.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{cast, concat_batches, sort_to_indices, take_record_batch};
use datafusion::arrow::row::{OwnedRow, RowConverter, SortField};
use datafusion::common::ScalarValue;
use lru::LruCache;
use tokio::task::JoinSet;

use super::{LookupClient, LookupJoinPlan};
use crate::checkpoint::chunk::{ChunkMap, ChunkWriter};
use crate::checkpoint::codec::{Decoder, Encoder};
use crate::error::{EngineError, ErrorKind, Result, ResultExt};
use crate::message::{EventTime, StreamBatch};
use crate::operator::{Collector, Operator, StateSize};
use crate::runtime::exchange::{key_groups, rows_by_key_group};

/// A lookup's answer: the key and the table's rows for it.
type Answer = (OwnedRow, Result<RecordBatch>);

/// What is known of one key some queued row needs.
struct KeyState {
    /// Queued batches that need it; dropped at zero.
    users: usize,
    /// The table's rows for the key; `None` while the lookup is in flight.
    rows: Option<RecordBatch>,
}

/// Rows waiting for their keys' answers.
struct Waiting {
    batch: RecordBatch,
    /// Each row's key, as an index into `distinct`.
    row_key: Vec<u32>,
    /// The batch's distinct keys; `None` for a key with a NULL, which no
    /// row of the table equals.
    distinct: Vec<Option<OwnedRow>>,
}

enum Entry {
    Rows(Waiting),
    Watermark(EventTime),
}

/// One subtask of a lookup join.
pub struct LookupJoin {
    plan: Arc<LookupJoinPlan>,
    name: String,
    client: Arc<dyn LookupClient>,
    /// Key values as rows, typed as the table's key columns.
    converter: RowConverter,
    key_types: Vec<datafusion::arrow::datatypes::DataType>,
    cache: Option<LruCache<OwnedRow, (Instant, RecordBatch)>>,
    keys: HashMap<OwnedRow, KeyState>,
    lookups: JoinSet<Answer>,
    queue: VecDeque<Entry>,
    /// Restored rows not yet looked up again: issued before any new input.
    restored: Vec<RecordBatch>,
    hashes: Vec<u64>,
}

impl LookupJoin {
    pub fn new(plan: Arc<LookupJoinPlan>, name: String) -> Result<Self> {
        let schema = plan.source.schema();
        let key_types: Vec<_> = plan.key_columns.iter().map(|c| schema.field(*c).data_type().clone()).collect();
        let converter = RowConverter::new(key_types.iter().map(|t| SortField::new(t.clone())).collect())
            .context(|| format!("{name}: key columns"))?;
        let options = plan.source.options();
        let cache = NonZeroUsize::new(options.cache_max_rows).map(LruCache::new);
        let client = plan.source.open(&plan.key_columns)?;
        Ok(Self {
            plan,
            name,
            client,
            converter,
            key_types,
            cache,
            keys: HashMap::new(),
            lookups: JoinSet::new(),
            queue: VecDeque::new(),
            restored: Vec::new(),
            hashes: Vec::new(),
        })
    }

    fn ordered(&self) -> bool {
        self.plan.source.options().ordered
    }

    /// The key columns of `batch`'s rows, typed as the table's.
    fn key_arrays(&self, batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
        let ctx = || format!("{}: evaluating the lookup keys", self.name);
        self.plan
            .keys
            .iter()
            .zip(&self.key_types)
            .map(|(k, t)| {
                let a = k.evaluate(batch).and_then(|v| v.into_array(batch.num_rows())).context(ctx)?;
                cast(&a, t).context(ctx)
            })
            .collect()
    }

    /// A fresh cached answer for `key`.
    fn cached(&mut self, key: &OwnedRow) -> Option<RecordBatch> {
        let ttl = self.plan.source.options().cache_ttl;
        let cache = self.cache.as_mut()?;
        let (at, rows) = cache.get(key)?;
        if ttl.is_some_and(|ttl| at.elapsed() >= ttl) {
            cache.pop(key);
            return None;
        }
        Some(rows.clone())
    }

    /// Queues `batch`, looking up the keys neither cached nor in flight
    /// (once per distinct key of the batch).
    fn enqueue(&mut self, batch: RecordBatch) -> Result<()> {
        let arrays = self.key_arrays(&batch)?;
        let rows = self.converter.convert_columns(&arrays).context(|| format!("{}: lookup keys", self.name))?;
        let mut index: HashMap<_, u32> = HashMap::new();
        let mut distinct = Vec::new();
        let mut row_key = Vec::with_capacity(batch.num_rows());
        for (i, row) in rows.iter().enumerate() {
            let next = distinct.len() as u32;
            let k = *index.entry(row).or_insert_with(|| {
                distinct.push(i);
                next
            });
            row_key.push(k);
        }
        let mut keys = Vec::with_capacity(distinct.len());
        for first in distinct {
            if arrays.iter().any(|a| a.is_null(first)) {
                keys.push(None);
                continue;
            }
            let key = rows.row(first).owned();
            if let Some(state) = self.keys.get_mut(&key) {
                state.users += 1;
            } else {
                let rows = self.cached(&key);
                if rows.is_none() {
                    let values = arrays
                        .iter()
                        .map(|a| ScalarValue::try_from_array(a, first))
                        .collect::<datafusion::error::Result<Vec<_>>>()
                        .context(|| format!("{}: lookup key", self.name))?;
                    let client = Arc::clone(&self.client);
                    let k = key.clone();
                    self.lookups.spawn(async move { (k, client.lookup(values).await) });
                }
                self.keys.insert(key.clone(), KeyState { users: 1, rows });
            }
            keys.push(Some(key));
        }
        self.queue.push_back(Entry::Rows(Waiting { batch, row_key, distinct: keys }));
        Ok(())
    }

    /// Looks the restored rows up again, ahead of any new input.
    fn reissue(&mut self) -> Result<()> {
        for batch in std::mem::take(&mut self.restored) {
            self.enqueue(batch)?;
        }
        Ok(())
    }

    fn answered(&self, key: &Option<OwnedRow>) -> bool {
        key.as_ref().is_none_or(|k| self.keys.get(k).is_some_and(|s| s.rows.is_some()))
    }

    /// Joins rows `rows` of `w` (all of them with `None`) with their keys'
    /// answers, in input order.
    fn join(&self, w: &Waiting, rows: Option<&UInt32Array>, out: &mut Collector) -> Result<()> {
        let ctx = || format!("{}: joining looked-up rows", self.name);
        let batch = match rows {
            Some(idx) => take_record_batch(&w.batch, idx).context(ctx)?,
            None => w.batch.clone(),
        };
        let mut used: Vec<bool> = vec![false; w.distinct.len()];
        match rows {
            Some(idx) => idx.values().iter().for_each(|i| used[w.row_key[*i as usize] as usize] = true),
            None => used.iter_mut().for_each(|u| *u = true),
        }
        let answers: Vec<RecordBatch> = w
            .distinct
            .iter()
            .zip(used)
            .filter_map(|(k, u)| if u { k.as_ref() } else { None })
            .filter_map(|k| self.keys.get(k).and_then(|s| s.rows.clone()))
            .collect();
        let spec = &self.plan.spec;
        let table = concat_batches(&spec.right_schema, &answers).context(ctx)?;
        // The row numbers put the output back in input order: DataFusion's
        // hash join emits in the order of its probe side.
        let n = batch.num_rows() as u32;
        let mut columns = batch.columns().to_vec();
        columns.push(Arc::new(UInt32Array::from_iter_values(0..n)));
        let left = RecordBatch::try_new(Arc::clone(&spec.left_schema), columns).context(ctx)?;
        let joined = spec.run(vec![left], vec![table], &self.name)?;
        let joined = concat_batches(&spec.output_schema, &joined).context(ctx)?;
        let number = spec.left_schema.fields().len() - 1;
        let order = sort_to_indices(joined.column(number), None, None).context(ctx)?;
        let mut joined = take_record_batch(&joined, &order).context(ctx)?;
        joined.remove_column(number);
        out.batch(StreamBatch::new(joined));
        Ok(())
    }

    /// The batch's keys are no longer needed by it.
    fn release(&mut self, w: &Waiting) {
        for key in w.distinct.iter().flatten() {
            if let Some(state) = self.keys.get_mut(key) {
                state.users -= 1;
                if state.users == 0 {
                    self.keys.remove(key);
                }
            }
        }
    }

    /// Emits what the answers so far allow.
    fn drain(&mut self, out: &mut Collector) -> Result<()> {
        if self.ordered() {
            while let Some(front) = self.queue.front() {
                match front {
                    Entry::Watermark(wm) => out.watermark(*wm),
                    Entry::Rows(w) if w.distinct.iter().all(|k| self.answered(k)) => self.join(w, None, out)?,
                    Entry::Rows(_) => break,
                }
                if let Some(Entry::Rows(w)) = self.queue.pop_front() {
                    self.release(&w);
                }
            }
            return Ok(());
        }
        loop {
            let mut i = 0;
            while let Some(Entry::Rows(w)) = self.queue.get(i) {
                let ready: Vec<u32> = (0..w.batch.num_rows() as u32)
                    .filter(|r| self.answered(&w.distinct[w.row_key[*r as usize] as usize]))
                    .collect();
                if ready.len() == w.batch.num_rows() {
                    self.join(w, None, out)?;
                    if let Some(Entry::Rows(w)) = self.queue.remove(i) {
                        self.release(&w);
                    }
                    continue;
                }
                if !ready.is_empty() {
                    self.join(w, Some(&UInt32Array::from(ready.clone())), out)?;
                    let rest: UInt32Array = (0..w.batch.num_rows() as u32).filter(|r| !ready.contains(r)).collect();
                    let Some(Entry::Rows(w)) = self.queue.get_mut(i) else { unreachable!("matched above") };
                    w.batch =
                        take_record_batch(&w.batch, &rest).context(|| "lookup join: keeping waiting rows".into())?;
                    w.row_key = rest.values().iter().map(|r| w.row_key[*r as usize]).collect();
                }
                i += 1;
            }
            match self.queue.front() {
                Some(Entry::Watermark(wm)) => {
                    out.watermark(*wm);
                    self.queue.pop_front();
                }
                _ => return Ok(()),
            }
        }
    }

    /// Takes the answer of one lookup.
    fn take_answer(&mut self, answer: std::result::Result<Answer, tokio::task::JoinError>) -> Result<()> {
        let (key, rows) = answer.map_err(|e| EngineError::Task {
            task: self.name.clone(),
            message: format!("lookup in table '{}': {e}", self.plan.table),
            kind: ErrorKind::Internal,
        })?;
        let rows = rows?;
        if let Some(cache) = &mut self.cache {
            cache.put(key.clone(), (Instant::now(), rows.clone()));
        }
        if let Some(state) = self.keys.get_mut(&key) {
            state.rows = Some(rows);
        }
        Ok(())
    }
}

impl Operator for LookupJoin {
    fn name(&self) -> &str {
        &self.name
    }

    fn on_batch(&mut self, batch: StreamBatch, out: &mut Collector) -> Result<()> {
        self.reissue()?;
        self.enqueue(batch.data)?;
        self.drain(out)
    }

    fn on_watermark(&mut self, watermark: EventTime, out: &mut Collector) -> Result<()> {
        self.reissue()?;
        match self.queue.back_mut() {
            None => out.watermark(watermark),
            // Only the latest of consecutive watermarks matters.
            Some(Entry::Watermark(w)) => *w = watermark,
            Some(Entry::Rows(_)) => self.queue.push_back(Entry::Watermark(watermark)),
        }
        Ok(())
    }

    fn accepts_input(&self) -> bool {
        let max = self.plan.source.options().max_concurrent;
        self.lookups.len() < max && self.queue.len() <= max
    }

    fn in_flight(&self) -> bool {
        !self.queue.is_empty() || !self.restored.is_empty()
    }

    fn poll_progress(&mut self, cx: &mut Context<'_>, out: &mut Collector) -> Poll<Result<()>> {
        if !self.restored.is_empty() {
            return Poll::Ready(self.reissue().and_then(|()| self.drain(out)));
        }
        let mut progressed = false;
        while let Poll::Ready(Some(answer)) = self.lookups.poll_join_next(cx) {
            if let Err(e) = self.take_answer(answer) {
                return Poll::Ready(Err(e));
            }
            progressed = true;
        }
        if !progressed {
            return Poll::Pending;
        }
        Poll::Ready(self.drain(out))
    }

    /// The rows whose output is still to come, split by the key group of
    /// their lookup key so that a restore at another parallelism takes its
    /// share; they are looked up again on restore.
    fn snapshot(&mut self, _checkpoint: u64, _chunks: &mut ChunkWriter) -> Result<Option<Vec<u8>>> {
        let mut parts = Vec::new();
        let waiting: Vec<RecordBatch> = self
            .restored
            .iter()
            .cloned()
            .chain(self.queue.iter().filter_map(|e| match e {
                Entry::Rows(w) => Some(w.batch.clone()),
                Entry::Watermark(_) => None,
            }))
            .collect();
        for batch in waiting {
            let keys = self.key_arrays(&batch)?;
            let groups = key_groups(&keys, batch.num_rows(), &mut self.hashes)?;
            for (g, rows) in rows_by_key_group(&groups) {
                let part = take_record_batch(&batch, &rows).context(|| format!("{}: state", self.name))?;
                parts.push((g, part));
            }
        }
        let mut e = Encoder::default();
        e.u64(parts.len() as u64);
        for (g, batch) in &parts {
            e.u64(*g as u64);
            e.batch(batch)?;
        }
        Ok(Some(e.bytes))
    }

    fn restore(&mut self, states: &[&[u8]], _chunks: &ChunkMap, owns: &dyn Fn(usize) -> bool) -> Result<()> {
        // The stream's rows: the join's left side without its row number.
        let left = &self.plan.spec.left_schema;
        let stream: Vec<usize> = (0..left.fields().len().saturating_sub(1)).collect();
        let schema = Arc::new(left.project(&stream).context(|| format!("{}: restoring", self.name))?);
        for state in states {
            let mut d = Decoder::new(state);
            for _ in 0..d.u64()? {
                let group = d.u64()? as usize;
                let batch = d.batch_of(&schema)?;
                if owns(group) {
                    self.restored.push(batch);
                }
            }
            d.finish()?;
        }
        Ok(())
    }

    fn state_size(&self) -> StateSize {
        let queued: usize = self
            .queue
            .iter()
            .map(|e| match e {
                Entry::Rows(w) => w.batch.get_array_memory_size(),
                Entry::Watermark(_) => 0,
            })
            .sum();
        let cached: usize = self.cache.iter().flat_map(|c| c.iter()).map(|(_, (_, b))| b.get_array_memory_size()).sum();
        StateSize { bytes: queued + cached, keys: Some(self.cache.iter().map(|c| c.len()).sum()), spilled: 0 }
    }
}
