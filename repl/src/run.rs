//! `weir run FILE.sql`: statements in order; INSERT jobs run in the
//! background, with progress bars on a terminal; the command ends when
//! every job has ended.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::Mutex;

use weir_engine::changelog;
use weir_engine::runtime::job::JobStatus;
use weir_sql::{Outcome, ParsedStatement, Session, SqlError, parse_script};

use crate::dashboard;
use crate::metrics_http;
use crate::output;
use crate::progress::Progress;
use crate::serve::handler::Router;

/// Runs the statements of `files` in order in `session`, printing what
/// they produce; jobs keep running. False at the first error, printed with
/// its file, line and column.
pub async fn execute_files(session: &mut Session, files: &[PathBuf]) -> bool {
    for path in files {
        let Some(script) = read_script(path).await else {
            return false;
        };
        for s in &script.statements {
            if !script.report(session.execute(s).await).await {
                return false;
            }
        }
    }
    true
}

/// A SQL file read and parsed: its name for messages, its text (errors
/// quote it) and its statements.
pub(crate) struct Script {
    pub origin: String,
    pub text: String,
    pub statements: Vec<ParsedStatement>,
}

impl Script {
    /// Prints what one of its statements produced, or its error with the
    /// file, line and column; false at an error.
    pub(crate) async fn report(&self, result: Result<Outcome, SqlError>) -> bool {
        match result {
            Ok(outcome) => report(outcome).await,
            Err(e) => {
                eprintln!("{}", output::error(&self.origin, &self.text, &e));
                false
            }
        }
    }
}

/// Reads and parses the file at `path`; `None`, said on stderr with the
/// file, line and column, if it cannot be read or parsed.
pub(crate) async fn read_script(path: &Path) -> Option<Script> {
    let origin = path.display().to_string();
    let text = match tokio::fs::read_to_string(path).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{origin}: error: cannot read the file: {e}");
            return None;
        }
    };
    match parse_script(&text) {
        Ok(statements) => Some(Script { origin, text, statements }),
        Err(e) => {
            eprintln!("{}", output::error(&origin, &text, &e));
            None
        }
    }
}

/// Runs the files; returns whether everything succeeded. With
/// `metrics_port`, Prometheus can scrape the jobs while they run; with
/// `ui_port`, the web dashboard shows them (and its SQL box runs
/// statements in the same session) until the command ends.
pub async fn run_files(files: &[PathBuf], metrics_port: Option<u16>, ui_port: Option<u16>) -> bool {
    let session = Session::new();
    if let Some(port) = metrics_port
        && !start_metrics("127.0.0.1", port, &session).await
    {
        return false;
    }
    let registry = session.system();
    let session = Arc::new(Mutex::new(session));
    if let Some(port) = ui_port {
        let options = dashboard::Options { bind: "127.0.0.1".into(), port, user: String::new(), password: None };
        let router = Router::new(Arc::clone(&session), Arc::default(), None);
        if !dashboard::announce(options, registry, Arc::new(router)).await {
            return false;
        }
    }
    // The jobs are waited for without the session: the dashboard's SQL
    // box may use it meanwhile.
    let (progress, jobs) = {
        let mut session = session.lock().await;
        if !execute_files(&mut session, files).await {
            return false;
        }
        (Progress::start(&session), session.jobs().to_vec())
    };
    let say = |line: String| match &progress {
        Some(p) => p.println(&line),
        None => eprintln!("{line}"),
    };
    let mut ok = true;
    for job in &jobs {
        let status = job.wait().await;
        let t = job.metrics.totals();
        match status {
            JobStatus::Finished => {
                // Only state TTL (or a changelog retracting what the job
                // never saw) makes rows meet missing state: said when so.
                let mut expired = match t.expired_state_rows {
                    0 => String::new(),
                    n => format!(", {n} rows that met expired state"),
                };
                if t.spilled_bytes > 0 {
                    expired.push_str(&format!(", {} bytes of state spilled to disk", t.spilled_bytes));
                }
                // Counts are the last attempt's, from its checkpoint on.
                match job.metrics.restarts() {
                    0 => {}
                    1 => expired.push_str("; restarted once from its checkpoint"),
                    n => expired.push_str(&format!("; restarted {n} times from its checkpoints")),
                }
                say(format!(
                    "job {} finished: {} rows written, {} late rows, {} rows with an invalid event time, {} records that could not be decoded, {} rows to the late-data table{expired}",
                    job.id, t.rows_to_sinks, t.late_rows, t.invalid_time_rows, t.decode_errors, t.rows_to_late_table
                ))
            }
            other => {
                ok = false;
                say(format!("job {} {}", job.id, describe(&other)));
            }
        }
    }
    ok
}

/// Starts the `/metrics` endpoint over `session`'s jobs; false (said on
/// stderr) if the port cannot be had.
pub async fn start_metrics(bind: &str, port: u16, session: &Session) -> bool {
    match metrics_http::start(bind, port, session.system()).await {
        Ok(addr) => {
            eprintln!("Prometheus metrics at http://{addr}/metrics");
            true
        }
        Err(e) => {
            eprintln!("error: {e}");
            false
        }
    }
}

fn describe(s: &JobStatus) -> String {
    match s {
        JobStatus::Failed(why) => format!("failed: {why}"),
        JobStatus::Cancelled => "was cancelled".into(),
        JobStatus::Running | JobStatus::Restarting => "is still running".into(),
        JobStatus::Finished => "finished".into(),
    }
}

/// Prints what a statement produced; waits for the rows of a SELECT.
async fn report(outcome: Outcome) -> bool {
    match outcome {
        Outcome::Done(msg) => eprintln!("{msg}"),
        Outcome::Table(batches) => println!("{}", output::table(&batches)),
        Outcome::Explain(plan) => println!("{plan}"),
        Outcome::JobStarted(job) => eprintln!("{}", job.started_message()),
        Outcome::Stream { job, mut rows, schema, key } => {
            let mut batches = Vec::new();
            while let Some(b) = rows.recv().await {
                batches.push(b);
            }
            match job.wait().await {
                JobStatus::Finished => {
                    // The final rows: re-fired windows and changes applied.
                    match changelog::materialize(&schema, &batches, key.as_deref()) {
                        Ok(b) if b.num_rows() > 0 => println!("{}", output::table(&[b])),
                        Ok(_) => {}
                        Err(e) => {
                            eprintln!("error: cannot display the rows: {e}");
                            return false;
                        }
                    }
                }
                other => {
                    eprintln!("query {}", describe(&other));
                    return false;
                }
            }
        }
    }
    true
}
