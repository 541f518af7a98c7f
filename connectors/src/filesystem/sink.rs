//! The filesystem sink: part files made visible by a two-phase commit tied
//! to checkpoints, as Flink's FileSink makes them, so that a job restarted
//! from a checkpoint neither loses nor duplicates rows in its output; for
//! a partitioned table, in one `key=value` directory per partition, with
//! partitions committed as Flink's partition commit options say.
//!
//! A part file goes through three states, all under the same hidden name
//! `.part-<job>-<subtask>-<n>.inprogress` until the last (as in Flink's
//! FileSink, where a pending file keeps its in-progress name):
//! - in progress: rows are appended to it;
//! - pending: closed and synced (by rolling or by a checkpoint's
//!   `prepare`), waiting for a checkpoint to complete; the checkpoint's
//!   state lists it (with its partition directory);
//! - committed: renamed to `part-<job>-<subtask>-<n>-ckpt<c>`, visible to
//!   readers; `c` is the checkpoint whose completion committed it, so that
//!   recovery from an older checkpoint (the newer ones damaged) can take
//!   back what the newer ones committed. A bounded job's last parts,
//!   committed when its input ends, are `part-<job>-<subtask>-<n>`.
//!
//! `names.rs` (file names), `parts.rs` (a job's files in every partition
//! directory), `state.rs` (what a checkpoint holds), `writer.rs` (a
//! subtask's writer).

mod names;
mod parts;
mod state;
mod writer;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use datafusion::arrow::datatypes::SchemaRef;
use weir_engine::EngineError;
use weir_engine::error::{Result, ResultExt};
use weir_engine::sink::{Committed, SinkConnector, SinkWriter};

use super::encode::BatchEncoder;
use super::format::Format;
use super::partition::committer::Committer;
use super::partition::tracker::CommitTracker;
use super::partition::{CommitPolicy, PartitionLayout};
use names::{Part, PartNames};
use parts::{JobPart, current_run_start, job_parts};
use writer::{Commits, PartWriter, dir_under};

/// When a part file is closed and the next rows start another.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RollPolicy {
    /// `'sink.rolling-policy.file-size'`.
    pub(crate) bytes: u64,
    /// `'sink.rolling-policy.rollover-interval'`: a part file open this
    /// long is closed after the next batch written to it.
    pub(crate) interval: Option<Duration>,
}

/// Writes a filesystem table's directory, Flink-style: every subtask writes
/// its own part files, invisible to readers until a checkpoint covering
/// them completes (or, without checkpoints, until the input ends).
#[derive(Debug)]
pub(crate) struct FileSink {
    dir: PathBuf,
    format: Format,
    schema: SchemaRef,
    roll: RollPolicy,
    /// `PARTITIONED BY`: the directories rows go to.
    layout: Option<Arc<PartitionLayout>>,
    /// How partitions are committed, with a policy and partitions.
    policy: Option<Arc<CommitPolicy>>,
    shared: Mutex<Shared>,
}

/// What the sink's calls for one job share.
#[derive(Debug, Default)]
struct Shared {
    /// Each running job's partition committer, held by its writers.
    committers: HashMap<String, Weak<Mutex<Committer>>>,
    /// Partitions the checkpoint a job is restored from still had to
    /// commit, gathered by `recover` for the job's committer.
    recovered: HashMap<String, BTreeMap<String, i64>>,
    /// The job's part files, listed once for all of `recover`'s calls (one
    /// per subtask a job may have had: walking every partition directory
    /// each time would be slow).
    listing: Option<(String, Arc<Vec<JobPart>>)>,
}

impl FileSink {
    /// A sink writing `format` part files into `dir`, in partition
    /// directories of `layout` if given, committing partitions as `policy`
    /// says.
    pub(crate) fn new(
        dir: PathBuf,
        format: Format,
        schema: SchemaRef,
        roll: RollPolicy,
        layout: Option<Arc<PartitionLayout>>,
        policy: Option<Arc<CommitPolicy>>,
    ) -> Self {
        // Partition commits need partitions.
        let policy = policy.filter(|_| layout.is_some());
        Self { dir, format, schema, roll, layout, policy, shared: Mutex::new(Shared::default()) }
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every part file of job `job_id`: listed afresh by
    /// `committed_checkpoint` (called once as the job starts) and reused
    /// by the `recover` calls after it.
    fn listing(&self, job_id: &str, fresh: bool) -> Result<Arc<Vec<JobPart>>> {
        if !fresh
            && let Some((job, parts)) = &self.shared().listing
            && job == job_id
        {
            return Ok(Arc::clone(parts));
        }
        let parts = Arc::new(job_parts(&self.dir, self.layout.as_deref(), job_id)?);
        self.shared().listing = Some((job_id.to_string(), Arc::clone(&parts)));
        Ok(parts)
    }

    /// The committer job `job_id`'s writers share: subtask 0, opened first
    /// by the engine, starts a new one (with the partitions recovery
    /// found); the others join it.
    fn committer(&self, job_id: &str, subtask: usize, parallelism: usize) -> Option<Arc<Mutex<Committer>>> {
        let (policy, layout) = (self.policy.as_ref()?, self.layout.as_ref()?);
        let mut shared = self.shared();
        shared.committers.retain(|_, c| c.strong_count() > 0);
        if subtask != 0
            && let Some(existing) = shared.committers.get(job_id).and_then(Weak::upgrade)
        {
            return Some(existing);
        }
        let restored = shared.recovered.remove(job_id).unwrap_or_default();
        let committer = Arc::new(Mutex::new(Committer::new(Arc::clone(policy), Arc::clone(layout), parallelism, restored)));
        shared.committers.insert(job_id.to_string(), Arc::downgrade(&committer));
        Some(committer)
    }
}

impl SinkConnector for FileSink {
    fn describe(&self) -> String {
        let partitioned = match &self.layout {
            Some(l) => format!(" partitioned by ({})", l.keys().iter().map(|k| k.name.as_str()).collect::<Vec<_>>().join(", ")),
            None => String::new(),
        };
        format!("filesystem path={} format={}{partitioned}", self.dir.display(), self.format.name())
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Commits the part files `prepared` lists (their checkpoint completed,
    /// but the job may have died before committing them), then deletes
    /// every other hidden part file of this subtask, in every partition
    /// directory: rows written after the checkpoint, which the restarted
    /// job writes again. Partitions the checkpoint still had to commit are
    /// kept for the job's committer.
    ///
    /// Runs once before the job starts, hence `std::fs`.
    fn recover(&self, job_id: &str, subtask: usize, prepared: Option<&[u8]>, withdraw_after: Option<u64>) -> Result<()> {
        let names = PartNames::new(job_id, subtask);
        let restored = match prepared {
            Some(bytes) => state::decode(bytes, &names, self.layout.as_deref())?,
            None => state::SinkState::default(),
        };
        let mut committed_now = HashSet::new();
        for p in &restored.pending {
            let at = dir_under(&self.dir, &p.dir);
            let (hidden, visible) = (at.join(names.hidden(p.number)), at.join(names.visible(p.number, Some(p.checkpoint))));
            match std::fs::rename(&hidden, &visible) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    let committed = visible.try_exists().context(|| describe_io("checking", &visible))?;
                    // Not committed before the crash either: someone removed
                    // the output since the checkpoint. As in Flink, that must
                    // not keep the job from ever restarting.
                    if !committed {
                        tracing::warn!(file = %visible.display(), "checkpointed part file is gone, not restored");
                    }
                }
                Err(e) => return Err(rename_error(&hidden, &visible, e)),
            }
            committed_now.insert(p.number);
        }
        if !restored.partitions.is_empty() {
            let mut shared = self.shared();
            let into = shared.recovered.entry(job_id.to_string()).or_default();
            for (dir, created) in restored.partitions {
                let at = into.entry(dir).or_insert(created);
                *at = (*at).min(created);
            }
        }
        let listing = self.listing(job_id, false)?;
        let parts: Vec<&JobPart> = listing.iter().filter(|p| p.subtask == subtask).collect();
        let run_start = current_run_start(parts.iter().map(|p| &p.part));
        let mut withdrawn_from = BTreeMap::new();
        for JobPart { dir, path, part, .. } in parts {
            let withdrawn = matches!(
                (withdraw_after, part.checkpoint),
                (Some(after), Some(by)) if by > after && part.number >= run_start
            );
            if part.hidden {
                // Committed just above: the listing predates the rename.
                if committed_now.contains(&part.number) {
                    continue;
                }
                remove(path)?;
                tracing::debug!(file = %path.display(), "uncommitted part file discarded");
            } else if withdrawn {
                remove(path)?;
                tracing::warn!(file = %path.display(), checkpoint = ?part.checkpoint, "part file committed after the checkpoint the job resumes from withdrawn; its rows are written again");
                withdrawn_from.insert(dir.clone(), ());
            }
        }
        // A partition whose committed rows were withdrawn is not complete
        // any more: its success file goes until it is committed again.
        if let Some(policy) = &self.policy {
            for dir in withdrawn_from.into_keys() {
                let marker = dir_under(&self.dir, &dir).join(&policy.success_file);
                match std::fs::remove_file(&marker) {
                    Ok(()) => tracing::warn!(partition = %dir, "partition commit withdrawn with its part files"),
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(EngineError::Io { context: describe_io("deleting", &marker), source: e }),
                }
            }
        }
        Ok(())
    }

    /// The newest checkpoint that committed a part file of the job's
    /// current run (see [`current_run_start`]), so that a job whose state
    /// fell back or was lost knows it has output to withdraw.
    fn committed_checkpoint(&self, job_id: &str) -> Result<Committed> {
        let parts = self.listing(job_id, true)?;
        let mut subtasks: BTreeMap<usize, Vec<&Part>> = BTreeMap::new();
        for p in parts.iter() {
            subtasks.entry(p.subtask).or_default().push(&p.part);
        }
        let newest = subtasks
            .values()
            .flat_map(|parts| {
                let start = current_run_start(parts.iter().copied());
                parts.iter().filter(move |p| !p.hidden && p.number >= start).filter_map(|p| p.checkpoint)
            })
            .max();
        Ok(Committed::Withdrawable(newest.unwrap_or(0)))
    }

    /// Numbers the writer's part files after every part file of this job
    /// and subtask already in the table's directories, visible or hidden,
    /// so that a restarted job never overwrites one.
    ///
    /// Runs once at job start, hence `std::fs`.
    fn open(&self, job_id: &str, subtask: usize, parallelism: usize) -> Result<Box<dyn SinkWriter>> {
        // Recovery is over: the next start lists afresh.
        if subtask == 0 {
            self.shared().listing = None;
        }
        let next_part = job_parts(&self.dir, self.layout.as_deref(), job_id)?
            .iter()
            .filter(|p| p.subtask == subtask)
            .map(|p| p.part.number.saturating_add(1))
            .max()
            .unwrap_or(0);
        let commits = self.committer(job_id, subtask, parallelism).zip(self.policy.as_ref()).map(|(committer, policy)| Commits {
            tracker: CommitTracker::new(committer, subtask),
            success_file: policy.success_file.clone(),
        });
        Ok(Box::new(PartWriter::new(
            self.dir.clone(),
            self.layout.clone(),
            PartNames::new(job_id, subtask),
            BatchEncoder::new(self.format.clone()),
            self.roll,
            next_part,
            commits,
        )))
    }
}

/// Deletes `path`; one already gone is as good (recovery run again after
/// a crash during recovery, or a listing shared by the subtasks' recoveries
/// taken before another deleted it).
fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        other => other.context(|| describe_io("deleting", path)),
    }
}

fn describe_io(action: &str, path: &Path) -> String {
    format!("{action} '{}'", path.display())
}

fn rename_error(from: &Path, to: &Path, source: std::io::Error) -> EngineError {
    EngineError::Io { context: format!("renaming '{}' to '{}'", from.display(), to.display()), source }
}
