//! One sink subtask's writer: a part file in progress per partition
//! directory it has rows for, closed (durable, still hidden) at each
//! checkpoint or when it rolls, and renamed to its visible name once its
//! checkpoint completes; partitions committed as their trigger says.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::RecordBatch;
use tokio::fs::File;
use tokio::io::AsyncWriteExt;
use weir_engine::EngineError;
use weir_engine::error::{Result, ResultExt};
use weir_engine::message::EventTime;
use weir_engine::sink::SinkWriter;

use super::names::PartNames;
use super::state::{self, PendingPart};
use super::{RollPolicy, describe_io, rename_error};
use crate::filesystem::encode::BatchEncoder;
use crate::filesystem::partition::PartitionLayout;
use crate::filesystem::partition::split::split;
use crate::filesystem::partition::tracker::CommitTracker;

/// A part file being written.
struct InProgress {
    file: File,
    number: u64,
    /// Its path, for errors.
    path: PathBuf,
    bytes: u64,
    opened: Instant,
}

/// Partition commits of a writer whose table has a commit policy.
pub(super) struct Commits {
    pub(super) tracker: CommitTracker,
    /// `'sink.partition-commit.success-file.name'`.
    pub(super) success_file: String,
}

/// Writes the part files of one subtask. A part file is only opened for
/// rows, so a subtask (or partition) without rows has no file (as in
/// Flink).
pub(super) struct PartWriter {
    root: PathBuf,
    layout: Option<Arc<PartitionLayout>>,
    names: PartNames,
    encoder: BatchEncoder,
    roll: RollPolicy,
    next_part: u64,
    /// The part file in progress of each partition directory (relative;
    /// empty when unpartitioned).
    open: HashMap<String, InProgress>,
    /// Parts closed by rolling since the last checkpoint: the next
    /// checkpoint makes them pending.
    closed: Vec<(String, u64)>,
    /// Per checkpoint, the parts it made pending and that are not committed
    /// yet (its completion may not have been announced).
    pending: BTreeMap<u64, Vec<(String, u64)>>,
    /// Directories known to exist; forgotten at each checkpoint, so that a
    /// long run's partitions do not pile up here.
    created: HashSet<String>,
    commits: Option<Commits>,
}

impl PartWriter {
    pub(super) fn new(
        root: PathBuf,
        layout: Option<Arc<PartitionLayout>>,
        names: PartNames,
        encoder: BatchEncoder,
        roll: RollPolicy,
        next_part: u64,
        commits: Option<Commits>,
    ) -> Self {
        Self {
            root,
            layout,
            names,
            encoder,
            roll,
            next_part,
            open: HashMap::new(),
            closed: Vec::new(),
            pending: BTreeMap::new(),
            created: HashSet::new(),
            commits,
        }
    }

    fn dir_path(&self, dir: &str) -> PathBuf {
        if dir.is_empty() {
            self.root.clone()
        } else {
            self.root.join(dir)
        }
    }

    async fn create_dir(&mut self, dir: &str) -> Result<()> {
        if !self.created.contains(dir) {
            let path = self.dir_path(dir);
            tokio::fs::create_dir_all(&path)
                .await
                .context(|| format!("creating filesystem sink directory '{}'", path.display()))?;
            self.created.insert(dir.to_string());
        }
        Ok(())
    }

    async fn start_part(&mut self, dir: &str) -> Result<InProgress> {
        self.create_dir(dir).await?;
        let number = self.next_part;
        self.next_part += 1;
        let path = self.dir_path(dir).join(self.names.hidden(number));
        let file = File::create(&path).await.context(|| describe_io("creating", &path))?;
        Ok(InProgress {
            file,
            number,
            path,
            bytes: 0,
            opened: Instant::now(),
        })
    }

    /// Appends `rows` (the columns the files hold) to `dir`'s part file.
    async fn write_rows(&mut self, dir: &str, rows: &RecordBatch) -> Result<()> {
        let bytes = self
            .encoder
            .encode(rows)
            .context(|| format!("encoding rows for '{}'", self.dir_path(dir).display()))?;
        if !self.open.contains_key(dir) {
            let part = self.start_part(dir).await?;
            self.open.insert(dir.to_string(), part);
        }
        let Some(part) = self.open.get_mut(dir) else {
            return Err(EngineError::Plan(format!("no part file open in '{dir}'")));
        };
        part.file
            .write_all(&bytes)
            .await
            .context(|| describe_io("writing", &part.path))?;
        part.bytes += bytes.len() as u64;
        // Checked per batch: a part file exceeds the limits by at most one batch.
        let roll = part.bytes >= self.roll.bytes || self.roll.interval.is_some_and(|i| part.opened.elapsed() >= i);
        if let Some(c) = &mut self.commits {
            c.tracker.wrote(dir);
        }
        if roll {
            self.close_part(dir).await?;
        }
        Ok(())
    }

    /// Closes `dir`'s part file, durable, and adds it to `closed`.
    async fn close_part(&mut self, dir: &str) -> Result<()> {
        let Some(mut part) = self.open.remove(dir) else {
            return Ok(());
        };
        // Durable before a checkpoint lists it: committing after a crash
        // must never publish a truncated file.
        part.file.flush().await.context(|| describe_io("writing", &part.path))?;
        part.file
            .sync_all()
            .await
            .context(|| describe_io("syncing", &part.path))?;
        tracing::debug!(file = %part.path.display(), bytes = part.bytes, "part file closed");
        self.closed.push((dir.to_string(), part.number));
        Ok(())
    }

    async fn close_all(&mut self) -> Result<()> {
        let mut dirs: Vec<String> = self.open.keys().cloned().collect();
        dirs.sort();
        for dir in dirs {
            self.close_part(&dir).await?;
        }
        Ok(())
    }

    /// Makes part `number` of `dir` visible, as committed by `checkpoint`;
    /// a part already visible is fine, so that committing again after a
    /// failure is harmless.
    async fn commit_part(&self, dir: &str, number: u64, checkpoint: Option<u64>) -> Result<()> {
        let at = self.dir_path(dir);
        let hidden = at.join(self.names.hidden(number));
        let visible = at.join(self.names.visible(number, checkpoint));
        match tokio::fs::rename(&hidden, &visible).await {
            Ok(()) => {
                tracing::debug!(file = %visible.display(), "part file committed");
                Ok(())
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                let committed = tokio::fs::try_exists(&visible)
                    .await
                    .context(|| describe_io("checking", &visible))?;
                // This writer closed the file: its loss while the job runs
                // is worth failing for (recovery then goes on without it).
                if committed {
                    Ok(())
                } else {
                    Err(EngineError::Connector(format!(
                        "part file '{}' vanished before it was committed",
                        hidden.display()
                    )))
                }
            }
            Err(e) => Err(rename_error(&hidden, &visible, e)),
        }
    }

    /// Commits partitions `dirs`: Flink's success-file policy, an empty
    /// file in each (written again if the partition is committed again).
    async fn commit_partitions(&self, dirs: Vec<String>) -> Result<()> {
        let Some(commits) = &self.commits else {
            return Ok(());
        };
        for dir in dirs {
            let at = self.dir_path(&dir);
            tokio::fs::create_dir_all(&at)
                .await
                .context(|| describe_io("creating", &at))?;
            let marker = at.join(&commits.success_file);
            File::create(&marker)
                .await
                .context(|| describe_io("creating", &marker))?;
            tracing::info!(partition = %dir, "partition committed");
        }
        Ok(())
    }

    fn pending_parts(&self) -> Vec<PendingPart> {
        self.pending
            .iter()
            .flat_map(|(&checkpoint, parts)| {
                parts.iter().map(move |(dir, number)| PendingPart {
                    checkpoint,
                    dir: dir.clone(),
                    number: *number,
                })
            })
            .collect()
    }
}

/// Now, in epoch milliseconds, for `process-time` commits.
fn now_ms() -> i64 {
    weir_engine::message::now_ms()
}

#[async_trait::async_trait]
impl SinkWriter for PartWriter {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let Some(layout) = self.layout.clone() else {
            return self.write_rows("", &batch).await;
        };
        let pieces =
            split(&layout, &batch).context(|| format!("splitting rows by partition for '{}'", self.root.display()))?;
        for piece in pieces {
            self.write_rows(&piece.dir, &piece.rows).await?;
        }
        Ok(())
    }

    fn watermark(&mut self, watermark: EventTime) {
        if let Some(c) = &mut self.commits {
            c.tracker.watermark(watermark);
        }
    }

    /// Closes every part file in progress; they and the parts rolled since
    /// the last checkpoint become pending for `checkpoint`. The next rows
    /// start new part files.
    async fn prepare(&mut self, checkpoint: u64) -> Result<Vec<u8>> {
        self.close_all().await?;
        if !self.closed.is_empty() {
            self.pending.entry(checkpoint).or_default().append(&mut self.closed);
        }
        self.created.clear();
        let partitions = match &mut self.commits {
            Some(c) => c.tracker.prepare(checkpoint, now_ms()),
            None => BTreeMap::new(),
        };
        Ok(state::encode(
            &self.names,
            &self.pending_parts(),
            &partitions,
            self.layout.is_some(),
        ))
    }

    /// Commits the parts pending for `checkpoint` and earlier ones (whose
    /// completion may have been announced late or not at all), then the
    /// partitions that are due.
    async fn commit(&mut self, checkpoint: u64) -> Result<()> {
        while let Some((&prepared_for, parts)) = self.pending.first_key_value() {
            if prepared_for > checkpoint {
                break;
            }
            // Removed only once all its parts are committed: a failure
            // leaves it for recovery, and committing twice is harmless.
            for (dir, part) in parts {
                self.commit_part(dir, *part, Some(prepared_for)).await?;
            }
            self.pending.remove(&prepared_for);
        }
        let due = match &mut self.commits {
            Some(c) => c.tracker.committed(checkpoint, now_ms()),
            None => Vec::new(),
        };
        self.commit_partitions(due).await
    }

    /// Commits everything written: a bounded job's output is complete.
    async fn finish(&mut self) -> Result<()> {
        // The table's directory exists after a job even when it wrote no rows.
        self.create_dir("").await?;
        self.close_all().await?;
        let pending = std::mem::take(&mut self.pending);
        let closed = std::mem::take(&mut self.closed);
        for (dir, part) in pending.into_values().flatten().chain(closed) {
            self.commit_part(&dir, part, None).await?;
        }
        let due = match &mut self.commits {
            Some(c) => c.tracker.finished(now_ms()),
            None => Vec::new(),
        };
        self.commit_partitions(due).await
    }
}

/// The path of `dir` under `root`, for recovery (blocking).
pub(super) fn dir_under(root: &Path, dir: &str) -> PathBuf {
    if dir.is_empty() {
        root.to_path_buf()
    } else {
        root.join(dir)
    }
}
