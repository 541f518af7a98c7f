//! The dashboard's one reader of the jobs: every [`TICK`] it takes the
//! `weir.*` snapshots, turns counters into rates and shares over the last
//! interval, keeps a few minutes of state sizes, and publishes the result
//! for every page at once (a `watch` channel: a slow page skips samples,
//! it never holds the sampler up).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use weir_engine::runtime::graph::JobGraph;
use weir_sql::system::snapshot::{self, KafkaLagRow, OperatorRow};
use weir_sql::system::{Registry, pending};

use super::payload::*;
use super::rates::{level, rate, share};

/// How often the page is updated.
pub const TICK: Duration = Duration::from_secs(1);
/// Kafka lag asks the brokers: every this many ticks, off the workers.
const KAFKA_EVERY: u64 = 5;
/// Samples of state size kept per operator (5 minutes at one a second).
const HISTORY: usize = 300;
/// Checkpoints a job's page charts.
const CHECKPOINTS_SHOWN: usize = 50;

/// What the previous sample read of one task.
#[derive(Clone, Copy)]
struct TaskCounters {
    rows_in: u64,
    rows_out: u64,
    busy_ns: u64,
    idle_ns: u64,
    backpressured_ns: u64,
    elapsed_ns: u64,
}

impl From<&OperatorRow> for TaskCounters {
    fn from(o: &OperatorRow) -> Self {
        Self {
            rows_in: o.rows_in,
            rows_out: o.rows_out,
            busy_ns: o.busy_ns,
            idle_ns: o.idle_ns,
            backpressured_ns: o.backpressured_ns,
            elapsed_ns: o.elapsed_ns,
        }
    }
}

/// The previous sample, from which the next one's rates are taken.
#[derive(Default)]
pub struct Sampler {
    at: Option<Instant>,
    /// By (job, stage, subtask): a task's identity across samples (its
    /// metrics are new objects after a restart).
    tasks: HashMap<(String, u64, u64), TaskCounters>,
    /// By job: rows in and out.
    jobs: HashMap<String, (u64, u64)>,
    /// By (job, operator's state id): `(at_ms, bytes)`.
    history: HashMap<(String, String), VecDeque<(i64, u64)>>,
}

/// Starts sampling `registry` on the current runtime; the receiver holds
/// the latest sample.
pub fn spawn(registry: Arc<Registry>) -> watch::Receiver<Arc<Payload>> {
    let (tx, rx) = watch::channel(Arc::new(Payload::default()));
    tokio::spawn(async move {
        let mut sampler = Sampler::default();
        let mut kafka: Vec<KafkaLagRow> = Vec::new();
        let mut asking: Option<JoinHandle<Vec<KafkaLagRow>>> = None;
        let mut ticks = tokio::time::interval(TICK);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for n in 0u64.. {
            ticks.tick().await;
            // The brokers' answer when it has come; a slow broker leaves the
            // last one shown, and is not asked again meanwhile.
            if asking.as_ref().is_some_and(JoinHandle::is_finished)
                && let Some(done) = asking.take()
            {
                kafka = done.await.unwrap_or_default();
            }
            if asking.is_none() && n % KAFKA_EVERY == 0 {
                let registry = Arc::clone(&registry);
                asking = Some(tokio::task::spawn_blocking(move || {
                    snapshot::kafka_lag(&registry).unwrap_or_else(|e| {
                        tracing::debug!(error = %e, "dashboard: Kafka lag unavailable");
                        Vec::new()
                    })
                }));
            }
            let payload = sampler.sample(&registry, &kafka, Instant::now(), weir_engine::message::now_ms());
            if tx.send(Arc::new(payload)).is_err() {
                return;
            }
        }
    });
    rx
}

impl Sampler {
    /// One sample of every job, taken at `now` (`at_ms` on the wall clock).
    pub fn sample(&mut self, registry: &Registry, kafka: &[KafkaLagRow], now: Instant, at_ms: i64) -> Payload {
        let seconds = self.at.map_or(0.0, |at| now.duration_since(at).as_secs_f64());
        self.at = Some(now);
        let graphs: HashMap<String, (Arc<JobGraph>, Option<String>)> = registry
            .jobs()
            .iter()
            .map(|j| {
                let h = &j.handle;
                let diagnosis = (!h.status().is_done()).then(|| pending::job_diagnosis(&h.metrics)).flatten();
                (h.id.clone(), (Arc::clone(&h.graph), diagnosis))
            })
            .collect();
        let mut tasks: BTreeMap<(String, u64), Vec<SubtaskView>> = BTreeMap::new();
        let mut seen = HashMap::new();
        for o in snapshot::operators(registry) {
            let key = (o.job_id.clone(), o.stage, o.subtask);
            let now_c = TaskCounters::from(&o);
            let before = self.tasks.get(&key).copied().filter(|b| b.elapsed_ns <= now_c.elapsed_ns);
            let view = SubtaskView {
                subtask: o.subtask,
                rows_in: o.rows_in,
                rows_out: o.rows_out,
                rows_in_per_s: before.and_then(|b| rate(b.rows_in, o.rows_in, seconds)),
                rows_out_per_s: before.and_then(|b| rate(b.rows_out, o.rows_out, seconds)),
                busy: before.and_then(|b| share(b.busy_ns, o.busy_ns, b.elapsed_ns, o.elapsed_ns)),
                idle: before.and_then(|b| share(b.idle_ns, o.idle_ns, b.elapsed_ns, o.elapsed_ns)),
                backpressured: before
                    .and_then(|b| share(b.backpressured_ns, o.backpressured_ns, b.elapsed_ns, o.elapsed_ns)),
                queue_depth: o.queue_depth,
                queue_capacity: o.queue_capacity,
            };
            seen.insert(key, now_c);
            tasks.entry((o.job_id, o.stage)).or_default().push(view);
        }
        self.tasks = seen;

        let mut jobs: Vec<JobView> = snapshot::jobs(registry)
            .into_iter()
            .map(|j| {
                let before = self.jobs.insert(j.job_id.clone(), (j.rows_in, j.rows_out));
                let (graph, diagnosis) = graphs.get(&j.job_id).cloned().unwrap_or_default();
                let stages = graph
                    .stages
                    .iter()
                    .map(|s| stage_view(s, tasks.remove(&(j.job_id.clone(), s.stage as u64)).unwrap_or_default()))
                    .collect();
                JobView {
                    rows_in_per_s: before.and_then(|(i, _)| rate(i, j.rows_in, seconds)),
                    rows_out_per_s: before.and_then(|(_, o)| rate(o, j.rows_out, seconds)),
                    id: j.job_id,
                    status: j.status,
                    statement: j.statement,
                    rows_in: j.rows_in,
                    rows_out: j.rows_out,
                    rows_dropped: j.rows_dropped,
                    watermark: j.watermark,
                    checkpoints_completed: j.checkpoints_completed,
                    restarts: j.restarts,
                    last_failure: j.last_failure.map(|(_, m)| m),
                    diagnosis,
                    stages,
                    explain: graph.explain.clone(),
                    watermarks: Vec::new(),
                    kafka_lag: Vec::new(),
                    dropped: Vec::new(),
                    checkpoints: Vec::new(),
                    state: Vec::new(),
                    hot_keys: Vec::new(),
                    pending: Vec::new(),
                }
            })
            .collect();
        let mut index: HashMap<String, usize> = jobs.iter().enumerate().map(|(i, j)| (j.id.clone(), i)).collect();
        let mut job = |id: &str| index.get_mut(id).map(|i| *i);

        for w in snapshot::watermarks(registry) {
            if let Some(i) = job(&w.job_id) {
                jobs[i].watermarks.push(WatermarkView {
                    table: w.table,
                    subtask: w.subtask,
                    partition: w.partition,
                    watermark: w.watermark,
                    max_event_time: w.max_event_time,
                    idle: w.idle,
                    lag_ms: w.event_time_lag_ms,
                });
            }
        }
        for k in kafka {
            if let Some(i) = job(&k.job_id) {
                jobs[i].kafka_lag.push(KafkaLagView {
                    table: k.table.clone(),
                    topic: k.topic.clone(),
                    partition: k.partition,
                    lag: k.lag,
                    read_lag: k.read_lag,
                });
            }
        }
        for l in snapshot::late_events(registry) {
            if let Some(i) = job(&l.job_id) {
                jobs[i].dropped.push(DroppedView { operator: l.operator, reason: l.reason, rows: l.rows });
            }
        }
        for c in snapshot::checkpoints(registry) {
            if let Some(i) = job(&c.job_id) {
                jobs[i].checkpoints.push(CheckpointView {
                    id: c.checkpoint_id,
                    status: c.status,
                    started_ms: c.started_ms,
                    duration_ms: c.duration_ms,
                    bytes: c.bytes,
                    aligned_wait_ms: c.aligned_wait_ms,
                });
            }
        }
        for j in &mut jobs {
            let skip = j.checkpoints.len().saturating_sub(CHECKPOINTS_SHOWN);
            j.checkpoints.drain(..skip);
        }
        for h in snapshot::hot_keys(registry) {
            if let Some(i) = job(&h.job_id) {
                jobs[i].hot_keys.push(HotKeyView {
                    stage: h.stage,
                    keyed_by: h.keyed_by,
                    rank: h.rank,
                    key: h.key,
                    rows: h.rows,
                    share: h.share,
                    skew_ratio: h.skew_ratio,
                });
            }
        }
        self.state(registry, &mut jobs, &mut job, at_ms);
        for p in oldest_pending(pending::pending_windows(registry)) {
            if let Some(i) = job(&p.0) {
                jobs[i].pending.push(p.1);
            }
        }
        Payload { at_ms, jobs }
    }

    /// Each operator's state summed over its subtasks, with its history.
    fn state(
        &mut self,
        registry: &Registry,
        jobs: &mut [JobView],
        job: &mut impl FnMut(&str) -> Option<usize>,
        at_ms: i64,
    ) {
        let mut sums: BTreeMap<(String, String), (u64, Option<u64>)> = BTreeMap::new();
        for m in snapshot::memory(registry) {
            let Some(id) = m.job_id else { continue };
            let sum = sums.entry((id, m.operator)).or_insert((0, None));
            sum.0 += m.bytes;
            if let Some(k) = m.keys {
                sum.1 = Some(sum.1.unwrap_or(0) + k);
            }
        }
        let mut kept = HashMap::new();
        for ((id, operator), (bytes, keys)) in sums {
            let key = (id.clone(), operator.clone());
            let mut history = self.history.remove(&key).unwrap_or_default();
            if history.len() == HISTORY {
                history.pop_front();
            }
            history.push_back((at_ms, bytes));
            if let Some(i) = job(&id) {
                let unbounded = jobs[i]
                    .stages
                    .iter()
                    .flat_map(|s| &s.operators)
                    .any(|o| o.unbounded && o.state_id.as_deref() == Some(operator.as_str()));
                jobs[i].state.push(StateView {
                    operator,
                    bytes,
                    keys,
                    unbounded,
                    history: history.iter().copied().collect(),
                });
            }
            kept.insert(key, history);
        }
        self.history = kept;
    }
}

/// A stage of the graph with its tasks' figures.
fn stage_view(s: &weir_engine::runtime::graph::StageInfo, mut subtasks: Vec<SubtaskView>) -> StageView {
    subtasks.sort_by_key(|t| t.subtask);
    let sum = |f: fn(&SubtaskView) -> Option<f64>| {
        let known: Vec<f64> = subtasks.iter().filter_map(f).collect();
        (!known.is_empty()).then(|| known.iter().sum::<f64>())
    };
    let mean = |f: fn(&SubtaskView) -> Option<f64>| {
        let known: Vec<f64> = subtasks.iter().filter_map(f).collect();
        (!known.is_empty()).then(|| known.iter().sum::<f64>() / known.len() as f64)
    };
    let backpressured = subtasks.iter().filter_map(|t| t.backpressured).reduce(f64::max);
    StageView {
        stage: s.stage,
        parallelism: s.parallelism,
        source: s.source.clone(),
        inputs: s
            .inputs
            .iter()
            .map(|e| EdgeView { from: e.from, partitioning: e.partitioning, keys: e.keys.clone() })
            .collect(),
        operators: s
            .operators
            .iter()
            .map(|o| OperatorView { name: o.name.clone(), state_id: o.state_id.clone(), unbounded: o.unbounded })
            .collect(),
        sink: s.sink.clone(),
        late_sink: s.late_sink.clone(),
        rows_in: subtasks.iter().map(|t| t.rows_in).sum(),
        rows_out: subtasks.iter().map(|t| t.rows_out).sum(),
        rows_in_per_s: sum(|t| t.rows_in_per_s),
        rows_out_per_s: sum(|t| t.rows_out_per_s),
        busy: mean(|t| t.busy),
        idle: mean(|t| t.idle),
        backpressured,
        level: level(backpressured),
        queue_depth: subtasks.iter().map(|t| t.queue_depth).sum(),
        queue_capacity: subtasks.iter().map(|t| t.queue_capacity).sum(),
        subtasks,
    }
}

/// Per (job, operator, subtask), the open window that ends first and how
/// many key groups have one open (the table has a row per key group).
fn oldest_pending(rows: Vec<pending::PendingRow>) -> Vec<(String, PendingView)> {
    let mut by: BTreeMap<(String, String, u64), (u64, pending::PendingRow)> = BTreeMap::new();
    for r in rows {
        let key = (r.job_id.clone(), r.operator.clone(), r.subtask);
        match by.get_mut(&key) {
            Some((n, oldest)) => {
                *n += 1;
                if r.window_end < oldest.window_end {
                    *oldest = r;
                }
            }
            None => {
                by.insert(key, (1, r));
            }
        }
    }
    by.into_values()
        .map(|(key_groups, r)| {
            let view = PendingView {
                operator: r.operator,
                subtask: r.subtask,
                key_groups,
                window_start: r.window_start,
                window_end: r.window_end,
                watermark: r.watermark,
                diagnosis: r.diagnosis,
            };
            (r.job_id, view)
        })
        .collect()
}
