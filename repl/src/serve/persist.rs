//! The catalog `weir serve` keeps on disk (docs/serve.md): the declared
//! tables and views, the changed settings and the running jobs, so that a
//! server restarted (or killed) builds the same session again and every
//! durable job resumes from its checkpoint.
//!
//! It is a snapshot, not a log: after every statement that changes what it
//! holds it is written whole to a temporary file, synced, and renamed over
//! the last one, so that a crash leaves either the old catalog or the new.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use weir_engine::runtime::job::{JobHandle, JobStatus};
use weir_sql::{Outcome, ParsedStatement, Session, WeirStatement};

/// The version of the catalog's layout this build writes and reads.
const VERSION: u32 = 1;

/// Everything needed to build the session again, in the order it is
/// rebuilt: tables, views, jobs (each under its own settings), settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub version: u32,
    /// The settings that differ from their defaults, `(key, value)`.
    pub settings: Vec<(String, String)>,
    /// Declared tables in the order they were created (a `LIKE` reads an
    /// earlier one).
    pub tables: Vec<Declared>,
    /// Views in the order they were created (a view reads earlier ones).
    pub views: Vec<Declared>,
    /// Jobs that were running, oldest first.
    pub jobs: Vec<SavedJob>,
}

/// A table or a view and the statement that declares it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Declared {
    pub name: String,
    pub ddl: String,
}

/// A running job: the statements that started it (one, or a statement
/// set's `BEGIN`, `INSERT`s and `END`), run again under the settings in
/// force when it started so that it gets the same id and plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedJob {
    pub id: String,
    pub statements: Vec<String>,
    pub settings: Vec<(String, String)>,
    /// The table of a materialized view: its job stays in the catalog when
    /// it finishes (a view of a bounded source is computed again after a
    /// restart, and served), and leaves it when the table is dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<String>,
}

/// Why the catalog cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{}: cannot read the catalog of weir serve: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error(
        "{}: the catalog of weir serve is damaged ({reason}); it was left as it is: move it away to start with an empty catalog, or put back a good copy",
        path.display()
    )]
    Damaged { path: PathBuf, reason: String },
    #[error("{}: cannot write the catalog of weir serve: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
}

/// The catalog file and the snapshot it holds, shared by every connection
/// and by the tasks that watch jobs end.
pub struct Store {
    path: PathBuf,
    inner: Mutex<Inner>,
}

struct Inner {
    snapshot: Snapshot,
    /// The `INSERT`s of a `BEGIN STATEMENT SET` not yet ended, as written.
    statement_set: Option<Vec<String>>,
    /// While the catalog is being restored nothing is written: a crash
    /// then must find the whole catalog again, not the part restored.
    restoring: bool,
}

impl Store {
    /// Opens the catalog at `path`; its snapshot is empty if there is no
    /// file yet. A file that cannot be read is refused, never replaced.
    pub fn open(path: PathBuf) -> Result<(Arc<Self>, Snapshot), CatalogError> {
        let saved = match std::fs::read(&path) {
            Ok(bytes) => parse(&path, &bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Snapshot {
                version: VERSION,
                ..Default::default()
            },
            Err(source) => return Err(CatalogError::Read { path, source }),
        };
        let inner = Inner {
            snapshot: Snapshot {
                version: VERSION,
                ..Default::default()
            },
            statement_set: None,
            restoring: true,
        };
        Ok((
            Arc::new(Self {
                path,
                inner: Mutex::new(inner),
            }),
            saved,
        ))
    }

    /// Where the catalog lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `s` in `session` and records what it changed.
    pub async fn execute(
        self: &Arc<Self>,
        session: &mut Session,
        s: &ParsedStatement,
    ) -> weir_sql::error::Result<Outcome> {
        let result = session.execute(s).await;
        match &result {
            Ok(outcome) => self.record(session, s, outcome),
            // A failed END closes the statement set all the same.
            Err(_) if matches!(s.statement, WeirStatement::EndStatementSet) => self.lock().statement_set = None,
            Err(_) => {}
        }
        result
    }

    /// Ends the restore: the catalog is written as rebuilt, and from now
    /// on after every change.
    pub fn finish_restore(&self, session: &Session) -> Result<(), CatalogError> {
        let mut inner = self.lock();
        inner.restoring = false;
        reconcile(&mut inner.snapshot, session);
        write(&self.path, &inner.snapshot)
    }

    /// The catalog as it stands.
    pub fn snapshot(&self) -> Snapshot {
        self.lock().snapshot.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding it left a snapshot that is still whole.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Notes the job `s` started, the statement set it added to or ended,
    /// the job it stopped, and the session's tables, views and settings;
    /// writes the catalog if anything changed.
    fn record(self: &Arc<Self>, session: &Session, s: &ParsedStatement, outcome: &Outcome) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let before = inner.snapshot.clone();
        let statements = match (&s.statement, &mut inner.statement_set) {
            (WeirStatement::BeginStatementSet, set) => {
                *set = Some(Vec::new());
                None
            }
            (WeirStatement::Insert { .. }, Some(set)) => {
                set.push(s.text.clone());
                None
            }
            (WeirStatement::EndStatementSet, set) => set.take().map(|inserts| {
                let mut all = vec!["BEGIN STATEMENT SET".to_string()];
                all.extend(inserts);
                all.push("END".to_string());
                all
            }),
            (WeirStatement::StopJob { id, .. }, _) => {
                inner.snapshot.jobs.retain(|j| j.id != *id);
                None
            }
            _ => Some(vec![s.text.clone()]),
        };
        if let (Outcome::JobStarted(job), Some(statements)) = (outcome, statements) {
            let view = match &s.statement {
                WeirStatement::CreateMaterializedView { name, .. } => weir_sql::catalog::names::table_part(name).ok(),
                _ => None,
            };
            let saved = SavedJob {
                id: job.id.clone(),
                statements,
                settings: session.changed_settings(),
                view,
            };
            inner.snapshot.jobs.retain(|j| j.id != saved.id);
            let is_view = saved.view.is_some();
            let from_savepoint = saved.settings.iter().any(|(k, _)| k == SAVEPOINT_PATH);
            inner.snapshot.jobs.push(saved);
            self.watch(job.clone(), is_view);
            if from_savepoint {
                self.consume_savepoint(job.clone());
            }
        }
        reconcile(&mut inner.snapshot, session);
        if !inner.restoring
            && inner.snapshot != before
            && let Err(e) = write(&self.path, &inner.snapshot)
        {
            eprintln!("error: {e}");
        }
    }

    /// Forgets `job` once it has failed, or finished unless it fills a
    /// materialized view (`view`): it is not to run again. A job cancelled
    /// because the server stops stays.
    fn watch(self: &Arc<Self>, job: JobHandle, view: bool) {
        let store = Arc::clone(self);
        tokio::spawn(async move {
            let forget = match job.wait().await {
                JobStatus::Failed(_) => true,
                JobStatus::Finished => !view,
                _ => false,
            };
            if forget {
                let mut inner = store.lock();
                let count = inner.snapshot.jobs.len();
                inner.snapshot.jobs.retain(|j| j.id != job.id);
                if !inner.restoring
                    && inner.snapshot.jobs.len() != count
                    && let Err(e) = write(&store.path, &inner.snapshot)
                {
                    eprintln!("error: {e}");
                }
            }
        });
    }
}

/// The setting that starts a job from a savepoint.
const SAVEPOINT_PATH: &str = "execution.savepoint.path";

/// How often a job started from a savepoint is checked for its first
/// checkpoint of its own.
const SAVEPOINT_POLL: std::time::Duration = std::time::Duration::from_millis(500);

impl Store {
    /// A savepoint starts a job once, as in Flink: from its first complete
    /// checkpoint on, the job's catalog entry starts it without
    /// `execution.savepoint.path`, so that a restart resumes from its
    /// latest checkpoint rather than going back to the savepoint.
    fn consume_savepoint(self: &Arc<Self>, job: JobHandle) {
        let store = Arc::clone(self);
        tokio::spawn(async move {
            while job.metrics.checkpoints().is_empty() {
                if job.status().is_done() {
                    return;
                }
                tokio::time::sleep(SAVEPOINT_POLL).await;
            }
            let mut inner = store.lock();
            let Some(saved) = inner.snapshot.jobs.iter_mut().find(|j| j.id == job.id) else {
                return;
            };
            saved.settings.retain(|(k, _)| k != SAVEPOINT_PATH);
            if !inner.restoring
                && let Err(e) = write(&store.path, &inner.snapshot)
            {
                eprintln!("error: {e}");
            }
        });
    }
}

/// Brings the snapshot's tables, views and settings in line with the
/// session's, keeping the order of those that stay and appending new ones.
fn reconcile(snapshot: &mut Snapshot, session: &Session) {
    // Tables Weir made itself (a materialized view's, an undeclared `LATE
    // DATA INTO` table) come back with the job that made them.
    let tables: Vec<(String, String)> = session
        .catalog()
        .tables()
        .filter(|t| t.declared.is_some())
        .map(|t| (t.name.clone(), t.ddl.clone()))
        .collect();
    follow(&mut snapshot.tables, tables);
    follow(&mut snapshot.views, session.view_declarations());
    snapshot.settings = session.changed_settings();
    snapshot
        .jobs
        .retain(|j| j.view.as_ref().is_none_or(|v| session.catalog().get(v).is_some()));
}

fn follow(saved: &mut Vec<Declared>, now: Vec<(String, String)>) {
    saved.retain(|d| now.iter().any(|(n, _)| *n == d.name));
    for (name, ddl) in now {
        match saved.iter_mut().find(|d| d.name == name) {
            Some(d) => d.ddl = ddl,
            None => saved.push(Declared { name, ddl }),
        }
    }
}

fn parse(path: &Path, bytes: &[u8]) -> Result<Snapshot, CatalogError> {
    let damaged = |reason: String| CatalogError::Damaged {
        path: path.to_path_buf(),
        reason,
    };
    let snapshot: Snapshot = serde_json::from_slice(bytes).map_err(|e| damaged(e.to_string()))?;
    if snapshot.version != VERSION {
        return Err(damaged(format!(
            "layout version {}, this build reads version {VERSION}",
            snapshot.version
        )));
    }
    Ok(snapshot)
}

/// Writes `snapshot` to `path` atomically: a synced temporary file renamed
/// over the old one, and the directory synced so that the rename stays.
fn write(path: &Path, snapshot: &Snapshot) -> Result<(), CatalogError> {
    let failed = |source: std::io::Error| CatalogError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(failed)?;
    let bytes = serde_json::to_vec_pretty(snapshot).map_err(|e| failed(std::io::Error::other(e)))?;
    let temporary = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&temporary).map_err(failed)?;
    file.write_all(&bytes).map_err(failed)?;
    file.sync_all().map_err(failed)?;
    std::fs::rename(&temporary, path).map_err(failed)?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(failed)
}

/// Keeps a copy of the catalog as it was before a restore that could not
/// rebuild all of it, since the catalog written next holds only what was
/// rebuilt.
pub fn keep_aside(path: &Path) -> std::io::Result<PathBuf> {
    let aside = path.with_extension(format!("json.{}", weir_engine::message::now_ms()));
    std::fs::copy(path, &aside)?;
    Ok(aside)
}
