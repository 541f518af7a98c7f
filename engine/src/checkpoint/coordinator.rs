//! The checkpoint coordinator: triggers checkpoints at the sources every
//! `execution.checkpointing.interval`, gathers every task's state, and
//! declares a checkpoint complete only when all tasks have acknowledged it
//! and their state is durable — then, and only then, tells sinks to commit.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::checkpoint::store::{StateStore, TaskState};
use crate::metrics::{CheckpointStats, JobMetrics};

/// Checkpointing of one job.
#[derive(Debug, Clone)]
pub struct CheckpointConfig {
    pub interval: Duration,
    /// A checkpoint not complete by then is abandoned.
    pub timeout: Duration,
    /// Least time between the end of one checkpoint and the next trigger.
    pub min_pause: Duration,
    pub store: Arc<StateStore>,
}

/// A task's acknowledgement of a checkpoint, with its state.
#[derive(Debug)]
pub struct Ack {
    pub checkpoint: u64,
    pub task: String,
    pub state: TaskState,
}

/// The ends of the coordinator's channels that tasks hold.
#[derive(Clone)]
pub struct TaskLink {
    /// Sources watch it: a new value is a checkpoint to start.
    pub trigger: watch::Receiver<u64>,
    pub acks: mpsc::Sender<Ack>,
    /// Sinks watch it: a new value is the latest complete checkpoint.
    pub committed: watch::Receiver<u64>,
}

/// Starts the coordinator of a job with `tasks` tasks; checkpoint ids
/// continue after `last_id` (the restored checkpoint, or 0).
pub fn start(
    config: CheckpointConfig,
    tasks: usize,
    last_id: u64,
    metrics: Arc<JobMetrics>,
) -> (TaskLink, tokio::task::JoinHandle<()>) {
    let (trigger_tx, trigger) = watch::channel(last_id);
    let (committed_tx, committed) = watch::channel(last_id);
    let (acks, mut acks_rx) = mpsc::channel::<Ack>(tasks.max(1) * 2);
    let handle = tokio::spawn(async move {
        let mut id = last_id;
        loop {
            tokio::time::sleep(config.interval.max(config.min_pause)).await;
            id += 1;
            if trigger_tx.send(id).is_err() {
                return;
            }
            let started = std::time::Instant::now();
            let mut acked = 0;
            let mut bytes = 0u64;
            let deadline = tokio::time::sleep(config.timeout);
            tokio::pin!(deadline);
            let complete = loop {
                tokio::select! {
                    ack = acks_rx.recv() => match ack {
                        None => return,
                        Some(ack) if ack.checkpoint == id => {
                            bytes += ack.state.iter().map(|(_, b)| b.len() as u64).sum::<u64>();
                            if let Err(e) = config.store.put(id, &ack.task, &ack.state) {
                                tracing::warn!(checkpoint = id, error = %e, "checkpoint abandoned");
                                break false;
                            }
                            acked += 1;
                            if acked == tasks {
                                break true;
                            }
                        }
                        // A late acknowledgement of an abandoned checkpoint.
                        Some(_) => {}
                    },
                    _ = &mut deadline => {
                        tracing::debug!(checkpoint = id, acked, tasks, "checkpoint timed out");
                        break false;
                    }
                }
            };
            if !complete {
                continue;
            }
            match config.store.complete(id, tasks).await {
                Ok(()) => {
                    let duration_ms = started.elapsed().as_millis() as u64;
                    tracing::debug!(checkpoint = id, duration_ms, bytes, "checkpoint complete");
                    metrics.checkpoint_completed(CheckpointStats { id, duration_ms, bytes });
                    if committed_tx.send(id).is_err() {
                        return;
                    }
                }
                Err(e) => tracing::warn!(checkpoint = id, error = %e, "checkpoint could not be completed"),
            }
        }
    });
    (TaskLink { trigger, acks, committed }, handle)
}
