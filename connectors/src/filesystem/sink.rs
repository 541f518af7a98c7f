//! The filesystem sink: part files made visible by a two-phase commit tied
//! to checkpoints, as Flink's FileSink makes them, so that a job restarted
//! from a checkpoint neither loses nor duplicates rows in its output.
//!
//! A part file goes through three states, all under the same hidden name
//! `.part-<job>-<subtask>-<n>.inprogress` until the last (as in Flink's
//! FileSink, where a pending file keeps its in-progress name):
//! - in progress: rows are appended to it;
//! - pending: closed and synced (by rolling or by a checkpoint's
//!   `prepare`), waiting for a checkpoint to complete; the checkpoint's
//!   state lists it;
//! - committed: renamed to `part-<job>-<subtask>-<n>-ckpt<c>`, visible to
//!   readers; `c` is the checkpoint whose completion committed it, so that
//!   recovery from an older checkpoint (the newer ones damaged) can take
//!   back what the newer ones committed. A bounded job's last parts,
//!   committed when its input ends, are `part-<job>-<subtask>-<n>`.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use serde_json::{Value, json};
use tokio::fs::File;
use tokio::io::AsyncWriteExt;
use weir_engine::EngineError;
use weir_engine::error::{Result, ResultExt};
use weir_engine::sink::{Committed, SinkConnector, SinkWriter};

use super::encode::BatchEncoder;
use super::format::Format;

/// Version of the state `prepare` returns, checked by `recover`: a
/// checkpoint may be restored by a later Weir.
const STATE_VERSION: u64 = 2;

/// Writes a filesystem table's directory, Flink-style: every subtask writes
/// its own part files, invisible to readers until a checkpoint covering
/// them completes (or, without checkpoints, until the input ends).
#[derive(Debug)]
pub(crate) struct FileSink {
    dir: PathBuf,
    format: Format,
    schema: SchemaRef,
    /// `'sink.rolling-policy.file-size'`: a part file this large is closed
    /// and the next batch starts a new one.
    roll_bytes: u64,
}

impl FileSink {
    /// A sink writing `format` part files into `dir`, rolling them at
    /// `roll_bytes`.
    pub(crate) fn new(dir: PathBuf, format: Format, schema: SchemaRef, roll_bytes: u64) -> Self {
        Self {
            dir,
            format,
            schema,
            roll_bytes,
        }
    }
}

impl FileSink {
    /// Every part file of job `job_id` in the directory, visible or hidden,
    /// with its subtask. Blocking: recovery runs before the job starts.
    fn job_parts(&self, job_id: &str) -> Result<Vec<(usize, PathBuf, Part)>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            // Nothing was ever written.
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(list_error(&self.dir, e)),
        };
        let prefix = format!("part-{job_id}-");
        let mut parts = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| list_error(&self.dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(subtask) = name
                .trim_start_matches('.')
                .strip_prefix(&prefix)
                .and_then(|rest| rest.split_once('-'))
                .and_then(|(digits, _)| number(digits))
                .and_then(|n| usize::try_from(n).ok())
            else {
                continue;
            };
            if let Some(part) = PartNames::new(job_id, subtask).parse(name) {
                parts.push((subtask, entry.path(), part));
            }
        }
        Ok(parts)
    }
}

/// The first part number of a subtask's current run: after its last final
/// part (committed when a bounded run finished). Running a finished job
/// again is a new run whose output joins the old; only the current run's
/// checkpointed output is ever withdrawn.
fn current_run_start<'a>(parts: impl Iterator<Item = &'a Part>) -> u64 {
    parts
        .filter(|p| !p.hidden && p.checkpoint.is_none())
        .map(|p| p.number.saturating_add(1))
        .max()
        .unwrap_or(0)
}

impl SinkConnector for FileSink {
    fn describe(&self) -> String {
        format!(
            "filesystem path={} format={}",
            self.dir.display(),
            self.format.name()
        )
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Commits the part files `prepared` lists (their checkpoint completed,
    /// but the job may have died before committing them), then deletes
    /// every other hidden part file of this subtask: rows written after the
    /// checkpoint, which the restarted job writes again.
    ///
    /// Runs once before the job starts, hence `std::fs`.
    fn recover(
        &self,
        job_id: &str,
        subtask: usize,
        prepared: Option<&[u8]>,
        withdraw_after: Option<u64>,
    ) -> Result<()> {
        let names = PartNames::new(job_id, subtask);
        let to_commit = match prepared {
            Some(bytes) => decode_state(bytes, &names)?,
            None => Vec::new(),
        };
        for &(checkpoint, part) in &to_commit {
            let (hidden, visible) = (
                self.dir.join(names.hidden(part)),
                self.dir.join(names.visible(part, Some(checkpoint))),
            );
            match std::fs::rename(&hidden, &visible) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    let committed = visible
                        .try_exists()
                        .context(|| describe_io("checking", &visible))?;
                    // Not committed before the crash either: someone removed
                    // the output since the checkpoint. As in Flink, that must
                    // not keep the job from ever restarting.
                    if !committed {
                        tracing::warn!(file = %visible.display(), "checkpointed part file is gone, not restored");
                    }
                }
                Err(e) => return Err(rename_error(&hidden, &visible, e)),
            }
        }
        let parts: Vec<(PathBuf, Part)> = self
            .job_parts(job_id)?
            .into_iter()
            .filter(|(s, _, _)| *s == subtask)
            .map(|(_, path, part)| (path, part))
            .collect();
        let run_start = current_run_start(parts.iter().map(|(_, p)| p));
        for (path, part) in parts {
            let withdrawn = matches!(
                (withdraw_after, part.checkpoint),
                (Some(after), Some(by)) if by > after && part.number >= run_start
            );
            if part.hidden {
                std::fs::remove_file(&path).context(|| describe_io("deleting", &path))?;
                tracing::debug!(file = %path.display(), "uncommitted part file discarded");
            } else if withdrawn {
                std::fs::remove_file(&path).context(|| describe_io("deleting", &path))?;
                tracing::warn!(file = %path.display(), checkpoint = ?part.checkpoint, "part file committed after the checkpoint the job resumes from withdrawn; its rows are written again");
            }
        }
        Ok(())
    }

    /// The newest checkpoint that committed a part file of the job's
    /// current run (see [`current_run_start`]), so that a job whose state
    /// fell back or was lost knows it has output to withdraw.
    fn committed_checkpoint(&self, job_id: &str) -> Result<Committed> {
        let parts = self.job_parts(job_id)?;
        let mut subtasks: BTreeMap<usize, Vec<&Part>> = BTreeMap::new();
        for (subtask, _, part) in &parts {
            subtasks.entry(*subtask).or_default().push(part);
        }
        let newest = subtasks
            .values()
            .flat_map(|parts| {
                let start = current_run_start(parts.iter().copied());
                parts
                    .iter()
                    .filter(move |p| !p.hidden && p.number >= start)
                    .filter_map(|p| p.checkpoint)
            })
            .max();
        Ok(Committed::Withdrawable(newest.unwrap_or(0)))
    }

    /// Numbers the writer's part files after every part file of this job
    /// and subtask already in the directory, visible or hidden, so that a
    /// restarted job never overwrites one.
    ///
    /// Runs once at job start, hence `std::fs`.
    fn open(
        &self,
        job_id: &str,
        subtask: usize,
        _parallelism: usize,
    ) -> Result<Box<dyn SinkWriter>> {
        let names = PartNames::new(job_id, subtask);
        let next_part = match std::fs::read_dir(&self.dir) {
            Ok(entries) => {
                let mut next = 0;
                for entry in entries {
                    let entry = entry.map_err(|e| list_error(&self.dir, e))?;
                    if let Some(part) = entry.file_name().to_str().and_then(|n| names.parse(n)) {
                        next = next.max(part.number.saturating_add(1));
                    }
                }
                next
            }
            Err(e) if e.kind() == ErrorKind::NotFound => 0,
            Err(e) => return Err(list_error(&self.dir, e)),
        };
        Ok(Box::new(PartWriter {
            dir: self.dir.clone(),
            names,
            encoder: BatchEncoder::new(self.format.clone()),
            roll_bytes: self.roll_bytes,
            next_part,
            current: None,
            closed: Vec::new(),
            pending: BTreeMap::new(),
            dir_created: false,
        }))
    }
}

/// The file names of one subtask's part files.
#[derive(Debug)]
struct PartNames {
    /// `part-<job>-<subtask>-`.
    prefix: String,
}

/// A part file name, parsed.
#[derive(Debug)]
struct Part {
    number: u64,
    /// The checkpoint that committed it (visible parts but a bounded
    /// job's last).
    checkpoint: Option<u64>,
    /// Not committed yet (in progress or pending).
    hidden: bool,
}

impl PartNames {
    fn new(job_id: &str, subtask: usize) -> Self {
        Self {
            prefix: format!("part-{job_id}-{subtask}-"),
        }
    }

    /// The committed name of part `n`, which readers see: committed by
    /// `checkpoint`, or when the input ended.
    fn visible(&self, n: u64, checkpoint: Option<u64>) -> String {
        match checkpoint {
            Some(c) => format!("{}{n}-ckpt{c}", self.prefix),
            None => format!("{}{n}", self.prefix),
        }
    }

    /// The name of part `n` until committed: a leading `.` hides it from
    /// readers (Weir's and Flink's).
    fn hidden(&self, n: u64) -> String {
        format!(".{}{n}.inprogress", self.prefix)
    }

    /// `name` as a part file of this subtask, or `None` for any other file.
    ///
    /// Numbers must be all digits (see [`number`]).
    fn parse(&self, name: &str) -> Option<Part> {
        let (rest, hidden) = match name.strip_prefix('.') {
            Some(hidden) => (hidden.strip_suffix(".inprogress")?, true),
            None => (name, false),
        };
        let rest = rest.strip_prefix(&self.prefix)?;
        let (digits, checkpoint) = match rest.split_once("-ckpt") {
            Some((n, c)) if !hidden => (n, Some(number(c)?)),
            Some(_) => return None,
            None => (rest, None),
        };
        Some(Part {
            number: number(digits)?,
            checkpoint,
            hidden,
        })
    }
}

/// All digits: job ids may contain `-`, so a mere prefix match could take
/// job `a`'s subtask 1 (`part-a-1-`) for job `a-1`'s subtask 0
/// (`part-a-1-0-5`) and delete the other's files.
fn number(digits: &str) -> Option<u64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The part file being written.
struct InProgress {
    file: File,
    number: u64,
    /// Its path, for errors.
    path: PathBuf,
    bytes: u64,
}

/// Writes the part files of one subtask. A part file is only opened for
/// rows, so a subtask without rows leaves no file (as in Flink).
struct PartWriter {
    dir: PathBuf,
    names: PartNames,
    encoder: BatchEncoder,
    roll_bytes: u64,
    next_part: u64,
    current: Option<InProgress>,
    /// Parts closed by rolling since the last checkpoint: the next
    /// checkpoint makes them pending.
    closed: Vec<u64>,
    /// Per checkpoint, the parts it made pending and that are not committed
    /// yet (its completion may not have been announced).
    pending: BTreeMap<u64, Vec<u64>>,
    dir_created: bool,
}

impl PartWriter {
    async fn create_dir(&mut self) -> Result<()> {
        if !self.dir_created {
            tokio::fs::create_dir_all(&self.dir).await.context(|| {
                format!(
                    "creating filesystem sink directory '{}'",
                    self.dir.display()
                )
            })?;
            self.dir_created = true;
        }
        Ok(())
    }

    async fn start_part(&mut self) -> Result<InProgress> {
        self.create_dir().await?;
        let number = self.next_part;
        self.next_part += 1;
        let path = self.dir.join(self.names.hidden(number));
        let file = File::create(&path)
            .await
            .context(|| describe_io("creating", &path))?;
        Ok(InProgress {
            file,
            number,
            path,
            bytes: 0,
        })
    }

    /// Closes the current part file, durable, and adds it to `closed`.
    async fn close_part(&mut self) -> Result<()> {
        let Some(mut part) = self.current.take() else {
            return Ok(());
        };
        // Durable before a checkpoint lists it: committing after a crash
        // must never publish a truncated file.
        part.file
            .flush()
            .await
            .context(|| describe_io("writing", &part.path))?;
        part.file
            .sync_all()
            .await
            .context(|| describe_io("syncing", &part.path))?;
        tracing::debug!(file = %part.path.display(), bytes = part.bytes, "part file closed");
        self.closed.push(part.number);
        Ok(())
    }

    /// Makes part `number` visible, as committed by `checkpoint`; a part
    /// already visible is fine, so that committing again after a failure
    /// is harmless.
    async fn commit_part(&self, number: u64, checkpoint: Option<u64>) -> Result<()> {
        let hidden = self.dir.join(self.names.hidden(number));
        let visible = self.dir.join(self.names.visible(number, checkpoint));
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

    /// The state of a checkpoint: every pending part, so that recovery can
    /// commit those whose commit the crash prevented.
    fn encode_state(&self) -> Vec<u8> {
        let pending: Vec<Value> = self
            .pending
            .iter()
            .flat_map(|(checkpoint, parts)| {
                parts.iter().map(move |&n| {
                    json!({
                        "checkpoint": checkpoint,
                        "file": self.names.hidden(n),
                        "final": self.names.visible(n, Some(*checkpoint)),
                    })
                })
            })
            .collect();
        json!({ "version": STATE_VERSION, "pending": pending })
            .to_string()
            .into_bytes()
    }
}

/// The part numbers a state from [`PartWriter::encode_state`] lists, each
/// checked to be a part file of `names`' subtask, so that damaged or
/// foreign state cannot make recovery rename arbitrary files.
fn decode_state(bytes: &[u8], names: &PartNames) -> Result<Vec<(u64, u64)>> {
    let bad = |why: String| EngineError::State(format!("filesystem sink: {why}"));
    let state: Value = serde_json::from_slice(bytes)
        .map_err(|e| bad(format!("prepared output is not JSON: {e}")))?;
    let version = state.get("version");
    if version.and_then(Value::as_u64) != Some(STATE_VERSION) {
        return Err(bad(format!(
            "prepared output has version {}, this Weir reads version {STATE_VERSION}",
            version.unwrap_or(&Value::Null)
        )));
    }
    let pending = state
        .get("pending")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("prepared output has no 'pending' list".into()))?;
    pending
        .iter()
        .map(|entry| {
            let field = |key: &str| entry.get(key).and_then(Value::as_str);
            let part = field("file").and_then(|file| names.parse(file));
            let checkpoint = entry.get("checkpoint").and_then(Value::as_u64);
            match (part, checkpoint) {
                (
                    Some(Part {
                        number,
                        hidden: true,
                        ..
                    }),
                    Some(c),
                ) if field("final") == Some(names.visible(number, Some(c)).as_str()) => Ok((c, number)),
                _ => Err(bad(format!(
                    "prepared entry {entry} is not a part file of '{}*'",
                    names.prefix
                ))),
            }
        })
        .collect()
}

#[async_trait::async_trait]
impl SinkWriter for PartWriter {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let bytes = self
            .encoder
            .encode(&batch)
            .context(|| format!("encoding rows for '{}'", self.dir.display()))?;
        let part = match &mut self.current {
            Some(part) => part,
            None => {
                let part = self.start_part().await?;
                self.current.insert(part)
            }
        };
        part.file
            .write_all(&bytes)
            .await
            .context(|| describe_io("writing", &part.path))?;
        part.bytes += bytes.len() as u64;
        // Checked per batch: a part file exceeds the limit by at most one batch.
        if part.bytes >= self.roll_bytes {
            self.close_part().await?;
        }
        Ok(())
    }

    /// Closes the current part file; it and the parts rolled since the last
    /// checkpoint become pending for `checkpoint`. The next rows start a new
    /// part file.
    async fn prepare(&mut self, checkpoint: u64) -> Result<Vec<u8>> {
        self.close_part().await?;
        if !self.closed.is_empty() {
            self.pending
                .entry(checkpoint)
                .or_default()
                .append(&mut self.closed);
        }
        Ok(self.encode_state())
    }

    /// Commits the parts pending for `checkpoint` and earlier ones (whose
    /// completion may have been announced late or not at all).
    async fn commit(&mut self, checkpoint: u64) -> Result<()> {
        while let Some((&prepared_for, parts)) = self.pending.first_key_value() {
            if prepared_for > checkpoint {
                break;
            }
            // Removed only once all its parts are committed: a failure
            // leaves it for recovery, and committing twice is harmless.
            for &part in parts {
                self.commit_part(part, Some(prepared_for)).await?;
            }
            self.pending.remove(&prepared_for);
        }
        Ok(())
    }

    /// Commits everything written: a bounded job's output is complete.
    async fn finish(&mut self) -> Result<()> {
        // The directory exists after a job even when it wrote no rows.
        self.create_dir().await?;
        self.close_part().await?;
        let pending = std::mem::take(&mut self.pending);
        let closed = std::mem::take(&mut self.closed);
        for part in pending.into_values().flatten().chain(closed) {
            self.commit_part(part, None).await?;
        }
        Ok(())
    }
}

fn describe_io(action: &str, path: &Path) -> String {
    format!("{action} '{}'", path.display())
}

fn rename_error(from: &Path, to: &Path, source: std::io::Error) -> EngineError {
    EngineError::Io {
        context: format!("renaming '{}' to '{}'", from.display(), to.display()),
        source,
    }
}

fn list_error(dir: &Path, source: std::io::Error) -> EngineError {
    EngineError::Io {
        context: format!("listing filesystem sink directory '{}'", dir.display()),
        source,
    }
}
