//! A job: its handle (status, cancel, savepoints), and how it starts. Each
//! run of its tasks is an attempt (`runtime::attempt`); a supervisor
//! (`runtime::supervisor`) watches it and, when a task fails, starts the
//! next from the latest complete checkpoint as the restart strategy
//! (`runtime::restart`) allows.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch};

use crate::checkpoint::coordinator::{CheckpointConfig, CheckpointRequest};
use crate::checkpoint::store::StateStore;
use crate::error::{EngineError, ErrorKind, Result};
use crate::metrics::JobMetrics;
use crate::plan::StreamPlan;
use crate::runtime::attempt;
use crate::runtime::graph::JobGraph;
use crate::runtime::restart::{RestartStrategy, Restarts};
use crate::runtime::supervisor::Supervisor;

/// Where a job stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStatus {
    Running,
    /// Every input ended and every sink finished.
    Finished,
    /// A task failed and the job waits to start again from its latest
    /// checkpoint (the restart strategy's delay).
    Restarting,
    Failed(JobFailure),
    Cancelled,
}

/// Why a job failed: the message of its first failing task, and the kind
/// of that error (what a restart could do about it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFailure {
    pub message: String,
    pub kind: ErrorKind,
}

impl std::fmt::Display for JobFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl JobStatus {
    pub fn is_done(&self) -> bool {
        !matches!(self, JobStatus::Running | JobStatus::Restarting)
    }
}

/// A running (or ended) job.
#[derive(Clone)]
pub struct JobHandle {
    pub id: String,
    /// The statement that started it.
    pub statement: String,
    pub metrics: Arc<JobMetrics>,
    /// How the job started when it had earlier state: the checkpoint it
    /// resumed from, or why it started afresh.
    pub resumed: Option<String>,
    /// Its stages and exchanges, for front ends that draw the job.
    pub graph: Arc<JobGraph>,
    status: watch::Receiver<JobStatus>,
    cancel: mpsc::Sender<()>,
    /// How to take a savepoint: the current attempt's coordinator and the
    /// job's store (none between attempts, or for a job without
    /// checkpoints).
    savepoints: Savepoints,
    /// Whether the job takes checkpoints.
    durable: bool,
}

impl JobHandle {
    pub fn status(&self) -> JobStatus {
        self.status.borrow().clone()
    }

    /// Waits until the job has ended and returns how.
    pub async fn wait(&self) -> JobStatus {
        let mut rx = self.status.clone();
        loop {
            let s = rx.borrow_and_update().clone();
            if s.is_done() {
                return s;
            }
            if rx.changed().await.is_err() {
                return rx.borrow().clone();
            }
        }
    }

    /// Takes a checkpoint now and copies it to `dir` as a savepoint, from
    /// which `execution.savepoint.path` starts the job again (at any
    /// parallelism).
    pub async fn savepoint(&self, dir: &std::path::Path) -> Result<u64> {
        let id = self.checkpoint().await?.ok_or_else(|| {
            EngineError::State(format!(
                "job {} does not checkpoint: no savepoint can be taken",
                self.id
            ))
        })?;
        let store = self
            .savepoints
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|(_, s)| Arc::clone(s));
        if let Some(store) = store {
            store.export(id, dir).await?;
        }
        Ok(id)
    }

    /// Takes a checkpoint now and waits until it is complete (a job being
    /// stopped then resumes exactly there); `None` for a job without
    /// checkpoints.
    pub async fn checkpoint(&self) -> Result<Option<u64>> {
        let requests = self
            .savepoints
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|(r, _)| r.clone());
        let Some(requests) = requests else {
            return match self.durable {
                true => Err(EngineError::State(format!(
                    "job {} is restarting: no checkpoint can be taken now",
                    self.id
                ))),
                false => Ok(None),
            };
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        requests
            .send(reply)
            .await
            .map_err(|_| EngineError::State(format!("job {} has ended", self.id)))?;
        let id = answer
            .await
            .ok()
            .flatten()
            .ok_or_else(|| EngineError::State(format!("job {}: the checkpoint did not complete", self.id)))?;
        Ok(Some(id))
    }

    /// What front ends print when the job starts: its id, and where it
    /// resumed or why it started afresh when it had earlier state.
    pub fn started_message(&self) -> String {
        match &self.resumed {
            Some(how) => format!("Job '{}' started: {how}.", self.id),
            None => format!("Job '{}' started.", self.id),
        }
    }

    /// Stops the job's tasks; sinks' unfinished output stays invisible.
    pub fn cancel(&self) {
        let _ = self.cancel.try_send(());
    }
}

/// Checkpointing of a job, and where its state lives.
#[derive(Debug, Clone)]
pub struct Durability {
    pub config: CheckpointConfig,
    /// The job's state directory: deleted when the job finishes, kept
    /// otherwise so that running the job again resumes it.
    pub dir: PathBuf,
    /// `execution.savepoint.path`: start from this savepoint rather than
    /// from the job's own latest checkpoint.
    pub savepoint: Option<PathBuf>,
    /// `state.checkpoints.dir`: the job's checkpoints on object storage,
    /// under this URL and the job's id (`None`: sled in `dir`).
    pub checkpoints: Option<crate::checkpoint::store::Location>,
    /// `execution.state-recovery.allow-fresh-start`: start afresh (or
    /// repeat output that cannot be withdrawn) when the state is lost or
    /// older than what the sinks committed, rather than refuse.
    pub allow_fresh_start: bool,
    /// What a failed task makes the job do (`restart-strategy.*`).
    pub restart: RestartStrategy,
    /// `execution.savepoint.ignore-unclaimed-state`: a savepoint's state no
    /// operator of the query claims is dropped rather than refused.
    pub ignore_unclaimed_state: bool,
}

/// The current attempt's way to a checkpoint now, and the job's store.
pub(crate) type Savepoints = Arc<Mutex<Option<(mpsc::Sender<CheckpointRequest>, Arc<StateStore>)>>>;

/// Instantiates every task of `plan` and starts them on the current tokio
/// runtime. With `durability`, the job resumes from its latest complete
/// checkpoint, if any, takes checkpoints as it runs, and restarts from the
/// latest when a task fails, as its restart strategy allows. An error here
/// (state of another query, a sink that refuses to recover) starts nothing.
pub fn start(plan: StreamPlan, id: String, statement: String, durability: Option<Durability>) -> Result<JobHandle> {
    for stage in &plan.stages {
        if let Some(sink) = &stage.sink
            && let Some(key) = &sink.upsert_key
        {
            sink.connector.set_upsert_key(key);
        }
    }
    let graph = Arc::new(JobGraph::of(&plan));
    let metrics = Arc::new(JobMetrics::default());
    let first = attempt::launch(&plan, &id, durability.as_ref(), &metrics)?;
    let resumed = first.note.clone();
    let (status_tx, status) = watch::channel(JobStatus::Running);
    let (cancel, cancel_rx) = mpsc::channel(1);
    let savepoints = Savepoints::default();
    let durable = durability.is_some();
    let restarts = Restarts::new(durability.as_ref().map_or(RestartStrategy::None, |d| d.restart.clone()));
    let supervisor = Supervisor {
        plan,
        id: id.clone(),
        durability,
        metrics: Arc::clone(&metrics),
        restarts,
        status: status_tx,
        cancel: cancel_rx,
        savepoints: Arc::clone(&savepoints),
    };
    tokio::spawn(supervisor.run(first));
    Ok(JobHandle {
        id,
        statement,
        metrics,
        resumed,
        graph,
        status,
        cancel,
        savepoints,
        durable,
    })
}
