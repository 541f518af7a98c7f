//! A full disk under `state.dir`: a checkpoint that cannot be written
//! fails with the system's error ("No space left on device", naming the
//! store's directory) and is abandoned; as sled then writes nothing more,
//! the job fails over, its restarts fail to open the store while the disk
//! is full (which is not damage: the state is kept, never set aside), and
//! once there is room it resumes from an intact checkpoint, checkpoints
//! again and its output is exact, whether it kept running or was killed.
//!
//! The disk is a small tmpfs the test mounts (the test runs as root, as the
//! project's test script does); its state is a one-hour window over ~95 000
//! keys, more than the tmpfs holds.

use crate::common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::tmpfs::Tmpfs;
use common::*;

/// 300 000 rows over 100 000 keys within one hour of event time.
fn input_rows() -> Vec<Row> {
    let mut g = Lcg(23);
    (0..300_000i64)
        .map(|i| Row { k: Some(format!("k{}", g.below(100_000))), v: Some(g.below(100) as i64), ts: Some(T0 + i * 10) })
        .collect()
}

/// Count and sum per key: what the job's one window holds.
fn oracle(rows: &[Row]) -> Vec<String> {
    let mut by_key: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for r in rows {
        let e = by_key.entry(r.k.as_deref().unwrap()).or_default();
        e.0 += 1;
        e.1 += r.v.unwrap();
    }
    by_key.into_iter().map(|(k, (c, s))| format!("{k} {c} {s}")).collect()
}

/// The job over the input at `input` (a file, or a directory of them),
/// checkpointing into `state`, writing to `dir`/out.
fn job_sql(dir: &Path, input: &Path, state: &Path) -> String {
    format!(
        "SET 'execution.checkpointing.interval' = '50 ms';
SET 'state.dir' = '{state}';
CREATE TABLE src (k VARCHAR, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
  WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'json');
CREATE TABLE out (window_start TIMESTAMP(3), window_end TIMESTAMP(3), k VARCHAR, c BIGINT, s BIGINT)
  WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'json');
INSERT INTO out
SELECT window_start, window_end, k, count(*) AS c, sum(v) AS s
FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' HOUR))
GROUP BY window_start, window_end, k;",
        state = state.join("state").display(),
        input = input.display(),
        out = dir.join("out").display()
    )
}

/// The committed output as `k c s` lines, sorted.
fn committed(dir: &Path) -> Vec<String> {
    let mut rows: Vec<String> = read_sink(&dir.join("out"))
        .iter()
        .map(|r| format!("{} {} {}", r["k"].as_str().unwrap(), r["c"], r["s"]))
        .collect();
    rows.sort();
    rows
}

fn weir(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_weir"));
    c.arg("run").arg(dir.join("job.sql")).current_dir(dir);
    c
}

/// The job started, its log (with each checkpoint's completion) to `log`.
fn logging_checkpoints(dir: &Path, log: &Path) -> std::process::Child {
    weir(dir)
        .env("WEIR_LOG", "warn,weir_engine::checkpoint::coordinator=debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

const FULL: &str = "No space left on device";

/// The job runs on while its disk is full and gets room: its input is a
/// file it can read again after a restart and a named pipe, held open, that
/// keeps the job running until the test closes it.
#[test]
fn a_job_whose_disk_filled_up_fails_over_and_checkpoints_again_once_there_is_room() {
    let rows = input_rows();
    let expected = oracle(&rows);
    let disk = Tmpfs::mount("1m");
    let dir = scratch();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    write_json(&input.join("a.json"), &rows);
    let pipe = input.join("z.pipe");
    assert!(Command::new("mkfifo").arg(&pipe).status().unwrap().success());
    std::fs::write(dir.path().join("job.sql"), job_sql(dir.path(), &input, disk.path())).unwrap();

    let log = dir.path().join("job.log");
    let mut child = logging_checkpoints(dir.path(), &log);
    let close = std::sync::mpsc::channel::<()>();
    let writer = std::thread::spawn(move || {
        let _pipe = std::fs::OpenOptions::new().write(true).open(&pipe).unwrap();
        let _ = close.1.recv();
    });
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let mut wait_for = |what: &str, done: &dyn Fn(&str) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done(&read_log()) {
            assert!(Instant::now() < deadline, "{what} within a minute: {}", read_log());
            assert!(child.try_wait().unwrap().is_none(), "the job ended while its input was held open: {}", read_log());
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // The error names the disk's error and the store's directory on it.
    let state = disk.path().join("state").display().to_string();
    let abandoned =
        |l: &str| l.lines().any(|l| l.contains("checkpoint abandoned") && l.contains(FULL) && l.contains(&state));
    wait_for("no checkpoint was abandoned naming the full disk", &abandoned);
    // sled fails every write after its first failed one: the job fails
    // over to open its store again.
    let failed_over = |l: &str| {
        l.lines().any(|l| l.contains("the job restarts") && l.contains("can write nothing more") && l.contains(FULL))
    };
    wait_for("the job did not fail over", &failed_over);
    disk.grow("256m");
    let completed = |l: &str| l.matches("checkpoint complete").count();
    let before = completed(&read_log());
    wait_for("no checkpoint completed once there was room", &|l| completed(l) > before + 2);
    close.0.send(()).unwrap();
    writer.join().unwrap();
    let status = child.wait().unwrap();
    let said = read_log();
    assert!(status.success(), "the job failed ({status}): {said}");
    assert!(said.contains("job restarted"), "{said}");
    assert!(!said.contains("damaged") && !said.contains("set aside"), "the full disk left damaged state: {said}");
    assert_rows_eq(&committed(dir.path()), &expected, "output of a job whose disk filled up and got room");
    assert!(hidden_files(&dir.path().join("out")).is_empty(), "uncommitted files left behind");
}

#[test]
fn a_job_killed_on_a_full_disk_resumes_from_an_intact_checkpoint() {
    let rows = input_rows();
    let expected = oracle(&rows);
    let disk = Tmpfs::mount("1m");
    let dir = scratch();
    let input = dir.path().join("in.json");
    let whole = dir.path().join("whole.json");
    write_json(&whole, &rows);
    let text = std::fs::read_to_string(&whole).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let chunk = |from: usize, to: usize| lines[from..to].iter().map(|l| format!("{l}\n")).collect::<String>();
    // A few rows first, so that a checkpoint completes while the state is
    // small; then the rest of the first half, whose state fills the disk.
    let (first, rest) = (chunk(0, 2_000), chunk(2_000, rows.len() / 2));
    std::fs::write(dir.path().join("job.sql"), job_sql(dir.path(), &input, disk.path())).unwrap();

    assert!(Command::new("mkfifo").arg(&input).status().unwrap().success());
    let log = dir.path().join("killed.log");
    let mut child = logging_checkpoints(dir.path(), &log);
    let (fifo, go, done) = (input.clone(), std::sync::mpsc::channel::<()>(), std::sync::mpsc::channel::<()>());
    let feeder = std::thread::spawn(move || {
        let mut pipe = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        let _ = pipe.write_all(first.as_bytes());
        if go.1.recv().is_ok() {
            // The job may be killed before it has read it all.
            let _ = pipe.write_all(rest.as_bytes());
        }
        // Held open until the job is killed: the job waits for more.
        let _ = done.1.recv();
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("checkpoint complete") {
        assert!(Instant::now() < deadline, "no checkpoint completed within a minute");
        assert!(child.try_wait().unwrap().is_none(), "the job ended while its input was held open");
        std::thread::sleep(Duration::from_millis(20));
    }
    go.0.send(()).unwrap();
    while !std::fs::read_to_string(&log).unwrap_or_default().contains(FULL) {
        assert!(Instant::now() < deadline, "the disk did not fill up within a minute");
        assert!(child.try_wait().unwrap().is_none(), "the job ended while its input was held open");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    done.0.send(()).unwrap();
    feeder.join().unwrap();

    std::fs::remove_file(&input).unwrap();
    std::fs::rename(&whole, &input).unwrap();
    // Run again on the full disk: its state cannot be opened, which is no
    // damage: the job waits for room (it restarts), its state kept.
    let log = dir.path().join("full.log");
    let mut child =
        weir(dir.path()).stdout(Stdio::null()).stderr(std::fs::File::create(&log).unwrap()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let said = || std::fs::read_to_string(&log).unwrap_or_default();
    while !(said().contains("cannot open state in") && said().contains(FULL)) {
        assert!(Instant::now() < deadline, "no error named the full disk within a minute: {}", said());
        assert!(child.try_wait().unwrap().is_none(), "the job ended on a full disk: {}", said());
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let states: Vec<String> = std::fs::read_dir(disk.path().join("state"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!states.iter().any(|n| n.contains("unreadable")), "state set aside on a full disk: {states:?}: {}", said());
    assert!(!said().contains("set aside"), "{}", said());

    disk.grow("256m");
    let rerun = weir(dir.path()).output().unwrap();
    let stderr = String::from_utf8_lossy(&rerun.stderr);
    assert!(rerun.status.success(), "the job failed after the disk got room ({}): {stderr}", rerun.status);
    assert!(!stderr.contains("damaged") && !stderr.contains("set aside"), "the full disk left damaged state: {stderr}");
    assert!(!stderr.contains("abandoned"), "a checkpoint failed with room on the disk: {stderr}");
    assert!(stderr.contains("resumed from checkpoint"), "the job did not resume from a checkpoint: {stderr}");
    assert_rows_eq(&committed(dir.path()), &expected, "output after a kill on a full disk");
}
