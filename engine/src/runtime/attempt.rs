//! One attempt at running a job: its state restored (from the latest
//! complete checkpoint, a savepoint, or nothing), its tasks built and
//! started, its checkpoint coordinator started. A job that fails and
//! restarts (`runtime::supervisor`) makes a new attempt from scratch: new
//! operators, new channels, new sink writers — only the job's store and its
//! metrics' history carry over.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::checkpoint::chunk::ChunkMap;
use crate::checkpoint::coordinator::{self, CheckpointMode, CheckpointRequest, TaskLink};
use crate::checkpoint::evolution::{Evolution, RestoreRules};
use crate::checkpoint::identity::{Manifest, StateId, state_ids};
use crate::checkpoint::store::{Checkpoint, StateStore};
use crate::error::{EngineError, Result};
use crate::message::Message;
use crate::metrics::JobMetrics;
use crate::operator::Operator;
use crate::plan::{OperatorContext, Partitioning, StageInput, StreamPlan, Upstream};
use crate::runtime::exchange::{KEY_GROUPS, subtask_of_key_group};
use crate::runtime::fanout::FanOut;
use crate::runtime::input::ExchangeInput;
use crate::runtime::job::Durability;
use crate::runtime::recovery;
use crate::runtime::task::{MainOutput, SinkOutput, Task, TaskCheckpoint, TaskInput, TaskOutput};
use crate::sink::SinkConnector;
use crate::source::driver::SourceDriver;
use crate::source::{Assignment, PARTITION_ENDED};

/// Messages buffered per channel before the sender waits: the bound that
/// turns a slow consumer into backpressure on its producers.
const CHANNEL_CAPACITY: usize = 16;

/// A running attempt.
pub(crate) struct Attempt {
    /// Its tasks, each ending with its result.
    pub tasks: JoinSet<Result<()>>,
    /// Its checkpoint coordinator, when the job is durable: the tasks'
    /// link, where savepoints are requested, and the coordinator's task.
    pub coordinator: Option<Coordinator>,
    /// The checkpoint this attempt restored (0: none).
    pub restored_from: u64,
    /// How it started when there was earlier state.
    pub note: Option<String>,
}

/// A durable attempt's checkpointing.
pub(crate) struct Coordinator {
    pub link: TaskLink,
    pub requests: mpsc::Sender<CheckpointRequest>,
    pub handle: tokio::task::JoinHandle<()>,
    /// Answers when the attempt must fail: its store can write nothing
    /// more until it is opened again (`coordinator::Started::failure`).
    pub failure: tokio::sync::oneshot::Receiver<EngineError>,
    pub store: Arc<StateStore>,
    /// The last checkpoint id known when the attempt started.
    pub first_id: u64,
}

/// How long stopping an attempt waits for its snapshot writers to let go
/// of the store.
const WRITERS_GONE: Duration = Duration::from_secs(30);

impl Coordinator {
    /// Stops the coordinator and lets go of the store (sled allows one
    /// opener: the next attempt opens it again). The store is returned once
    /// nothing else holds it: the snapshot writers of the attempt's tasks,
    /// aborted with their tasks, drop their handle only when their
    /// cancellation runs, and a sled write already on a blocking thread
    /// only when it returns; the next attempt opening the store before
    /// that would find it locked.
    pub async fn stop(self) -> (Arc<StateStore>, u64) {
        let Coordinator { link, requests, handle, store, first_id, .. } = self;
        handle.abort();
        let _ = handle.await;
        drop((link, requests));
        let until = Instant::now() + WRITERS_GONE;
        while Arc::strong_count(&store) > 1 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if Arc::strong_count(&store) > 1 {
            tracing::warn!("a snapshot writer still holds the job's store after {WRITERS_GONE:?}");
        }
        (store, first_id)
    }
}

/// Restores and starts one attempt of the job of `plan` on the current
/// tokio runtime; nothing runs if it fails. `metrics` is the job's: its
/// operators and tasks are registered anew.
pub(crate) fn launch(
    plan: &StreamPlan,
    id: &str,
    durability: Option<&Durability>,
    metrics: &Arc<JobMetrics>,
) -> Result<Attempt> {
    let (resume, Restored { chains, notes }) = match durability {
        Some(d) => {
            let rules = RestoreRules { savepoint: d.savepoint.is_some(), ignore_unclaimed: d.ignore_unclaimed_state };
            let (resume, restored) = recovery::resume(plan, id, d, |cp| restore_chains(plan, cp, rules, metrics))?;
            (Some(resume), restored)
        }
        None => (None, restore_chains(plan, None, RestoreRules::default(), metrics)?),
    };
    let restored = resume.as_ref().and_then(|r| r.checkpoint.as_ref());
    let restored_from = restored.map_or(0, |c| c.id);
    let withdraw_after = resume.as_ref().and_then(|r| r.withdraw_after);
    let task_count = plan.stages.iter().map(|s| s.parallelism).sum();
    let coordinator = durability.zip(resume.as_ref()).map(|(d, r)| {
        let coordinator::Started { link, requests, handle, failure } = coordinator::start(
            d.config.clone(),
            Arc::clone(&r.store),
            task_count,
            r.last_id,
            Arc::clone(metrics),
            Manifest::of_job(plan, id),
        );
        Coordinator { link, requests, handle, failure, store: Arc::clone(&r.store), first_id: r.last_id }
    });
    let link = coordinator.as_ref().map(|c| &c.link);
    let built = build_tasks(plan, id, metrics, chains, link, restored, withdraw_after);
    let built = built.and_then(|tasks| {
        if let Some(r) = &resume {
            r.store.truncate_after(restored_from)?;
        }
        Ok(tasks)
    });
    let tasks = match built {
        Ok(tasks) => tasks,
        Err(e) => {
            if let Some(c) = coordinator {
                c.handle.abort();
            }
            return Err(e);
        }
    };
    let note = resume.as_ref().and_then(|r| r.note.clone()).map(|n| match notes.is_empty() {
        true => n,
        false => format!("{n}; {}", notes.join("; ")),
    });
    let mut set = JoinSet::new();
    for (name, task) in tasks {
        set.spawn(async move {
            task.run().await.map_err(|e| match e {
                e @ EngineError::Task { .. } => e,
                e => EngineError::Task { task: name, kind: e.kind(), message: e.to_string() },
            })
        });
    }
    Ok(Attempt { tasks: set, coordinator, restored_from, note })
}

/// The operators of every task, in task order (stages, then subtasks), with
/// their state restored from `restored`; and the job's metrics they report
/// to. Nothing outside the job is touched, so that a checkpoint whose state
/// cannot be decoded can be given up for an older one.
pub(crate) struct Restored {
    chains: Vec<Vec<Box<dyn Operator>>>,
    /// What the user is told about a savepoint restored into a changed
    /// query: parts started empty, state dropped.
    notes: Vec<String>,
}

/// Builds [`Restored`]; fails with [`EngineError::Incompatible`] if
/// `restored` is the state of another query or Weir (its manifest does not
/// fit this plan's under `rules`), and with another error if any
/// operator's or source's state cannot be decoded (a damaged checkpoint).
/// State is looked up by state id, so a savepoint's part no operator claims
/// is never read, and a new operator finds none and starts empty.
pub(crate) fn restore_chains(
    plan: &StreamPlan,
    restored: Option<&Checkpoint>,
    rules: RestoreRules,
    metrics: &Arc<JobMetrics>,
) -> Result<Restored> {
    // A restore that fails leaves no operator behind in the job's metrics.
    metrics.new_attempt();
    let no_chunks = ChunkMap::default();
    let chunks = restored.map_or(&no_chunks, |cp| &cp.chunks);
    let (ids, _) = state_ids(plan);
    let mut evolution = Evolution::default();
    if let Some(cp) = restored {
        evolution = rules.check(&Manifest::of(plan), cp.id, cp.manifest.as_ref())?;
        for source in ids.iter().filter_map(|s| s.source.as_ref()) {
            SourceDriver::positions_of(&parts(restored, source))?;
        }
    }
    let mut chains = Vec::new();
    for (stage, stage_ids) in plan.stages.iter().zip(&ids) {
        for subtask in 0..stage.parallelism {
            let cx = OperatorContext { subtask, metrics, state: &plan.state };
            let mut chain: Vec<Box<dyn Operator>> =
                stage.chain.iter().map(|op| op.instantiate(&cx)).collect::<Result<_>>()?;
            let parallelism = stage.parallelism;
            let owns = move |group: usize| subtask_of_key_group(group, parallelism) == subtask;
            for (op, id) in chain.iter_mut().zip(&stage_ids.operators) {
                let Some(id) = id else { continue };
                let states = parts(restored, id);
                match evolution.aggregates.get(id) {
                    _ if states.is_empty() => {}
                    Some(saved) => op.restore_adding_aggregates(&states, chunks, &owns, saved)?,
                    None => op.restore(&states, chunks, &owns)?,
                }
            }
            chains.push(chain);
        }
    }
    Ok(Restored { chains, notes: evolution.notes })
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
    let mut senders: Vec<Vec<Vec<mpsc::Sender<Message>>>> =
        plan.stages.iter().map(|s| (0..s.parallelism).map(|_| Vec::new()).collect()).collect();
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
                    let owned: Vec<usize> =
                        (0..partitions.unwrap_or(0)).filter(|p| p % stage.parallelism == subtask).collect();
                    // Partitions may have moved between subtasks: every old
                    // subtask's positions are looked at.
                    let source_id = ids[i]
                        .source
                        .as_ref()
                        .ok_or_else(|| EngineError::Plan(format!("stage {i} reads a source that has no state id")))?;
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
                    let reader = s.reading().open(assignment, s.report_bad_records, &resume)?;
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
                        .flat_map(|u| {
                            (0..plan.stages[u.from].parallelism)
                                .map(|k| silent[u.from].get(k).copied().unwrap_or(false))
                        })
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
            let chain =
                chains.next().ok_or_else(|| EngineError::Plan(format!("no operators built for {task_name}")))?;
            let state_ids = ids[i].clone();
            let main = match (&stage.sink, readers[i].as_slice()) {
                (Some(sink), []) => {
                    let (sink_job, part) = plan.sink_job(job_id, i);
                    if link.is_some() && subtask == 0 {
                        recover_sink(
                            sink.connector.as_ref(),
                            (job_id, &sink_job),
                            stage.parallelism,
                            restored,
                            withdraw_after,
                            &part,
                        )?;
                    }
                    MainOutput::Sink(SinkOutput {
                        writer: sink.connector.open(&sink_job, subtask, stage.parallelism)?,
                        metrics: metrics.register(&format!("Sink: {}", sink.table), subtask),
                        part,
                    })
                }
                (None, [_, ..]) => {
                    MainOutput::Exchange(FanOut::new(stage_senders.next().unwrap_or_default(), &readers[i], subtask))
                }
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
                                (job_id, &late_job),
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
                store: Arc::clone(&l.store),
                writing: None,
                last: *l.committed.borrow(),
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
///
/// `job` is the job's id and the name this sink writes under. A savepoint
/// another job wrote (a changed query started from it) holds that job's
/// prepared output, under that job's names: it is committed there, as that
/// job would have, and this sink starts with nothing prepared.
fn recover_sink(
    sink: &dyn SinkConnector,
    (job, job_id): (&str, &str),
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
    let writer = restored.and_then(|cp| cp.manifest.as_ref()).and_then(|m| m.job.as_deref());
    if let (Some(writer), Some(suffix)) = (writer.filter(|w| *w != job), job_id.strip_prefix(job)) {
        let theirs = format!("{writer}{suffix}");
        for (subtask, bytes) in std::mem::take(&mut prepared) {
            sink.recover(&theirs, subtask, Some(bytes), withdraw_after)?;
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
