//! `weir.pending_windows` and the diagnosis `SHOW JOBS` shows: the question
//! asked most about any streaming engine, "why is there no output?",
//! answered from the jobs' metrics. A window fires when the watermark
//! passes its end; the watermark is the least of the source partitions'
//! that are not idle, so the partition with the least watermark behind the
//! window's end is what it waits for. A partition that is merely silent
//! holds it back for ever unless `'source.idle-timeout'` marks it idle.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, SchemaRef, TimeUnit};
use datafusion::error::Result as DfResult;
use weir_engine::message::now_ms;
use weir_engine::metrics::{JobMetrics, PartitionStatus};
use weir_engine::source::PARTITION_ENDED;
use weir_engine::window::spec::Millis;

use super::Registry;
use super::snapshot::{shown, source_partitions};

/// A partition without rows for this long is silent (rather than behind
/// in event time): the idle-timeout hint is for it.
pub const SILENT_MS: i64 = 5_000;

/// One row of `weir.pending_windows`: a key group of a window operator
/// subtask, its oldest open window, and what holds that window back.
#[derive(Debug, Clone)]
pub struct PendingRow {
    pub job_id: String,
    pub operator: String,
    pub subtask: u64,
    pub key_group: u64,
    pub window_start: i64,
    pub window_end: i64,
    /// The operator's watermark, once it has one.
    pub watermark: Option<i64>,
    /// The source partition the window waits for, if one is to blame.
    pub blocker: Option<Blocker>,
    pub diagnosis: String,
}

/// A source partition that holds a window back.
#[derive(Debug, Clone, PartialEq)]
pub struct Blocker {
    pub table: String,
    pub partition: u64,
    pub watermark: Option<i64>,
    pub max_event_time: Option<i64>,
    pub idle: bool,
    /// How long since its last row (or since it began to be read).
    pub silent_ms: Option<i64>,
}

/// One source partition as the diagnosis weighs it.
#[derive(Debug, Clone)]
struct Partition {
    table: String,
    partition: u64,
    status: PartitionStatus,
    idle_timeout: Option<Duration>,
}

impl Partition {
    fn silent_ms(&self, now: i64) -> Option<i64> {
        self.status.last_activity_ms.map(|at| (now - at).max(0))
    }

    fn blocker(&self, now: i64) -> Blocker {
        Blocker {
            table: self.table.clone(),
            partition: self.partition,
            watermark: shown(self.status.watermark),
            max_event_time: self.status.max_event_time,
            idle: self.status.idle,
            silent_ms: self.silent_ms(now),
        }
    }
}

/// The partitions of a job's sources that have not ended.
fn partitions(metrics: &JobMetrics) -> Vec<Partition> {
    let operators = metrics.operators();
    let mut out = Vec::new();
    for (table, subtask, parts) in source_partitions(metrics) {
        let idle_timeout = operators
            .iter()
            .find(|m| m.subtask as u64 == subtask && m.operator.strip_prefix("Source: ") == Some(table.as_str()))
            .and_then(|m| m.idle_timeout.get().copied());
        for (p, status) in parts {
            if status.position != Some(PARTITION_ENDED) {
                out.push(Partition { table: table.clone(), partition: p as u64, status, idle_timeout });
            }
        }
    }
    out
}

/// Why the window ending at `end` has not fired, given the operator's
/// watermark and the job's source partitions at `now`: the partition to
/// blame, if one is, and one line saying so.
fn diagnose(end: i64, watermark: Option<i64>, partitions: &[Partition], now: i64) -> (Option<Blocker>, String) {
    let window = format!("window ending {}", instant(end));
    // The window fires once the watermark reaches `end - 1`; partitions
    // marked idle hold nothing back.
    let behind = partitions.iter().filter(|p| !p.status.idle && p.status.watermark < end - 1);
    let blamed = behind.min_by_key(|p| (p.status.watermark, -p.silent_ms(now).unwrap_or(0)));
    let Some(blamed) = blamed else {
        let text = if !partitions.is_empty() && partitions.iter().all(|p| p.status.idle) {
            format!("{window} waits for rows: every source partition is idle")
        } else {
            let now_at = watermark.map_or_else(|| "none yet".to_string(), instant);
            format!("{window} waits for the watermark to reach the operator (now {now_at})")
        };
        return (None, text);
    };
    let name = format!("{}-{}", blamed.table, blamed.partition);
    let own = shown(blamed.status.watermark).map_or_else(|| "none yet".to_string(), instant);
    let silent = blamed.silent_ms(now).unwrap_or(0);
    let mut text = format!("{window} waits for partition {name} (watermark {own})");
    if silent >= SILENT_MS {
        text.push_str(&format!(", silent for {}", duration(silent)));
        // Marking it idle helps only if another partition is ahead: with
        // every partition idle the watermark stays where it is.
        let others_ahead = partitions.iter().any(|p| !p.status.idle && p.status.watermark > blamed.status.watermark);
        match (others_ahead, blamed.idle_timeout) {
            (true, Some(t)) => text.push_str(&format!(
                "; it stops holding windows back once silent for 'source.idle-timeout' ({})",
                Millis(t.as_millis() as i64)
            )),
            (true, None) => text.push_str("; set 'source.idle-timeout'"),
            (false, _) => text.push_str("; no partition has rows past the window yet"),
        }
    } else {
        text.push_str("; its rows are behind in event time");
    }
    (Some(blamed.blocker(now)), text)
}

/// `weir.pending_windows`, for the jobs still running (a job that ended
/// fires nothing more).
pub fn pending_windows(registry: &Registry) -> Vec<PendingRow> {
    let now = now_ms();
    let mut rows = Vec::new();
    for j in registry.jobs() {
        if j.handle.status().is_done() {
            continue;
        }
        let metrics = &j.handle.metrics;
        let parts = partitions(metrics);
        for m in metrics.operators() {
            let open = m.pending_windows.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let watermark = shown(m.watermark.load(std::sync::atomic::Ordering::Relaxed));
            for w in open {
                let (blocker, diagnosis) = diagnose(w.end, watermark, &parts, now);
                rows.extend(w.key_groups.iter().map(|g| PendingRow {
                    job_id: j.handle.id.clone(),
                    operator: m.operator.clone(),
                    subtask: m.subtask as u64,
                    key_group: g as u64,
                    window_start: w.start,
                    window_end: w.end,
                    watermark,
                    blocker: blocker.clone(),
                    diagnosis: diagnosis.clone(),
                }));
            }
        }
    }
    rows
}

/// The diagnosis of a job's oldest open window, for `SHOW JOBS`; `None`
/// when no window waits.
pub fn job_diagnosis(metrics: &JobMetrics) -> Option<String> {
    let mut oldest: Option<(i64, Option<i64>)> = None;
    for m in metrics.operators() {
        let first = m.pending_windows.lock().unwrap_or_else(|p| p.into_inner()).first().map(|w| w.end);
        if let Some(end) = first
            && oldest.is_none_or(|(e, _)| end < e)
        {
            oldest = Some((end, shown(m.watermark.load(std::sync::atomic::Ordering::Relaxed))));
        }
    }
    let (end, watermark) = oldest?;
    Some(diagnose(end, watermark, &partitions(metrics), now_ms()).1)
}

/// An instant as the diagnosis spells it (UTC, like the tables' timestamps).
fn instant(ms: i64) -> String {
    let format = if ms % 1000 == 0 { "%Y-%m-%d %H:%M:%S" } else { "%Y-%m-%d %H:%M:%S%.3f" };
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(|| format!("{ms} ms"), |t| t.format(format).to_string())
}

/// A length of time, rounded as a person would say it.
fn duration(ms: i64) -> String {
    match ms {
        ..60_000 => format!("{} s", ms / 1000),
        ..3_600_000 => format!("{} min", ms / 60_000),
        _ => format!("{} h {} min", ms / 3_600_000, ms % 3_600_000 / 60_000),
    }
}

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, None)
}

/// The columns of `weir.pending_windows`.
pub(super) fn fields() -> Vec<Field> {
    vec![
        Field::new("job_id", DataType::Utf8, false),
        Field::new("operator", DataType::Utf8, false),
        Field::new("subtask", DataType::UInt64, false),
        Field::new("key_group", DataType::UInt64, false),
        Field::new("window_start", ts(), false),
        Field::new("window_end", ts(), false),
        Field::new("watermark", ts(), true),
        Field::new("source_table", DataType::Utf8, true),
        Field::new("partition", DataType::UInt64, true),
        Field::new("partition_watermark", ts(), true),
        Field::new("partition_max_event_time", ts(), true),
        Field::new("partition_idle", DataType::Boolean, true),
        Field::new("partition_silent_ms", DataType::Int64, true),
        Field::new("diagnosis", DataType::Utf8, false),
    ]
}

/// A snapshot of `weir.pending_windows` as a batch of `schema` ([`fields`]).
pub(super) fn batch(registry: &Registry, schema: SchemaRef) -> DfResult<RecordBatch> {
    let rows = pending_windows(registry);
    let b = |f: fn(&Blocker) -> Option<i64>| -> ArrayRef {
        Arc::new(TimestampMillisecondArray::from(
            rows.iter().map(|r| r.blocker.as_ref().and_then(f)).collect::<Vec<_>>(),
        ))
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.job_id.as_str()))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.operator.as_str()))),
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.subtask))),
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.key_group))),
        Arc::new(TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.window_start))),
        Arc::new(TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.window_end))),
        Arc::new(TimestampMillisecondArray::from(rows.iter().map(|r| r.watermark).collect::<Vec<_>>())),
        Arc::new(StringArray::from(
            rows.iter().map(|r| r.blocker.as_ref().map(|b| b.table.as_str())).collect::<Vec<_>>(),
        )),
        Arc::new(UInt64Array::from(rows.iter().map(|r| r.blocker.as_ref().map(|b| b.partition)).collect::<Vec<_>>())),
        b(|b| b.watermark),
        b(|b| b.max_event_time),
        Arc::new(BooleanArray::from(rows.iter().map(|r| r.blocker.as_ref().map(|b| b.idle)).collect::<Vec<_>>())),
        Arc::new(Int64Array::from(
            rows.iter().map(|r| r.blocker.as_ref().and_then(|b| b.silent_ms)).collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.diagnosis.as_str()))),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_engine::message::WATERMARK_MIN;

    const NOW: i64 = 1_767_225_600_000 + 3_600_000;
    const END: i64 = 1_767_225_610_000;

    fn part(partition: u64, watermark: i64, idle: bool, silent_ms: i64, idle_timeout: Option<Duration>) -> Partition {
        Partition {
            table: "orders".into(),
            partition,
            status: PartitionStatus {
                watermark,
                max_event_time: (watermark != WATERMARK_MIN).then_some(watermark + 1_000),
                idle,
                position: Some(1),
                last_activity_ms: Some(NOW - silent_ms),
            },
            idle_timeout,
        }
    }

    /// The partition with the least watermark behind the window's end is
    /// blamed; the idle-timeout hint only when it is silent and another
    /// partition is ahead (marking it idle would let the window fire).
    #[test]
    fn the_least_partition_behind_the_window_is_blamed() {
        let silent = part(3, END - 9_000, false, 12 * 60_000, None);
        let busy = part(0, END + 5_000, false, 100, None);
        let (blocker, text) = diagnose(END, Some(END - 9_000), &[busy.clone(), silent.clone()], NOW);
        let blocker = blocker.expect("a partition to blame");
        assert_eq!((blocker.partition, blocker.idle, blocker.silent_ms), (3, false, Some(12 * 60_000)));
        assert_eq!(
            text,
            "window ending 2026-01-01 00:00:10 waits for partition orders-3 (watermark 2026-01-01 00:00:01), \
             silent for 12 min; set 'source.idle-timeout'"
        );

        // With a timeout set, it says when the partition stops counting.
        let timed = part(3, END - 9_000, false, 12_000, Some(Duration::from_secs(30)));
        let (_, text) = diagnose(END, None, &[busy.clone(), timed], NOW);
        assert!(
            text.ends_with(
                "silent for 12 s; it stops holding windows back once silent for 'source.idle-timeout' (30 s)"
            ),
            "{text}"
        );

        // Once idle it is not blamed: the window waits for nothing at the
        // sources (its watermark is on its way).
        let idle = part(3, END - 9_000, true, 12 * 60_000, None);
        let (blocker, text) = diagnose(END, Some(END - 9_000), &[busy.clone(), idle.clone()], NOW);
        assert_eq!(blocker, None);
        assert!(!text.contains("idle-timeout") && text.contains("waits for the watermark"), "{text}");

        // A partition with rows, behind in event time: no hint.
        let slow = part(1, END - 2_000, false, 200, None);
        let (blocker, text) = diagnose(END, None, &[busy.clone(), slow], NOW);
        assert_eq!(blocker.map(|b| b.partition), Some(1));
        assert!(text.ends_with("its rows are behind in event time") && !text.contains("idle-timeout"), "{text}");

        // Every partition silent and behind: an idle timeout would not help.
        let (_, text) = diagnose(END, None, &[silent.clone(), part(0, END - 9_000, false, 60_000, None)], NOW);
        assert!(text.ends_with("no partition has rows past the window yet"), "{text}");

        // A partition that never had a row holds the watermark at its start.
        let never = part(2, WATERMARK_MIN, false, 7_000, None);
        let (blocker, text) = diagnose(END, None, &[busy, never, silent], NOW);
        assert_eq!(blocker.map(|b| (b.partition, b.watermark)), Some((2, None)));
        assert!(text.contains("orders-2 (watermark none yet), silent for 7 s; set 'source.idle-timeout'"), "{text}");

        let (blocker, text) = diagnose(END, None, &[idle], NOW);
        assert_eq!(blocker, None);
        assert!(text.ends_with("every source partition is idle"), "{text}");
    }

    #[test]
    fn times_read_as_a_person_says_them() {
        assert_eq!(duration(59_999), "59 s");
        assert_eq!(duration(12 * 60_000 + 5), "12 min");
        assert_eq!(duration(3 * 3_600_000 + 5 * 60_000), "3 h 5 min");
        assert_eq!(instant(END + 250), "2026-01-01 00:00:10.250");
    }
}
