//! What the dashboard sends the page: one snapshot of every job per tick,
//! as JSON (`GET /api/jobs`, and each `snapshot` event of `/api/events`).
//! Figures come from the `weir.*` tables' snapshots, so the page and a
//! query agree; rates and shares are over the last interval
//! ([`super::rates`]). weir-sql and the engine know no serde: the mapping
//! lives here.

use serde::Serialize;

/// Every job, at one instant.
#[derive(Debug, Default, Serialize)]
pub struct Payload {
    /// When the sample was taken (Unix milliseconds).
    pub at_ms: i64,
    pub jobs: Vec<JobView>,
}

/// One job: its `weir.jobs` row, rates, and what its page shows.
#[derive(Debug, Serialize)]
pub struct JobView {
    pub id: String,
    pub status: &'static str,
    pub statement: String,
    pub rows_in: u64,
    pub rows_out: u64,
    /// `None` for the first sample and across a restart.
    pub rows_in_per_s: Option<f64>,
    pub rows_out_per_s: Option<f64>,
    pub rows_dropped: u64,
    pub watermark: Option<i64>,
    pub checkpoints_completed: u64,
    pub restarts: u64,
    pub last_failure: Option<String>,
    /// `SHOW JOBS`' diagnosis of its oldest open window.
    pub diagnosis: Option<String>,
    pub stages: Vec<StageView>,
    pub watermarks: Vec<WatermarkView>,
    pub kafka_lag: Vec<KafkaLagView>,
    pub dropped: Vec<DroppedView>,
    pub checkpoints: Vec<CheckpointView>,
    pub state: Vec<StateView>,
    pub hot_keys: Vec<HotKeyView>,
    pub pending: Vec<PendingView>,
    /// `EXPLAIN`'s text of the running plan.
    pub explain: String,
}

/// A stage of the job graph with its tasks' figures summed (rates) or
/// averaged (busy, idle); backpressure is its most backpressured
/// subtask's, as Flink rates a vertex by its worst subtask.
#[derive(Debug, Serialize)]
pub struct StageView {
    pub stage: usize,
    pub parallelism: usize,
    pub source: Option<String>,
    pub inputs: Vec<EdgeView>,
    pub operators: Vec<OperatorView>,
    pub sink: Option<String>,
    pub late_sink: Option<String>,
    pub rows_in: u64,
    pub rows_out: u64,
    pub rows_in_per_s: Option<f64>,
    pub rows_out_per_s: Option<f64>,
    pub busy: Option<f64>,
    pub idle: Option<f64>,
    pub backpressured: Option<f64>,
    /// `ok`, `low`, `high` (or `unknown` before two samples).
    pub level: &'static str,
    pub queue_depth: u64,
    pub queue_capacity: u64,
    pub subtasks: Vec<SubtaskView>,
}

/// An exchange into a stage.
#[derive(Debug, Serialize)]
pub struct EdgeView {
    pub from: usize,
    pub partitioning: &'static str,
    pub keys: Option<String>,
}

/// An operator of a stage's chain.
#[derive(Debug, Serialize)]
pub struct OperatorView {
    pub name: String,
    pub state_id: Option<String>,
    pub unbounded: bool,
}

/// One task (stage × subtask).
#[derive(Debug, Serialize)]
pub struct SubtaskView {
    pub subtask: u64,
    pub rows_in: u64,
    pub rows_out: u64,
    pub rows_in_per_s: Option<f64>,
    pub rows_out_per_s: Option<f64>,
    pub busy: Option<f64>,
    pub idle: Option<f64>,
    pub backpressured: Option<f64>,
    pub queue_depth: u64,
    pub queue_capacity: u64,
}

/// A source partition's watermark (`weir.watermarks`).
#[derive(Debug, Serialize)]
pub struct WatermarkView {
    pub table: String,
    pub subtask: u64,
    pub partition: u64,
    pub watermark: Option<i64>,
    pub max_event_time: Option<i64>,
    pub idle: bool,
    pub lag_ms: Option<i64>,
}

/// A Kafka partition's offsets behind (`weir.kafka_lag`).
#[derive(Debug, Serialize)]
pub struct KafkaLagView {
    pub table: String,
    pub topic: String,
    pub partition: u64,
    pub lag: Option<u64>,
    pub read_lag: Option<u64>,
}

/// Rows an operator dropped, and why (`weir.late_events`).
#[derive(Debug, Serialize)]
pub struct DroppedView {
    pub operator: String,
    pub reason: &'static str,
    pub rows: u64,
}

/// One checkpoint (`weir.checkpoints`).
#[derive(Debug, Serialize)]
pub struct CheckpointView {
    pub id: u64,
    pub status: &'static str,
    pub started_ms: i64,
    pub duration_ms: u64,
    pub bytes: u64,
    pub aligned_wait_ms: Option<f64>,
}

/// An operator's state summed over its subtasks (`weir.memory`), with
/// its recent history: growth is what the page draws.
#[derive(Debug, Serialize)]
pub struct StateView {
    pub operator: String,
    pub bytes: u64,
    pub keys: Option<u64>,
    /// Whether `EXPLAIN` marks it unbounded.
    pub unbounded: bool,
    /// `(at_ms, bytes)`, oldest first.
    pub history: Vec<(i64, u64)>,
}

/// A hot key of a keyed stage (`weir.hot_keys`).
#[derive(Debug, Serialize)]
pub struct HotKeyView {
    pub stage: u64,
    pub keyed_by: String,
    pub rank: u64,
    pub key: String,
    pub rows: u64,
    pub share: f64,
    pub skew_ratio: f64,
}

/// The oldest open window of one operator subtask
/// (`weir.pending_windows`, whose rows are per key group).
#[derive(Debug, Serialize)]
pub struct PendingView {
    pub operator: String,
    pub subtask: u64,
    /// Key groups with an open window.
    pub key_groups: u64,
    pub window_start: i64,
    pub window_end: i64,
    pub watermark: Option<i64>,
    pub diagnosis: String,
}
