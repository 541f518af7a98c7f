//! `weir bench`: runs each query file on generated input, alone in a fresh
//! child process so that its peak memory (VmHWM) is its own, and prints a
//! table of throughput and memory.
//!
//! Nexmark tables (`'connector' = 'nexmark'`) get `'number-of-events'` (or
//! Flink nexmark's `'events.num'`) set to `--events`, as Flink nexmark's
//! scripts substitute `${EVENTS_NUM}`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use weir_engine::runtime::job::JobStatus;
use weir_sql::{Outcome, Session, parse_script};

/// What `weir bench` was asked to run.
pub struct Options {
    /// Query files, or directories whose `.sql` files (in name order) are
    /// the queries.
    pub paths: Vec<PathBuf>,
    pub events: u64,
    pub parallelism: Vec<usize>,
    /// A run taking longer is stopped and reported, so that one slow query
    /// does not hold up the rest.
    pub timeout: Duration,
    /// `KEY=VALUE` settings, each run as `SET 'KEY' = 'VALUE';` before the
    /// query's statements (a budget for the spilling backend, say).
    pub settings: Vec<String>,
    /// Set in the child process that runs one query at one parallelism.
    pub child: bool,
}

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("no .sql files in {0}")]
    NoQueries(String),
    #[error("cannot start a child process: {0}")]
    Spawn(std::io::Error),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error("{file}: {message}")]
    Query { file: String, message: String },
    #[error("--set {0}: expected KEY=VALUE, e.g. --set state.memory.budget='1 gb'")]
    Setting(String),
    #[error("the child process printed no result")]
    NoResult,
    #[error("{0} of the runs failed")]
    Failed(usize),
}

/// Runs the benchmark; in a child, the one query it was given.
pub fn run(options: &Options) -> bool {
    let outcome = if options.child { child(options) } else { parent(options) };
    match outcome {
        Ok(()) => true,
        Err(e) => {
            eprintln!("error: {e}");
            false
        }
    }
}

/// The line a child prints last: seconds, rows read, peak RSS in KiB and
/// the longest checkpoint pause of a task's loop in ms.
const RESULT: &str = "WEIR-BENCH-RESULT";

fn parent(options: &Options) -> Result<(), BenchError> {
    set_statements(&options.settings)?;
    let files = query_files(&options.paths)?;
    println!(
        "{:<12} {:>4} {:>12} {:>12} {:>9} {:>14} {:>15} {:>13} {:>9}",
        "query", "par", "events", "rows read", "seconds", "events/s", "events/s/core", "peak RSS MiB", "pause ms"
    );
    let exe = std::env::current_exe().map_err(BenchError::Spawn)?;
    let mut failures = 0;
    for &p in &options.parallelism {
        for file in &files {
            let name = file.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned());
            // The child's log goes to a file, which unlike a pipe never
            // fills up and blocks it while this loop waits.
            let log_path = std::env::temp_dir().join(format!("weir-bench-{}-{name}-{p}.log", std::process::id()));
            let log =
                std::fs::File::create(&log_path).map_err(|e| BenchError::Read { path: log_path.clone(), source: e })?;
            let mut child = Command::new(&exe)
                .arg("bench")
                .arg("--child")
                .args(["--events", &options.events.to_string()])
                .args(["--parallelism", &p.to_string()])
                .args(options.settings.iter().flat_map(|s| ["--set", s.as_str()]))
                .arg(file)
                .stdout(Stdio::piped())
                .stderr(log)
                .spawn()
                .map_err(BenchError::Spawn)?;
            let started = Instant::now();
            let finished = loop {
                match child.try_wait().map_err(BenchError::Spawn)? {
                    Some(_) => break true,
                    None if started.elapsed() > options.timeout => {
                        // Ours to stop: the child this loop started.
                        let _ = child.kill();
                        let _ = child.wait();
                        break false;
                    }
                    None => std::thread::sleep(Duration::from_millis(50)),
                }
            };
            let mut stdout = String::new();
            if let Some(mut out) = child.stdout.take() {
                let _ = out.read_to_string(&mut stdout);
            }
            let stderr = std::fs::read_to_string(&log_path).unwrap_or_default();
            let _ = std::fs::remove_file(&log_path);
            let result = stdout.lines().find_map(|l| l.strip_prefix(RESULT));
            let Some(fields) = result.filter(|_| finished) else {
                if finished {
                    eprintln!("{name}: failed\n{}", stderr.trim_end());
                } else {
                    eprintln!("{name} at parallelism {p}: stopped after {:?}", options.timeout);
                }
                failures += 1;
                continue;
            };
            let f: Vec<f64> = fields.split_whitespace().filter_map(|v| v.parse().ok()).collect();
            let [secs, rows, rss_kib, pause_ms] = f[..] else {
                return Err(BenchError::NoResult);
            };
            let rate = options.events as f64 / secs;
            println!(
                "{:<12} {:>4} {:>12} {:>12} {:>9.3} {:>14.0} {:>15.0} {:>13.1} {:>9.1}",
                name,
                p,
                options.events,
                rows,
                secs,
                rate,
                rate / p as f64,
                rss_kib / 1024.0,
                pause_ms
            );
        }
    }
    match failures {
        0 => Ok(()),
        n => Err(BenchError::Failed(n)),
    }
}

/// The `.sql` files named, directories expanded.
fn query_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, BenchError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let read = |e| BenchError::Read { path: path.clone(), source: e };
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(read)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "sql"))
                .collect();
            if found.is_empty() {
                return Err(BenchError::NoQueries(path.display().to_string()));
            }
            found.sort_by_key(|p| query_order(p));
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// `q2` before `q10`: the number in a file's name, then the name.
fn query_order(path: &Path) -> (u64, String) {
    let name = path.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let digits: String = name.chars().filter(char::is_ascii_digit).collect();
    (digits.parse().unwrap_or(u64::MAX), name)
}

/// Runs one query at one parallelism on as many runtime threads (so that a
/// core per task is what is measured), then prints the result line.
fn child(options: &Options) -> Result<(), BenchError> {
    let (Some(file), Some(&parallelism)) = (options.paths.first(), options.parallelism.first()) else {
        return Err(BenchError::NoResult);
    };
    let text = std::fs::read_to_string(file).map_err(|e| BenchError::Read { path: file.clone(), source: e })?;
    let state = std::env::temp_dir().join(format!("weir-bench-state-{}", std::process::id()));
    let sql = format!(
        "SET 'parallelism.default' = '{parallelism}';\nSET 'state.dir' = '{}';\n{}{}",
        state.display(),
        set_statements(&options.settings)?,
        with_events(&text, options.events)
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(parallelism.max(1))
        .enable_all()
        .build()
        .map_err(BenchError::Runtime)?;
    let failed = |message: String| BenchError::Query { file: file.display().to_string(), message };
    let result = runtime.block_on(async {
        let statements = parse_script(&sql).map_err(|e| failed(e.to_string()))?;
        let mut session = Session::new();
        let start = Instant::now();
        let (mut rows, mut pause_ns) = (0, 0);
        for s in &statements {
            if let Outcome::JobStarted(job) = session.execute(s).await.map_err(|e| failed(e.to_string()))? {
                let status = job.wait().await;
                if status != JobStatus::Finished {
                    return Err(failed(format!("the job ended {status:?}")));
                }
                rows += job.metrics.totals().rows_from_sources;
                // The longest time a task's loop stood still at a barrier
                // while its operators took their snapshots.
                let longest = job.metrics.tasks().iter().map(|t| t.snapshot_pause_max_ns.load(Ordering::Relaxed)).max();
                pause_ns = pause_ns.max(longest.unwrap_or(0));
            }
        }
        Ok((start.elapsed().as_secs_f64(), rows, pause_ns))
    });
    let _ = std::fs::remove_dir_all(&state);
    let (secs, rows, pause_ns) = result?;
    println!("{RESULT} {secs} {rows} {} {}", weir_engine::peak_memory::peak_rss_kib(), pause_ns as f64 / 1e6);
    crate::shut_down(runtime);
    Ok(())
}

/// The `KEY=VALUE` settings as SET statements, one a line.
fn set_statements(settings: &[String]) -> Result<String, BenchError> {
    let quoted = |s: &str| s.trim().trim_matches('\'').replace('\'', "''");
    settings
        .iter()
        .map(|s| match s.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                Ok(format!("SET '{}' = '{}';\n", quoted(key), quoted(value)))
            }
            _ => Err(BenchError::Setting(s.clone())),
        })
        .collect()
}

/// `sql` with the value of every `'number-of-events'` option (and of its
/// Flink nexmark name, `'events.num'`) set to `events`: the key, `=` and a
/// quoted value (the key elsewhere, as in a comment, is left alone).
fn with_events(sql: &str, events: u64) -> String {
    ["'number-of-events'", "'events.num'"]
        .iter()
        .fold(sql.to_string(), |sql, key| with_option(&sql, key, &events.to_string()))
}

/// `sql` with every `key = '…'` given `value`.
fn with_option(sql: &str, key: &str, value: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(at) = rest.find(key) {
        let after = at + key.len();
        out.push_str(&rest[..after]);
        rest = &rest[after..];
        let given = rest.trim_start().strip_prefix('=').map(str::trim_start);
        if let Some(quoted) = given.and_then(|v| v.strip_prefix('\''))
            && let Some(close) = quoted.find('\'')
        {
            // Keep `= '`, then the new value from the closing quote on.
            let open = rest.len() - quoted.len();
            out.push_str(&rest[..open]);
            out.push_str(value);
            rest = &quoted[close..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_count_is_replaced() {
        let sql = "-- sets 'number-of-events' to N.\nWITH ('number-of-events' = '100', 'x' = '1'); WITH ('number-of-events'='7', 'events.num' = '9')";
        assert_eq!(
            with_events(sql, 5),
            "-- sets 'number-of-events' to N.\nWITH ('number-of-events' = '5', 'x' = '1'); WITH ('number-of-events'='5', 'events.num' = '5')"
        );
    }

    /// `--set` values become SET statements, quoted as SQL strings with or
    /// without the user's own quotes; a value without `=` is refused.
    #[test]
    fn settings_become_set_statements() {
        let settings = ["state.backend.type=rocksdb".to_string(), "state.memory.budget='1 gb'".to_string()];
        assert_eq!(
            set_statements(&settings).unwrap(),
            "SET 'state.backend.type' = 'rocksdb';\nSET 'state.memory.budget' = '1 gb';\n"
        );
        assert_eq!(set_statements(&["k=it's".to_string()]).unwrap(), "SET 'k' = 'it''s';\n");
        let err = set_statements(&["rocksdb".to_string()]).unwrap_err().to_string();
        assert!(err.contains("--set rocksdb: expected KEY=VALUE"), "{err}");
    }

    #[test]
    fn queries_sort_by_number() {
        let mut v = vec![PathBuf::from("q10.sql"), PathBuf::from("q2.sql"), PathBuf::from("q0.sql")];
        v.sort_by_key(|p| query_order(p));
        assert_eq!(v, [PathBuf::from("q0.sql"), PathBuf::from("q2.sql"), PathBuf::from("q10.sql")]);
    }
}
