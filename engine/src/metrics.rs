//! Counters that operators keep per batch (never per row) and that the
//! front doors read: rows in and out, and every row an operator dropped or a
//! source could not decode, with the reason.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::message::WATERMARK_MIN;

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
}

impl DropReason {
    /// Name as the late-data side table will spell it.
    pub fn as_str(&self) -> &'static str {
        match self {
            DropReason::Late => "late",
            DropReason::InvalidEventTime => "invalid_event_time",
            DropReason::DecodeError => "decode_error",
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
    /// The latest watermark (ms) a source subtask emitted, `WATERMARK_MIN`
    /// before its first, so that SHOW JOBS can tell how far event time got.
    pub watermark: AtomicI64,
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
        };
        c.fetch_add(rows, Ordering::Relaxed);
    }
}

/// One completed checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointStats {
    pub id: u64,
    /// From the trigger to the durable completion record.
    pub duration_ms: u64,
    /// State written, over all tasks.
    pub bytes: u64,
}

/// How the runtime names a source operator: `Source: <table>`.
const SOURCE: &str = "Source: ";

/// All counters of one job.
#[derive(Debug, Default)]
pub struct JobMetrics {
    operators: Mutex<Vec<Arc<OperatorMetrics>>>,
    checkpoints: Mutex<Vec<CheckpointStats>>,
}

/// Totals of a job, summed over subtasks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobTotals {
    pub late_rows: u64,
    pub invalid_time_rows: u64,
    /// Records the sources could not decode, whether or not they reached the
    /// `LATE DATA INTO` table.
    pub decode_errors: u64,
    pub rows_to_sinks: u64,
    /// Rows the sources read (the operators named `Source…`).
    pub rows_from_sources: u64,
    /// Rows written to the `LATE DATA INTO` table.
    pub rows_to_late_table: u64,
}

impl JobMetrics {
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
            watermark: AtomicI64::new(WATERMARK_MIN),
        });
        self.operators
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::clone(&m));
        m
    }

    /// Records a completed checkpoint.
    pub fn checkpoint_completed(&self, stats: CheckpointStats) {
        self.checkpoints.lock().unwrap_or_else(|p| p.into_inner()).push(stats);
    }

    /// Every completed checkpoint of the job, oldest first.
    pub fn checkpoints(&self) -> Vec<CheckpointStats> {
        self.checkpoints.lock().unwrap_or_else(|p| p.into_inner()).clone()
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
        let mut tables: Vec<String> = self
            .operators()
            .iter()
            .filter_map(|m| m.operator.strip_prefix(SOURCE))
            .map(str::to_string)
            .collect();
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
