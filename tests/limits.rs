//! Inputs and settings that would hang or exhaust the machine, through the
//! real `weir` binary: a line that never ends (`/dev/zero`), a named pipe
//! nobody writes to, settings below their minimum or too long to hold, a
//! watermark delay that leaves the range of timestamps and event times at
//! the ends of it.

use crate::common;
use crate::pgwire_common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use pgwire_common::*;

/// What one `weir run` did, with its peak resident memory.
struct Measured {
    ok: bool,
    stderr: String,
    peak_rss_bytes: u64,
}

/// Runs `weir run` on `sql` in `dir` and measures its peak memory (no
/// restored twin: these jobs are about failures and limits).
///
/// The peak is the child's own `VmHWM`, read while it runs: wait4's
/// `ru_maxrss` would not do, since Linux carries a process's peak across
/// exec, and a child spawned from this test binary (which runs every
/// integration test, hundreds of MB) starts with the binary's.
fn run_measured(dir: &Path, sql: &str) -> Measured {
    let file = dir.join("job.sql");
    std::fs::write(&file, sql).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("run")
        .arg(&file)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0;
    // A high-water mark: the last reading holds every earlier peak, and
    // only the exit itself, which allocates nothing, goes unseen.
    let status = loop {
        let hwm = std::fs::read_to_string(&status_file).ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        });
        peak_kb = hwm.unwrap_or(0u64).max(peak_kb);
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    Measured {
        ok: status.success(),
        stderr: std::fs::read_to_string(dir.join("stderr.log")).unwrap(),
        peak_rss_bytes: peak_kb * 1024,
    }
}

/// Far less than what reading `/dev/zero` for a second would take if a
/// line were held whole (gigabytes), far more than Weir needs.
const MEMORY_CEILING: u64 = 512 << 20;

#[test]
fn a_line_that_never_ends_fails_the_job_with_one_clear_error() {
    let dir = scratch();
    let run = run_measured(
        dir.path(),
        "CREATE TABLE t (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '/dev/zero', 'format' = 'json');
CREATE TABLE o (id BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO o SELECT id FROM t;",
    );
    assert!(!run.ok, "{}", run.stderr);
    // The job's own line (a restart logs the failure once more before it).
    let failed: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("job ") && l.contains("failed")).collect();
    assert_eq!(failed.len(), 1, "{}", run.stderr);
    assert!(
        failed[0].contains("/dev/zero:1: cannot decode record: the record is longer than 16777216 bytes")
            && failed[0].contains("'source.max-record-size'"),
        "{}",
        run.stderr
    );
    assert!(run.peak_rss_bytes < MEMORY_CEILING, "peak RSS {} bytes", run.peak_rss_bytes);
}

/// With `'json.ignore-parse-errors'`, lines over the limit are counted and
/// skipped and the rest is read: the output is exactly the lines within it.
#[test]
fn oversized_lines_are_counted_and_the_others_read() {
    let dir = scratch();
    let input = dir.path().join("in.json");
    let line = |id: usize, pad: usize| format!("{{\"id\": {id}, \"pad\": \"{}\"}}", "x".repeat(pad));
    let lines: Vec<String> = (0..60).map(|id| line(id, if id % 7 == 3 { 5000 } else { id })).collect();
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let limit = 4096;
    let expected: Vec<String> =
        lines.iter().enumerate().filter(|(_, l)| l.len() <= limit).map(|(id, _)| format!("+I[{id}]")).collect();
    let run = weir_run(
        dir.path(),
        &format!(
            "CREATE TABLE t (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json',
  'source.max-record-size' = '4 kb', 'json.ignore-parse-errors' = 'true');
CREATE TABLE o (id BIGINT) WITH ('connector' = 'print');
INSERT INTO o SELECT id FROM t;",
            input.display()
        ),
    );
    assert!(run.ok, "{}", run.stderr);
    let got: Vec<String> = run.stdout.lines().map(str::to_string).collect();
    assert_eq!(got, expected);
    assert_eq!(run.counted("records that could not be decoded") as usize, lines.len() - expected.len());
}

/// `VmRSS` of `pid`, in bytes.
fn resident(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).expect("VmRSS");
    kb.trim().trim_end_matches("kB").trim().parse::<u64>().unwrap() * 1024
}

/// Polls `query` until it prints `want` (one line).
#[track_caller]
fn wait_for(port: u16, query: &str, want: &str) {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let got = psql_ok(port, query);
        if got.trim() == want {
            return;
        }
        assert!(Instant::now() < until, "{query}: {got:?}, not {want:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The id of the only running job.
fn running_job(port: u16) -> String {
    let jobs = psql_ok(port, "SHOW JOBS");
    let running: Vec<&str> = jobs.lines().filter(|l| l.contains("|Running|")).collect();
    assert_eq!(running.len(), 1, "{jobs}");
    running[0].split('|').next().unwrap().to_string()
}

/// Skipping an endless line counts it once and keeps memory bounded; the
/// job stays responsive: STOP JOB stops it and SIGTERM ends the server.
#[test]
fn an_endless_line_that_is_skipped_leaves_the_server_responsive() {
    let dir = scratch();
    let server = Server::start(dir.path(), &[], &[]);
    let port = server.port;
    psql_ok(
        port,
        "CREATE TABLE t (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '/dev/zero', 'format' = 'json', \
         'json.ignore-parse-errors' = 'true')",
    );
    psql_ok(port, "CREATE TABLE o (id BIGINT) WITH ('connector' = 'blackhole')");
    psql_ok(port, "INSERT INTO o SELECT id FROM t");
    wait_for(port, "SELECT sum(rows) FROM weir.late_events WHERE reason = 'decode_error'", "1");
    // It goes on skipping the rest of the line: still one record, and the
    // memory stays bounded.
    std::thread::sleep(Duration::from_secs(2));
    let rss = resident(server.pid());
    assert!(rss < MEMORY_CEILING, "RSS {rss} bytes while skipping");
    wait_for(port, "SELECT sum(rows) FROM weir.late_events WHERE reason = 'decode_error'", "1");
    let id = running_job(port);
    psql_ok(port, &format!("STOP JOB '{id}'"));
    assert!(psql_ok(port, "SHOW JOBS").contains(&format!("{id}|Cancelled|")));
    psql_ok(port, "INSERT INTO o SELECT id FROM t");
    let started = Instant::now();
    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
    assert!(started.elapsed() < Duration::from_secs(20), "SIGTERM took {:?}", started.elapsed());
}

/// How many descriptors and threads of process `pid` hold `pipe`: open
/// descriptors on it, and threads blocked opening or reading a pipe. Seen
/// from outside, without opening the pipe (a writer coming and going would
/// end the job's input).
fn pipe_users(pid: u32, pipe: &Path) -> usize {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok()).filter(|l| l == pipe).count())
        .unwrap_or(0);
    let blocked = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("wchan")).ok())
                .filter(|w| ["wait_for_partner", "fifo_open", "pipe_read", "pipe_wait"].contains(&w.trim()))
                .count()
        })
        .unwrap_or(0);
    fds + blocked
}

/// Waits until `pipe_users` of `pid` is (`true`) or is not (`false`) zero.
#[track_caller]
fn wait_for_pipe_users(pid: u32, pipe: &Path, none: bool, what: &str) {
    let until = Instant::now() + Duration::from_secs(30);
    while (pipe_users(pid, pipe) == 0) != none {
        assert!(Instant::now() < until, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A job reading a named pipe nobody writes to stops at once, and leaves
/// nothing behind: before pipes were read through the reactor, each such
/// stopped job kept a thread blocked opening the pipe, forever, until the
/// blocking pool ran out. SIGTERM then stops a server with such a job.
#[test]
fn jobs_on_a_pipe_nobody_writes_to_stop_and_leave_nothing_behind() {
    let dir = scratch();
    let pipe = dir.path().join("in.pipe");
    assert!(Command::new("mkfifo").arg(&pipe).status().unwrap().success());
    let server = Server::start(dir.path(), &[], &[]);
    let port = server.port;
    psql_ok(
        port,
        &format!(
            "CREATE TABLE t (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json')",
            pipe.display()
        ),
    );
    psql_ok(port, "CREATE TABLE o (id BIGINT) WITH ('connector' = 'blackhole')");
    let pid = server.pid();
    for round in 0..5 {
        psql_ok(port, &format!("INSERT INTO o SELECT id + {round} FROM t"));
        let id = running_job(port);
        wait_for_pipe_users(pid, &pipe, false, "the job never opened the pipe");
        let asked = Instant::now();
        psql_ok(port, &format!("STOP JOB '{id}'"));
        assert!(psql_ok(port, "SHOW JOBS").contains(&format!("{id}|Cancelled|")));
        assert!(asked.elapsed() < Duration::from_secs(10), "STOP JOB took {:?}", asked.elapsed());
        wait_for_pipe_users(pid, &pipe, true, &format!("round {round}: a stopped job still holds the pipe"));
    }
    psql_ok(port, "INSERT INTO o SELECT id FROM t");
    let started = Instant::now();
    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
    assert!(started.elapsed() < Duration::from_secs(20), "SIGTERM took {:?}", started.elapsed());
}

/// Ctrl-C ends a `weir run` whose job waits on a pipe nobody writes to.
#[test]
fn ctrl_c_ends_weir_run_on_a_pipe_nobody_writes_to() {
    let dir = scratch();
    let pipe = dir.path().join("in.pipe");
    assert!(Command::new("mkfifo").arg(&pipe).status().unwrap().success());
    let file = dir.path().join("job.sql");
    std::fs::write(
        &file,
        format!(
            "CREATE TABLE t (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
CREATE TABLE o (id BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO o SELECT id FROM t;",
            pipe.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("run")
        .arg(&file)
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_pipe_users(child.id(), &pipe, false, "the job never opened the pipe");
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("weir run did not end at Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn settings_below_their_minimum_or_too_long_are_refused() {
    let dir = scratch();
    for (setting, value, reason) in [
        ("execution.checkpointing.interval", "1 ms", "expected 0 (checkpointing off) or at least 10 ms"),
        ("execution.checkpointing.interval", "999999999999 d", "too long a duration (at most 213503 days)"),
        ("execution.checkpointing.timeout", "0", "expected at least 10 ms"),
        ("pipeline.auto-watermark-interval", "99999999999999999999 s", "too long a duration"),
    ] {
        let run = run_measured(dir.path(), &format!("SET '{setting}' = '{value}';"));
        assert!(!run.ok, "{setting} = {value} was accepted");
        assert!(
            run.stderr.contains(&format!("invalid value '{value}' for '{setting}': {reason}")),
            "{setting} = {value}: {}",
            run.stderr
        );
    }
}

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;

/// A delay of 300 000 years leaves the range of timestamps for every
/// event time: refused at CREATE TABLE, pointing at the expression.
#[test]
fn a_watermark_delay_beyond_the_range_of_timestamps_is_refused() {
    let dir = scratch();
    std::fs::write(dir.path().join("in.json"), format!("{{\"id\": 1, \"ts\": {T0}}}\n")).unwrap();
    let run = run_measured(
        dir.path(),
        "CREATE TABLE t (id BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '300000' YEAR)
  WITH ('connector' = 'filesystem', 'path' = 'in.json', 'format' = 'json');",
    );
    assert!(!run.ok);
    assert!(
        run.stderr.contains("job.sql:1:65: error: WATERMARK expression ts - INTERVAL '300000' YEAR cannot be computed for the event time 2000-01-01T00:00:00"),
        "{}",
        run.stderr
    );
    // A thousand years is fine: windows fire at the end of the input.
    let run = weir_run(
        dir.path(),
        "CREATE TABLE t (id BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1000' YEAR)
  WITH ('connector' = 'filesystem', 'path' = 'in.json', 'format' = 'json');
CREATE TABLE o (n BIGINT) WITH ('connector' = 'print');
INSERT INTO o SELECT count(*) FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' HOUR)) GROUP BY window_start, window_end;",
    );
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(run.stdout.trim(), "+I[1]");
}

/// Event times at the ends of the 64-bit range, where subtracting a month
/// or five seconds overflows: those rows are invalid event times, counted,
/// and the other rows' windows are exact.
#[test]
fn event_times_at_the_ends_of_the_range_do_not_fail_the_job() {
    let extremes = [i64::MIN + 1, i64::MAX - 1, 9_000_000_000_000_000_000, -9_000_000_000_000_000_000];
    let normal: Vec<i64> = (0..40).map(|i| T0 + i * 97_000).collect();
    let dir = scratch();
    let mut file = std::fs::File::create(dir.path().join("in.json")).unwrap();
    for (i, ts) in normal.iter().chain(&extremes).enumerate() {
        writeln!(file, "{{\"id\": {i}, \"ts\": {ts}}}").unwrap();
    }
    drop(file);
    // Per ten-minute window, the rows with ordinary times.
    let mut expected = BTreeMap::new();
    for ts in &normal {
        *expected.entry(ts - ts.rem_euclid(600_000)).or_insert(0) += 1;
    }
    // As the print sink shows whole minutes: 2026-01-01T00:10.
    let minute = |ms: i64| {
        let t = sql_timestamp(ms);
        format!("{}T{}", &t[..10], &t[11..16])
    };
    let expected: Vec<String> = expected.into_iter().map(|(start, n)| format!("+I[{}, {n}]", minute(start))).collect();
    for delay in ["INTERVAL '1' MONTH", "INTERVAL '5' SECOND", "INTERVAL '-5' SECOND"] {
        let run = weir_run(
            dir.path(),
            &format!(
                "CREATE TABLE t (id BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - {delay})
  WITH ('connector' = 'filesystem', 'path' = 'in.json', 'format' = 'json');
CREATE TABLE o (ws TIMESTAMP(3), n BIGINT) WITH ('connector' = 'print');
INSERT INTO o SELECT window_start, count(*) FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' MINUTE))
GROUP BY window_start, window_end;"
            ),
        );
        assert!(run.ok, "{delay}: {}", run.stderr);
        let mut got: Vec<String> = run.stdout.lines().map(str::to_string).collect();
        got.sort();
        assert_eq!(got, expected, "{delay}");
        assert_eq!(run.counted("rows with an invalid event time"), extremes.len() as u64, "{delay}");
    }
}
