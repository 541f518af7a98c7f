//! Sending a task's output to the subtasks of the next stage: forward, to a
//! single subtask, or hash-partitioned by key group.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, UInt32Array};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::physical_plan::PhysicalExpr;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::mpsc::{Sender, WeakSender};

use crate::error::{EngineError, ErrorKind, Result, ResultExt};
use crate::hot_keys::SAMPLE;
use crate::message::{Message, StreamBatch};
use crate::metrics::TaskMetrics;
use crate::operators::evaluate::columns;
use crate::plan::Partitioning;
use crate::runtime::key_hash::hash_keys;

/// Keys hash into this many key groups; a subtask owns a contiguous range of
/// them. State is organised by key group so that a job can be restored at a
/// different parallelism (Flink's max parallelism).
pub const KEY_GROUPS: usize = 128;

/// The subtask that owns `key_group` at `parallelism` (Flink's formula).
#[inline]
pub fn subtask_of_key_group(key_group: usize, parallelism: usize) -> usize {
    key_group * parallelism / KEY_GROUPS
}

/// The rows of each key group among `groups` (a row's key group, as
/// [`key_groups`] gives them), in row order: how state is split by key group
/// for checkpoints, whatever form the state has.
pub fn rows_by_key_group(groups: &[usize]) -> Vec<(usize, datafusion::arrow::array::UInt32Array)> {
    // A bucket per key group, filled in one pass: sorting ten million rows'
    // indices by key group was a fifth of a tumbling window's time with
    // checkpoints every second.
    let mut counts = vec![0usize; KEY_GROUPS];
    for g in groups {
        counts[*g % KEY_GROUPS] += 1;
    }
    let mut buckets: Vec<Vec<u32>> = counts.iter().map(|c| Vec::with_capacity(*c)).collect();
    for (row, g) in groups.iter().enumerate() {
        buckets[*g % KEY_GROUPS].push(row as u32);
    }
    buckets
        .into_iter()
        .enumerate()
        .filter(|(_, rows)| !rows.is_empty())
        .map(|(g, rows)| (g, datafusion::arrow::array::UInt32Array::from(rows)))
        .collect()
}

/// The key group of every row of `keys` (all in group 0 without keys), as
/// the exchange routes them and as state is split for rescaling: Weir's own
/// key hash (`key_hash.rs`) modulo [`KEY_GROUPS`].
pub fn key_groups(
    keys: &[datafusion::arrow::array::ArrayRef],
    rows: usize,
    hashes: &mut Vec<u64>,
) -> Result<Vec<usize>> {
    if keys.is_empty() {
        return Ok(vec![0; rows]);
    }
    hashes.clear();
    hashes.resize(rows, 0);
    hash_keys(keys, hashes)?;
    Ok(hashes.iter().map(|h| (*h % KEY_GROUPS as u64) as usize).collect())
}

/// The output side of one task.
pub struct Router {
    senders: Vec<Sender<Message>>,
    partitioning: Partitioning,
    /// This task's subtask index (for forward routing).
    subtask: usize,
    hashes: Vec<u64>,
    /// The sending task's counters: backpressure and hot keys.
    metrics: Option<Arc<TaskMetrics>>,
    /// Whether this router feeds the hot-key sketch.
    samples: bool,
}

impl Router {
    pub fn new(senders: Vec<Sender<Message>>, partitioning: Partitioning, subtask: usize) -> Self {
        Self { senders, partitioning, subtask, hashes: Vec::new(), metrics: None, samples: false }
    }

    /// This router's channels, for `metrics` to watch their fill.
    pub(crate) fn outputs(&self) -> impl Iterator<Item = WeakSender<Message>> + '_ {
        self.senders.iter().map(Sender::downgrade)
    }

    /// Counts this router's waits in `metrics`, and its keys when
    /// `samples` (of a task's several routers, one counts the rows).
    pub(crate) fn attach(&mut self, metrics: Arc<TaskMetrics>, samples: bool) {
        if let Partitioning::Hash(keys) = &self.partitioning
            && samples
        {
            let _ = metrics.keyed_by.set(keys.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(", "));
        }
        self.samples = samples;
        self.metrics = Some(metrics);
    }

    async fn send_to(&self, target: usize, msg: Message) -> Result<()> {
        let stopped = || EngineError::Task {
            task: format!("exchange to subtask {target}"),
            message: crate::error::DOWNSTREAM_STOPPED.into(),
            kind: ErrorKind::Internal,
        };
        // Only a full channel is timed: the common case reads no clock.
        match self.senders[target].try_send(msg) {
            Ok(()) => Ok(()),
            Err(TrySendError::Closed(_)) => Err(stopped()),
            Err(TrySendError::Full(msg)) => {
                let began = self.metrics.as_ref().map(|m| m.backpressure_begins());
                let sent = self.senders[target].send(msg).await.map_err(|_| stopped());
                if let (Some(m), Some(began)) = (&self.metrics, began) {
                    m.backpressure_ends(began);
                }
                sent
            }
        }
    }

    /// Feeds a few evenly spaced rows of a batch to the hot-key sketch,
    /// hashing them only when the exchange did not (one subtask downstream).
    fn sample_keys(&mut self, arrays: &[ArrayRef], rows: usize, hashed: bool) -> Result<()> {
        let Some(metrics) = &self.metrics else {
            return Ok(());
        };
        if rows == 0 || !self.samples {
            return Ok(());
        }
        let step = rows.div_ceil(SAMPLE);
        let picked: Vec<usize> = (0..rows).step_by(step).collect();
        let hashes: Vec<u64> = if hashed {
            picked.iter().map(|i| self.hashes[*i]).collect()
        } else {
            let mut h = vec![0; picked.len()];
            let idx = UInt32Array::from_iter_values(picked.iter().map(|i| *i as u32));
            let taken = arrays
                .iter()
                .map(|a| datafusion::arrow::compute::take(a, &idx, None))
                .collect::<std::result::Result<Vec<_>, _>>()
                .context(|| "sampling keys".into())?;
            hash_keys(&taken, &mut h)?;
            h
        };
        let weight = (rows / picked.len()) as u64;
        let mut sketch = metrics.hot_keys.lock().unwrap_or_else(|p| p.into_inner());
        sketch.add_rows(rows as u64);
        for (k, (row, hash)) in picked.iter().zip(hashes).enumerate() {
            // The rows the division left over go to the first samples.
            let extra = u64::from(k < rows % picked.len());
            sketch.offer(hash, weight + extra, || render_key(arrays, *row));
        }
        Ok(())
    }

    /// Sends rows to the subtasks that own them.
    pub async fn send_batch(&mut self, batch: StreamBatch) -> Result<()> {
        let keys = match &self.partitioning {
            Partitioning::Forward => return self.send_to(self.subtask, Message::Data(batch)).await,
            Partitioning::Single => return self.send_to(0, Message::Data(batch)).await,
            Partitioning::Hash(keys) => keys,
        };
        let n = batch.num_rows();
        let parallelism = self.senders.len();
        if parallelism == 1 {
            if self.metrics.is_some() && self.samples {
                let arrays = eval_keys(keys, &batch)?;
                self.sample_keys(&arrays, n, false)?;
            }
            return self.send_to(0, Message::Data(batch)).await;
        }
        let arrays = eval_keys(keys, &batch)?;
        let groups = key_groups(&arrays, n, &mut self.hashes)?;
        self.sample_keys(&arrays, n, !arrays.is_empty())?;
        let mut targets: Vec<Vec<u32>> = vec![Vec::new(); parallelism];
        for (i, g) in groups.iter().enumerate() {
            targets[subtask_of_key_group(*g, parallelism)].push(i as u32);
        }
        for (t, idx) in targets.into_iter().enumerate() {
            if idx.is_empty() {
                continue;
            }
            let part = if idx.len() == n { batch.clone() } else { batch.take(&UInt32Array::from(idx))? };
            self.send_to(t, Message::Data(part)).await?;
        }
        Ok(())
    }

    /// Sends a control message to every downstream subtask.
    pub async fn broadcast(&self, msg: Message) -> Result<()> {
        for t in 0..self.senders.len() {
            self.send_to(t, msg.clone()).await?;
        }
        Ok(())
    }
}

/// A key as `weir.hot_keys` shows it: its columns as text, `, `-separated.
fn render_key(arrays: &[ArrayRef], row: usize) -> String {
    let options = FormatOptions::default().with_null("NULL");
    arrays
        .iter()
        .map(|a| {
            ArrayFormatter::try_new(a.as_ref(), &options).map_or_else(|e| e.to_string(), |f| f.value(row).to_string())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn eval_keys(keys: &[Arc<dyn PhysicalExpr>], batch: &StreamBatch) -> Result<Vec<datafusion::arrow::array::ArrayRef>> {
    columns(keys, &batch.data).context(|| "evaluating partition keys".into())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::Int64Array;

    use super::*;

    /// Where known keys live (their pinned hashes, `key_hash.rs`, modulo
    /// 128), as checkpoints split state: moving them needs a new
    /// KEY_HASH_VERSION.
    #[test]
    fn known_keys_have_pinned_key_groups() {
        let keys: ArrayRef = Arc::new(Int64Array::from_iter_values(0..8));
        let groups = key_groups(&[keys], 8, &mut Vec::new()).expect("hashable");
        assert_eq!(groups, vec![89, 46, 67, 125, 120, 12, 59, 47]);
        assert_eq!(subtask_of_key_group(89, 4), 2);
    }

    /// Each key group once, in key group order, with its rows in row order:
    /// what grouping the rows one by one gives.
    #[test]
    fn rows_split_by_key_group_keep_their_order() {
        let groups: Vec<usize> = (0..5000usize).map(|i| (i * 7919 + i / 3) % 97 + (i % 2) * 31).collect();
        let mut want: std::collections::BTreeMap<usize, Vec<u32>> = Default::default();
        for (row, g) in groups.iter().enumerate() {
            want.entry(*g).or_default().push(row as u32);
        }
        let got: Vec<(usize, Vec<u32>)> =
            rows_by_key_group(&groups).into_iter().map(|(g, rows)| (g, rows.values().to_vec())).collect();
        assert_eq!(got, want.into_iter().collect::<Vec<_>>());
    }
}
