//! What a durable job resumes from: the newest intact checkpoint of its
//! store (or a savepoint), checked against what its sinks have already
//! committed, so that damaged or lost state never writes output twice and
//! never loses it.
//!
//! A sink that committed output of checkpoints newer than the one restored
//! (the newer ones were damaged, the store lost them, or a savepoint goes
//! back in time) has that output withdrawn where it can be (files are
//! deleted and written again); where it cannot (a committed Kafka
//! transaction), or where the store holds nothing at all while a sink holds
//! output, the job refuses to start unless
//! `execution.state-recovery.allow-fresh-start` says to go on.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::checkpoint::store::object::ObjectStateStore;
use crate::checkpoint::store::{Checkpoint, Location, StateStore};
use crate::error::{EngineError, Result};
use crate::plan::StreamPlan;
use crate::runtime::job::Durability;
use crate::sink::Committed;

/// The file a finished job leaves in its state directory: the last
/// checkpoint id it used. Running the job again is a new run, whose
/// checkpoints are numbered after it, so that output the earlier run
/// committed is never taken for output of the new one.
const FINISHED: &str = "finished";

/// The file a job that is finishing writes before it deletes its state,
/// holding what [`FINISHED`] will: a run killed before the end of
/// [`finish`] leaves it, and the next run ends the finish first.
const FINISHING: &str = "finishing";

/// The file naming where a job's checkpoints are on object storage, in its
/// local state directory: [`finish`] deletes them there.
const OBJECTS: &str = "checkpoints-url";

/// How long a finished job may take to delete its checkpoints on object
/// storage before it reports that it finished.
const CLEAR_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// The setting that lets a job start afresh over committed output.
const ALLOW: &str = "SET 'execution.state-recovery.allow-fresh-start' = 'true'";

/// Where a job starts.
pub(crate) struct Resume {
    /// The checkpoint whose state the job restores.
    pub checkpoint: Option<Checkpoint>,
    /// The store the job checkpoints into.
    pub store: Arc<StateStore>,
    /// Checkpoint ids continue after this one: after every id the job's
    /// store or sinks have seen, so that no commit is taken for another.
    pub last_id: u64,
    /// Sinks withdraw what they committed after this checkpoint.
    pub withdraw_after: Option<u64>,
    /// What the user is told about the start, when there was earlier state.
    pub note: Option<String>,
}

/// One sink of the job and what it committed.
struct SinkCommit {
    table: String,
    committed: Committed,
}

/// Decides where the job of `plan` starts, opening its store; `load`
/// decodes a candidate checkpoint's state into what the job runs with, and
/// a checkpoint it cannot decode is damaged: the one before it is tried.
pub(crate) fn resume<T>(
    plan: &StreamPlan,
    job_id: &str,
    d: &Durability,
    load: impl Fn(Option<&Checkpoint>) -> Result<T>,
) -> Result<(Resume, T)> {
    complete_finish(&d.dir).map_err(|e| EngineError::Io {
        context: format!("deleting the state of the job's finished run in {}", d.dir.display()),
        source: e,
    })?;
    let commits = sink_commits(plan, job_id)?;
    let newest_commit = commits.iter().filter_map(|c| c.committed.checkpoint()).max().unwrap_or(0);
    let finished = finished_run(&d.dir);
    if let Some(path) = &d.savepoint {
        let resume = from_savepoint(path, job_id, d, &commits, newest_commit.max(finished))?;
        let loaded = load(resume.checkpoint.as_ref()).map_err(|e| {
            let why = format!("the savepoint in {} cannot be restored: {e}", path.display());
            match e {
                EngineError::Incompatible(_) => EngineError::Incompatible(why),
                _ => EngineError::State(why),
            }
        })?;
        return Ok((resume, loaded));
    }
    let (store, unreadable) = match &d.checkpoints {
        // Objects that cannot be reached are not set aside: the job fails
        // to start, and starts when run again with the store back.
        Some(location) => (object_store(location, job_id, d, finished)?, None),
        None => match StateStore::open(&d.dir) {
            Ok(store) => (store, None),
            // The disk is full or out of reach: the state is not damaged.
            Err(e @ EngineError::Io { .. }) => return Err(e),
            Err(e) => (set_aside(&d.dir, e.to_string(), &commits, finished, d.allow_fresh_start)?, Some(e)),
        },
    };
    let recovery = store.restore()?;
    let mut checkpoint = recovery.checkpoint;
    let mut damaged = recovery.damaged;
    let mut notes = Vec::new();
    if let Some(e) = &unreadable {
        notes.push(format!("its state could not be read ({e}) and was set aside"));
    }
    // A sink whose own commit is the commit point (a Kafka transaction)
    // may not have committed the latest checkpoint's output: the job then
    // resumes from the checkpoint it did commit, and writes the rest again.
    let latest = checkpoint.as_ref().map_or(0, |c| c.id);
    let oldest_through = commits
        .iter()
        .filter_map(|c| match c.committed {
            Committed::Through(n) => Some((n, &c.table)),
            _ => None,
        })
        .min();
    // Going back to no checkpoint for that reason is not lost state.
    let mut rewound = false;
    if let Some((committed, table)) = oldest_through
        && committed < latest
    {
        checkpoint = (committed > finished).then(|| store.read(committed)).transpose()?;
        rewound = true;
        notes.push(format!("table '{table}' committed the output of checkpoint {committed} only"));
    }
    let loaded = loop {
        match load(checkpoint.as_ref()) {
            Ok(loaded) => break loaded,
            // Intact state of another query or Weir: an older checkpoint
            // is of the same, and starting without state loses it.
            Err(EngineError::Incompatible(why)) => {
                return Err(EngineError::Incompatible(format!("job {job_id}: {why}")));
            }
            // A restore that spills found no room on the disk: the
            // checkpoint is intact, and an older one needs the same room.
            // The attempt fails, and the next one restores it again.
            Err(e) if e.is_out_of_room() => return Err(e),
            Err(e) => {
                let Some(cp) = &checkpoint else { return Err(e) };
                tracing::warn!(checkpoint = cp.id, error = %e, "checkpoint cannot be decoded: damaged; falling back to the previous one");
                damaged.push(cp.id);
                let older = store.restore_before(cp.id)?;
                damaged.extend(older.damaged);
                checkpoint = older.checkpoint;
            }
        }
    };
    if !damaged.is_empty() {
        notes.push(format!("{} damaged", plural_checkpoints(&damaged)));
    }
    let from = checkpoint.as_ref().map_or(finished, |c| c.id);
    let ahead = ahead_of(commits.iter(), from);
    let withdraw_after = if ahead.is_empty() {
        None
    } else {
        if checkpoint.is_none() && !rewound && !d.allow_fresh_start {
            let why = match notes.is_empty() {
                true => "it holds no intact checkpoint".to_string(),
                false => notes.join("; "),
            };
            return Err(EngineError::State(format!(
                "job {job_id}: its state in {} cannot be resumed ({why}), but {} already holds output it committed: \
                 starting afresh would write that output again. Restore the state directory, or {ALLOW} to start \
                 afresh{}",
                state_place(job_id, d),
                describe(&ahead),
                consequences(&ahead),
            )));
        }
        refuse_repeats(job_id, from, latest, &ahead, d.allow_fresh_start)?;
        Some(from)
    };
    if withdraw_after.is_some() {
        notes.push(match &checkpoint {
            Some(_) => format!("the output {} committed after it is {}", describe_tables(&ahead), redone(&ahead)),
            None => format!(
                "its state held no intact checkpoint, so the output {} had committed is {}",
                describe_tables(&ahead),
                redone(&ahead)
            ),
        });
    }
    let note = match &checkpoint {
        Some(cp) if notes.is_empty() => Some(format!("resumed from checkpoint {}", cp.id)),
        Some(cp) => Some(format!("resumed from checkpoint {}: {}", cp.id, notes.join("; "))),
        None if notes.is_empty() => None,
        None => Some(format!("started afresh: {}", notes.join("; "))),
    };
    if !notes.is_empty()
        && let Some(note) = &note
    {
        tracing::warn!(job = %job_id, "{note}");
    }
    let resume = Resume {
        last_id: from.max(latest).max(newest_commit),
        checkpoint,
        store: Arc::new(store),
        withdraw_after,
        note,
    };
    Ok((resume, loaded))
}

/// The job's own store on object storage (`state.checkpoints.dir`), under
/// the job's id. The local state directory stays, for the record a
/// finished run leaves ([`FINISHED`]); that run's checkpoints, which
/// [`finish`] cannot delete from there, are deleted here so that running
/// the job again starts afresh, as with sled.
fn object_store(location: &Location, job_id: &str, d: &Durability, finished: u64) -> Result<StateStore> {
    std::fs::create_dir_all(&d.dir).map_err(|e| EngineError::Io {
        context: format!("creating the job's state directory {}", d.dir.display()),
        source: e,
    })?;
    let location = location.join(job_id);
    std::fs::write(d.dir.join(OBJECTS), location.to_string()).map_err(|e| EngineError::Io {
        context: format!("recording where the job's checkpoints are in {}", d.dir.display()),
        source: e,
    })?;
    let store = StateStore::open_at(&location, d.config.timeout)?;
    if let StateStore::Object(objects) = &store
        && finished > 0
    {
        objects.discard_through_blocking(finished)?;
    }
    Ok(store)
}

/// Where the job's checkpoints are, for a message.
fn state_place(job_id: &str, d: &Durability) -> String {
    match &d.checkpoints {
        Some(location) => location.join(job_id).to_string(),
        None => d.dir.display().to_string(),
    }
}

/// The job starts from the savepoint at `path` (a directory, or a URL:
/// `execution.savepoint.path` takes both): going back in time, so what
/// sinks committed after it is withdrawn (or written again).
fn from_savepoint(path: &Path, job_id: &str, d: &Durability, commits: &[SinkCommit], seen: u64) -> Result<Resume> {
    let location = Location::from_path(path)?;
    // Opening would create an empty store where none is.
    if let Location::Local(dir) = &location
        && !dir.is_dir()
    {
        return Err(EngineError::State(format!("no savepoint in {}", path.display())));
    }
    let checkpoint = StateStore::open_at(&location, d.config.timeout)?
        .restore()?
        .checkpoint
        .ok_or_else(|| EngineError::State(format!("no intact savepoint in {location}")))?;
    let id = checkpoint.id;
    for c in commits {
        if let Committed::Through(n) = c.committed
            && n > id
        {
            tracing::warn!(table = %c.table, committed = n, savepoint = id, "the sink committed output after the savepoint; it is written again");
        }
    }
    let store = match &d.checkpoints {
        Some(location) => object_store(location, job_id, d, finished_run(&d.dir))?,
        None => StateStore::open(&d.dir)?,
    };
    Ok(Resume {
        last_id: id.max(seen),
        store: Arc::new(store),
        withdraw_after: Some(id),
        note: Some(format!("resumed from savepoint {} (checkpoint {id})", path.display())),
        checkpoint: Some(checkpoint),
    })
}

/// A store sled cannot open: moved aside (never deleted) for a fresh one,
/// unless sinks hold output a fresh start would repeat and the user has not
/// allowed it.
fn set_aside(dir: &Path, error: String, commits: &[SinkCommit], finished: u64, allowed: bool) -> Result<StateStore> {
    let ahead = ahead_of(commits.iter(), finished);
    if !ahead.is_empty() && !allowed {
        return Err(EngineError::State(format!(
            "the job's state in {} cannot be read ({error}), but {} already holds output it committed: starting \
             afresh would write that output again. Restore the state directory, or {ALLOW} to set it aside and \
             start afresh{}",
            dir.display(),
            describe(&ahead),
            consequences(&ahead),
        )));
    }
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut aside = dir.as_os_str().to_owned();
    aside.push(format!(".unreadable-{stamp}"));
    let aside = PathBuf::from(aside);
    std::fs::rename(dir, &aside).map_err(|e| EngineError::Io {
        context: format!("setting the unreadable state {} aside as {}", dir.display(), aside.display()),
        source: e,
    })?;
    tracing::warn!(dir = %dir.display(), aside = %aside.display(), error = %error, "unreadable job state set aside; the job starts afresh");
    StateStore::open(dir)
}

/// Refuses output that cannot be withdrawn and would be written twice
/// because the store lost it: a Kafka sink committed a checkpoint newer
/// than the store's `latest`. (One that committed a checkpoint the store
/// has, while another sink of the job had not yet, is the timing of a
/// crash between two commits: its output is repeated, with a warning.)
fn refuse_repeats(job_id: &str, from: u64, latest: u64, ahead: &[&SinkCommit], allowed: bool) -> Result<()> {
    let repeated: Vec<&SinkCommit> =
        ahead.iter().copied().filter(|c| matches!(c.committed, Committed::Through(_))).collect();
    let lost = ahead_of(repeated.iter().copied(), latest);
    if !lost.is_empty() && !allowed {
        return Err(EngineError::State(format!(
            "job {job_id}: its state goes back to checkpoint {from}, but {} committed output of later checkpoints, \
             which cannot be taken back: resuming would write it again. Restore the state directory, or {ALLOW} \
             to resume and repeat that output",
            describe(&lost),
        )));
    }
    if !repeated.is_empty() {
        tracing::warn!(job = %job_id, resumed_from = from, "{} committed output after the restored checkpoint: it is written again", describe(&repeated));
    }
    Ok(())
}

/// The sinks of `commits` that committed output of checkpoints after
/// `checkpoint`.
fn ahead_of<'a>(commits: impl Iterator<Item = &'a SinkCommit>, checkpoint: u64) -> Vec<&'a SinkCommit> {
    commits.filter(|c| c.committed.checkpoint().is_some_and(|n| n > checkpoint)).collect()
}

/// The sinks in `commits`, for a message.
fn describe(commits: &[&SinkCommit]) -> String {
    let names: Vec<String> = commits
        .iter()
        .map(|c| format!("table '{}' (up to checkpoint {})", c.table, c.committed.checkpoint().unwrap_or(0)))
        .collect();
    names.join(" and ")
}

/// The tables of `commits`, for a message.
fn describe_tables(commits: &[&SinkCommit]) -> String {
    let names: Vec<String> = commits.iter().map(|c| format!("'{}'", c.table)).collect();
    names.join(" and ")
}

/// What happens to output committed after the restored checkpoint.
fn redone(commits: &[&SinkCommit]) -> &'static str {
    match commits.iter().any(|c| matches!(c.committed, Committed::Through(_))) {
        true => "written again (Kafka output twice)",
        false => "withdrawn and written again",
    }
}

/// What starting afresh does to each sink's committed output.
fn consequences(commits: &[&SinkCommit]) -> String {
    let repeats = commits.iter().any(|c| matches!(c.committed, Committed::Through(_)));
    let withdraws = commits.iter().any(|c| matches!(c.committed, Committed::Withdrawable(_)));
    match (withdraws, repeats) {
        (true, true) => " (files it committed are deleted and written again; Kafka output is written a second time)",
        (true, false) => " (the files it committed are deleted and written again)",
        (false, _) => " (its Kafka output is written a second time)",
    }
    .to_string()
}

/// "checkpoint 4 is" / "checkpoints 6, 5 are", for a message.
fn plural_checkpoints(ids: &[u64]) -> String {
    let list = ids.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
    match ids {
        [_] => format!("checkpoint {list} is"),
        _ => format!("checkpoints {list} are"),
    }
}

/// What each of the job's sinks (main and late-data) committed.
fn sink_commits(plan: &StreamPlan, job_id: &str) -> Result<Vec<SinkCommit>> {
    let mut commits = Vec::new();
    for (i, stage) in plan.stages.iter().enumerate() {
        let sinks = [
            stage.sink.as_ref().map(|s| (s, plan.sink_job(job_id, i).0)),
            stage.late_sink.as_ref().map(|s| (s, format!("{job_id}-late{i}"))),
        ];
        for (sink, sink_job) in sinks.into_iter().flatten() {
            commits.push(SinkCommit {
                table: sink.table.clone(),
                committed: sink.connector.committed_checkpoint(&sink_job)?,
            });
        }
    }
    Ok(commits)
}

/// The last checkpoint id of the job's earlier, finished run (0: none).
fn finished_run(dir: &Path) -> u64 {
    last_id_in(dir, FINISHED).unwrap_or(0)
}

/// The checkpoint id the record `name` in `dir` holds, if it does.
fn last_id_in(dir: &Path, name: &str) -> Option<u64> {
    std::fs::read_to_string(dir.join(name)).ok().and_then(|s| s.trim().parse().ok())
}

/// A job finished: its state goes (on object storage too), and a record
/// of its last checkpoint id stays (see [`FINISHED`]). The [`FINISHING`]
/// record comes first, so that a run killed part way through is finished
/// by the next one ([`complete_finish`]) instead of finding committed
/// output and no state.
pub(crate) async fn finish(dir: &Path, last_id: u64) -> std::io::Result<()> {
    let dir = dir.to_path_buf();
    let recorded = dir.clone();
    tokio::task::spawn_blocking(move || write_record(&recorded, FINISHING, last_id)).await??;
    crate::failpoints::job_finish();
    if let Ok(url) = tokio::fs::read_to_string(dir.join(OBJECTS)).await {
        // Objects left behind are deleted when the job runs again.
        let cleared = match Location::parse(url.trim()) {
            Ok(Location::Url(url)) => match ObjectStateStore::open(&url, CLEAR_DEADLINE) {
                Ok(objects) => tokio::time::timeout(CLEAR_DEADLINE, objects.clear()).await.unwrap_or_else(|_| {
                    Err(EngineError::State(format!("deleting took longer than {CLEAR_DEADLINE:?}")))
                }),
                Err(e) => Err(e),
            },
            // Only URLs are recorded.
            Ok(Location::Local(_)) => Ok(()),
            Err(e) => Err(EngineError::State(e)),
        };
        if let Err(e) = cleared {
            tracing::warn!(location = %url.trim(), error = %e, "cannot delete the checkpoints of a finished job");
        }
    }
    tokio::task::spawn_blocking(move || complete_finish(&dir)).await?
}

/// Writes the record `name` holding `last_id` into `dir` whole or not at
/// all (written beside, then renamed): a kill never leaves one torn.
fn write_record(dir: &Path, name: &str, last_id: u64) -> std::io::Result<()> {
    let written = dir.join(format!("{name}.new"));
    std::fs::write(&written, format!("{last_id}\n"))?;
    std::fs::rename(&written, dir.join(name))
}

/// Ends the finish that a [`FINISHING`] record in `dir` announces: every
/// other file goes, and the [`FINISHED`] record takes its id. Each step
/// can be repeated, so a run killed during one is finished by the next
/// run of the job; without the record, nothing happens. Checkpoints left
/// on object storage are deleted when the store opens ([`object_store`]).
fn complete_finish(dir: &Path) -> std::io::Result<()> {
    let Some(last_id) = last_id_in(dir, FINISHING) else {
        return Ok(());
    };
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name() == FINISHING {
            continue;
        }
        match entry.file_type()?.is_dir() {
            true => std::fs::remove_dir_all(entry.path())?,
            false => std::fs::remove_file(entry.path())?,
        }
    }
    write_record(dir, FINISHED, last_id)?;
    std::fs::remove_file(dir.join(FINISHING))
}
