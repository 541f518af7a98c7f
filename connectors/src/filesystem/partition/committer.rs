//! Deciding when a partition is committed, for all subtasks of a sink at
//! once — Flink's single `PartitionCommitter` task, here one object the
//! subtasks' writers share (they run in one process).
//!
//! A writer hands over, when its files of a checkpoint are committed, the
//! partitions it wrote rows to and its watermark at that checkpoint. A
//! partition is committed once every subtask has committed its files up to
//! the checkpoint that last brought the partition rows (so that every
//! subtask's rows of it are visible), and the trigger says so:
//! `process-time` once the delay has passed since the partition was first
//! handed over, `partition-time` once the least watermark of the subtasks
//! passes the partition's time plus the delay. When every subtask's input
//! has ended, every partition is committed. A partition committed and then
//! written again (late rows) is committed again, as in Flink.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use weir_engine::message::{EventTime, WATERMARK_END, WATERMARK_MIN};

use super::layout::PartitionLayout;
use super::policy::{CommitPolicy, Trigger};

/// A partition that has rows and is not committed yet.
#[derive(Debug, Clone)]
struct Pending {
    /// When the committer first saw it (epoch ms), for `process-time`.
    created_ms: i64,
    /// The checkpoint every subtask must have committed its files of.
    needs: u64,
    /// Its time cannot be extracted: said once, committed at the end.
    unreadable: bool,
}

/// How far one subtask's writer is.
#[derive(Debug, Clone, Copy)]
struct Progress {
    /// The checkpoint up to which its files are committed.
    committed: u64,
    /// Its watermark at that checkpoint.
    watermark: EventTime,
    /// Its input ended and every file it wrote is committed.
    finished: bool,
}

/// The partitions of one sink of one job waiting to be committed.
#[derive(Debug)]
pub(crate) struct Committer {
    policy: Arc<CommitPolicy>,
    layout: Arc<PartitionLayout>,
    subtasks: Vec<Progress>,
    pending: BTreeMap<String, Pending>,
}

impl Committer {
    /// A committer for `parallelism` writers, with the partitions a
    /// restored checkpoint still had to commit (directory → first seen).
    pub(crate) fn new(
        policy: Arc<CommitPolicy>,
        layout: Arc<PartitionLayout>,
        parallelism: usize,
        restored: BTreeMap<String, i64>,
    ) -> Self {
        let pending = restored
            .into_iter()
            .map(|(dir, created_ms)| {
                (
                    dir,
                    Pending {
                        created_ms,
                        needs: 0,
                        unreadable: false,
                    },
                )
            })
            .collect();
        let start = Progress {
            committed: 0,
            watermark: WATERMARK_MIN,
            finished: false,
        };
        Self {
            policy,
            layout,
            subtasks: vec![start; parallelism.max(1)],
            pending,
        }
    }

    /// Subtask `subtask` committed its files up to `checkpoint`, having
    /// written rows to `partitions` since it last handed some over, and
    /// had `watermark` there: the partitions to commit now.
    pub(crate) fn committed(
        &mut self,
        subtask: usize,
        checkpoint: u64,
        partitions: BTreeSet<String>,
        watermark: EventTime,
        now_ms: i64,
    ) -> Vec<String> {
        self.add(partitions, checkpoint, now_ms);
        if let Some(p) = self.subtasks.get_mut(subtask) {
            p.committed = p.committed.max(checkpoint);
            p.watermark = p.watermark.max(watermark);
        }
        self.ready(now_ms)
    }

    /// Subtask `subtask`'s input ended and its files are all committed,
    /// with rows in `partitions` since it last handed some over.
    pub(crate) fn finished(&mut self, subtask: usize, partitions: BTreeSet<String>, now_ms: i64) -> Vec<String> {
        // Its own files are visible: only the others' progress counts.
        self.add(partitions, 0, now_ms);
        if let Some(p) = self.subtasks.get_mut(subtask) {
            p.finished = true;
            p.watermark = WATERMARK_END;
        }
        self.ready(now_ms)
    }

    /// The partitions still to commit, with when each was first seen: for
    /// checkpoints, so that a restored job commits them.
    pub(crate) fn snapshot(&self) -> impl Iterator<Item = (&str, i64)> {
        self.pending.iter().map(|(dir, p)| (dir.as_str(), p.created_ms))
    }

    fn add(&mut self, partitions: BTreeSet<String>, checkpoint: u64, now_ms: i64) {
        for dir in partitions {
            let p = self.pending.entry(dir).or_insert(Pending {
                created_ms: now_ms,
                needs: 0,
                unreadable: false,
            });
            p.needs = p.needs.max(checkpoint);
        }
    }

    /// Takes the partitions whose commit is due out of `pending`.
    fn ready(&mut self, now_ms: i64) -> Vec<String> {
        let running: Vec<&Progress> = self.subtasks.iter().filter(|p| !p.finished).collect();
        if running.is_empty() {
            return std::mem::take(&mut self.pending).into_keys().collect();
        }
        let committed = running.iter().map(|p| p.committed).min().unwrap_or(0);
        let watermark = running.iter().map(|p| p.watermark).min().unwrap_or(WATERMARK_MIN);
        let keys: Vec<&str> = self.layout.keys().iter().map(|k| k.name.as_str()).collect();
        let (policy, layout) = (&self.policy, &self.layout);
        let mut due = Vec::new();
        for (dir, p) in self.pending.iter_mut() {
            if p.needs > committed {
                continue;
            }
            let ready = match policy.trigger {
                Trigger::ProcessTime => policy.delay_ms == 0 || now_ms > p.created_ms.saturating_add(policy.delay_ms),
                Trigger::PartitionTime => {
                    let values = layout.values_of(dir).unwrap_or_default();
                    match policy.partition_time(&keys, &values) {
                        Ok(time) => watermark > time.saturating_add(policy.delay_ms),
                        Err(why) => {
                            if !p.unreadable {
                                p.unreadable = true;
                                tracing::warn!(partition = %dir, "the partition's time cannot be extracted ({why}): it is committed when the input ends");
                            }
                            false
                        }
                    }
                }
            };
            if ready {
                due.push(dir.clone());
            }
        }
        for dir in &due {
            self.pending.remove(dir);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::super::layout::DEFAULT_PARTITION_NAME;
    use super::*;
    use crate::options::Options;

    const MINUTE: i64 = 60_000;
    const T10: i64 = 1_767_225_600_000 + 10 * 60 * MINUTE;

    fn committer(pairs: &[(&str, &str)], parallelism: usize) -> Committer {
        let mut map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        map.insert("sink.partition-commit.policy.kind".into(), "success-file".into());
        let policy = CommitPolicy::from_options(&Options::new("filesystem", &map))
            .unwrap()
            .unwrap();
        let schema = Schema::new(vec![
            Field::new("v", DataType::Int64, true),
            Field::new("dt", DataType::Utf8, true),
            Field::new("hm", DataType::Utf8, true),
        ]);
        let layout = PartitionLayout::new(&schema, &["dt".into(), "hm".into()], DEFAULT_PARTITION_NAME.into()).unwrap();
        Committer::new(Arc::new(policy), Arc::new(layout), parallelism, BTreeMap::new())
    }

    fn dirs(ds: &[&str]) -> BTreeSet<String> {
        ds.iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn partition_time_waits_for_every_subtask_and_the_watermark() {
        let mut c = committer(
            &[
                ("sink.partition-commit.trigger", "partition-time"),
                ("sink.partition-commit.delay", "1 min"),
                ("partition.time-extractor.timestamp-pattern", "$dt $hm:00"),
            ],
            2,
        );
        let (a, b) = ("dt=2026-01-01/hm=10%3A00", "dt=2026-01-01/hm=10%3A01");
        // Subtask 0 is past both minutes, subtask 1 has not reported.
        assert!(c.committed(0, 1, dirs(&[a, b]), T10 + 5 * MINUTE, 0).is_empty());
        // Subtask 1 reports checkpoint 1 with a watermark just at 10:01.
        assert!(
            c.committed(1, 1, dirs(&[a]), T10 + MINUTE, 0).is_empty(),
            "not past 10:00 + 1 min"
        );
        assert_eq!(c.committed(1, 2, dirs(&[]), T10 + MINUTE + 1, 0), vec![a.to_string()]);
        // b needs checkpoint 1 from both, and a watermark past 10:02.
        assert!(c.committed(1, 3, dirs(&[]), T10 + 2 * MINUTE, 0).is_empty());
        assert_eq!(
            c.committed(0, 4, dirs(&[]), T10 + 9 * MINUTE, 0),
            Vec::<String>::new(),
            "subtask 1 is at 10:02"
        );
        assert_eq!(c.committed(1, 4, dirs(&[]), T10 + 3 * MINUTE, 0), vec![b.to_string()]);
        // Late rows: committed again.
        assert!(
            c.committed(0, 5, dirs(&[a]), T10 + 9 * MINUTE, 0).is_empty(),
            "subtask 1 has not committed 5"
        );
        assert_eq!(c.committed(1, 5, dirs(&[]), T10 + 3 * MINUTE, 0), vec![a.to_string()]);
        assert_eq!(c.snapshot().count(), 0);
    }

    #[test]
    fn process_time_commits_after_the_delay_and_everything_at_the_end() {
        let mut c = committer(&[("sink.partition-commit.delay", "10 s")], 2);
        assert!(c.committed(0, 1, dirs(&["dt=1/hm=1"]), WATERMARK_MIN, 1_000).is_empty());
        assert!(c.committed(1, 1, dirs(&[]), WATERMARK_MIN, 5_000).is_empty());
        // hm=2 needs subtask 0's checkpoint 2; hm=1's delay has passed.
        assert_eq!(
            c.committed(1, 2, dirs(&["dt=1/hm=2"]), WATERMARK_MIN, 11_001),
            vec!["dt=1/hm=1".to_string()]
        );
        assert!(
            c.committed(0, 2, dirs(&[]), WATERMARK_MIN, 11_001).is_empty(),
            "hm=2 was first seen just now"
        );
        assert_eq!(c.snapshot().collect::<Vec<_>>(), vec![("dt=1/hm=2", 11_001)]);
        assert!(c.finished(0, dirs(&["dt=1/hm=3"]), 12_000).is_empty());
        assert_eq!(
            c.finished(1, dirs(&[]), 12_000),
            vec!["dt=1/hm=2".to_string(), "dt=1/hm=3".to_string()]
        );
    }

    #[test]
    fn zero_delay_commits_at_the_checkpoint_and_bad_times_wait_for_the_end() {
        let mut c = committer(&[], 1);
        assert_eq!(
            c.committed(0, 1, dirs(&["dt=1/hm=1"]), WATERMARK_MIN, 0),
            vec!["dt=1/hm=1".to_string()]
        );
        let mut c = committer(&[("sink.partition-commit.trigger", "partition-time")], 1);
        let default = "dt=__DEFAULT_PARTITION__/hm=1";
        assert!(c.committed(0, 1, dirs(&[default]), WATERMARK_END - 1, 0).is_empty());
        assert_eq!(c.finished(0, dirs(&[]), 0), vec![default.to_string()]);
    }
}
