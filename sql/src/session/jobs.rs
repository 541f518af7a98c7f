//! Starting a session's jobs: the id a durable job resumes under, its
//! checkpointing and restart settings, and `SHOW JOBS`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampMillisecondArray, UInt64Array};
use weir_engine::checkpoint::coordinator::CheckpointConfig;
use weir_engine::plan::StageInput;
use weir_engine::runtime::job::{self, Durability, JobHandle};
use weir_engine::spill::StateBackend;

use super::{Planned, Session};
use crate::error::{Result, SqlError};
use crate::results;
use crate::system::{JobEntry, pending};

impl Session {
    /// Starts a planned job and adopts the table it created, if any. An
    /// `INSERT` job is durable: its id derives from its statement, so
    /// running it again (after a crash, at any parallelism) finds its state
    /// under `state.dir` and resumes from its latest checkpoint.
    pub(super) fn start(&mut self, mut planned: Planned, text: &str, durable: bool) -> Result<JobHandle> {
        planned.plan = crate::planner::stream::uid::apply_uids(planned.plan, text)?;
        let (id, durability) = if durable {
            // The tables' definitions belong to the job: the same statement
            // over another topic or path is another job, not a resumption.
            let mut identity = text.to_string();
            for table in planned.plan.tables() {
                if let Some(def) = self.catalog.get(table) {
                    identity.push('\n');
                    identity.push_str(&def.ddl);
                }
            }
            let id = stable_job_id(&identity);
            if self.jobs.iter().any(|j| j.id == id && !j.status().is_done()) {
                return Err(SqlError::plan(format!("this statement already runs as job '{id}'"), None));
            }
            let durability = match self.settings.checkpointing() {
                Some((interval, timeout, min_pause)) => Some(Durability {
                    config: CheckpointConfig { interval, timeout, min_pause, mode: self.settings.checkpoint_mode() },
                    dir: self.settings.state_dir().join(&id),
                    savepoint: self.settings.savepoint_path(),
                    checkpoints: self.settings.checkpoints_dir(),
                    allow_fresh_start: self.settings.allow_fresh_start(),
                    restart: self.settings.restart_strategy(),
                    ignore_unclaimed_state: self.settings.ignore_unclaimed_state(),
                }),
                None => None,
            };
            (id, durability)
        } else {
            (new_job_id(), None)
        };
        let sources = planned
            .plan
            .stages
            .iter()
            .filter_map(|s| match &s.input {
                StageInput::Source(src) => Some((src.table.clone(), Arc::clone(&src.connector))),
                _ => None,
            })
            .collect();
        if let Some(budget) = self.settings.state_budget() {
            // The job's own directory: a durable job's files left by a
            // killed process are found (and removed) when it runs again.
            let dir = self.settings.state_dir().join("spill").join(&id);
            planned.plan.state = StateBackend::spilling(budget, &dir)?;
        }
        let handle = job::start(planned.plan, id, text.to_string(), durability)?;
        self.system.add(JobEntry { handle: handle.clone(), sources });
        for table in planned.created_tables {
            self.register(table)?;
        }
        self.jobs.push(handle.clone());
        Ok(handle)
    }

    pub(super) fn show_jobs(&self) -> RecordBatch {
        let mut ids = Vec::new();
        let mut status = Vec::new();
        let mut statements = Vec::new();
        let mut rows_out = Vec::new();
        let mut rows_in = Vec::new();
        let mut late = Vec::new();
        let mut watermarks = Vec::new();
        let mut diagnoses = Vec::new();
        for j in &self.jobs {
            ids.push(j.id.clone());
            status.push(format!("{:?}", j.status()));
            statements.push(j.statement.clone());
            let t = j.metrics.totals();
            rows_out.push(t.rows_to_sinks);
            rows_in.push(t.rows_from_sources);
            watermarks.push(j.metrics.watermark());
            // Why a running job's oldest open window has not fired (an
            // ended job fires nothing more).
            diagnoses.push(if j.status().is_done() { None } else { pending::job_diagnosis(&j.metrics) });
            late.push(t.late_rows + t.invalid_time_rows + t.decode_errors + t.expired_state_rows);
        }
        let schema = results::jobs();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(ids)),
            Arc::new(StringArray::from(status)),
            Arc::new(UInt64Array::from(rows_out)),
            Arc::new(UInt64Array::from(rows_in)),
            Arc::new(UInt64Array::from(late)),
            Arc::new(TimestampMillisecondArray::from(watermarks)),
            Arc::new(StringArray::from(diagnoses)),
            Arc::new(StringArray::from(statements)),
        ];
        RecordBatch::try_new(schema, columns).expect("columns match the schema")
    }
}

/// The id of a durable job: the same statement over the same table
/// definitions gets the same id (FNV-1a), hence the same state and
/// part-file names when it runs again — at any parallelism, since state is
/// kept by key group.
fn stable_job_id(statement: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in statement.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// A job id that is unique on this machine: part files are named after it.
fn new_job_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:016x}", nanos ^ n.rotate_right(16) ^ (std::process::id() as u64).rotate_left(40))
}
