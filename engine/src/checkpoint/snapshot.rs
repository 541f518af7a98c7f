//! Asynchronous snapshots: a task takes a cheap view of its operators'
//! state at a barrier and passes the barrier on at once; encoding that view
//! and writing its chunks to the store happen here, off the task loop, on a
//! blocking thread. The task's writer acknowledges the checkpoint to the
//! coordinator only once its chunks are in the store (or reports that they
//! could not be written, which abandons that checkpoint, never the job).
//!
//! The coordinator then records the task states (small: named parts and
//! chunk lists) and the checkpoint's manifest; chunks never pass through it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::checkpoint::chunk::ChunkWriter;
use crate::checkpoint::coordinator::Ack;
use crate::checkpoint::store::{StateStore, TaskState};
use crate::error::{EngineError, Result};

/// What one operator's snapshot holds once encoded: its state bytes
/// (`None` for a stateless operator) and the chunks they reference.
#[derive(Debug, Default)]
pub struct SnapshotOutput {
    pub state: Option<Vec<u8>>,
    pub chunks: ChunkWriter,
}

/// The half of an operator's snapshot that runs off the task loop (see
/// `Operator::snapshot_async`): it owns a view of the state as of the
/// barrier, and encodes it.
pub type SnapshotJob = Box<dyn FnOnce() -> Result<SnapshotOutput> + Send>;

/// One operator's job with the names its state is saved under.
pub(crate) struct OperatorJob {
    /// The operator's state id; `None` for an operator without one, whose
    /// job must then return no state.
    pub state_id: Option<String>,
    /// The operator's name, for errors.
    pub name: String,
    pub job: SnapshotJob,
}

/// Where a task's writer sends its part of a checkpoint.
pub(crate) struct WriteTarget {
    pub store: Arc<StateStore>,
    pub acks: mpsc::Sender<Ack>,
    pub checkpoint: u64,
    /// The task's name in checkpoints.
    pub task: String,
}

/// A task's writer in flight, aborted if the task goes (a failed job does
/// not leave its writer uploading behind it).
pub(crate) struct Writing(JoinHandle<()>);

impl Drop for Writing {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Future for Writing {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // A writer that panicked or was aborted acknowledged nothing: its
        // checkpoint times out, as one whose task died does.
        Pin::new(&mut self.0).poll(cx).map(drop)
    }
}

/// Starts the writer of a task's part of a checkpoint: runs the operators'
/// `jobs` on a blocking thread, adds their state to `state` (which holds
/// what the task took at the barrier: source positions, prepared sink
/// output), writes the new chunks to the store, then acknowledges.
pub(crate) fn spawn(target: WriteTarget, state: TaskState, jobs: Vec<OperatorJob>) -> Writing {
    Writing(tokio::spawn(async move {
        let written = write(&target, state, jobs).await;
        if let Err(e) = &written {
            tracing::warn!(checkpoint = target.checkpoint, task = %target.task, error = %e, "snapshot not written");
        }
        // The coordinator may be gone (job ending): nothing to report to.
        let _ =
            target.acks.send(Ack { checkpoint: target.checkpoint, task: target.task.clone(), state: written }).await;
    }))
}

/// Encodes and writes the task's part; the state to acknowledge, with its
/// chunks' bytes already in the store.
async fn write(target: &WriteTarget, mut state: TaskState, jobs: Vec<OperatorJob>) -> Result<TaskState> {
    let (checkpoint, task) = (target.checkpoint, target.task.clone());
    let encoded = tokio::task::spawn_blocking(move || {
        crate::failpoints::snapshot_write(&task, checkpoint)?;
        for OperatorJob { state_id, name, job } in jobs {
            let out = job()?;
            state.chunks.append(out.chunks);
            if let Some(bytes) = out.state {
                let state_id =
                    state_id.ok_or_else(|| EngineError::Plan(format!("{name} keeps state but has no state id")))?;
                state.parts.push((state_id, bytes));
            }
        }
        Ok::<_, EngineError>(state)
    })
    .await
    .map_err(|e| {
        EngineError::State(format!(
            "checkpoint {checkpoint}: encoding the state of {} ended abnormally: {e}",
            target.task
        ))
    })??;
    let mut state = encoded;
    let new = std::mem::take(&mut state.chunks.new);
    state.chunks.written = target.store.put_chunks(checkpoint, &target.task, &state.chunks.refs, new).await?;
    Ok(state)
}
