//! Statements written to bring Weir down end with an error naming a limit,
//! never with a crash: expressions, parentheses, subqueries and EXPLAINs
//! nested thousands deep, and huge scripts, through `weir run`; a job
//! started before such a statement is not damaged by it.

use crate::common;
use crate::pgwire_common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;
use pgwire_common::{Server, closed_by_server, errors, psql_err, psql_ok, raw_login, read_until_ready, send_query};

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

/// Per table of `sinks`, a job counting and summing its own input
/// `in-<sink>.json` in one-second windows per key, checkpointing every
/// `interval`.
fn windowed_jobs(dir: &Path, interval: &str, sinks: &[&str]) -> String {
    let mut sql = format!("SET 'execution.checkpointing.interval' = '{interval}';\n");
    for sink in sinks {
        sql.push_str(&format!(
            "CREATE TABLE src_{sink} (k VARCHAR, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json', 'scan.watermark.emit.strategy' = 'on-event');
CREATE TABLE {sink} (window_start TIMESTAMP(3), k VARCHAR, c BIGINT, s BIGINT)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
INSERT INTO {sink} SELECT window_start, k, count(*), sum(v)
FROM TABLE(TUMBLE(TABLE src_{sink}, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY window_start, window_end, k;\n",
            dir.join(format!("in-{sink}.json")).display(),
            dir.join(sink).display()
        ));
    }
    sql
}

/// What the filesystem table `sink` in `dir` committed, sorted.
fn sink_rows(dir: &Path, sink: &str) -> Vec<String> {
    let mut rows: Vec<String> = read_sink(&dir.join(sink)).iter().map(normalize_json).collect();
    rows.sort();
    rows
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
    // A value of gigabytes, made while planning (constant folding) or
    // running: refused before it is allocated.
    refused(dir.path(), "SELECT repeat('x', 2000000000) AS huge;".into(), &["requested length too large", "at most 67108864"]);
    refused(dir.path(), "SELECT lpad('x', 2000000000) AS huge;".into(), &["requested length too large"]);
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
    let job = |dir: &Path| windowed_jobs(dir, "100 ms", &["out"]);
    let committed = |dir: &Path| sink_rows(dir, "out");
    let clean = scratch();
    write_json(&clean.path().join("in-out.json"), &rows);
    let out = weir_run_files(clean.path(), &[("job.sql", job(clean.path()))]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let expected = committed(clean.path());
    assert!(expected.len() > 100);

    let dir = scratch();
    write_json(&dir.path().join("in-out.json"), &rows);
    let deep = format!("SELECT {} AS s;", chain("1", "+", 10_000));
    let out = weir_run_files(dir.path(), &[("job.sql", job(dir.path())), ("deep.sql", deep)]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let out = weir_run_files(dir.path(), &[("job.sql", job(dir.path()))]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_rows_eq(&committed(dir.path()), &expected, "after a refused statement");
}

/// Two jobs over the same input in one `weir serve`, one of them writing
/// to `bad`, whose sink panics (an injected fault); and statements nested
/// far too deep sent with psql. The panicking job fails with the panic's
/// message; the server, its port and the other job go on, and the other
/// job's output is exactly what it is when run alone.
#[test]
fn a_panicking_job_and_hostile_statements_leave_the_server_and_other_jobs_working() {
    let rows: Vec<Row> = (0..20_000).map(|i| Row { k: Some(format!("k{}", i % 5)), v: Some(i), ts: Some(T0 + i * 20) }).collect();
    let jobs = |dir: &Path| windowed_jobs(dir, "0", &["bad", "good"]);
    let good = |dir: &Path| sink_rows(dir, "good");
    // The oracle: the good job alone, in `weir run`.
    let alone = scratch();
    write_json(&alone.path().join("in-good.json"), &rows);
    let out = weir_run_files(alone.path(), &[("good.sql", windowed_jobs(alone.path(), "0", &["good"]))]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let expected = good(alone.path());
    assert!(expected.len() > 100);

    let dir = scratch();
    // The good job's input stays open (a named pipe) until the hostile
    // statements are answered: it runs meanwhile.
    write_json(&dir.path().join("in-bad.json"), &rows);
    let input = dir.path().join("in-good.json");
    assert!(Command::new("mkfifo").arg(&input).status().unwrap().success());
    std::fs::write(dir.path().join("jobs.sql"), jobs(dir.path())).unwrap();
    let jobs_file = dir.path().join("jobs.sql").display().to_string();
    let serve = Server::start(dir.path(), &[&jobs_file], &[("FAILPOINTS", "weir::sink::write=return(bad)")]);
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

    let err = psql_err(serve.port, &format!("SELECT {} AS s", chain("1", "+", 2_000)));
    assert!(err.contains("nests more than") && err.contains("54000"), "{err}");
    let err = psql_err(serve.port, &format!("SELECT {}1{} AS s", "(".repeat(20_000), ")".repeat(20_000)));
    assert!(err.contains("nested too deeply"), "{err}");
    assert_eq!(psql_ok(serve.port, "SELECT 40 + 2").trim(), "42", "{}", serve.log());
    go_on.send(()).unwrap();
    feeder.join().unwrap();

    let jobs = serve.wait_for_jobs();
    let bad = jobs.lines().find(|l| l.contains("INSERT INTO bad")).unwrap_or_else(|| panic!("{jobs}"));
    assert!(bad.contains("Failed") && bad.contains("a panic injected into the sink of table 'bad'"), "{bad}");
    let good_job = jobs.lines().find(|l| l.contains("INSERT INTO good")).unwrap_or_else(|| panic!("{jobs}"));
    assert!(good_job.contains("Finished"), "{good_job}");
    assert_rows_eq(&good(dir.path()), &expected, "the other job's output");
    assert_eq!(psql_ok(serve.port, "SELECT 1").trim(), "1");
}

/// A Bind message whose parameter runs past its end makes pgwire's decoder
/// panic (found by the pgwire fuzz target; upstream): that connection
/// closes, while another connection, open before, and new ones are served.
#[test]
fn a_message_that_panics_the_decoder_ends_only_its_connection() {
    let dir = scratch();
    let server = Server::start(dir.path(), &[], &[]);
    let mut bystander = raw_login(server.port);
    let mut victim = raw_login(server.port);
    // Portal and statement unnamed, no format codes, one parameter of
    // 1000 bytes of which none follow.
    let body = [0u8, 0, 0, 0, 0, 1, 0, 0, 3, 232];
    let mut bind = vec![b'B'];
    bind.extend(((body.len() + 4) as u32).to_be_bytes());
    bind.extend(body);
    std::io::Write::write_all(&mut victim, &bind).unwrap();
    assert!(closed_by_server(victim), "the connection of the malformed message stays open");
    send_query(&mut bystander, "SELECT 6 * 7");
    let answer = read_until_ready(&mut bystander);
    assert!(errors(&answer).is_empty(), "{:?}", errors(&answer));
    assert!(answer.iter().any(|(kind, body)| *kind == b'D' && body.ends_with(b"42")), "{answer:?}");
    assert_eq!(psql_ok(server.port, "SELECT 1").trim(), "1", "{}", server.log());
}
