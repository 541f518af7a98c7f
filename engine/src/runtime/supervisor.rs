//! The supervisor of a job: watches its attempt's tasks, reports how the
//! job ended, and when a task fails (an error or a panic, in any operator,
//! source or sink) tears the attempt down and starts the next from the
//! latest complete checkpoint, as the restart strategy decides. A failure
//! stops its own job only: tasks are tokio tasks whose panics end in
//! their `JoinSet`, never in the process.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use crate::error::{EngineError, ErrorKind, Result};
use crate::metrics::JobMetrics;
use crate::plan::StreamPlan;
use crate::runtime::attempt::{self, Attempt};
use crate::runtime::job::{Durability, JobFailure, JobStatus, Savepoints};
use crate::runtime::recovery;
use crate::runtime::restart::{Decision, Failure, Restarts};

/// Everything a job keeps across its attempts.
pub(crate) struct Supervisor {
    pub plan: StreamPlan,
    pub id: String,
    pub durability: Option<Durability>,
    pub metrics: Arc<JobMetrics>,
    pub restarts: Restarts,
    pub status: watch::Sender<JobStatus>,
    pub cancel: mpsc::Receiver<()>,
    pub savepoints: Savepoints,
}

/// How an attempt ended.
enum Ended {
    Finished,
    Cancelled,
    Failed(JobFailure),
}

impl Supervisor {
    /// Runs attempts, from `first`, until the job finishes, is cancelled,
    /// or fails for good; then publishes the final status.
    pub async fn run(mut self, first: Attempt) {
        let mut attempt = Some(first);
        let status = loop {
            let started = Instant::now();
            // An attempt that could not even start fails like one whose
            // task failed at once.
            let (ended, restored_from, progressed) = match attempt.take() {
                Some(a) => self.watch(a).await,
                None => match attempt::launch(&self.plan, &self.id, self.durability.as_ref(), &self.metrics) {
                    Ok(a) => {
                        let how = a.note.as_deref().unwrap_or("from the beginning, no checkpoint had completed");
                        tracing::warn!(job = %self.id, restarts = self.restarts.count, "job restarted: {how}");
                        self.watch(a).await
                    }
                    Err(e) => (Ended::Failed(JobFailure { kind: e.kind(), message: e.to_string() }), 0, false),
                },
            };
            let failure = match ended {
                Ended::Finished => break JobStatus::Finished,
                Ended::Cancelled => break JobStatus::Cancelled,
                Ended::Failed(f) => f,
            };
            let weighed = Failure { message: failure.message.clone(), kind: failure.kind, restored_from, progressed };
            match self.restarts.decide(weighed, Instant::now(), started) {
                Decision::GiveUp(why) => {
                    if self.restarts.count > 0 {
                        tracing::warn!(job = %self.id, restarts = self.restarts.count, "{why}");
                    }
                    self.metrics.job_failed(&failure.message, None);
                    break JobStatus::Failed(JobFailure {
                        message: match self.restarts.count {
                            0 => failure.message,
                            n => format!(
                                "{} (after {n} restart{}: {why})",
                                failure.message,
                                if n == 1 { "" } else { "s" }
                            ),
                        },
                        kind: failure.kind,
                    });
                }
                Decision::Restart(delay) => {
                    tracing::warn!(job = %self.id, delay_ms = delay.as_millis() as u64, attempt = self.restarts.count, error = %failure.message, "a task failed: the job restarts from its latest checkpoint");
                    self.metrics.job_failed(&failure.message, Some(self.restarts.count));
                    let _ = self.status.send(JobStatus::Restarting);
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.cancel.recv() => break JobStatus::Cancelled,
                    }
                    let _ = self.status.send(JobStatus::Running);
                }
            }
        };
        let _ = self.status.send(status);
    }

    /// Waits for `attempt` to end and tears it down (tasks gone, the
    /// coordinator stopped, the store let go); a finished durable job's
    /// state is removed. Returns how it ended, the checkpoint it had
    /// restored, and whether a checkpoint completed while it ran.
    async fn watch(&mut self, mut attempt: Attempt) -> (Ended, u64, bool) {
        if let Some(c) = &attempt.coordinator {
            *self.savepoints.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((c.requests.clone(), Arc::clone(&c.store)));
        }
        let set = &mut attempt.tasks;
        let ended = {
            let store_broke = store_broke(attempt.coordinator.as_mut().map(|c| &mut c.failure));
            tokio::pin!(store_broke);
            loop {
                tokio::select! {
                    _ = self.cancel.recv() => break Ended::Cancelled,
                    failure = &mut store_broke => break Ended::Failed(failure),
                    next = set.join_next() => match next {
                        None => break Ended::Finished,
                        Some(Ok(Ok(()))) => {}
                        Some(Ok(Err(e))) => {
                            break Ended::Failed(match e.is_consequence() {
                                true => cause(set, e).await,
                                false => JobFailure { kind: e.kind(), message: e.to_string() },
                            });
                        }
                        Some(Err(join)) => break Ended::Failed(panicked(join)),
                    }
                }
            }
        };
        set.abort_all();
        // Aborted tasks drop their sinks' writers and channels first.
        while set.join_next().await.is_some() {}
        self.savepoints.lock().unwrap_or_else(|p| p.into_inner()).take();
        let mut progressed = false;
        if let Some(coordinator) = attempt.coordinator.take() {
            let (store, first) = coordinator.stop().await;
            let last = store.latest_id().ok().flatten().unwrap_or(0);
            progressed = last > first;
            if let (Ended::Finished, Some(d)) = (&ended, &self.durability) {
                // A finished job starts afresh when run again, numbering
                // its checkpoints after this run's.
                drop(store);
                crate::failpoints::job_ended();
                if let Err(e) = recovery::finish(&d.dir, last.max(first)).await {
                    tracing::warn!(dir = %d.dir.display(), error = %e, "cannot remove the state of a finished job");
                }
            }
        }
        (ended, attempt.restored_from, progressed)
    }
}

/// The failure of an attempt whose store can write nothing more until it
/// is opened again (`coordinator::Started::failure`): the restart opens it
/// again. Never, when the job is not durable or its coordinator ended
/// without one.
async fn store_broke(failure: Option<&mut oneshot::Receiver<EngineError>>) -> JobFailure {
    match failure {
        Some(failure) => match failure.await {
            Ok(e) => JobFailure { kind: e.kind(), message: e.to_string() },
            Err(_) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// The failure of a task that panicked (or was aborted), with the
/// panic's own message: tokio's display of it names the task by a number
/// that differs on every attempt, which would hide a panic that repeats.
fn panicked(join: tokio::task::JoinError) -> JobFailure {
    let message = match join.try_into_panic() {
        Ok(payload) => match (payload.downcast_ref::<&str>(), payload.downcast_ref::<String>()) {
            (Some(s), _) => format!("a task panicked: {s}"),
            (_, Some(s)) => format!("a task panicked: {s}"),
            _ => "a task panicked".to_string(),
        },
        Err(join) => format!("a task ended abnormally: {join}"),
    };
    JobFailure { message, kind: ErrorKind::Internal }
}

/// How long the job waits, after a task failed only because a neighbour
/// stopped, for the neighbour's own error to arrive.
const CAUSE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The failure to report when the first task to fail only saw a
/// neighbour stop (`first`): the neighbour's own error or panic, if it
/// arrives in [`CAUSE_WAIT`] — the channels close before the failed task's
/// result is in — else `first`.
async fn cause(set: &mut JoinSet<Result<()>>, first: EngineError) -> JobFailure {
    let deadline = tokio::time::Instant::now() + CAUSE_WAIT;
    while let Ok(Some(next)) = tokio::time::timeout_at(deadline, set.join_next()).await {
        match next {
            Ok(Err(e)) if !e.is_consequence() => {
                return JobFailure { kind: e.kind(), message: e.to_string() };
            }
            Err(join) if join.is_panic() => return panicked(join),
            _ => {}
        }
    }
    JobFailure { kind: first.kind(), message: first.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task_error(message: &str, kind: ErrorKind) -> EngineError {
        EngineError::Task { task: "t".into(), message: message.into(), kind }
    }

    /// A task that failed only because its neighbour stopped is not what the
    /// job reports when the neighbour's own error comes in after it.
    #[tokio::test]
    async fn the_cause_is_reported_over_a_consequence() {
        let mut set: JoinSet<Result<()>> = JoinSet::new();
        set.spawn(async { Ok(()) });
        set.spawn(async {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            Err(task_error("disk full", ErrorKind::External))
        });
        let first = task_error(crate::error::DOWNSTREAM_STOPPED, ErrorKind::Internal);
        assert!(first.is_consequence());
        let failure = cause(&mut set, first).await;
        assert!(failure.message.contains("disk full"), "{}", failure.message);
        assert_eq!(failure.kind, ErrorKind::External);

        let mut panicking: JoinSet<Result<()>> = JoinSet::new();
        panicking.spawn(async { panic!("boom") });
        let failure = cause(&mut panicking, task_error(crate::error::UPSTREAM_STOPPED, ErrorKind::Internal)).await;
        assert!(failure.message.contains("a task panicked"), "{}", failure.message);

        let mut quiet: JoinSet<Result<()>> = JoinSet::new();
        let failure = cause(&mut quiet, task_error(crate::error::UPSTREAM_STOPPED, ErrorKind::Internal)).await;
        assert!(failure.message.contains(crate::error::UPSTREAM_STOPPED), "{}", failure.message);
    }
}
