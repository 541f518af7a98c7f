//! Starting a job from a plan, watching it, cancelling it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::error::{EngineError, ErrorKind, Result};
use crate::message::Message;
use crate::metrics::JobMetrics;
use crate::operator::Operator;
use crate::plan::{Partitioning, StageInput, StreamPlan, Upstream};
use crate::runtime::fanout::FanOut;
use crate::runtime::input::ExchangeInput;
use crate::checkpoint::coordinator::{self, CheckpointConfig, CheckpointMode, CheckpointRequest, TaskLink};
use crate::checkpoint::chunk::ChunkMap;
use crate::checkpoint::identity::{Manifest, StateId, state_ids};
use crate::checkpoint::store::{Checkpoint, StateStore};
use crate::runtime::recovery;
use crate::runtime::task::{MainOutput, SinkOutput, Task, TaskCheckpoint, TaskInput, TaskOutput};
use crate::runtime::exchange::{KEY_GROUPS, subtask_of_key_group};
use crate::sink::SinkConnector;
use crate::source::{Assignment, PARTITION_ENDED};
use crate::source::driver::SourceDriver;

/// Messages buffered per channel before the sender waits: the bound that
/// turns a slow consumer into backpressure on its producers.
const CHANNEL_CAPACITY: usize = 16;

/// Where a job stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStatus {
    Running,
    /// Every input ended and every sink finished.
    Finished,
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
        !matches!(self, JobStatus::Running)
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
    status: watch::Receiver<JobStatus>,
    cancel: mpsc::Sender<()>,
    /// How to take a savepoint: the coordinator and the job's store.
    savepoints: Option<(mpsc::Sender<CheckpointRequest>, Arc<StateStore>)>,
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
        let id = self
            .checkpoint()
            .await?
            .ok_or_else(|| EngineError::State(format!("job {} does not checkpoint: no savepoint can be taken", self.id)))?;
        if let Some((_, store)) = &self.savepoints {
            store.export(id, dir).await?;
        }
        Ok(id)
    }

    /// Takes a checkpoint now and waits until it is complete (a job being
    /// stopped then resumes exactly there); `None` for a job without
    /// checkpoints.
    pub async fn checkpoint(&self) -> Result<Option<u64>> {
        let Some((requests, _)) = &self.savepoints else {
            return Ok(None);
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
}

/// Instantiates every task of `plan` and starts them on the current tokio
/// runtime. With `durability`, the job resumes from its latest complete
/// checkpoint, if any, and takes checkpoints as it runs.
pub fn start(plan: StreamPlan, id: String, statement: String, durability: Option<Durability>) -> Result<JobHandle> {
    for stage in &plan.stages {
        if let Some(sink) = &stage.sink
            && let Some(key) = &sink.upsert_key
        {
            sink.connector.set_upsert_key(key);
        }
    }
    let (resume, Restored { chains, metrics }) = match &durability {
        Some(d) => {
            let (resume, restored) = recovery::resume(&plan, &id, d, |cp| restore_chains(&plan, cp))?;
            (Some(resume), restored)
        }
        None => (None, restore_chains(&plan, None)?),
    };
    let restored = resume.as_ref().and_then(|r| r.checkpoint.as_ref());
    let resumed_from = restored.map_or(0, |c| c.id);
    let withdraw_after = resume.as_ref().and_then(|r| r.withdraw_after);
    let task_count = plan.stages.iter().map(|s| s.parallelism).sum();
    let coordinator = durability.as_ref().zip(resume.as_ref()).map(|(d, r)| {
        coordinator::start(
            d.config.clone(),
            Arc::clone(&r.store),
            task_count,
            r.last_id,
            Arc::clone(&metrics),
            Manifest::of(&plan),
        )
    });
    let link = coordinator.as_ref().map(|(link, _, _)| link);
    let savepoints = coordinator
        .as_ref()
        .zip(resume.as_ref())
        .map(|((_, requests, _), r)| (requests.clone(), Arc::clone(&r.store)));
    let tasks = build_tasks(&plan, &id, &metrics, chains, link, restored, withdraw_after)?;
    if let Some(r) = &resume {
        r.store.truncate_after(resumed_from)?;
    }
    let note = resume.as_ref().and_then(|r| r.note.clone());
    let finished = resume.map(|r| (r.store, r.last_id));
    let (status_tx, status_rx) = watch::channel(JobStatus::Running);
    let (cancel_tx, mut cancel_rx) = mpsc::channel(1);
    let mut set = JoinSet::new();
    for (name, task) in tasks {
        set.spawn(async move {
            task.run().await.map_err(|e| match e {
                e @ EngineError::Task { .. } => e,
                e => EngineError::Task {
                    task: name,
                    kind: e.kind(),
                    message: e.to_string(),
                },
            })
        });
    }
    tokio::spawn(async move {
        let status = loop {
            tokio::select! {
                _ = cancel_rx.recv() => {
                    set.abort_all();
                    break JobStatus::Cancelled;
                }
                next = set.join_next() => match next {
                    None => break JobStatus::Finished,
                    Some(Ok(Ok(()))) => {}
                    Some(Ok(Err(e))) => {
                        let failure = match e.is_consequence() {
                            true => cause(&mut set, e).await,
                            false => JobFailure { kind: e.kind(), message: e.to_string() },
                        };
                        set.abort_all();
                        break JobStatus::Failed(failure);
                    }
                    Some(Err(join)) => {
                        set.abort_all();
                        let message = format!("a task panicked: {join}");
                        break JobStatus::Failed(JobFailure { message, kind: ErrorKind::Internal });
                    }
                }
            }
        };
        // Wait for aborted tasks to be gone before reporting.
        while set.join_next().await.is_some() {}
        if let Some((link, requests, handle)) = coordinator {
            handle.abort();
            let _ = handle.await;
            drop((link, requests));
        }
        if let (JobStatus::Finished, Some(d), Some((store, first))) = (&status, durability, finished) {
            // A finished job starts afresh when run again, numbering its
            // checkpoints after this run's.
            let last = store.latest_id().ok().flatten().unwrap_or(0).max(first);
            drop(store);
            if let Err(e) = recovery::finish(&d.dir, last).await {
                tracing::warn!(dir = %d.dir.display(), error = %e, "cannot remove the state of a finished job");
            }
        }
        let _ = status_tx.send(status);
    });
    Ok(JobHandle {
        id,
        statement,
        resumed: note,
        metrics,
        status: status_rx,
        cancel: cancel_tx,
        savepoints,
    })
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
            Ok(Err(e)) if !e.is_consequence() => return JobFailure { kind: e.kind(), message: e.to_string() },
            Err(join) if join.is_panic() => {
                return JobFailure { message: format!("a task panicked: {join}"), kind: ErrorKind::Internal };
            }
            _ => {}
        }
    }
    JobFailure { kind: first.kind(), message: first.to_string() }
}

/// The operators of every task, in task order (stages, then subtasks), with
/// their state restored from `restored`; and the job's metrics they report
/// to. Nothing outside the job is touched, so that a checkpoint whose state
/// cannot be decoded can be given up for an older one.
pub(crate) struct Restored {
    chains: Vec<Vec<Box<dyn Operator>>>,
    metrics: Arc<JobMetrics>,
}

/// Builds [`Restored`]; fails with [`EngineError::Incompatible`] if
/// `restored` is the state of another query or Weir (its manifest differs
/// from this plan's), and with another error if any operator's or source's
/// state cannot be decoded (a damaged checkpoint).
pub(crate) fn restore_chains(plan: &StreamPlan, restored: Option<&Checkpoint>) -> Result<Restored> {
    let metrics = Arc::new(JobMetrics::default());
    let no_chunks = ChunkMap::default();
    let chunks = restored.map_or(&no_chunks, |cp| &cp.chunks);
    let (ids, _) = state_ids(plan);
    if let Some(cp) = restored {
        Manifest::of(plan).check_restore(cp.id, cp.manifest.as_ref())?;
        for source in ids.iter().filter_map(|s| s.source.as_ref()) {
            SourceDriver::positions_of(&parts(restored, source))?;
        }
    }
    let mut chains = Vec::new();
    for (stage, stage_ids) in plan.stages.iter().zip(&ids) {
        for subtask in 0..stage.parallelism {
            let mut chain: Vec<Box<dyn Operator>> = stage
                .chain
                .iter()
                .map(|op| op.instantiate(subtask, &metrics))
                .collect::<Result<_>>()?;
            let parallelism = stage.parallelism;
            let owns = move |group: usize| subtask_of_key_group(group, parallelism) == subtask;
            for (op, id) in chain.iter_mut().zip(&stage_ids.operators) {
                let Some(id) = id else { continue };
                let states = parts(restored, id);
                if !states.is_empty() {
                    op.restore(&states, chunks, &owns)?;
                }
            }
            chains.push(chain);
        }
    }
    Ok(Restored { chains, metrics })
}

/// The state of part `id` in every task of the checkpoint: the job may run
/// at another parallelism, and so with its stages chained differently;
/// parts are named by their state id (`checkpoint::identity`).
fn parts<'a>(restored: Option<&'a Checkpoint>, id: &StateId) -> Vec<&'a [u8]> {
    restored.map_or(Vec::new(), |cp| {
        cp.tasks
            .values()
            .filter_map(|state| state.parts.iter().find(|(n, _)| n == id.as_str()).map(|(_, b)| b.as_slice()))
            .collect()
    })
}

fn build_tasks(
    plan: &StreamPlan,
    job_id: &str,
    metrics: &Arc<JobMetrics>,
    chains: Vec<Vec<Box<dyn Operator>>>,
    link: Option<&TaskLink>,
    restored: Option<&Checkpoint>,
    withdraw_after: Option<u64>,
) -> Result<Vec<(String, Task)>> {
    let mut chains = chains.into_iter();
    let (ids, _) = state_ids(plan);
    let n = plan.stages.len();
    // receivers[stage][subtask]: the channels feeding that subtask.
    let mut receivers: Vec<Vec<Vec<mpsc::Receiver<Message>>>> = Vec::with_capacity(n);
    // senders[stage][subtask]: the channels that subtask feeds.
    let mut senders: Vec<Vec<Vec<mpsc::Sender<Message>>>> = plan
        .stages
        .iter()
        .map(|s| (0..s.parallelism).map(|_| Vec::new()).collect())
        .collect();
    for (i, stage) in plan.stages.iter().enumerate() {
        let mut rx: Vec<Vec<mpsc::Receiver<Message>>> = (0..stage.parallelism).map(|_| Vec::new()).collect();
        if let StageInput::Exchange(upstreams) = &stage.input {
            for Upstream { from, .. } in upstreams {
                let from = *from;
                if from >= i {
                    return Err(EngineError::Plan(format!("stage {i} reads from later stage {from}")));
                }
                // Every upstream subtask feeds every downstream one, in
                // subtask order (upstream stages one after the other):
                // senders[from][up][down] pairs with rx[down][up].
                for up_senders in senders[from].iter_mut() {
                    for r in rx.iter_mut() {
                        let (tx, rcv) = mpsc::channel(CHANNEL_CAPACITY);
                        up_senders.push(tx);
                        r.push(rcv);
                    }
                }
            }
        }
        receivers.push(rx);
    }
    // The partitioning of each stage's output is declared by its readers,
    // in the order their channels were made (several for a source read
    // several times alike).
    let mut readers: Vec<Vec<(Partitioning, usize)>> = vec![Vec::new(); n];
    for stage in &plan.stages {
        if let StageInput::Exchange(upstreams) = &stage.input {
            for u in upstreams {
                readers[u.from].push((u.partitioning.clone(), stage.parallelism));
            }
        }
    }
    let mut tasks = Vec::new();
    // Per stage, the source subtasks that will send no row (no partition,
    // or all theirs ended before a restore): their consumers do not wait
    // for them, as Flink's idle readers hold nothing back. Otherwise a
    // row could be late or not depending on whether such a subtask's end
    // reached the consumer before it.
    let mut silent: Vec<Vec<bool>> = vec![Vec::new(); n];
    for (i, stage) in plan.stages.iter().enumerate() {
        let mut stage_receivers = std::mem::take(&mut receivers[i]).into_iter();
        let mut stage_senders = std::mem::take(&mut senders[i]).into_iter();
        let partitions = match &stage.input {
            StageInput::Source(s) => Some(s.connector.partitions(stage.parallelism)?),
            StageInput::Exchange(_) => None,
        };
        for subtask in 0..stage.parallelism {
            let task_name = format!("stage {i} subtask {subtask}");
            let key = task_key(i, subtask);
            let input = match &stage.input {
                StageInput::Source(s) => {
                    let owned: Vec<usize> = (0..partitions.unwrap_or(0))
                        .filter(|p| p % stage.parallelism == subtask)
                        .collect();
                    // Partitions may have moved between subtasks: every old
                    // subtask's positions are looked at.
                    let source_id = ids[i].source.as_ref().ok_or_else(|| {
                        EngineError::Plan(format!("stage {i} reads a source that has no state id"))
                    })?;
                    let snapshots = parts(restored, source_id);
                    let resume = SourceDriver::positions_of(&snapshots)?;
                    let discovers = s.connector.discovers_partitions();
                    let ended = owned.iter().all(|p| resume.get(p) == Some(&PARTITION_ENDED));
                    silent[i].push(ended && !(discovers && owned.is_empty()));
                    let assignment = Assignment {
                        subtask,
                        parallelism: stage.parallelism,
                        total: partitions.unwrap_or(0),
                        partitions: owned.clone(),
                    };
                    let reader = s.connector.open(assignment, s.report_bad_records, &resume)?;
                    let m = metrics.register(&format!("Source: {}", s.table), subtask);
                    let mut driver = SourceDriver::new(Arc::clone(s), reader, m, link.map(|l| l.trigger.clone()));
                    if !snapshots.is_empty() {
                        driver.restore(&snapshots, &owned)?;
                    }
                    if s.connector.reads_partitions_together() {
                        driver.hold_back(&owned);
                    }
                    if discovers && owned.is_empty() {
                        driver.start_idle();
                    }
                    TaskInput::Source(driver)
                }
                StageInput::Exchange(upstreams) => {
                    // Inputs in the order the channels were made: each
                    // upstream stage's subtasks, one stage after the other.
                    let quiet: Vec<bool> = upstreams
                        .iter()
                        .flat_map(|u| (0..plan.stages[u.from].parallelism).map(|k| silent[u.from].get(k).copied().unwrap_or(false)))
                        .collect();
                    let sides: Vec<usize> = upstreams
                        .iter()
                        .enumerate()
                        .flat_map(|(side, u)| std::iter::repeat_n(side, plan.stages[u.from].parallelism))
                        .collect();
                    TaskInput::Exchange(ExchangeInput::new(
                        stage_receivers.next().unwrap_or_default(),
                        task_name.clone(),
                        link.map_or(CheckpointMode::ExactlyOnce, |l| l.mode),
                        &quiet,
                        sides,
                    ))
                }
            };
            let chain = chains.next().ok_or_else(|| EngineError::Plan(format!("no operators built for {task_name}")))?;
            let state_ids = ids[i].clone();
            let main = match (&stage.sink, readers[i].as_slice()) {
                (Some(sink), []) => {
                    let (sink_job, part) = plan.sink_job(job_id, i);
                    if link.is_some() && subtask == 0 {
                        recover_sink(sink.connector.as_ref(), &sink_job, stage.parallelism, restored, withdraw_after, &part)?;
                    }
                    MainOutput::Sink(SinkOutput {
                        writer: sink.connector.open(&sink_job, subtask, stage.parallelism)?,
                        metrics: metrics.register(&format!("Sink: {}", sink.table), subtask),
                        part,
                    })
                }
                (None, [_, ..]) => MainOutput::Exchange(FanOut::new(
                    stage_senders.next().unwrap_or_default(),
                    &readers[i],
                    subtask,
                )),
                _ => {
                    return Err(EngineError::Plan(format!(
                        "stage {i} must end in exactly one of a sink or an exchange"
                    )));
                }
            };
            let late = match &stage.late_sink {
                Some(sink) => Some(SinkOutput {
                    writer: {
                        let late_job = format!("{job_id}-late{i}");
                        if link.is_some() && subtask == 0 {
                            recover_sink(
                                sink.connector.as_ref(),
                                &late_job,
                                stage.parallelism,
                                restored,
                                withdraw_after,
                                &format!("late{i}"),
                            )?;
                        }
                        sink.connector.open(&late_job, subtask, stage.parallelism)?
                    },
                    metrics: metrics.register(&format!("Late data: {}", sink.table), subtask),
                    part: format!("late{i}"),
                }),
                None => None,
            };
            let output = TaskOutput { main, late };
            let checkpoint = link.map(|l| TaskCheckpoint {
                key: key.clone(),
                acks: l.acks.clone(),
                committed: l.committed.clone(),
            });
            tasks.push((
                task_name,
                Task {
                    input,
                    chain,
                    output,
                    checkpoint,
                    state_ids,
                    stage: i,
                    metrics: metrics.register_task(plan, i, subtask),
                },
            ));
        }
    }
    Ok(tasks)
}

/// A task's name in checkpoints: stage and subtask.
fn task_key(stage: usize, subtask: usize) -> String {
    format!("s{stage}-{subtask}")
}

/// The subtask of a task key.
fn subtask_of(key: &str) -> Option<usize> {
    key.rsplit('-').next()?.parse().ok()
}

/// Recovers a sink for every subtask it had and has: commits what each old
/// subtask prepared in the checkpoint (the part named `part` of a task
/// `s<stage>-<subtask>`), and discards every subtask's output no completed
/// checkpoint covers.
fn recover_sink(
    sink: &dyn SinkConnector,
    job_id: &str,
    parallelism: usize,
    restored: Option<&Checkpoint>,
    withdraw_after: Option<u64>,
    part: &str,
) -> Result<()> {
    let mut prepared: BTreeMap<usize, &[u8]> = BTreeMap::new();
    if let Some(cp) = restored {
        for (key, state) in &cp.tasks {
            if let (Some(subtask), Some((_, bytes))) = (subtask_of(key), state.parts.iter().find(|(n, _)| n == part)) {
                prepared.insert(subtask, bytes);
            }
        }
    }
    // Earlier runs may have had any parallelism (up to the key groups):
    // every subtask's leftovers are looked for.
    let last = prepared.keys().max().map_or(0, |m| m + 1).max(parallelism).max(KEY_GROUPS);
    for subtask in 0..last {
        sink.recover(job_id, subtask, prepared.get(&subtask).copied(), withdraw_after)?;
    }
    Ok(())
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
