//! Counters that operators and tasks keep per batch (never per row) and
//! that the front doors read (SHOW JOBS, the `weir.*` system tables, the
//! Prometheus endpoint): rows in and out, time spent busy, idle and
//! backpressured, every row an operator dropped or a source could not
//! decode with the reason, per-partition watermarks, hot keys, checkpoints.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::WeakSender;

use crate::hot_keys::HotKeys;
use crate::message::{Message, WATERMARK_MIN};
use crate::plan::{StageInput, StreamPlan};
use crate::window::pending::OpenWindow;

/// Why a row did not reach its window (or, for a record that could not be
/// decoded, any operator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Every window of the row had fired when it arrived.
    Late,
    /// The row's event time is NULL.
    InvalidEventTime,
    /// A source could not decode the record.
    DecodeError,
    /// The row needed state the operator no longer holds: a retraction of
    /// a row it does not hold (dropped by state TTL, or inserted before
    /// the job began reading), or a row meeting state TTL had dropped.
    ExpiredState,
}

impl DropReason {
    /// Name as the late-data side table will spell it.
    pub fn as_str(&self) -> &'static str {
        match self {
            DropReason::Late => "late",
            DropReason::InvalidEventTime => "invalid_event_time",
            DropReason::DecodeError => "decode_error",
            DropReason::ExpiredState => "expired_state",
        }
    }
}

/// Counters of one operator subtask.
#[derive(Debug)]
pub struct OperatorMetrics {
    pub operator: String,
    pub subtask: usize,
    pub rows_in: AtomicU64,
    pub rows_out: AtomicU64,
    pub late_rows: AtomicU64,
    pub invalid_time_rows: AtomicU64,
    /// Records the source could not decode (sources only).
    pub decode_errors: AtomicU64,
    /// Rows that met state the operator no longer holds
    /// ([`DropReason::ExpiredState`]).
    pub expired_state_rows: AtomicU64,
    /// Bytes of state the operator wrote to spill files (the spilling
    /// state backend), over the attempt.
    pub spilled_bytes: AtomicU64,
    /// The latest watermark (ms) a source subtask emitted, or a window
    /// aggregate's current one, `WATERMARK_MIN` before its first, so that
    /// SHOW JOBS can tell how far event time got.
    pub watermark: AtomicI64,
    /// A source subtask's partitions as of its latest event or timer, for
    /// `weir.watermarks` and `weir.kafka_lag` (empty for other operators).
    pub partitions: Mutex<BTreeMap<usize, PartitionStatus>>,
    /// A source subtask's `'source.idle-timeout'`, if set: how long a silent
    /// partition holds windows back (`weir.pending_windows`).
    pub idle_timeout: OnceLock<Duration>,
    /// A window aggregate subtask's oldest open window per key group, as
    /// of the latest change (`weir.pending_windows`; empty for other
    /// operators). Replaced whole when a window opens or fires, so readers
    /// never see half an update.
    pub pending_windows: Mutex<Vec<OpenWindow>>,
}

/// Where one source partition stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionStatus {
    /// The partition's own watermark (ms), `WATERMARK_MIN` before its first.
    pub watermark: i64,
    /// The greatest valid event time (ms) read from it, if any.
    pub max_event_time: Option<i64>,
    /// Silent for `'source.idle-timeout'`: it holds no watermark back.
    pub idle: bool,
    /// Where reading continues (the connector's unit: the next Kafka offset,
    /// the next line), once anything was read; `PARTITION_ENDED` once it
    /// ended.
    pub position: Option<u64>,
    /// When it last had rows (ms since the epoch), or since when it has
    /// been read without any: how long it has been silent.
    pub last_activity_ms: Option<i64>,
}

impl OperatorMetrics {
    pub fn add_dropped(&self, reason: DropReason, rows: u64) {
        if rows == 0 {
            return;
        }
        let c = match reason {
            DropReason::Late => &self.late_rows,
            DropReason::InvalidEventTime => &self.invalid_time_rows,
            DropReason::DecodeError => &self.decode_errors,
            DropReason::ExpiredState => &self.expired_state_rows,
        };
        c.fetch_add(rows, Ordering::Relaxed);
    }
}

/// One checkpoint the coordinator triggered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointStats {
    pub id: u64,
    /// Whether it completed (else it was abandoned: timed out or not written).
    pub completed: bool,
    /// When it was triggered (ms since the epoch).
    pub started_ms: i64,
    /// From the trigger to the durable completion record (or abandonment).
    pub duration_ms: u64,
    /// State written, over all tasks.
    pub bytes: u64,
}

/// Checkpoints kept in a job's history: enough for any dashboard, bounded
/// for a job that runs for months.
const CHECKPOINT_HISTORY: usize = 10_000;

/// The state one operator of a task's chain holds, as of the task's latest
/// measurement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorState {
    /// Its state id where its state is checkpointed (`WindowAggregate#0`,
    /// a `UID` hint's id: the name `weir.savepoint` lists it by), else the
    /// operator's own name.
    pub operator: String,
    /// Whether its state is checkpointed under that state id.
    pub checkpointed: bool,
    pub size: crate::operator::StateSize,
}

/// Counters of one task (a stage's subtask, running its chain of operators),
/// whose times tell where a job spends its time: a bottleneck task is busy,
/// the tasks before it backpressured, the tasks after it idle.
#[derive(Debug)]
pub struct TaskMetrics {
    /// Where the task sits in the plan, as EXPLAIN numbers stages.
    pub stage: usize,
    pub subtask: usize,
    /// The chain it runs, e.g. `Source: bids -> WindowAggregate … -> Sink: out`.
    pub name: String,
    /// The key its output is hash-partitioned by (whose hot keys its sketch
    /// counts), as EXPLAIN shows it; unset when it is not.
    pub keyed_by: OnceLock<String>,
    /// Rows and batches through the task (from its input, to its output or
    /// sink): rows per batch tell whether batches are too small to pay off.
    pub rows_in: AtomicU64,
    pub rows_out: AtomicU64,
    pub batches_in: AtomicU64,
    pub batches_out: AtomicU64,
    /// Waiting for input (a source task: for its reader, which decodes on
    /// its own tokio task), and since when (ns after `started`, plus one; 0
    /// when not waiting), so that a task stuck waiting shows it at once.
    idle_ns: AtomicU64,
    idle_since: AtomicU64,
    /// Waiting for room in a full channel to the next stage, and since when.
    backpressured_ns: AtomicU64,
    backpressured_since: AtomicU64,
    /// Its operators' state, as of its latest measurement (`weir.memory`).
    pub state: Mutex<Vec<OperatorState>>,
    /// The longest time a barrier held its loop while its operators took
    /// their snapshots (the stream's pause for checkpoints), in ns.
    pub snapshot_pause_max_ns: AtomicU64,
    started: Instant,
    /// Its run time once it ended (0 while it runs).
    ended_ns: AtomicU64,
    /// Its output channels, to tell how many messages wait in them without
    /// keeping them open.
    outputs: Mutex<Vec<WeakSender<Message>>>,
    /// Keys of the rows it sent through a hash exchange.
    pub hot_keys: Mutex<HotKeys>,
    /// Per checkpoint, the longest barrier alignment of any task of the job.
    alignments: Arc<Mutex<BTreeMap<u64, u64>>>,
}

impl TaskMetrics {
    /// Its operators' state as of the latest measurement.
    pub fn state(&self) -> Vec<OperatorState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Nanoseconds since the task started (until it ended, if it has).
    pub fn elapsed_ns(&self) -> u64 {
        match self.ended_ns.load(Ordering::Relaxed) {
            0 => self.started.elapsed().as_nanos() as u64,
            n => n,
        }
    }

    /// Time neither idle nor backpressured: running operators and sinks.
    pub fn busy_ns(&self) -> u64 {
        self.elapsed_ns().saturating_sub(self.idle_ns()).saturating_sub(self.backpressured_ns())
    }

    /// Time spent waiting for input, the current wait included.
    pub fn idle_ns(&self) -> u64 {
        self.waited(&self.idle_ns, &self.idle_since)
    }

    /// Time spent waiting for room downstream, the current wait included.
    pub fn backpressured_ns(&self) -> u64 {
        self.waited(&self.backpressured_ns, &self.backpressured_since)
    }

    fn waited(&self, total: &AtomicU64, since: &AtomicU64) -> u64 {
        let done = total.load(Ordering::Relaxed);
        match since.load(Ordering::Relaxed) {
            0 => done,
            s => done + (self.started.elapsed().as_nanos() as u64).saturating_sub(s - 1),
        }
    }

    /// A wait for input begins; pass what it returns to [`Self::idle_ends`].
    pub(crate) fn idle_begins(&self) -> Instant {
        self.begin(&self.idle_since)
    }

    pub(crate) fn idle_ends(&self, began: Instant) {
        self.end(&self.idle_ns, &self.idle_since, began);
    }

    /// A wait for room downstream begins.
    pub(crate) fn backpressure_begins(&self) -> Instant {
        self.begin(&self.backpressured_since)
    }

    pub(crate) fn backpressure_ends(&self, began: Instant) {
        self.end(&self.backpressured_ns, &self.backpressured_since, began);
    }

    fn begin(&self, since: &AtomicU64) -> Instant {
        let now = Instant::now();
        since.store(now.duration_since(self.started).as_nanos() as u64 + 1, Ordering::Relaxed);
        now
    }

    fn end(&self, total: &AtomicU64, since: &AtomicU64, began: Instant) {
        // Cleared first: a reader in between sees the wait at most once.
        since.store(0, Ordering::Relaxed);
        total.fetch_add(began.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }

    /// Messages waiting in the task's output channels now, and how many
    /// they can hold (both 0 for a task that writes to a sink).
    pub fn output_queue(&self) -> (u64, u64) {
        let outputs = self.outputs.lock().unwrap_or_else(|p| p.into_inner());
        outputs
            .iter()
            .filter_map(WeakSender::upgrade)
            .map(|s| ((s.max_capacity() - s.capacity()) as u64, s.max_capacity() as u64))
            .fold((0, 0), |(q, c), (dq, dc)| (q + dq, c + dc))
    }

    pub(crate) fn watch_outputs(&self, outputs: Vec<WeakSender<Message>>) {
        *self.outputs.lock().unwrap_or_else(|p| p.into_inner()) = outputs;
    }

    pub(crate) fn ended(&self) {
        let n = self.started.elapsed().as_nanos() as u64;
        self.ended_ns.store(n.max(1), Ordering::Relaxed);
    }

    /// This task took `ns` to align the barriers of checkpoint `id`.
    pub(crate) fn aligned(&self, id: u64, ns: u64) {
        let mut a = self.alignments.lock().unwrap_or_else(|p| p.into_inner());
        let longest = a.entry(id).or_insert(0);
        *longest = (*longest).max(ns);
        // Alignments of checkpoints long gone are of no interest.
        while a.len() > CHECKPOINT_HISTORY {
            a.pop_first();
        }
    }
}

/// How the runtime names a source operator: `Source: <table>`.
const SOURCE: &str = "Source: ";

/// All counters of one job.
#[derive(Debug, Default)]
pub struct JobMetrics {
    operators: Mutex<Vec<Arc<OperatorMetrics>>>,
    tasks: Mutex<Vec<Arc<TaskMetrics>>>,
    checkpoints: Mutex<std::collections::VecDeque<CheckpointStats>>,
    alignments: Arc<Mutex<BTreeMap<u64, u64>>>,
    restarts: AtomicU64,
    last_failure: Mutex<Option<JobFailureStats>>,
}

/// The latest failure of a job's task, restarted from or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFailureStats {
    /// When it was seen (ms since the epoch).
    pub at_ms: i64,
    pub message: String,
}

/// Totals of a job, summed over subtasks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobTotals {
    pub late_rows: u64,
    pub invalid_time_rows: u64,
    /// Records the sources could not decode, whether or not they reached the
    /// `LATE DATA INTO` table.
    pub decode_errors: u64,
    /// Rows that met state the operators no longer hold.
    pub expired_state_rows: u64,
    pub rows_to_sinks: u64,
    /// Rows the sources read (the operators named `Source…`).
    pub rows_from_sources: u64,
    /// Rows written to the `LATE DATA INTO` table.
    pub rows_to_late_table: u64,
    /// Bytes of state spilled to local disk.
    pub spilled_bytes: u64,
}

impl JobMetrics {
    /// Forgets the operators and tasks of the previous attempt: a restarted
    /// job counts afresh from the checkpoint it restored, as Flink's task
    /// metrics do. Checkpoints, restarts and the last failure stay.
    pub fn new_attempt(&self) {
        self.operators.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.tasks.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Records a task's failure; `restart` is the restart it leads to (the
    /// count so far), `None` when the job fails for good.
    pub fn job_failed(&self, message: &str, restart: Option<u32>) {
        if let Some(n) = restart {
            self.restarts.store(u64::from(n), Ordering::Relaxed);
        }
        let stats = JobFailureStats { at_ms: crate::message::now_ms(), message: message.to_string() };
        *self.last_failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(stats);
    }

    /// How many times the job restarted after a failure.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// The latest failure of a task, if any.
    pub fn last_failure(&self) -> Option<JobFailureStats> {
        self.last_failure.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Registers the counters of a new operator subtask.
    pub fn register(&self, operator: &str, subtask: usize) -> Arc<OperatorMetrics> {
        let m = Arc::new(OperatorMetrics {
            operator: operator.to_string(),
            subtask,
            rows_in: AtomicU64::new(0),
            rows_out: AtomicU64::new(0),
            late_rows: AtomicU64::new(0),
            invalid_time_rows: AtomicU64::new(0),
            decode_errors: AtomicU64::new(0),
            expired_state_rows: AtomicU64::new(0),
            spilled_bytes: AtomicU64::new(0),
            watermark: AtomicI64::new(WATERMARK_MIN),
            partitions: Mutex::new(BTreeMap::new()),
            idle_timeout: OnceLock::new(),
            pending_windows: Mutex::new(Vec::new()),
        });
        self.operators.lock().unwrap_or_else(|p| p.into_inner()).push(Arc::clone(&m));
        m
    }

    /// Registers the counters of subtask `subtask` of stage `stage` of `plan`.
    pub fn register_task(&self, plan: &StreamPlan, stage: usize, subtask: usize) -> Arc<TaskMetrics> {
        let m = Arc::new(TaskMetrics {
            stage,
            subtask,
            name: task_name(plan, stage),
            keyed_by: OnceLock::new(),
            rows_in: AtomicU64::new(0),
            rows_out: AtomicU64::new(0),
            batches_in: AtomicU64::new(0),
            batches_out: AtomicU64::new(0),
            idle_ns: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
            backpressured_ns: AtomicU64::new(0),
            backpressured_since: AtomicU64::new(0),
            state: Mutex::new(Vec::new()),
            snapshot_pause_max_ns: AtomicU64::new(0),
            started: Instant::now(),
            ended_ns: AtomicU64::new(0),
            outputs: Mutex::new(Vec::new()),
            hot_keys: Mutex::new(HotKeys::default()),
            alignments: Arc::clone(&self.alignments),
        });
        self.tasks.lock().unwrap_or_else(|p| p.into_inner()).push(Arc::clone(&m));
        m
    }

    /// Every task of the job, in the order they were started.
    pub fn tasks(&self) -> Vec<Arc<TaskMetrics>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Records a checkpoint that completed or was abandoned.
    pub fn checkpoint_ended(&self, stats: CheckpointStats) {
        let mut c = self.checkpoints.lock().unwrap_or_else(|p| p.into_inner());
        c.push_back(stats);
        if c.len() > CHECKPOINT_HISTORY {
            c.pop_front();
        }
    }

    /// Every completed checkpoint of the job (of the last
    /// `CHECKPOINT_HISTORY` triggered), oldest first.
    pub fn checkpoints(&self) -> Vec<CheckpointStats> {
        self.checkpoint_history().into_iter().filter(|c| c.completed).collect()
    }

    /// The checkpoints triggered, completed or not, oldest first.
    pub fn checkpoint_history(&self) -> Vec<CheckpointStats> {
        self.checkpoints.lock().unwrap_or_else(|p| p.into_inner()).iter().copied().collect()
    }

    /// The longest time (ns) any task waited aligning the barriers of
    /// checkpoint `id` (exactly-once), if any task had to.
    pub fn alignment_ns(&self, id: u64) -> Option<u64> {
        self.alignments.lock().unwrap_or_else(|p| p.into_inner()).get(&id).copied()
    }

    /// Every registered operator subtask.
    pub fn operators(&self) -> Vec<Arc<OperatorMetrics>> {
        self.operators.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The job's watermark as its sources last emitted it: the least over
    /// the source subtasks that have emitted one (a subtask that never
    /// does, having no partition, holds nothing back). `None` before any.
    pub fn watermark(&self) -> Option<i64> {
        self.operators()
            .iter()
            .filter(|m| m.operator.starts_with(SOURCE))
            .map(|m| m.watermark.load(Ordering::Relaxed))
            .filter(|w| *w != WATERMARK_MIN)
            .min()
    }

    /// The tables the job reads, once each, so that a front door can tell
    /// how much of them is read (`weir run`'s progress).
    pub fn source_tables(&self) -> Vec<String> {
        let mut tables: Vec<String> =
            self.operators().iter().filter_map(|m| m.operator.strip_prefix(SOURCE)).map(str::to_string).collect();
        tables.sort_unstable();
        tables.dedup();
        tables
    }

    /// Sums over all subtasks; sinks are the operators named `Sink…`, side
    /// tables `Late data…`.
    pub fn totals(&self) -> JobTotals {
        let mut t = JobTotals::default();
        for m in self.operators() {
            t.late_rows += m.late_rows.load(Ordering::Relaxed);
            t.invalid_time_rows += m.invalid_time_rows.load(Ordering::Relaxed);
            t.decode_errors += m.decode_errors.load(Ordering::Relaxed);
            t.expired_state_rows += m.expired_state_rows.load(Ordering::Relaxed);
            t.spilled_bytes += m.spilled_bytes.load(Ordering::Relaxed);
            if m.operator.starts_with(SOURCE) {
                t.rows_from_sources += m.rows_out.load(Ordering::Relaxed);
            }
            if m.operator.starts_with("Sink") {
                t.rows_to_sinks += m.rows_in.load(Ordering::Relaxed);
            }
            if m.operator.starts_with("Late data") {
                t.rows_to_late_table += m.rows_in.load(Ordering::Relaxed);
            }
        }
        t
    }
}

/// How `weir.operators` names a task: its input, its operators and its
/// output, as EXPLAIN lists them.
fn task_name(plan: &StreamPlan, stage: usize) -> String {
    let Some(s) = plan.stages.get(stage) else {
        return format!("stage {stage}");
    };
    let mut parts = Vec::new();
    if let StageInput::Source(src) = &s.input {
        parts.push(format!("{SOURCE}{}", src.table));
    }
    parts.extend(s.chain.iter().map(|op| op.name()));
    if let Some(sink) = &s.sink {
        parts.push(format!("Sink: {}", sink.table));
    }
    if parts.is_empty() {
        parts.push(format!("stage {stage}"));
    }
    parts.join(" -> ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_wait_counts_while_it_lasts_and_busy_time_is_the_rest() {
        let job = JobMetrics::default();
        let t = job.register_task(&StreamPlan::new(Vec::new()), 0, 0);
        assert_eq!(t.name, "stage 0");
        let began = t.backpressure_begins();
        std::thread::sleep(Duration::from_millis(30));
        // Still waiting: already shown.
        let during = t.backpressured_ns();
        assert!(during >= 30_000_000, "{during}");
        t.backpressure_ends(began);
        let after = t.backpressured_ns();
        assert!(after >= during);
        std::thread::sleep(Duration::from_millis(10));
        // Ended: it no longer grows.
        assert_eq!(t.backpressured_ns(), after);
        let idle = t.idle_begins();
        t.idle_ends(idle);
        t.ended();
        let elapsed = t.elapsed_ns();
        assert_eq!(t.busy_ns(), elapsed - t.idle_ns() - after);
        assert!(t.busy_ns() >= 10_000_000);
        // The task ended: its times stay put.
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(t.elapsed_ns(), elapsed);
    }
}
