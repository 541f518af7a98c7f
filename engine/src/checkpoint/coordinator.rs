//! The checkpoint coordinator: triggers checkpoints at the sources every
//! `execution.checkpointing.interval`, gathers every task's state, and
//! declares a checkpoint complete only when all tasks have acknowledged it
//! and their state is durable — then, and only then, tells sinks to commit.
//!
//! Tasks snapshot asynchronously (`checkpoint::snapshot`): each task's
//! writer puts the chunks it made in the store and then acknowledges, or
//! reports that it could not, which abandons that checkpoint at once. The
//! coordinator writes the task states (parts and chunk lists) and the
//! manifest, which makes the checkpoint complete.
//!
//! A failed checkpoint is abandoned and the job goes on, except when the
//! store can write nothing more until it is opened again (sled after a
//! write failed, such as on a full disk): the job's attempt then fails, so
//! that the restart strategy opens the store again and checkpoints resume
//! once the disk has room.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use crate::checkpoint::identity::Manifest;
use crate::checkpoint::store::{StateStore, TaskState};
use crate::error::{EngineError, Result};
use crate::metrics::{CheckpointStats, JobMetrics};

/// Checkpointing of one job.
#[derive(Debug, Clone)]
pub struct CheckpointConfig {
    pub interval: Duration,
    /// A checkpoint not complete by then is abandoned.
    pub timeout: Duration,
    /// Least time between the end of one checkpoint and the next trigger.
    pub min_pause: Duration,
    pub mode: CheckpointMode,
}

/// `execution.checkpointing.mode`: whether tasks with several inputs align
/// barriers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointMode {
    /// An input that delivered the barrier waits for the others, so that a
    /// checkpoint holds exactly the rows before it.
    ExactlyOnce,
    /// Inputs keep flowing: no input waits behind a slow one, but rows that
    /// came after the barrier on a fast input are in the snapshot and are
    /// read again after a restore (duplicates, never loss).
    AtLeastOnce,
}

/// The checkpoint id of a task's last acknowledgement, sent when its input
/// ended: its state then is final.
pub const FINISHED: u64 = u64::MAX;

/// A task's acknowledgement of a checkpoint, with its state (its new
/// chunks already stored), or why its part could not be written.
#[derive(Debug)]
pub struct Ack {
    pub checkpoint: u64,
    pub task: String,
    pub state: Result<TaskState>,
}

/// A request for a checkpoint now (a savepoint); answered with its id once
/// it is complete, or `None` if it could not complete.
pub type CheckpointRequest = tokio::sync::oneshot::Sender<Option<u64>>;

/// The ends of the coordinator's channels that tasks hold.
#[derive(Clone)]
pub struct TaskLink {
    /// Sources watch it: a new value is a checkpoint to start.
    pub trigger: watch::Receiver<u64>,
    pub acks: mpsc::Sender<Ack>,
    /// Sinks watch it: a new value is the latest complete checkpoint.
    pub committed: watch::Receiver<u64>,
    pub mode: CheckpointMode,
    /// Where tasks' writers put the chunks they made.
    pub store: Arc<StateStore>,
}

/// A started coordinator, as its job holds it.
pub struct Started {
    /// What the job's tasks are handed.
    pub link: TaskLink,
    /// Where savepoints are requested.
    pub requests: mpsc::Sender<CheckpointRequest>,
    /// The coordinator's task, aborted when the attempt ends.
    pub handle: tokio::task::JoinHandle<()>,
    /// Answers once, with the error the job's attempt must fail with, when
    /// its store can write nothing more until it is opened again (see
    /// [`broken`]); the coordinator has then ended. Closed without an
    /// answer when the coordinator ends otherwise.
    pub failure: oneshot::Receiver<EngineError>,
}

/// Starts the coordinator of a job with `tasks` tasks, writing into
/// `store` with the job's `manifest`; checkpoint ids continue after
/// `last_id` (the restored checkpoint, or later: see `runtime::recovery`).
/// A checkpoint that fails is abandoned and the next one goes on, unless
/// the store can write nothing more: the coordinator then ends, answering
/// [`Started::failure`].
pub fn start(
    config: CheckpointConfig,
    store: Arc<StateStore>,
    tasks: usize,
    last_id: u64,
    metrics: Arc<JobMetrics>,
    manifest: Manifest,
) -> Started {
    let (failed, failure) = oneshot::channel();
    let (trigger_tx, trigger) = watch::channel(last_id);
    let (committed_tx, committed) = watch::channel(last_id);
    let (acks, mut acks_rx) = mpsc::channel::<Ack>(tasks.max(1) * 2);
    let (requests, mut requests_rx) = mpsc::channel::<CheckpointRequest>(4);
    let task_store = Arc::clone(&store);
    let handle = tokio::spawn(async move {
        let mut id = last_id;
        // Tasks whose input ended, with their final state: it belongs to
        // every later checkpoint, so that a restore neither waits for them
        // nor replays what they had finished.
        let mut finished: BTreeMap<String, TaskState> = BTreeMap::new();
        // Whether a checkpoint made only of final states completed: until
        // then, once every task finished, one is triggered after the least
        // pause rather than the interval, for sinks wait for it to commit
        // their last output (`Task::report_finished`).
        let mut final_complete = false;
        loop {
            let reply = loop {
                let wait = match finished.len() == tasks && !final_complete {
                    true => config.min_pause,
                    false => config.interval.max(config.min_pause),
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => break None,
                    Some(reply) = requests_rx.recv() => break Some(reply),
                    ack = acks_rx.recv() => match ack {
                        None => return,
                        Some(ack) if ack.checkpoint == FINISHED => finish(&mut finished, ack),
                        Some(_) => {}
                    },
                }
            };
            id += 1;
            if trigger_tx.send(id).is_err() {
                return;
            }
            let started = std::time::Instant::now();
            let started_ms = crate::message::now_ms();
            let ended = |completed: bool, bytes: u64| CheckpointStats {
                id,
                completed,
                started_ms,
                duration_ms: started.elapsed().as_millis() as u64,
                bytes,
            };
            let mut acked: BTreeMap<String, TaskState> = BTreeMap::new();
            let deadline = tokio::time::sleep(config.timeout);
            tokio::pin!(deadline);
            let complete = loop {
                if acked.len() + finished.keys().filter(|t| !acked.contains_key(*t)).count() == tasks {
                    break true;
                }
                tokio::select! {
                    ack = acks_rx.recv() => match ack {
                        None => return,
                        Some(Ack { checkpoint, task, state }) if checkpoint == id => match state {
                            Ok(state) => {
                                acked.insert(task, state);
                            }
                            Err(e) => {
                                tracing::warn!(checkpoint = id, task = %task, error = %e, "checkpoint abandoned: a task's state was not written");
                                break false;
                            }
                        },
                        Some(ack) if ack.checkpoint == FINISHED => finish(&mut finished, ack),
                        // A late acknowledgement of an abandoned checkpoint.
                        Some(_) => {}
                    },
                    _ = &mut deadline => {
                        tracing::debug!(checkpoint = id, acked = acked.len(), tasks, "checkpoint timed out");
                        break false;
                    }
                }
            };
            let only_final = acked.is_empty() && finished.len() == tasks;
            let mut bytes = 0u64;
            let written = complete && {
                // Finished tasks' states are copied (they belong to every
                // later checkpoint); acknowledged ones are handed over.
                let mut states: Vec<(String, TaskState)> = finished
                    .iter()
                    .filter(|(t, _)| !acked.contains_key(*t))
                    .map(|(t, s)| (t.clone(), s.clone()))
                    .collect();
                states.extend(std::mem::take(&mut acked));
                let mut written = Ok(());
                for (task, state) in states {
                    bytes += state.parts.iter().map(|(_, b)| b.len() as u64).sum::<u64>();
                    bytes += state.chunks.new.iter().map(|(_, b)| b.len() as u64).sum::<u64>();
                    bytes += state.chunks.written;
                    written = store.put(id, &task, state).await;
                    if written.is_err() {
                        break;
                    }
                }
                written.map_err(|e| tracing::warn!(checkpoint = id, error = %e, "checkpoint abandoned")).is_ok()
            };
            let completed = written
                && store
                    .complete(id, tasks, &manifest)
                    .await
                    .map_err(|e| tracing::warn!(checkpoint = id, error = %e, "checkpoint abandoned: it could not be completed"))
                    .is_ok();
            if let Some(reply) = reply {
                let _ = reply.send(completed.then_some(id));
            }
            let stats = ended(completed, if written { bytes } else { 0 });
            if completed {
                tracing::debug!(checkpoint = id, duration_ms = stats.duration_ms, bytes, "checkpoint complete");
            }
            metrics.checkpoint_ended(stats);
            final_complete |= completed && only_final;
            if completed && committed_tx.send(id).is_err() {
                return;
            }
            if let Some((dir, cause)) = store.broken() {
                let _ = failed.send(broken(id, dir, cause));
                return;
            }
        }
    });
    let mode = config.mode;
    let link = TaskLink { trigger, acks, committed, mode, store: task_store };
    Started { link, requests, handle, failure }
}

/// The failure of an attempt whose store at `dir` broke at checkpoint
/// `id` with `cause`: a failed checkpoint is otherwise abandoned and the
/// job goes on, but with this store every later one would fail too, even
/// once the disk has room; the next attempt opens the store again (as
/// Flink fails a job over on a failed checkpoint by default).
fn broken(id: u64, dir: &Path, cause: &std::io::Error) -> EngineError {
    EngineError::Io {
        context: format!(
            "checkpoint {id} failed and the state store in {} can write nothing more until it is opened again, \
             so the job restarts from its latest complete checkpoint",
            dir.display()
        ),
        source: std::io::Error::new(cause.kind(), cause.to_string()),
    }
}

/// Records a task's final state (see [`FINISHED`]). A task reports its end
/// only after its last writer acknowledged, and its final state is taken
/// on its loop: it has no write to fail.
fn finish(finished: &mut BTreeMap<String, TaskState>, ack: Ack) {
    match ack.state {
        Ok(state) => {
            finished.insert(ack.task, state);
        }
        Err(e) => tracing::warn!(task = %ack.task, error = %e, "a finished task's state was not taken"),
    }
}
