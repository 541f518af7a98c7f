//! The figures of the system tables as plain rows, read from the jobs'
//! counters at one moment: the tables turn them into Arrow batches, the
//! Prometheus endpoint into metrics, so both always agree.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use weir_engine::EngineError;
use weir_engine::message::{WATERMARK_MIN, now_ms};
use weir_engine::metrics::JobMetrics;
use weir_engine::operator::StateSize;
use weir_engine::runtime::job::JobStatus;
use weir_engine::source::PARTITION_ENDED;

use super::Registry;

/// Hot keys shown per keyed exchange.
pub const HOT_KEYS_SHOWN: usize = 10;

/// How `weir.*` spells a job's status.
pub fn status_name(s: &JobStatus) -> &'static str {
    match s {
        JobStatus::Running => "RUNNING",
        JobStatus::Restarting => "RESTARTING",
        JobStatus::Finished => "FINISHED",
        JobStatus::Failed(_) => "FAILED",
        JobStatus::Cancelled => "CANCELLED",
    }
}

/// One row of `weir.jobs`.
#[derive(Debug, Clone)]
pub struct JobRow {
    pub job_id: String,
    pub status: &'static str,
    pub statement: String,
    pub rows_in: u64,
    pub rows_out: u64,
    /// Rows dropped for any reason (see `weir.late_events`).
    pub rows_dropped: u64,
    pub watermark: Option<i64>,
    pub checkpoints_completed: u64,
    /// Restarts after a task failed (`restart-strategy.*`).
    pub restarts: u64,
    /// The latest task failure, restarted from or not: when and why.
    pub last_failure: Option<(i64, String)>,
}

/// One row of `weir.operators`: a task (a subtask of a stage and the chain
/// of operators it runs).
#[derive(Debug, Clone)]
pub struct OperatorRow {
    pub job_id: String,
    pub stage: u64,
    pub subtask: u64,
    pub operator: String,
    pub rows_in: u64,
    pub rows_out: u64,
    pub batches_in: u64,
    pub batches_out: u64,
    /// Messages waiting in its output channels, and their capacity.
    pub queue_depth: u64,
    pub queue_capacity: u64,
    pub busy_ns: u64,
    pub idle_ns: u64,
    pub backpressured_ns: u64,
    /// Its run time so far: the shares are of this.
    pub elapsed_ns: u64,
}

impl OperatorRow {
    /// `part` as a fraction of the task's run time.
    pub fn share(&self, part: u64) -> f64 {
        if self.elapsed_ns == 0 { 0.0 } else { part as f64 / self.elapsed_ns as f64 }
    }
}

/// One row of `weir.watermarks`: a source partition.
#[derive(Debug, Clone)]
pub struct WatermarkRow {
    pub job_id: String,
    pub table: String,
    pub subtask: u64,
    pub partition: u64,
    pub watermark: Option<i64>,
    pub max_event_time: Option<i64>,
    pub idle: bool,
    /// How far (ms) the greatest event time read is behind the wall clock.
    pub event_time_lag_ms: Option<i64>,
}

/// One row of `weir.kafka_lag`: a partition of a Kafka source.
#[derive(Debug, Clone)]
pub struct KafkaLagRow {
    pub job_id: String,
    pub table: String,
    pub topic: String,
    pub partition: u64,
    /// The next offset the job reads (from its reader), if it read any.
    pub read_offset: Option<u64>,
    /// The consumer group's committed offset (what a checkpoint holds).
    pub committed_offset: Option<u64>,
    pub high_watermark: u64,
    /// Records after the committed offset: what a restart would read again
    /// plus what is not read yet (the consumer group's lag).
    pub lag: Option<u64>,
    /// Records not read yet.
    pub read_lag: Option<u64>,
    pub event_time_lag_ms: Option<i64>,
}

/// One row of `weir.checkpoints`.
#[derive(Debug, Clone)]
pub struct CheckpointRow {
    pub job_id: String,
    pub checkpoint_id: u64,
    pub status: &'static str,
    pub started_ms: i64,
    pub duration_ms: u64,
    pub bytes: u64,
    /// The longest any task held inputs back aligning its barriers.
    pub aligned_wait_ms: Option<f64>,
}

/// One row of `weir.late_events`.
#[derive(Debug, Clone)]
pub struct LateRow {
    pub job_id: String,
    pub operator: String,
    pub reason: &'static str,
    pub rows: u64,
}

/// One row of `weir.hot_keys`.
#[derive(Debug, Clone)]
pub struct HotKeyRow {
    pub job_id: String,
    /// The stage whose output is partitioned by the key.
    pub stage: u64,
    pub keyed_by: String,
    pub rank: u64,
    pub key: String,
    pub rows: u64,
    pub share: f64,
    pub skew_ratio: f64,
}

/// One row of `weir.memory`: one stateful operator of one subtask; the
/// process's resident memory is the row with no job.
#[derive(Debug, Clone)]
pub struct MemoryRow {
    pub job_id: Option<String>,
    pub stage: Option<u64>,
    pub subtask: Option<u64>,
    /// Its state id (as `weir.savepoint` lists it) or, for state no
    /// checkpoint holds (a lookup cache), the operator's name.
    pub operator: String,
    pub bytes: u64,
    /// Keys it holds state for; `None` where state is not kept per key.
    pub keys: Option<u64>,
    /// Bytes it spilled to local disk (the spilling state backend).
    pub spilled_bytes: u64,
}

pub(super) fn shown(watermark: i64) -> Option<i64> {
    (watermark != WATERMARK_MIN && watermark != i64::MAX).then_some(watermark)
}

/// `weir.jobs`.
pub fn jobs(registry: &Registry) -> Vec<JobRow> {
    registry
        .jobs()
        .iter()
        .map(|j| {
            let h = &j.handle;
            let t = h.metrics.totals();
            JobRow {
                job_id: h.id.clone(),
                status: status_name(&h.status()),
                statement: h.statement.clone(),
                rows_in: t.rows_from_sources,
                rows_out: t.rows_to_sinks,
                rows_dropped: t.late_rows + t.invalid_time_rows + t.decode_errors + t.expired_state_rows,
                watermark: h.metrics.watermark().and_then(shown),
                checkpoints_completed: h.metrics.checkpoints().len() as u64,
                restarts: h.metrics.restarts(),
                last_failure: h.metrics.last_failure().map(|f| (f.at_ms, f.message)),
            }
        })
        .collect()
}

/// `weir.operators`.
pub fn operators(registry: &Registry) -> Vec<OperatorRow> {
    let mut rows = Vec::new();
    for j in registry.jobs() {
        for t in j.handle.metrics.tasks() {
            let (queue_depth, queue_capacity) = t.output_queue();
            rows.push(OperatorRow {
                job_id: j.handle.id.clone(),
                stage: t.stage as u64,
                subtask: t.subtask as u64,
                operator: t.name.clone(),
                rows_in: t.rows_in.load(Ordering::Relaxed),
                rows_out: t.rows_out.load(Ordering::Relaxed),
                batches_in: t.batches_in.load(Ordering::Relaxed),
                batches_out: t.batches_out.load(Ordering::Relaxed),
                queue_depth,
                queue_capacity,
                busy_ns: t.busy_ns(),
                idle_ns: t.idle_ns(),
                backpressured_ns: t.backpressured_ns(),
                elapsed_ns: t.elapsed_ns(),
            });
        }
    }
    rows
}

/// The source operators of a job: `(table, subtask, partitions)`.
pub(super) fn source_partitions(
    metrics: &JobMetrics,
) -> Vec<(String, u64, BTreeMap<usize, weir_engine::metrics::PartitionStatus>)> {
    metrics
        .operators()
        .iter()
        .filter_map(|m| {
            let table = m.operator.strip_prefix("Source: ")?;
            let parts = m.partitions.lock().unwrap_or_else(|p| p.into_inner()).clone();
            Some((table.to_string(), m.subtask as u64, parts))
        })
        .collect()
}

/// `weir.watermarks`.
pub fn watermarks(registry: &Registry) -> Vec<WatermarkRow> {
    let now = now_ms();
    let mut rows = Vec::new();
    for j in registry.jobs() {
        for (table, subtask, parts) in source_partitions(&j.handle.metrics) {
            for (p, s) in parts {
                if s.position == Some(PARTITION_ENDED) {
                    continue;
                }
                rows.push(WatermarkRow {
                    job_id: j.handle.id.clone(),
                    table: table.clone(),
                    subtask,
                    partition: p as u64,
                    watermark: shown(s.watermark),
                    max_event_time: s.max_event_time,
                    idle: s.idle,
                    event_time_lag_ms: s.max_event_time.map(|t| now - t),
                });
            }
        }
    }
    rows
}

/// `weir.kafka_lag`, for the jobs still running. Blocking: asks the brokers.
pub fn kafka_lag(registry: &Registry) -> Result<Vec<KafkaLagRow>, EngineError> {
    let now = now_ms();
    let mut rows = Vec::new();
    for j in registry.jobs() {
        if j.handle.status().is_done() {
            continue;
        }
        let read = source_partitions(&j.handle.metrics);
        for (table, connector) in &j.sources {
            for o in connector.broker_offsets()? {
                let status = read
                    .iter()
                    .filter(|(t, _, _)| t == table)
                    .find_map(|(_, _, parts)| parts.get(&o.partition).copied());
                let read_offset = status.and_then(|s| s.position).filter(|p| *p != PARTITION_ENDED);
                rows.push(KafkaLagRow {
                    job_id: j.handle.id.clone(),
                    table: table.clone(),
                    topic: o.topic.clone(),
                    partition: o.partition as u64,
                    read_offset,
                    committed_offset: o.committed,
                    high_watermark: o.high_watermark,
                    lag: o.committed.map(|c| o.high_watermark.saturating_sub(c)),
                    read_lag: read_offset.map(|r| o.high_watermark.saturating_sub(r)),
                    event_time_lag_ms: status.and_then(|s| s.max_event_time).map(|t| now - t),
                });
            }
        }
    }
    Ok(rows)
}

/// `weir.checkpoints`.
pub fn checkpoints(registry: &Registry) -> Vec<CheckpointRow> {
    let mut rows = Vec::new();
    for j in registry.jobs() {
        let m = &j.handle.metrics;
        for c in m.checkpoint_history() {
            rows.push(CheckpointRow {
                job_id: j.handle.id.clone(),
                checkpoint_id: c.id,
                status: if c.completed { "COMPLETED" } else { "FAILED" },
                started_ms: c.started_ms,
                duration_ms: c.duration_ms,
                bytes: c.bytes,
                aligned_wait_ms: m.alignment_ns(c.id).map(|ns| ns as f64 / 1e6),
            });
        }
    }
    rows
}

/// `weir.late_events`: per job, operator and reason, summed over subtasks.
pub fn late_events(registry: &Registry) -> Vec<LateRow> {
    let mut rows = Vec::new();
    for j in registry.jobs() {
        let mut by: BTreeMap<(String, &'static str), u64> = BTreeMap::new();
        for m in j.handle.metrics.operators() {
            let reasons: &[(&'static str, u64)] = if m.operator.starts_with("Source: ") {
                &[("decode_error", m.decode_errors.load(Ordering::Relaxed))]
            } else if m.operator.starts_with("Sink") || m.operator.starts_with("Late data") {
                &[]
            } else {
                &[
                    ("late", m.late_rows.load(Ordering::Relaxed)),
                    ("invalid_event_time", m.invalid_time_rows.load(Ordering::Relaxed)),
                    ("expired_state", m.expired_state_rows.load(Ordering::Relaxed)),
                ]
            };
            for (reason, n) in reasons {
                *by.entry((m.operator.clone(), reason)).or_insert(0) += n;
            }
        }
        rows.extend(by.into_iter().map(|((operator, reason), rows)| LateRow {
            job_id: j.handle.id.clone(),
            operator,
            reason,
            rows,
        }));
    }
    rows
}

/// `weir.hot_keys`: the sketches of a stage's subtasks merged, top keys.
pub fn hot_keys(registry: &Registry) -> Vec<HotKeyRow> {
    let mut rows = Vec::new();
    for j in registry.jobs() {
        let mut by_stage: BTreeMap<usize, (String, weir_engine::hot_keys::HotKeys)> = BTreeMap::new();
        for t in j.handle.metrics.tasks() {
            let Some(keyed_by) = t.keyed_by.get() else {
                continue;
            };
            let sketch = t.hot_keys.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let entry = by_stage.entry(t.stage).or_insert_with(|| (keyed_by.clone(), Default::default()));
            entry.1.merge(&sketch);
        }
        for (stage, (keyed_by, sketch)) in by_stage {
            for (rank, k) in sketch.top(HOT_KEYS_SHOWN).into_iter().enumerate() {
                rows.push(HotKeyRow {
                    job_id: j.handle.id.clone(),
                    stage: stage as u64,
                    keyed_by: keyed_by.clone(),
                    rank: rank as u64 + 1,
                    key: k.key,
                    rows: k.rows,
                    share: k.share,
                    skew_ratio: k.skew_ratio,
                });
            }
        }
    }
    rows
}

/// The process's resident memory, in bytes, where the platform tells it.
pub fn rss_bytes() -> Option<u64> {
    memory_stats::memory_stats().map(|m| m.physical_mem as u64)
}

/// `weir.memory`: the state of each stateful operator of each task (one
/// that checkpoints state, or holds some now), then the process's RSS.
pub fn memory(registry: &Registry) -> Vec<MemoryRow> {
    let mut rows = Vec::new();
    for j in registry.jobs() {
        for t in j.handle.metrics.tasks() {
            for op in t.state() {
                if !op.checkpointed && op.size == StateSize::default() {
                    continue;
                }
                rows.push(MemoryRow {
                    job_id: Some(j.handle.id.clone()),
                    stage: Some(t.stage as u64),
                    subtask: Some(t.subtask as u64),
                    operator: op.operator,
                    bytes: op.size.bytes as u64,
                    keys: op.size.keys.map(|k| k as u64),
                    spilled_bytes: op.size.spilled as u64,
                });
            }
        }
    }
    if let Some(rss) = rss_bytes() {
        rows.push(MemoryRow {
            job_id: None,
            stage: None,
            subtask: None,
            operator: "process (RSS)".into(),
            bytes: rss,
            keys: None,
            spilled_bytes: 0,
        });
    }
    rows
}
