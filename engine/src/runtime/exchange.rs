//! Sending a task's output to the subtasks of the next stage: forward, to a
//! single subtask, or hash-partitioned by key group.

use std::sync::Arc;

use datafusion::arrow::array::UInt32Array;
use datafusion::common::hash_utils::{RandomState, create_hashes};
use datafusion::physical_plan::PhysicalExpr;
use tokio::sync::mpsc::Sender;

use crate::error::{EngineError, Result, ResultExt};
use crate::message::{Message, StreamBatch};
use crate::plan::Partitioning;

/// Keys hash into this many key groups; a subtask owns a contiguous range of
/// them. State is organised by key group so that a job can be restored at a
/// different parallelism (Flink's max parallelism).
pub const KEY_GROUPS: usize = 128;

/// The subtask that owns `key_group` at `parallelism` (Flink's formula).
#[inline]
pub fn subtask_of_key_group(key_group: usize, parallelism: usize) -> usize {
    key_group * parallelism / KEY_GROUPS
}

/// The key group of every row of `keys` (all in group 0 without keys), as
/// the exchange routes them and as state is split for rescaling.
pub fn key_groups(keys: &[datafusion::arrow::array::ArrayRef], rows: usize, hashes: &mut Vec<u64>) -> Result<Vec<usize>> {
    if keys.is_empty() {
        return Ok(vec![0; rows]);
    }
    hashes.clear();
    hashes.resize(rows, 0);
    create_hashes(keys, &RandomState::with_seed(0), hashes).context(|| "hashing keys".into())?;
    Ok(hashes.iter().map(|h| (*h % KEY_GROUPS as u64) as usize).collect())
}

/// The output side of one task.
pub struct Router {
    senders: Vec<Sender<Message>>,
    partitioning: Partitioning,
    /// This task's subtask index (for forward routing).
    subtask: usize,
    hashes: Vec<u64>,
}

impl Router {
    pub fn new(senders: Vec<Sender<Message>>, partitioning: Partitioning, subtask: usize) -> Self {
        Self {
            senders,
            partitioning,
            subtask,
            hashes: Vec::new(),
        }
    }

    async fn send_to(&self, target: usize, msg: Message) -> Result<()> {
        self.senders[target]
            .send(msg)
            .await
            .map_err(|_| EngineError::Task {
                task: format!("exchange to subtask {target}"),
                message: "the downstream task stopped".into(),
            })
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
            return self.send_to(0, Message::Data(batch)).await;
        }
        let arrays = eval_keys(keys, &batch)?;
        let groups = key_groups(&arrays, n, &mut self.hashes)?;
        let mut targets: Vec<Vec<u32>> = vec![Vec::new(); parallelism];
        for (i, g) in groups.iter().enumerate() {
            targets[subtask_of_key_group(*g, parallelism)].push(i as u32);
        }
        for (t, idx) in targets.into_iter().enumerate() {
            if idx.is_empty() {
                continue;
            }
            let part = if idx.len() == n {
                batch.clone()
            } else {
                batch.take(&UInt32Array::from(idx))?
            };
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

fn eval_keys(
    keys: &[Arc<dyn PhysicalExpr>],
    batch: &StreamBatch,
) -> Result<Vec<datafusion::arrow::array::ArrayRef>> {
    let n = batch.num_rows();
    keys.iter()
        .map(|k| k.evaluate(&batch.data).and_then(|v| v.into_array(n)))
        .collect::<std::result::Result<Vec<_>, _>>()
        .context(|| "evaluating partition keys".into())
}
