//! A task's output to every stage that reads it: one router per reading
//! stage, each with that stage's partitioning. Most stages have one reader;
//! a source read several times alike has one per read
//! (`plan/reuse_sources.rs`).

use std::sync::Arc;

use tokio::sync::mpsc::{Sender, WeakSender};

use crate::error::Result;
use crate::message::{Message, StreamBatch};
use crate::metrics::TaskMetrics;
use crate::plan::Partitioning;
use crate::runtime::exchange::Router;

/// The routers of one task's output, in the order of the stages reading it.
pub struct FanOut {
    routers: Vec<Router>,
}

impl FanOut {
    /// Splits `senders` (the task's channels: each reading stage's
    /// subtasks, one stage after the other) among `readers`, each a
    /// reading stage's partitioning and parallelism.
    pub fn new(mut senders: Vec<Sender<Message>>, readers: &[(Partitioning, usize)], subtask: usize) -> Self {
        let mut routers = Vec::with_capacity(readers.len());
        for (partitioning, parallelism) in readers {
            let rest = senders.split_off((*parallelism).min(senders.len()));
            routers.push(Router::new(senders, partitioning.clone(), subtask));
            senders = rest;
        }
        Self { routers }
    }

    /// Counts the waits of every router and the keys of the first (every
    /// router sees the same rows: counting them once).
    pub(crate) fn attach(&mut self, metrics: Arc<TaskMetrics>) {
        let outputs: Vec<WeakSender<Message>> = self.routers.iter().flat_map(Router::outputs).collect();
        metrics.watch_outputs(outputs);
        for (i, router) in self.routers.iter_mut().enumerate() {
            router.attach(Arc::clone(&metrics), i == 0);
        }
    }

    /// Sends the rows to every reading stage (the batch's columns are
    /// shared, not copied).
    pub async fn send_batch(&mut self, batch: StreamBatch) -> Result<()> {
        let Some((last, others)) = self.routers.split_last_mut() else {
            return Ok(());
        };
        for router in others {
            router.send_batch(batch.clone()).await?;
        }
        last.send_batch(batch).await
    }

    /// Sends a control message — a watermark, a barrier, idleness, the
    /// end — to every subtask of every reading stage: each aligns its
    /// barriers and holds its watermark as with one reader.
    pub async fn broadcast(&self, msg: Message) -> Result<()> {
        for router in &self.routers {
            router.broadcast(msg.clone()).await?;
        }
        Ok(())
    }
}
