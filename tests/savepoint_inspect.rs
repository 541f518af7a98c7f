//! `weir_savepoint('path')` over a real savepoint of a running window job:
//! the parts it lists are the stateful parts the job's `EXPLAIN` names,
//! the window aggregate's state is split into key groups that its keys
//! could fill, and a path without state is refused by name.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// Distinct keys of the input.
const KEYS: u64 = 20;

fn tables(dir: &std::path::Path) -> String {
    format!(
        "SET 'execution.checkpointing.interval' = '100 ms';
SET 'parallelism.default' = '2';
CREATE TABLE src (k VARCHAR, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
CREATE TABLE out (window_start TIMESTAMP(3), k VARCHAR, c BIGINT, s BIGINT)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');",
        dir.join("in").display(),
        dir.join("out").display()
    )
}

const INSERT: &str = "INSERT INTO out SELECT window_start, k, count(*) AS c, sum(v) AS s
FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end, k";

/// The job keeps running on a named pipe nobody writes, is stopped with a
/// savepoint from the REPL, and the savepoint is read with `weir run`.
#[test]
fn a_running_window_jobs_savepoint_lists_its_parts_and_key_groups() {
    let dir = scratch();
    let mut g = Lcg(11);
    let rows: Vec<Row> = (0..3_000)
        .map(|i| Row {
            k: Some(format!("k{}", g.below(KEYS))),
            v: Some(g.below(100) as i64),
            ts: Some(T0 + i * 20),
        })
        .collect();
    write_input_files(dir.path(), &rows);
    let pipe = dir.path().join("in/zz.pipe");
    assert!(Command::new("mkfifo").arg(&pipe).status().unwrap().success());

    let explain = run_once(dir.path(), &format!("{}\nEXPLAIN {INSERT};", tables(dir.path())));
    assert!(explain.ok, "{}", explain.stderr);
    let explained: BTreeSet<String> = explain
        .stdout
        .split("state id: ")
        .skip(1)
        .filter_map(|s| s.split(|c: char| c.is_whitespace() || c == ')' || c == ',').next())
        .map(str::to_string)
        .collect();
    assert!(
        explained.iter().any(|id| id.starts_with("WindowAggregate#")),
        "{}",
        explain.stdout
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let wait_for = |prefix: &str| -> String {
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no line with {prefix:?}"));
            if let Some(i) = line.find(prefix) {
                return line[i + prefix.len()..].to_string();
            }
        }
    };
    writeln!(stdin, "{}\n{INSERT};", tables(dir.path())).unwrap();
    let id = wait_for("Job '").split('\'').next().unwrap().to_string();
    // Fired windows committed: the files were read, the last window is open.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while read_sink(&dir.path().join("out")).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    writeln!(stdin, "STOP JOB '{id}' WITH SAVEPOINT;").unwrap();
    let savepoint = wait_for("stopped with savepoint '")
        .split('\'')
        .next()
        .unwrap()
        .to_string();
    writeln!(stdin, "\\q").unwrap();
    drop(stdin);
    assert!(child.wait().unwrap().success());

    let query = format!(
        "SELECT concat('PART ', state_id, ' ', COALESCE(CAST(key_group AS VARCHAR), '-'), ' ',
  CAST(bytes AS VARCHAR), ' ', CAST(tasks AS VARCHAR), ' ', COALESCE(kind, '-'), ' ',
  CASE WHEN signature IS NULL THEN '-' ELSE 'signed' END) AS p
FROM weir_savepoint('{savepoint}');"
    );
    let read = run_once(dir.path(), &query);
    assert!(read.ok, "{}", read.stderr);
    // state id -> [(key group, bytes, tasks, kind, signed)]
    let mut parts = BTreeMap::<String, Vec<(Option<u64>, u64, u64, String, bool)>>::new();
    for line in read.stdout.lines().filter_map(|l| l.split("PART ").nth(1)) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let group = (f[1] != "-").then(|| f[1].parse().unwrap());
        let row = (
            group,
            f[2].parse().unwrap(),
            f[3].parse().unwrap(),
            f[4].to_string(),
            f[5] == "signed",
        );
        parts.entry(f[0].to_string()).or_default().push(row);
    }
    let signed: BTreeSet<String> = parts
        .iter()
        .filter(|(_, r)| r.iter().any(|r| r.4))
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(signed, explained, "{}", read.stdout);

    let window = explained.iter().find(|id| id.starts_with("WindowAggregate#")).unwrap();
    let rows = &parts[window];
    let whole = rows.iter().find(|r| r.0.is_none()).unwrap();
    assert_eq!((whole.2, whole.3.as_str()), (2, "WindowAggregate"), "{}", read.stdout);
    let groups: Vec<&(Option<u64>, u64, u64, String, bool)> = rows.iter().filter(|r| r.0.is_some()).collect();
    assert!(!groups.is_empty() && groups.len() as u64 <= KEYS, "{}", read.stdout);
    assert!(
        groups.iter().all(|r| r.0.unwrap() < 128 && r.1 > 0 && r.2 >= 1),
        "{}",
        read.stdout
    );
    // The whole part is its state bytes plus every key group's chunks.
    assert!(whole.1 > groups.iter().map(|r| r.1).sum::<u64>(), "{}", read.stdout);
    for (id, rows) in &parts {
        assert!(rows.iter().all(|r| r.1 > 0 || r.2 == 0), "{id}: {}", read.stdout);
    }

    // A path with no state is named, and left uncreated.
    let missing = dir.path().join("no-such-savepoint");
    let refused = run_once(
        dir.path(),
        &format!("SELECT * FROM weir_savepoint('{}');", missing.display()),
    );
    let said = format!("{}{}", refused.stdout, refused.stderr);
    assert!(
        said.contains(&missing.display().to_string()) && said.contains("no Weir state"),
        "{said}"
    );
    assert!(!missing.exists());
}
