//! The web dashboard (`--ui-port`, docs/dashboard.md) in headless Chromium:
//! Debian's `chromium`, driven by playwright-core (npm, from
//! tests/dashboard/package-lock.json) through the scripts in
//! tests/dashboard/. Each script prints what the page showed as one JSON
//! line; what it shows is checked here against psql's reads of the same
//! server. Screenshots land in target/dashboard-screenshots/.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::pgwire_common::{Server, non_loopback_address, psql, psql_ok};
use common::scratch;

/// The three jobs of the tour: a windowed count whose `print` sink nobody
/// reads (it stalls, and backpressures its sources; checkpoints fail, as
/// no barrier passes the stuck sink), the same count of another generator
/// into a blackhole sink with checkpoints every second, and a plain copy
/// without checkpoints. (Each INSERT on one line: psql's unaligned rows
/// of `weir.jobs` are read line by line.)
const JOBS: &str = "SET 'parallelism.default' = '2';
SET 'execution.checkpointing.interval' = '300 ms';
SET 'execution.checkpointing.timeout' = '1 s';
CREATE TABLE ev (seq BIGINT, k BIGINT, ts AS TO_TIMESTAMP_LTZ(1767225600000 + seq, 3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
  WITH ('connector' = 'datagen', 'rows-per-second' = '20000',
        'fields.seq.kind' = 'sequence', 'fields.seq.start' = '0', 'fields.seq.end' = '100000000',
        'fields.k.min' = '0', 'fields.k.max' = '999');
CREATE TABLE printed (ws TIMESTAMP(3), k BIGINT, c BIGINT) WITH ('connector' = 'print');
INSERT INTO printed SELECT window_start, k, count(*) FROM TABLE(TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY window_start, window_end, k;
SET 'execution.checkpointing.interval' = '1 s';
SET 'execution.checkpointing.timeout' = '60 s';
CREATE TABLE gen (seq BIGINT, k BIGINT, ts AS TO_TIMESTAMP_LTZ(1767225600000 + seq * 10, 3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
  WITH ('connector' = 'datagen', 'rows-per-second' = '3000',
        'fields.seq.kind' = 'sequence', 'fields.seq.start' = '0', 'fields.seq.end' = '100000000',
        'fields.k.min' = '0', 'fields.k.max' = '99');
CREATE TABLE counted (ws TIMESTAMP(3), k BIGINT, c BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO counted SELECT window_start, k, count(*) FROM TABLE(TUMBLE(TABLE gen, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY window_start, window_end, k;
RESET 'execution.checkpointing.interval';
CREATE TABLE few (seq BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '100');
CREATE TABLE copied (seq BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO copied SELECT seq FROM few;";

/// playwright-core installed once under the target directory (npm ci from
/// the committed lock file); the directory to put in NODE_PATH.
fn node_modules() -> &'static Path {
    static MODULES: OnceLock<PathBuf> = OnceLock::new();
    MODULES.get_or_init(|| {
        let target = Path::new(env!("CARGO_BIN_EXE_weir")).ancestors().nth(2).expect("target dir");
        let dir = target.join("dashboard-node");
        let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/dashboard");
        let lock = std::fs::read_to_string(scripts.join("package-lock.json")).expect("the lock file");
        // Installed again whenever the lock changed.
        if std::fs::read_to_string(dir.join("package-lock.json")).ok().as_deref() != Some(lock.as_str())
            || !dir.join("node_modules/playwright-core/package.json").exists()
        {
            std::fs::create_dir_all(&dir).expect("node dir");
            std::fs::copy(scripts.join("package.json"), dir.join("package.json")).expect("package.json");
            std::fs::write(dir.join("package-lock.json"), &lock).expect("package-lock.json");
            let npm = Command::new("npm")
                .args(["ci", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir)
                .status()
                .expect("run npm (Debian's npm; scripts/test.sh installs it)");
            assert!(npm.success(), "npm ci failed in {}", dir.display());
        }
        dir.join("node_modules")
    })
}

/// Where screenshots are kept to be looked at: target/dashboard-screenshots/NAME/.
fn screenshots(name: &str) -> PathBuf {
    let target = Path::new(env!("CARGO_BIN_EXE_weir")).ancestors().nth(2).expect("target dir");
    let dir = target.join("dashboard-screenshots").join(name);
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// Runs tests/dashboard/SCRIPT with `args`; the JSON line it printed.
fn node(script: &str, args: &[&str]) -> serde_json::Value {
    assert!(Path::new("/usr/bin/chromium").exists(), "Debian's chromium is missing (scripts/test.sh installs it)");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/dashboard").join(script);
    let out = Command::new("node")
        .arg(&path)
        .args(args)
        .env("NODE_PATH", node_modules())
        .output()
        .expect("run node (Debian's nodejs; scripts/test.sh installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let value: serde_json::Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("{script}: no JSON ({e}):\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert!(value.get("failure").is_none(), "{script} failed: {value:#}");
    value
}

/// The dashboard's address, from the server's log.
fn dashboard(server: &Server) -> String {
    let log = server.log();
    let rest = log.split("Dashboard at ").nth(1).unwrap_or_else(|| panic!("no dashboard:\n{log}"));
    rest.split_whitespace().next().expect("address").trim_end_matches('/').to_string()
}

/// psql's rows, `|`-separated cells.
fn rows(port: u16, sql: &str) -> Vec<Vec<String>> {
    psql_ok(port, sql).lines().filter(|l| !l.is_empty()).map(|l| l.split('|').map(str::to_string).collect()).collect()
}

fn text(v: &serde_json::Value) -> &str {
    v.as_str().unwrap_or_default()
}

#[test]
fn a_running_job_is_watched_queried_and_stopped_in_chromium() {
    let started = Instant::now();
    let dir = scratch();
    let file = dir.path().join("jobs.sql");
    std::fs::write(&file, JOBS).expect("job file");
    let file = file.to_str().expect("utf-8 path");
    // Nobody reads stdout: the print sink stalls once the pipe is full.
    let server = Server::start_with_stdout(dir.path(), &["--ui-port", "0", file], &[], Stdio::piped());
    let base = dashboard(&server);
    let jobs = rows(server.port, "SELECT job_id, statement FROM weir.jobs ORDER BY job_id");
    let id = |sink: &str| {
        let job = jobs.iter().find(|r| r[1].contains(&format!("INSERT INTO {sink} "))).expect("the job");
        job[0].clone()
    };
    let ids = serde_json::json!({ "backpressured": id("printed"), "healthy": id("counted"), "small": id("copied") });
    let shots = screenshots("tour");
    let shown = node("tour.js", &[&base, shots.to_str().expect("utf-8"), &ids.to_string()]);

    assert_eq!(shown["status"], 200);
    let mut listed: Vec<String> =
        shown["listed"].as_array().expect("listed").iter().map(|v| text(v).to_string()).collect();
    listed.sort();
    assert_eq!(listed, jobs.iter().map(|r| r[0].clone()).collect::<Vec<_>>(), "{shown:#}");

    // The healthy job's graph: its plan's stages (EXPLAIN over psql says
    // the same), parallelism 2, a hash exchange on the key.
    let stages = shown["stages"].as_array().expect("stages");
    let explained =
        psql_ok(server.port, &format!("EXPLAIN {}", jobs.iter().find(|r| r[0] == ids["healthy"]).expect("job")[1]));
    assert_eq!(stages.len(), explained.matches("Stage ").count(), "{shown:#}\n{explained}");
    assert!(stages.iter().all(|s| text(&s["parallelism"]) == "parallelism 2"), "{shown:#}");
    assert!(text(&stages[0]["text"]).contains("Source: gen"), "{shown:#}");
    assert!(text(&stages[1]["text"]).contains("Sink: counted"), "{shown:#}");
    let edges: Vec<&str> = shown["edges"].as_array().expect("edges").iter().map(text).collect();
    assert!(edges.len() == 1 && edges[0].starts_with("hash [") && edges[0].contains('k'), "{edges:?}");

    // rows/s is live: two reads ticks apart are different samples, both
    // above zero, and not the same figure.
    let (first, second) = (&shown["first"], &shown["second"]);
    assert_ne!(first["at"], second["at"], "{shown:#}");
    let rate = |v: &serde_json::Value| text(&v["rate"]).parse::<f64>().expect("a rate");
    assert!(rate(first) > 0.0 && rate(second) > 0.0, "{shown:#}");
    assert_ne!(first["rate"], second["rate"], "{shown:#}");

    // The stalled job's sources show as backpressured; weir.operators
    // agrees that they spend most of their time so.
    let levels = shown["levels"].as_array().expect("levels");
    assert!(levels.iter().any(|l| l[0] == "0" && l[1] == "high"), "{shown:#}");
    let pressure = rows(
        server.port,
        &format!(
            "SELECT backpressured_share FROM weir.operators WHERE job_id = '{}' AND stage = 0",
            ids["backpressured"].as_str().expect("id")
        ),
    );
    assert!(pressure.iter().all(|r| r[0].parse::<f64>().expect("share") > 0.5), "{pressure:?}");

    // The SQL box answers what psql answers.
    assert_eq!(shown["sqlColumns"], serde_json::json!(["job_id", "statement"]));
    let box_rows: Vec<Vec<String>> = serde_json::from_value(shown["sqlRows"].clone()).expect("rows");
    assert_eq!(box_rows, jobs, "{shown:#}");
    let refused = text(&shown["streamingError"]);
    assert!(refused.contains("SELECT over streams") && refused.contains("CREATE MATERIALIZED VIEW"), "{refused}");

    // Stopped: the page says so, and so does psql.
    assert_eq!(shown["smallStop"]["ok"], true, "{shown:#}");
    assert_eq!(shown["healthyStop"]["ok"], true, "{shown:#}");
    for key in ["small", "healthy"] {
        assert_eq!(shown[format!("{key}Status")], "CANCELLED", "{shown:#}");
        let status = rows(server.port, &format!("SELECT status FROM weir.jobs WHERE job_id = '{}'", text(&ids[key])));
        assert_eq!(status, vec![vec!["CANCELLED".to_string()]]);
    }
    assert_eq!(
        rows(server.port, &format!("SELECT status FROM weir.jobs WHERE job_id = '{}'", text(&ids["backpressured"])))[0]
            [0],
        "RUNNING"
    );
    // The savepoint the message names exists, with parts weir_savepoint lists.
    let message = text(&shown["healthyStop"]["message"]);
    let path =
        message.split("savepoint '").nth(1).and_then(|r| r.split('\'').next()).unwrap_or_else(|| panic!("{message}"));
    let saved = dir.path().join(path);
    assert!(
        saved.is_dir() && std::fs::read_dir(&saved).expect("savepoint").next().is_some(),
        "{message}: {}",
        saved.display()
    );
    let parts = rows(server.port, &format!("SELECT count(*) FROM weir_savepoint('{}')", saved.display()));
    assert!(parts[0][0].parse::<u64>().expect("count") > 0, "{parts:?}");
    eprintln!(
        "dashboard tour: {:.1} s, backpressure shown after {} ms",
        started.elapsed().as_secs_f64(),
        shown["backpressureAfterMs"]
    );
}

/// An HTTP/1.1 GET to `host:port`; the whole answer.
fn http_get(host: &str, port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect((host, port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n").expect("send");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

/// The status code of [`http_get`].
fn http_status(host: &str, port: u16, path: &str) -> u16 {
    let answer = http_get(host, port, path);
    answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status: {answer:?}"))
}

#[test]
fn the_dashboard_keeps_pgwires_rules_of_who_may_connect() {
    let dir = scratch();
    let server = Server::start(dir.path(), &["--ui-port", "0", "--password", "secret"], &[]);
    let base = dashboard(&server);
    let shots = screenshots("auth");
    let shown = node("auth.js", &[&base, shots.to_str().expect("utf-8"), "weir", "secret"]);
    assert_eq!(shown["right"], 200, "{shown:#}");
    assert!(text(&shown["rightText"]).starts_with("updated"), "{shown:#}");
    assert_eq!(shown["wrong"], 401, "{shown:#}");
    let fetched = &shown["fetch"];
    for (what, status) in [
        ("none", 401),
        ("wrongJobs", 401),
        ("wrongEvents", 401),
        ("wrongSql", 401),
        ("rightJobs", 200),
        ("rightEvents", 200),
        ("rightSql", 200),
        ("plainText", 403),
        ("foreignOrigin", 403),
    ] {
        assert_eq!(fetched[what], status, "{what}: {shown:#}");
    }
    // pgwire keeps the same password.
    assert!(psql(server.port, "SELECT 1", Some("secret")).status.success());
    assert!(server.log().contains("dashboard: failed login"), "{}", server.log());
    server.stop();

    // Without a password: loopback clients only, and only under an
    // address or localhost (a rebound DNS name is refused).
    let server = Server::start(dir.path(), &["--ui-port", "0", "--bind", "0.0.0.0"], &[]);
    let port: u16 = dashboard(&server).rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
    assert_eq!(http_status("127.0.0.1", port, "/api/jobs"), 200);
    assert_eq!(http_status("localhost", port, "/"), 200);
    let mut rebound = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(rebound, "GET /api/jobs HTTP/1.1\r\nHost: attacker.example:{port}\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut answer = String::new();
    let _ = rebound.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    match non_loopback_address() {
        Some(address) => assert_eq!(http_status(&address, port, "/api/jobs"), 403),
        None => eprintln!("no non-loopback address: nothing to refuse"),
    }
}

#[test]
fn weir_run_serves_the_dashboard_while_its_jobs_run() {
    let dir = scratch();
    let file = dir.path().join("job.sql");
    // About 4 s of rows, then the job ends and so does the command.
    std::fs::write(
        &file,
        "CREATE TABLE few (seq BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '100', 'number-of-rows' = '400');
CREATE TABLE copied (seq BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO copied SELECT seq FROM few;",
    )
    .expect("job file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["run", "--ui-port", "0"])
        .arg(&file)
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start weir run");
    let mut stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut log = String::new();
    let port: u16 = loop {
        let mut line = String::new();
        let read = std::io::BufRead::read_line(&mut stderr, &mut line).expect("read stderr");
        assert!(read > 0, "weir run ended without a dashboard:\n{log}");
        log.push_str(&line);
        if let Some(address) = line.strip_prefix("Dashboard at http://") {
            break address.trim().trim_end_matches('/').rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
        }
    };
    // The job's id as the command printed it, in the dashboard's jobs.
    let id = loop {
        let mut line = String::new();
        assert!(std::io::BufRead::read_line(&mut stderr, &mut line).expect("read stderr") > 0, "no job:\n{log}");
        log.push_str(&line);
        if let Some(rest) = line.strip_prefix("Job '") {
            break rest.split('\'').next().expect("id").to_string();
        }
    };
    // The sample a second after the job started has it.
    let until = Instant::now() + Duration::from_secs(3);
    loop {
        let answer = http_get("127.0.0.1", port, "/api/jobs");
        if answer.starts_with("HTTP/1.1 200") && answer.contains(&format!("\"id\":\"{id}\"")) {
            break;
        }
        assert!(Instant::now() < until, "{answer}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = stderr.read_to_string(&mut log);
    let status = child.wait().expect("wait");
    assert!(status.success() && log.contains(&format!("job {id} finished")), "{status}\n{log}");
}
