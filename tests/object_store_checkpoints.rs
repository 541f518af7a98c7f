//! Checkpoints and savepoints on object storage: a real S3-compatible
//! server (moto, `common::s3`) on loopback and `file://` URLs. Every job's
//! output is compared with an uninterrupted run's that checkpoints into
//! sled on the local disk.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use common::repl_session::ReplSession;
use common::s3::Moto;
use common::*;

const SINK: &str = "window_start TIMESTAMP(3), window_end TIMESTAMP(3), k VARCHAR, c BIGINT, s BIGINT";
const COLUMNS: [&str; 5] = ["window_start", "window_end", "k", "c", "s"];
const QUERY: &str = "SELECT window_start, window_end, k, count(*) AS c, sum(v) AS s \
     FROM TABLE(HOP(TABLE t, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND)) \
     GROUP BY window_start, window_end, k";

/// The input: one file (one partition, so that the output does not depend
/// on how partitions interleave) of `n` rows over 50 keys.
fn input(dir: &Path, n: i64) {
    std::fs::create_dir_all(dir.join("in")).unwrap();
    write_json(&dir.join("in/part-0.json"), &disordered_rows(7, n, 50));
}

/// The windowed job, checkpointing every `interval` into `checkpoints`
/// (empty: sled under `state.dir`), with `extra` settings first.
fn job(dir: &Path, checkpoints: &str, extra: &str) -> String {
    let at = match checkpoints {
        "" => String::new(),
        url => format!("SET 'state.checkpoints.dir' = '{url}';\n"),
    };
    format!("SET 'execution.checkpointing.interval' = '100 ms';\n{at}{extra}{}", kvt_job(dir, 1, SINK, "files", QUERY))
}

/// The uninterrupted run's committed output (sled, no store server).
fn expected(n: i64) -> Vec<String> {
    let clean = scratch();
    input(clean.path(), n);
    let run = run_once(clean.path(), &job(clean.path(), "", ""));
    assert!(run.ok, "{}", run.stderr);
    let lines = committed_lines(clean.path(), &COLUMNS);
    assert!(lines.len() > 1000, "{}", lines.len());
    lines
}

/// How many files the files sink committed under `out` (hidden ones are
/// not committed yet).
fn committed_files(out: &Path) -> usize {
    std::fs::read_dir(out)
        .map_or(0, |d| d.flatten().filter(|e| !e.file_name().to_string_lossy().starts_with('.')).count())
}

/// The manifests (complete checkpoints) and chunks under `prefix`.
fn objects(moto: &Moto, bucket: &str, prefix: &str) -> (usize, usize) {
    let keys = moto.keys(bucket, prefix);
    let manifests = keys.iter().filter(|k| k.ends_with("/_COMPLETE")).count();
    let chunks = keys.iter().filter(|k| k.contains("/chunks/")).count();
    (manifests, chunks)
}

/// ≥ 10 SIGKILLs of a job checkpointing to S3 every 100 ms, each run
/// resuming from the store: the output equals the uninterrupted run's, the
/// store never holds more complete checkpoints than the retained three
/// (and one a kill caught before it deleted the oldest), and a finished
/// job leaves nothing in the bucket.
#[test]
fn checkpoints_on_s3_survive_ten_kills() {
    // Enough rows that a job killed shortly after each commit of its own
    // is still running at the tenth kill.
    let n = 2_000_000;
    let expected = expected(n);
    let moto = Moto::start();
    moto.create_bucket("weir");
    let env = moto.env();
    let dir = scratch();
    input(dir.path(), n);
    let sql_file = dir.path().join("job.sql");
    std::fs::write(&sql_file, job(dir.path(), "s3://weir/ckpt", "")).unwrap();
    let mut g = Lcg(5);
    let mut progress = Vec::new();
    // Whether a killed run left checkpoints and chunks in the bucket: one
    // that finished in this loop deleted them.
    let mut stored = false;
    while progress.len() < 12 {
        // Each run is killed a little after it commits output of its own:
        // a run restoring from S3 on moto, in a debug build under the other
        // tests' load, may take seconds before it does.
        let before = committed_files(&dir.path().join("out"));
        let extra = Duration::from_millis(g.below(400));
        let mut committed_at = None;
        let mut ready = || {
            if committed_at.is_none() && committed_files(&dir.path().join("out")) > before {
                committed_at = Some(Instant::now());
            }
            committed_at.is_some_and(|at| at.elapsed() >= extra)
        };
        if !killed_when(dir.path(), &sql_file, Duration::from_secs(120), &env, &mut ready) {
            break;
        }
        let (manifests, chunks) = objects(&moto, "weir", "ckpt/");
        assert!(manifests <= 4, "{manifests} complete checkpoints kept");
        stored |= manifests > 0 && chunks > 0;
        progress.push(read_sink(&dir.path().join("out")).len());
    }
    assert!(progress.len() >= 10, "the job finished before 10 kills: {progress:?}");
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    assert!(progress.iter().any(|n| *n > 0), "no checkpoint ever completed: {progress:?}");
    assert!(progress[0] < expected.len(), "the first run was not interrupted: {progress:?}");
    assert!(stored, "the checkpoints were never in the bucket");
    let last = run_once_with(dir.path(), &std::fs::read_to_string(&sql_file).unwrap(), &env);
    assert!(last.ok, "{}", last.stderr);
    assert!(last.stderr.contains("resumed from checkpoint"), "{}", last.stderr);
    assert_rows_eq(&committed_lines(dir.path(), &COLUMNS), &expected, "after the kills");
    assert!(hidden_files(&dir.path().join("out")).is_empty(), "uncommitted files left behind");
    assert_eq!(moto.keys("weir", "ckpt/"), Vec::<String>::new(), "a finished job's checkpoints stay");
}

/// Runs the job over `n` rows with its checkpoints at `checkpoints` (sled
/// when empty) until the failpoint `point` aborts the process, and checks
/// that the output it committed is `expected`; returns its directory and
/// statements, for the next run.
fn aborted_at(point: &str, moto: &Moto, checkpoints: &str, n: i64, expected: &[String]) -> (tempfile::TempDir, String) {
    let dir = scratch();
    input(dir.path(), n);
    let sql = job(dir.path(), checkpoints, "");
    let mut env = moto.env();
    env.push(("FAILPOINTS".to_string(), format!("{point}=return")));
    let killed = run_once_with(dir.path(), &sql, &env);
    assert!(!killed.ok, "{checkpoints:?}: {point} did not stop the run: {}", killed.stderr);
    assert_rows_eq(&committed_lines(dir.path(), &COLUMNS), expected, "the killed run");
    (dir, sql)
}

/// A run killed (aborted by a failpoint) after it recorded that its job is
/// finishing, before it deleted its checkpoints, whether in sled or on S3:
/// the next run ends that finish and starts afresh, as a finished job run
/// again does, instead of refusing to start over committed output with no
/// state; and it deletes the checkpoints the killed run left.
#[test]
fn a_run_killed_while_finishing_is_finished_by_the_next() {
    let n = 200_000;
    let expected = expected(n);
    let mut twice: Vec<String> = expected.iter().chain(&expected).cloned().collect();
    twice.sort();
    let moto = Moto::start();
    moto.create_bucket("weir");
    for checkpoints in ["", "s3://weir/ckpt"] {
        let (dir, sql) = aborted_at("weir::job::finish", &moto, checkpoints, n, &expected);
        if !checkpoints.is_empty() {
            assert!(objects(&moto, "weir", "ckpt/").0 > 0, "the checkpoints went before the kill");
        }
        let again = run_once_with(dir.path(), &sql, &moto.env());
        assert!(again.ok, "{checkpoints:?}: {}", again.stderr);
        assert!(!again.stderr.contains("resumed"), "{checkpoints:?}: {}", again.stderr);
        assert_rows_eq(&committed_lines(dir.path(), &COLUMNS), &twice, "the killed run's and the next");
        assert_eq!(moto.keys("weir", "ckpt/"), Vec::<String>::new(), "a finished job's checkpoints stay");
    }
}

/// A run killed after its sinks committed their last output, before it
/// recorded that it finished, left that output under a checkpoint: the
/// next run resumes from it and writes none of it again.
#[test]
fn a_run_killed_once_its_last_output_is_committed_writes_it_once() {
    let n = 200_000;
    let expected = expected(n);
    let moto = Moto::start();
    moto.create_bucket("weir");
    for checkpoints in ["", "s3://weir/ended"] {
        let (dir, sql) = aborted_at("weir::job::ended", &moto, checkpoints, n, &expected);
        let again = run_once_with(dir.path(), &sql, &moto.env());
        assert!(again.ok, "{checkpoints:?}: {}", again.stderr);
        assert!(again.stderr.contains("resumed"), "{checkpoints:?}: {}", again.stderr);
        assert_rows_eq(&committed_lines(dir.path(), &COLUMNS), &expected, "the killed run's and the next");
    }
}

/// A `weir run` started in the background with its log captured at debug
/// level (checkpoint completions and failures), and its lines.
fn spawn_logged(dir: &Path, file: &Path, env: &[(String, String)]) -> (Child, Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("run")
        .arg(file)
        .current_dir(dir)
        .env("WEIR_LOG", "warn,weir_engine::checkpoint=debug")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

/// Reads `lines` until one contains `what`, keeping what it read.
fn wait_for_line(lines: &Receiver<String>, seen: &mut Vec<String>, what: &str) {
    loop {
        match lines.recv_timeout(Duration::from_secs(120)) {
            Ok(line) => {
                let found = line.contains(what);
                seen.push(line);
                if found {
                    return;
                }
            }
            Err(e) => panic!("no line with {what:?} ({e}); the log:\n{}", seen.join("\n")),
        }
    }
}

/// An outage of the store: moto frozen (SIGSTOP) for several checkpoint
/// timeouts while the job runs. Checkpoints fail for that time — the job
/// does not; once the server answers again (SIGCONT) checkpoints complete
/// again; the job is then killed, resumes from the store, and commits
/// exactly the uninterrupted output. moto keeps its objects in memory, so
/// a restarted server would be an empty one (a lost bucket, which recovery
/// refuses or starts afresh from): a frozen server is the outage that
/// keeps the data, as a network partition or a hung server does.
#[test]
fn an_unreachable_store_fails_checkpoints_not_the_job() {
    let n = 100_000;
    let expected = expected(n);
    let moto = Moto::start();
    moto.create_bucket("weir");
    let env = moto.env();
    let dir = scratch();
    input(dir.path(), n);
    // A pipe keeps the source open, and the job running, until closed.
    let pipe = dir.path().join("in/zz.pipe");
    assert!(Command::new("mkfifo").arg(&pipe).status().unwrap().success());
    let sql_file = dir.path().join("job.sql");
    let timeout = "SET 'execution.checkpointing.timeout' = '1 s';\n";
    std::fs::write(&sql_file, job(dir.path(), "s3://weir/ckpt", timeout)).unwrap();
    let (mut child, lines) = spawn_logged(dir.path(), &sql_file, &env);
    let mut seen = Vec::new();
    wait_for_line(&lines, &mut seen, "checkpoint complete");
    moto.pause();
    let paused = Instant::now();
    wait_for_line(&lines, &mut seen, "took longer than");
    // Several timeouts pass with the store frozen.
    while paused.elapsed() < Duration::from_secs(4) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(child.try_wait().unwrap().is_none(), "the job ended while the store was down");
    moto.resume();
    wait_for_line(&lines, &mut seen, "checkpoint complete");
    child.kill().unwrap();
    child.wait().unwrap();
    let failed = seen.iter().filter(|l| l.contains("took longer than")).count();
    assert!(failed >= 1, "no checkpoint failed during the outage:\n{}", seen.join("\n"));

    // Resume from the store and let the input end.
    let (last, lines) = spawn_logged(dir.path(), &sql_file, &env);
    std::thread::sleep(Duration::from_millis(500));
    drop(std::fs::OpenOptions::new().write(true).open(&pipe).unwrap());
    let out = last.wait_with_output().unwrap();
    let log: Vec<String> = lines.try_iter().collect();
    assert!(out.status.success(), "{}", log.join("\n"));
    assert_rows_eq(&committed_lines(dir.path(), &COLUMNS), &expected, "after the outage");
}

/// Types `statements` into a REPL session, waits for the job to commit
/// output, stops it with a savepoint and returns where the savepoint went.
fn stop_with_savepoint(dir: &Path, statements: &str, env: &[(String, String)]) -> String {
    let mut repl = ReplSession::start(dir, env);
    repl.send(statements);
    let id = repl.job_id();
    let deadline = Instant::now() + Duration::from_secs(60);
    while read_sink(&dir.join("out")).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let path = repl.stop_with_savepoint(&id);
    repl.quit();
    path
}

/// `STOP JOB … WITH SAVEPOINT` under `state.savepoints.dir` = `s3://…`
/// writes the savepoint to the bucket (from a job checkpointing into sled),
/// and `execution.savepoint.path` = that URL resumes the job from it: the
/// output equals the uninterrupted run's.
#[test]
fn a_savepoint_goes_to_s3_and_comes_back() {
    let n = 100_000;
    let expected = expected(n);
    let moto = Moto::start();
    moto.create_bucket("saved");
    let env = moto.env();
    let dir = scratch();
    input(dir.path(), n);
    let pipe = dir.path().join("in/zz.pipe");
    assert!(Command::new("mkfifo").arg(&pipe).status().unwrap().success());
    let first = job(dir.path(), "", "SET 'state.savepoints.dir' = 's3://saved/savepoints';\n");
    let savepoint = stop_with_savepoint(dir.path(), &first, &env);
    assert!(savepoint.starts_with("s3://saved/savepoints/"), "{savepoint}");
    let prefix = savepoint.trim_start_matches("s3://saved/");
    let (manifests, _) = objects(&moto, "saved", prefix);
    assert_eq!(manifests, 1, "{:?}", moto.keys("saved", prefix));
    let partial = read_sink(&dir.path().join("out")).len();
    assert!(partial > 0 && partial < expected.len(), "{partial} of {}", expected.len());

    let resume = format!("SET 'execution.savepoint.path' = '{savepoint}';\n");
    std::fs::write(dir.path().join("last.sql"), job(dir.path(), "", &resume)).unwrap();
    let (last, lines) = spawn_logged(dir.path(), &dir.path().join("last.sql"), &env);
    std::thread::sleep(Duration::from_millis(500));
    drop(std::fs::OpenOptions::new().write(true).open(&pipe).unwrap());
    let out = last.wait_with_output().unwrap();
    let log: Vec<String> = lines.try_iter().collect();
    assert!(out.status.success(), "{}", log.join("\n"));
    assert_rows_eq(&committed_lines(dir.path(), &COLUMNS), &expected, "resumed from the S3 savepoint");
    // The savepoint outlives the job.
    assert_eq!(objects(&moto, "saved", prefix).0, 1);
}

/// How many runs of [`killed_after`] in `dir` resumed from a checkpoint
/// (their logs say so).
fn resumed_runs(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let path = e.ok()?.path();
            let name = path.file_name()?.to_str()?;
            (name.starts_with("run-") && name.ends_with(".log")).then(|| std::fs::read_to_string(&path).ok())?
        })
        .filter(|log| log.contains("resumed from checkpoint"))
        .count()
}

/// `file://` URLs: checkpoints through kills into a local directory as
/// objects, and a savepoint there; unknown schemes are refused at `SET`.
#[test]
fn file_urls_round_trip_and_other_schemes_are_refused() {
    let n = 200_000;
    let expected = expected(n);
    let dir = scratch();
    input(dir.path(), n);
    let store = dir.path().join("objects");
    let url = format!("file://{}", store.display());
    let sql_file = dir.path().join("job.sql");
    std::fs::write(&sql_file, job(dir.path(), &url, "")).unwrap();
    // Killed until a run finishes; each run lives a little longer than the
    // last, so that one does finish however slow a restore and the first
    // checkpoint after it are on a loaded machine.
    let mut kills = 0;
    let mut g = Lcg(11);
    while killed_after(dir.path(), &sql_file, Duration::from_millis(200 + g.below(600) + 200 * kills), &mut || {}) {
        kills += 1;
        let jobs: Vec<_> = std::fs::read_dir(&store).unwrap().collect();
        assert_eq!(jobs.len(), 1, "one job directory under {url}");
    }
    assert!(kills > 0, "the job finished before it was killed once");
    assert!(resumed_runs(dir.path()) > 0, "no run resumed from a checkpoint in {url}");
    assert_rows_eq(&committed_lines(dir.path(), &COLUMNS), &expected, "through file:// checkpoints");

    for (key, value, says) in [
        ("state.checkpoints.dir", "hdfs://namenode/ckpt", "not a location Weir can store state in"),
        ("state.checkpoints.dir", "/a/local/path", "expected a URL, s3://bucket/path"),
        ("state.savepoints.dir", "s3://", "not a location Weir can store state in"),
        ("execution.savepoint.path", "gs//bucket", ""),
    ] {
        let run = run_once(dir.path(), &format!("SET '{key}' = '{value}';\n"));
        match says {
            "" => assert!(run.ok, "{key} = {value}: {}", run.stderr),
            says => assert!(!run.ok && run.stderr.contains(says), "{key} = {value}: {}", run.stderr),
        }
    }
}
