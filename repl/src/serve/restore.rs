//! Building `weir serve`'s session again from its catalog ([`persist`]),
//! before its `--file`s run and clients are served; then those files,
//! which may declare again what was restored (docs/serve.md).

use std::path::PathBuf;
use std::sync::Arc;

use weir_sql::statement::WindowClauses;
use weir_sql::{Outcome, ParsedStatement, Session, SqlError, WeirStatement, parse_script};

use super::persist::{CatalogError, SavedJob, Snapshot, Store, keep_aside};
use crate::output;
use crate::run::read_script;

/// Rebuilds `saved` in `session`: tables, views, each job under the
/// settings it started with, then the settings. An entry that cannot be
/// rebuilt is reported and the others go on; the catalog as it was is then
/// kept aside. Returns what was rebuilt, now the catalog.
pub async fn restore(store: &Arc<Store>, session: &mut Session, saved: Snapshot) -> Result<Snapshot, CatalogError> {
    let catalog = store.path().display().to_string();
    let mut whole = true;
    for table in &saved.tables {
        let origin = format!("{catalog} (table '{}')", table.name);
        whole &= run_saved(store, session, &origin, &table.ddl).await.is_some();
    }
    for view in &saved.views {
        let origin = format!("{catalog} (view '{}')", view.name);
        whole &= run_saved(store, session, &origin, &view.ddl).await.is_some();
    }
    for job in &saved.jobs {
        whole &= restore_job(store, session, &catalog, job).await;
    }
    if let Err(e) = session.replace_settings(&saved.settings) {
        eprintln!("{catalog}: error: the settings were not restored: {e}");
        whole = false;
    }
    if !whole {
        match keep_aside(store.path()) {
            Ok(aside) => eprintln!(
                "The catalog as it was before this restore is kept in {}.",
                aside.display()
            ),
            Err(e) => eprintln!("error: {catalog}: cannot keep a copy of the catalog: {e}"),
        }
    }
    store.finish_restore(session)?;
    Ok(store.snapshot())
}

/// Starts `job` again; true if it runs.
async fn restore_job(store: &Arc<Store>, session: &mut Session, catalog: &str, job: &SavedJob) -> bool {
    let origin = format!("{catalog} (job '{}')", job.id);
    if let Err(e) = session.replace_settings(&job.settings) {
        eprintln!("{origin}: error: its settings were not restored, so neither was the job: {e}");
        return false;
    }
    let mut started = None;
    for text in &job.statements {
        match run_saved(store, session, &origin, text).await {
            Some(Some(handle)) => started = Some(handle),
            Some(None) => {}
            None => return false,
        }
    }
    match started {
        Some(handle) => {
            let how = handle
                .resumed
                .as_deref()
                .unwrap_or("started afresh, with no earlier state");
            eprintln!("Job '{}' restored: {how}.", handle.id);
            // A materialized view's job is not durable: a new id each run.
            if handle.id != job.id && job.view.is_none() {
                eprintln!(
                    "{origin}: warning: it now runs as job '{}': the tables or views it reads were declared otherwise",
                    handle.id
                );
            }
            true
        }
        None => {
            eprintln!("{origin}: error: its statements started no job");
            false
        }
    }
}

/// Runs one saved statement; `None` if it failed (reported), else the job
/// it started, if any.
async fn run_saved(
    store: &Arc<Store>,
    session: &mut Session,
    origin: &str,
    text: &str,
) -> Option<Option<weir_engine::runtime::job::JobHandle>> {
    let failed = |e: &SqlError| eprintln!("{}", output::error(origin, text, e));
    let statements = match parse_script(text) {
        Ok(s) => s,
        Err(e) => {
            failed(&e);
            return None;
        }
    };
    let mut started = None;
    for s in statements {
        let s = as_insert_if_declared(session, s);
        match store.execute(session, &s).await {
            Ok(Outcome::JobStarted(handle)) => started = Some(handle),
            Ok(_) => {}
            Err(e) => {
                failed(&e);
                return None;
            }
        }
    }
    Some(started)
}

/// A `CREATE TABLE … AS SELECT` whose table was restored already runs as
/// its `INSERT`, under the CTAS's text as that `INSERT` first ran: the
/// same job.
fn as_insert_if_declared(session: &Session, s: ParsedStatement) -> ParsedStatement {
    let WeirStatement::CreateTableAs { create, query, .. } = &s.statement else {
        return s;
    };
    let Ok(name) = weir_sql::catalog::names::table_part(&create.name) else {
        return s;
    };
    if session.catalog().get(&name).is_none() {
        return s;
    }
    let statement = WeirStatement::Insert {
        table: create.name.clone(),
        columns: Vec::new(),
        partition: Vec::new(),
        query: query.clone(),
        clauses: WindowClauses::default(),
    };
    ParsedStatement { statement, ..s }
}

/// Runs the statements of `files` in order, as `weir run` does, except
/// what the restore has already rebuilt: a table or view declared again
/// identically, or the statements of a job running again, are skipped; a
/// table or view declared otherwise is a conflict. False at the first
/// error.
pub async fn execute_files(
    store: &Arc<Store>,
    session: &mut Session,
    files: &[PathBuf],
    restored: &Snapshot,
    streaming_hint: &str,
) -> bool {
    for path in files {
        let Some(file) = read_script(path).await else {
            return false;
        };
        let (origin, statements) = (&file.origin, &file.statements);
        let mut i = 0;
        while i < statements.len() {
            let s = &statements[i];
            let unit = unit_at(statements, i);
            match already(restored, unit, store) {
                Already::Same(message) => {
                    eprintln!("{message}");
                    i += unit.len();
                    continue;
                }
                Already::Conflict(message) => {
                    eprintln!("{origin}:{}:{}: error: {message}", s.start.line, s.start.column);
                    return false;
                }
                Already::No => {}
            }
            match store.execute(session, s).await {
                Ok(Outcome::Stream { job, .. }) => {
                    job.cancel();
                    eprintln!(
                        "{origin}:{}:{}: error: a SELECT over a stream has nobody to read its rows ({streaming_hint})",
                        s.start.line, s.start.column
                    );
                    return false;
                }
                result => {
                    if !file.report(result).await {
                        return false;
                    }
                }
            }
            i += 1;
        }
    }
    true
}

/// The statements from `i` that start one job: a statement set's `BEGIN`
/// to its `END`, or the one statement.
fn unit_at(statements: &[ParsedStatement], i: usize) -> &[ParsedStatement] {
    let rest = &statements[i..];
    if !matches!(rest[0].statement, WeirStatement::BeginStatementSet) {
        return &rest[..1];
    }
    match rest
        .iter()
        .position(|s| matches!(s.statement, WeirStatement::EndStatementSet))
    {
        Some(end) => &rest[..=end],
        None => &rest[..1],
    }
}

/// How a file's statement stands against what was restored.
enum Already {
    /// Restored as it is declared here: skipped, with this message.
    Same(String),
    /// Restored with another declaration: the file cannot run.
    Conflict(String),
    No,
}

fn already(restored: &Snapshot, unit: &[ParsedStatement], store: &Store) -> Already {
    let texts = job_texts(unit);
    if let Some(job) = restored
        .jobs
        .iter()
        .find(|j| j.statements.iter().map(|t| normalized(t)).eq(texts.iter().cloned()))
    {
        return Already::Same(format!("Job '{}' already restored: not started again.", job.id));
    }
    let (kind, name, if_not_exists, saved) = match &unit[0].statement {
        WeirStatement::CreateTable(ct) => ("table", &ct.name, ct.if_not_exists, &restored.tables),
        WeirStatement::CreateView {
            name, if_not_exists, ..
        } => ("view", name, *if_not_exists, &restored.views),
        _ => return Already::No,
    };
    let Ok(name) = weir_sql::catalog::names::table_part(name) else {
        return Already::No;
    };
    match saved.iter().find(|d| d.name == name) {
        Some(d) if normalized(&d.ddl) == normalized(&unit[0].text) => {
            Already::Same(format!("{} '{name}' already restored.", capitalized(kind)))
        }
        // Flink's IF NOT EXISTS keeps the one there.
        Some(_) if if_not_exists => Already::No,
        Some(_) => Already::Conflict(format!(
            "{kind} '{name}' was restored from {} with another declaration: DROP {} IF EXISTS it before declaring it again",
            store.path().display(),
            kind.to_uppercase()
        )),
        None => Already::No,
    }
}

/// The statements of a job as its catalog entry holds them.
fn job_texts(unit: &[ParsedStatement]) -> Vec<String> {
    match unit {
        [first, inner @ .., _] if matches!(first.statement, WeirStatement::BeginStatementSet) => {
            let mut texts = vec![normalized("BEGIN STATEMENT SET")];
            texts.extend(inner.iter().map(|s| normalized(&s.text)));
            texts.push(normalized("END"));
            texts
        }
        _ => unit.iter().map(|s| normalized(&s.text)).collect(),
    }
}

/// The text with runs of white space made one space: a statement
/// reformatted is the same statement.
fn normalized(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn capitalized(kind: &str) -> String {
    let mut c = kind.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}
