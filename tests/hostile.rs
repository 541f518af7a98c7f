//! Statements written to bring Weir down end with an error naming a limit,
//! never with a crash: expressions, parentheses, subqueries and EXPLAINs
//! nested thousands deep, and huge scripts, through `weir run`; a job
//! started before such a statement is not damaged by it.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

fn weir_run_files(dir: &Path, files: &[(&str, String)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.arg("run").current_dir(dir);
    for (name, sql) in files {
        std::fs::write(dir.join(name), sql).unwrap();
        cmd.arg(dir.join(name));
    }
    cmd.output().unwrap()
}

/// `weir run` of `sql` ended with an error (an exit status, not a signal)
/// whose message contains every one of `says`.
#[track_caller]
fn refused(dir: &Path, sql: String, says: &[&str]) {
    let out = weir_run_files(dir, &[("hostile.sql", sql)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "not an error exit ({:?}): {}", out.status, &stderr[..stderr.len().min(2000)]);
    for s in says {
        assert!(stderr.contains(s), "no '{s}' in: {}", &stderr[..stderr.len().min(2000)]);
    }
    assert!(stderr.len() < 4000, "the error quotes the whole statement: {} bytes", stderr.len());
}

fn chain(term: &str, op: &str, n: usize) -> String {
    vec![term; n].join(op)
}

#[test]
fn deeply_nested_statements_end_with_an_error_naming_the_limit() {
    let dir = scratch();
    let depth = ["nests more than", "table.planner.max-expression-depth"];
    refused(dir.path(), format!("SELECT {} AS s;", chain("1", "+", 10_000)), &depth);
    refused(dir.path(), format!("SELECT {} AS s;", chain("1", "+", 2_000)), &depth);
    refused(dir.path(), format!("SELECT 1 WHERE {};", chain("1 = 1", " AND ", 5_000)), &depth);
    refused(dir.path(), format!("SELECT CAST(1 AS BIGINT){} AS s;", "::BIGINT".repeat(20_000)), &depth);
    // Half a million terms: refused before the tree is walked, and dropped on
    // a stack large enough for it.
    refused(dir.path(), format!("SELECT {} AS s;", chain("1", "+", 500_000)), &depth);
    let nested = ["nested too deeply"];
    refused(dir.path(), format!("SELECT {}1{} AS s;", "(".repeat(100_000), ")".repeat(100_000)), &nested);
    // sqlparser stops at its recursion limit and then reports the rest.
    refused(dir.path(), format!("SELECT {}1 AS s;", "NOT ".repeat(100_000)), &["syntax error"]);
    refused(dir.path(), format!("SELECT {}1{};", "(SELECT ".repeat(10_000), ")".repeat(10_000)), &nested);
    refused(dir.path(), format!("SELECT {}1{} AS s;", "CASE WHEN true THEN ".repeat(10_000), " END".repeat(10_000)), &["syntax error"]);
    refused(dir.path(), format!("{}SELECT 1;", "EXPLAIN ".repeat(100_000)), &["EXPLAIN of EXPLAIN"]);
    refused(dir.path(), format!("SELECT {};", "1+".repeat(3_000_000)), &["bytes long", "at most"]);
}

/// Below the limit, the same shapes run and give the right answer; the
/// limit can be raised for a session.
#[test]
fn statements_within_the_limit_run() {
    let dir = scratch();
    let sum = format!("SELECT {} AS s;", chain("1", "+", 900));
    let out = weir_run_files(dir.path(), &[("ok.sql", sum)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("| 900 |"), "{}", String::from_utf8_lossy(&out.stdout));
    let raised = format!(
        "SET 'table.planner.max-expression-depth' = '3000';\nSELECT {} AS s;",
        chain("1", "+", 2_500)
    );
    let out = weir_run_files(dir.path(), &[("raised.sql", raised)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("| 2500 |"), "{}", String::from_utf8_lossy(&out.stdout));
    let out = weir_run_files(dir.path(), &[("bad.sql", "SET 'table.planner.max-expression-depth' = '100000';".into())]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected an integer from 1 to 5000"));
    // A long IN list is wide, not deep.
    let list: Vec<String> = (0..50_000).map(|i| (i * 7).to_string()).collect();
    let wide = format!("SELECT 350 IN ({}) AS hit, 351 IN ({}) AS miss;", list.join(","), list.join(","));
    let out = weir_run_files(dir.path(), &[("wide.sql", wide)]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("| true | false |"), "{stdout}");
}

/// A job runs; the file after it holds a statement beyond the limit: the
/// run ends with that error, and running the job again resumes it and
/// commits exactly the uninterrupted output.
#[test]
fn a_refused_statement_leaves_a_running_job_s_output_exact() {
    let rows: Vec<Row> = (0..50_000).map(|i| Row { k: Some(format!("k{}", i % 7)), v: Some(i), ts: Some(T0 + i * 10) }).collect();
    let job = |dir: &Path| {
        format!(
            "SET 'execution.checkpointing.interval' = '100 ms';
CREATE TABLE src (k VARCHAR, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json', 'scan.watermark.emit.strategy' = 'on-event');
CREATE TABLE out (window_start TIMESTAMP(3), k VARCHAR, c BIGINT, s BIGINT)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
INSERT INTO out SELECT window_start, k, count(*), sum(v)
FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY window_start, window_end, k;",
            dir.join("in.json").display(),
            dir.join("out").display()
        )
    };
    let committed = |dir: &Path| {
        let mut rows: Vec<String> = read_sink(&dir.join("out")).iter().map(normalize_json).collect();
        rows.sort();
        rows
    };
    let clean = scratch();
    write_json(&clean.path().join("in.json"), &rows);
    let out = weir_run_files(clean.path(), &[("job.sql", job(clean.path()))]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let expected = committed(clean.path());
    assert!(expected.len() > 100);

    let dir = scratch();
    write_json(&dir.path().join("in.json"), &rows);
    let deep = format!("SELECT {} AS s;", chain("1", "+", 10_000));
    let out = weir_run_files(dir.path(), &[("job.sql", job(dir.path())), ("deep.sql", deep)]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let out = weir_run_files(dir.path(), &[("job.sql", job(dir.path()))]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_rows_eq(&committed(dir.path()), &expected, "after a refused statement");
}

/// A running `weir serve`; SIGKILLed when dropped (tests stop it with
/// SIGTERM themselves when they check how it ends).
struct Serve {
    child: std::process::Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Serve {
    fn start(dir: &Path, files: &[&Path], envs: &[(&str, &str)]) -> Serve {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = dir.join(format!("serve-{port}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .arg("serve")
            .args(["--pg-port", &port.to_string()])
            .args(files)
            .env_remove("WEIR_PG_PASSWORD")
            .envs(envs.iter().copied())
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut serve = Serve { child, port, log };
        let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(serve.child.try_wait().unwrap().is_none(), "weir serve exited:\n{}", serve.log());
            assert!(std::time::Instant::now() < until, "weir serve does not listen:\n{}", serve.log());
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        serve
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// psql with `sql` as its input (a statement may be longer than a
    /// command line): success, standard output, standard error.
    fn psql(&self, sql: &str) -> (bool, String, String) {
        let mut child = Command::new("psql")
            .args(["-X", "-w", "-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "weir", "-d", "weir"])
            .args(["-A", "-t", "-F", "|", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose", "-f", "-"])
            .env("PGCONNECT_TIMEOUT", "20")
            .env_remove("PGPASSWORD")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("psql (scripts/test.sh installs it)");
        let mut stdin = child.stdin.take().unwrap();
        let input = format!("{sql};\n");
        let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, input.as_bytes()));
        let out = child.wait_with_output().unwrap();
        let _ = writer.join();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// Polls SHOW JOBS until no job runs; its lines.
    fn jobs_ended(&self) -> String {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let (ok, jobs, err) = self.psql("SHOW JOBS");
            assert!(ok, "{err}");
            if !jobs.contains("|Running|") {
                return jobs;
            }
            assert!(std::time::Instant::now() < until, "jobs still running:\n{jobs}\n{}", self.log());
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two jobs over the same input in one `weir serve`, one of them writing
/// to `bad`, whose sink panics (an injected fault); and statements nested
/// far too deep sent with psql. The panicking job fails with the panic's
/// message; the server, its port and the other job go on, and the other
/// job's output is exactly what it is when run alone.
#[test]
fn a_panicking_job_and_hostile_statements_leave_the_server_and_other_jobs_working() {
    let rows: Vec<Row> = (0..20_000).map(|i| Row { k: Some(format!("k{}", i % 5)), v: Some(i), ts: Some(T0 + i * 20) }).collect();
    let jobs = |dir: &Path| {
        format!(
            "SET 'execution.checkpointing.interval' = '0';
CREATE TABLE src (k VARCHAR, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json', 'scan.watermark.emit.strategy' = 'on-event');
CREATE TABLE good (window_start TIMESTAMP(3), k VARCHAR, c BIGINT, s BIGINT)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
CREATE TABLE bad (window_start TIMESTAMP(3), k VARCHAR, c BIGINT)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
INSERT INTO bad SELECT window_start, k, count(*)
FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY window_start, window_end, k;
INSERT INTO good SELECT window_start, k, count(*), sum(v)
FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY window_start, window_end, k;",
            dir.join("in.json").display(),
            dir.join("good").display(),
            dir.join("bad").display(),
        )
    };
    let good = |dir: &Path| {
        let mut rows: Vec<String> = read_sink(&dir.join("good")).iter().map(normalize_json).collect();
        rows.sort();
        rows
    };
    // The oracle: the good job alone, in `weir run`.
    let alone = scratch();
    write_json(&alone.path().join("in.json"), &rows);
    let only_good: String = jobs(alone.path()).split(";\n").filter(|s| !s.starts_with("INSERT INTO bad")).collect::<Vec<_>>().join(";\n");
    let out = weir_run_files(alone.path(), &[("good.sql", only_good)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let expected = good(alone.path());
    assert!(expected.len() > 100);

    let dir = scratch();
    // The input stays open (a named pipe) until the hostile statements
    // are answered: the jobs run meanwhile.
    let input = dir.path().join("in.json");
    assert!(Command::new("mkfifo").arg(&input).status().unwrap().success());
    std::fs::write(dir.path().join("jobs.sql"), jobs(dir.path())).unwrap();
    let serve = Serve::start(dir.path(), &[&dir.path().join("jobs.sql")], &[("FAILPOINTS", "weir::sink::write=return(bad)")]);
    let text = {
        let s = scratch();
        write_json(&s.path().join("rows.json"), &rows);
        std::fs::read_to_string(s.path().join("rows.json")).unwrap()
    };
    let half = text[..text.len() / 2].rfind('\n').map_or(0, |i| i + 1);
    let (first, second) = (text[..half].to_string(), text[half..].to_string());
    let fifo = input.clone();
    let (go_on, wait) = std::sync::mpsc::channel::<()>();
    let feeder = std::thread::spawn(move || {
        let mut pipe = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        std::io::Write::write_all(&mut pipe, first.as_bytes()).unwrap();
        let _ = wait.recv();
        std::io::Write::write_all(&mut pipe, second.as_bytes()).unwrap();
    });

    let (ok, _, err) = serve.psql(&format!("SELECT {} AS s", chain("1", "+", 2_000)));
    assert!(!ok && err.contains("nests more than") && err.contains("54000"), "{err}");
    let (ok, _, err) = serve.psql(&format!("SELECT {}1{} AS s", "(".repeat(100_000), ")".repeat(100_000)));
    assert!(!ok && err.contains("nested too deeply"), "{err}");
    let (ok, out, err) = serve.psql("SELECT 40 + 2");
    assert!(ok, "the port stopped answering: {err}\n{}", serve.log());
    assert_eq!(out.trim(), "42");
    go_on.send(()).unwrap();
    feeder.join().unwrap();

    let jobs = serve.jobs_ended();
    let bad = jobs.lines().find(|l| l.contains("INSERT INTO bad")).unwrap_or_else(|| panic!("{jobs}"));
    assert!(bad.contains("Failed") && bad.contains("a panic injected into the sink of table 'bad'"), "{bad}");
    let good_job = jobs.lines().find(|l| l.contains("INSERT INTO good")).unwrap_or_else(|| panic!("{jobs}"));
    assert!(good_job.contains("Finished"), "{good_job}");
    assert_rows_eq(&good(dir.path()), &expected, "the other job's output");
    let (ok, out, err) = serve.psql("SELECT 1");
    assert!(ok && out.trim() == "1", "{err}");
}
