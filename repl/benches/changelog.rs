//! Decoding the changelog formats: `weir run` reads a file of Debezium
//! records (a snapshot, then updates, inserts and deletes of 10 000 keys)
//! into a blackhole table, and the same rows as plain `json` (the after
//! images only) for comparison. Each run reports wall time and the `weir`
//! process's CPU time (from `wait4`); records per CPU second is the
//! figure that does not depend on what else the machine runs.
//!
//! `cargo bench --bench changelog [-- --records 1000000]`
//!
//! The `weir` binary is the one cargo builds for benchmarks
//! (`CARGO_BIN_EXE_weir`, release settings).

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let records: usize = args
        .iter()
        .position(|a| a == "--records")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let (debezium, json) = inputs(records);
    std::fs::write(dir.path().join("cdc.json"), debezium).expect("write records");
    std::fs::write(dir.path().join("rows.json"), json).expect("write rows");
    for (format, file) in [("json", "rows.json"), ("debezium-json", "cdc.json")] {
        let sql = format!(
            "CREATE TABLE src (id BIGINT, name VARCHAR, category VARCHAR, weight BIGINT, updated TIMESTAMP(3))
               WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = '{format}');
             CREATE TABLE sink (id BIGINT, name VARCHAR, category VARCHAR, weight BIGINT, updated TIMESTAMP(3))
               WITH ('connector' = 'blackhole');
             INSERT INTO sink SELECT * FROM src;",
            dir.path().join(file).display()
        );
        let (wall, cpu) = run(dir.path(), &sql);
        println!(
            "{format:>14}: {records} records in {wall:.2} s wall, {cpu:.2} s CPU: {:.0} records/s per core",
            records as f64 / cpu
        );
    }
}

/// `records` Debezium records over 10 000 keys (the first 10 000 a
/// snapshot, then 60% updates, 25% inserts of deleted keys, 15% deletes),
/// and as many plain rows.
fn inputs(records: usize) -> (String, String) {
    let keys = 10_000.min(records);
    let mut live = vec![true; keys];
    let mut state: u64 = 2026;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        state >> 33
    };
    let row = |id: usize, v: u64| {
        format!(
            "{{\"id\": {id}, \"name\": \"product {}\", \"category\": \"c{}\", \"weight\": {v}, \"updated\": {}}}",
            v % 50,
            v % 7,
            1_767_225_600_000u64 + v
        )
    };
    let (mut cdc, mut rows) = (String::new(), String::new());
    let mut last = vec![0u64; keys];
    for i in 0..records {
        let v = next() % 1000;
        let id = if i < keys { i } else { next() as usize % keys };
        let source = "\"source\": {\"version\": \"2.7.0.Final\", \"connector\": \"mysql\", \"name\": \"dbserver1\", \
                      \"ts_ms\": 1767225600000, \"db\": \"inventory\", \"table\": \"products\", \"file\": \"mysql-bin.000003\", \
                      \"pos\": 154, \"row\": 0}";
        let (op, before, after) = match (i < keys, live[id], next() % 100) {
            (true, _, _) => ("r", "null".to_string(), row(id, v)),
            (false, true, 0..60) => ("u", row(id, last[id]), row(id, v)),
            (false, true, _) => ("d", row(id, last[id]), "null".to_string()),
            (false, false, _) => ("c", "null".to_string(), row(id, v)),
        };
        live[id] = op != "d";
        last[id] = v;
        let _ = writeln!(
            cdc,
            "{{\"before\": {before}, \"after\": {after}, {source}, \"op\": \"{op}\", \"ts_ms\": 1767225600001, \"transaction\": null}}"
        );
        let _ = writeln!(rows, "{}", row(id, v));
    }
    (cdc, rows)
}

/// Runs `sql` with `weir run` in `dir`: wall and CPU seconds.
fn run(dir: &Path, sql: &str) -> (f64, f64) {
    let file = dir.join("job.sql");
    std::fs::write(&file, sql).expect("write sql");
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("run")
        .arg(&file)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start weir");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data, valid when zeroed; wait4 fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not reaped yet.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    assert_eq!(reaped, pid, "wait4 on weir: {}", std::io::Error::last_os_error());
    assert_eq!(status, 0, "weir failed");
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (
        started.elapsed().as_secs_f64(),
        seconds(ru.ru_utime) + seconds(ru.ru_stime),
    )
}
