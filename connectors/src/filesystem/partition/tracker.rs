//! One sink subtask's side of partition commits: which partitions it wrote
//! rows to in each checkpoint, handed to the shared [`Committer`] once that
//! checkpoint's files are committed, and what a checkpoint must remember so
//! that a restored job still commits them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use weir_engine::message::{EventTime, WATERMARK_MIN};

use super::committer::Committer;

/// A subtask's partitions on their way to the committer.
#[derive(Debug)]
pub(crate) struct CommitTracker {
    committer: Arc<Mutex<Committer>>,
    subtask: usize,
    /// Partitions with rows since the last checkpoint.
    fresh: BTreeSet<String>,
    /// Per checkpoint prepared and not committed yet, its partitions and
    /// the watermark when it was taken.
    prepared: BTreeMap<u64, (BTreeSet<String>, EventTime)>,
    watermark: EventTime,
}

impl CommitTracker {
    pub(crate) fn new(committer: Arc<Mutex<Committer>>, subtask: usize) -> Self {
        Self {
            committer,
            subtask,
            fresh: BTreeSet::new(),
            prepared: BTreeMap::new(),
            watermark: WATERMARK_MIN,
        }
    }

    /// Rows were written to partition `dir`.
    pub(crate) fn wrote(&mut self, dir: &str) {
        if !self.fresh.contains(dir) {
            self.fresh.insert(dir.to_string());
        }
    }

    pub(crate) fn watermark(&mut self, watermark: EventTime) {
        self.watermark = self.watermark.max(watermark);
    }

    /// Checkpoint `checkpoint` is taken: the partitions of what is
    /// prepared for it wait for its commit. Returns the partitions that a
    /// job restored from this checkpoint must still commit (with when each
    /// was first seen): those not handed over yet and those the committer
    /// holds.
    pub(crate) fn prepare(&mut self, checkpoint: u64, now_ms: i64) -> BTreeMap<String, i64> {
        let fresh = std::mem::take(&mut self.fresh);
        let entry = self
            .prepared
            .entry(checkpoint)
            .or_insert_with(|| (BTreeSet::new(), self.watermark));
        entry.0.extend(fresh);
        entry.1 = self.watermark;
        let mut state: BTreeMap<String, i64> = self
            .prepared
            .values()
            .flat_map(|(dirs, _)| dirs.iter().map(|d| (d.clone(), now_ms)))
            .collect();
        let committer = self.committer.lock().unwrap_or_else(|e| e.into_inner());
        for (dir, created) in committer.snapshot() {
            state.insert(dir.to_string(), created);
        }
        state
    }

    /// Checkpoint `checkpoint` (and any before it) committed this subtask's
    /// files: the partitions now due.
    pub(crate) fn committed(&mut self, checkpoint: u64, now_ms: i64) -> Vec<String> {
        let later = self.prepared.split_off(&(checkpoint.saturating_add(1)));
        let done = std::mem::replace(&mut self.prepared, later);
        let Some((&last, _)) = done.last_key_value() else {
            return Vec::new();
        };
        let watermark = done.get(&last).map_or(WATERMARK_MIN, |(_, w)| *w);
        let dirs: BTreeSet<String> = done.into_values().flat_map(|(dirs, _)| dirs).collect();
        let mut committer = self.committer.lock().unwrap_or_else(|e| e.into_inner());
        committer.committed(self.subtask, last, dirs, watermark, now_ms)
    }

    /// The input ended and every file is committed: the partitions now due.
    pub(crate) fn finished(&mut self, now_ms: i64) -> Vec<String> {
        let mut dirs = std::mem::take(&mut self.fresh);
        dirs.extend(std::mem::take(&mut self.prepared).into_values().flat_map(|(d, _)| d));
        let mut committer = self.committer.lock().unwrap_or_else(|e| e.into_inner());
        committer.finished(self.subtask, dirs, now_ms)
    }
}
