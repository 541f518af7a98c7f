//! `weir_savepoint('path')` over a real savepoint of a running window job:
//! the parts it lists are the stateful parts the job's `EXPLAIN` names,
//! the window aggregate's state is split into key groups that its keys
//! could fill, and a path without state is refused by name.
//! `weir.savepoint_rows('path', 'id')` reads a window aggregate's state (a
//! sled savepoint) and a group aggregate's (a savepoint on a real S3 server)
//! as rows equal to a small oracle over the rows read before the savepoint;
//! a bad id, an operator of another kind and a damaged savepoint are clear
//! errors. Over pgwire (`weir serve`, psql and psycopg's prepared
//! statements) both spellings answer the same rows as `weir run`, and the
//! state's rows there are the oracle's too.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::pgwire_common::{Server, psql_ok, python};
use common::repl_session::ReplSession;
use common::s3::Moto;
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
        .map(|i| Row { k: Some(format!("k{}", g.below(KEYS))), v: Some(g.below(100) as i64), ts: Some(T0 + i * 20) })
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
    assert!(explained.iter().any(|id| id.starts_with("WindowAggregate#")), "{}", explain.stdout);

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
            let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| panic!("no line with {prefix:?}"));
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
    let savepoint = wait_for("stopped with savepoint '").split('\'').next().unwrap().to_string();
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
        let row = (group, f[2].parse().unwrap(), f[3].parse().unwrap(), f[4].to_string(), f[5] == "signed");
        parts.entry(f[0].to_string()).or_default().push(row);
    }
    let signed: BTreeSet<String> =
        parts.iter().filter(|(_, r)| r.iter().any(|r| r.4)).map(|(id, _)| id.clone()).collect();
    assert_eq!(signed, explained, "{}", read.stdout);

    let window = explained.iter().find(|id| id.starts_with("WindowAggregate#")).unwrap();
    let rows = &parts[window];
    let whole = rows.iter().find(|r| r.0.is_none()).unwrap();
    assert_eq!((whole.2, whole.3.as_str()), (2, "WindowAggregate"), "{}", read.stdout);
    let groups: Vec<&(Option<u64>, u64, u64, String, bool)> = rows.iter().filter(|r| r.0.is_some()).collect();
    assert!(!groups.is_empty() && groups.len() as u64 <= KEYS, "{}", read.stdout);
    assert!(groups.iter().all(|r| r.0.unwrap() < 128 && r.1 > 0 && r.2 >= 1), "{}", read.stdout);
    // The whole part is its state bytes plus every key group's chunks.
    assert!(whole.1 > groups.iter().map(|r| r.1).sum::<u64>(), "{}", read.stdout);
    for (id, rows) in &parts {
        assert!(rows.iter().all(|r| r.1 > 0 || r.2 == 0), "{id}: {}", read.stdout);
    }

    // A path with no state is named, and left uncreated.
    let missing = dir.path().join("no-such-savepoint");
    let refused = run_once(dir.path(), &format!("SELECT * FROM weir_savepoint('{}');", missing.display()));
    let said = format!("{}{}", refused.stdout, refused.stderr);
    assert!(said.contains(&missing.display().to_string()) && said.contains("no Weir state"), "{said}");
    assert!(!missing.exists());
}

/// Window length of [`INSERT`], in milliseconds.
const WINDOW: i64 = 10_000;

/// `n` rows in time order, 20 ms apart, over [`KEYS`] keys.
fn ordered_rows(seed: u64, n: i64) -> Vec<Row> {
    let mut g = Lcg(seed);
    (0..n)
        .map(|i| Row { k: Some(format!("k{}", g.below(KEYS))), v: Some(g.below(1000) as i64), ts: Some(T0 + i * 20) })
        .collect()
}

/// A savepoint of the window job over `rows`, taken once windows have
/// fired so that its state holds only the open ones (a FIFO beside the
/// input keeps the job running): the job's directory and the savepoint.
fn savepoint_of_open_windows(rows: &[Row]) -> (tempfile::TempDir, String) {
    let dir = scratch();
    write_input_files(dir.path(), rows);
    assert!(Command::new("mkfifo").arg(dir.path().join("in/zz.pipe")).status().unwrap().success());
    let out = dir.path().join("out");
    let fired = || !read_sink(&out).is_empty();
    let savepoint =
        savepoint_after_reading(dir.path(), &[], &format!("{}\n{INSERT};\n", tables(dir.path())), rows.len(), &fired);
    (dir, savepoint)
}

/// Runs `sql` in a REPL (with `env`) until its job has read all `rows`
/// input rows (the input ends with a pipe nobody writes, so the job runs
/// on) and `ready` holds, stops it with a savepoint and returns the
/// savepoint's path: its state holds every row.
fn savepoint_after_reading(
    dir: &std::path::Path,
    env: &[(String, String)],
    sql: &str,
    rows: usize,
    ready: &dyn Fn() -> bool,
) -> String {
    let mut repl = ReplSession::start(dir, env);
    repl.send(sql);
    let id = repl.job_id();
    loop {
        repl.send(&format!(
            "SELECT concat('READ ', CAST(rows_in AS VARCHAR)) AS r FROM weir.jobs WHERE job_id = '{id}';\n"
        ));
        let read: usize = repl.wait_for("READ ").split_whitespace().next().unwrap_or_default().parse().unwrap();
        assert!(read <= rows, "{read} rows read of {rows}");
        if read == rows && ready() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let path = repl.stop_with_savepoint(&id);
    repl.quit();
    path
}

/// The whitespace-separated fields of each output line holding `prefix`.
fn fields(stdout: &str, prefix: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .filter_map(|l| l.split(prefix).nth(1))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// Each key's key group, checked to be one per key and within 0..128.
fn key_groups_of(rows: &[(u64, String)]) -> BTreeMap<String, u64> {
    let mut groups = BTreeMap::new();
    for (group, key) in rows {
        assert!(*group < 128, "key group {group}");
        let first = *groups.entry(key.clone()).or_insert(*group);
        assert_eq!(first, *group, "key {key} in two key groups");
    }
    groups
}

/// A window aggregate's savepoint (sled) read as rows: each row is one
/// open window's group, equal to the oracle's count and sum over the input
/// rows of that window and key; the open windows and the windows the job
/// committed before the savepoint are disjoint and together every window;
/// its key groups are those `weir.savepoint` lists. A group aggregate's
/// savepoint on a real S3 server read as rows: each key's count, sum and
/// max over every input row, in the key group the window's state put it.
#[test]
fn window_and_group_aggregate_state_reads_as_rows() {
    let rows = ordered_rows(5, 3_000);
    // The oracle: per (window start, key), count and sum; per key, count,
    // sum and max.
    let mut windows = BTreeMap::<(i64, String), (i64, i64)>::new();
    let mut groups = BTreeMap::<String, (i64, i64, i64)>::new();
    for r in &rows {
        let (k, v, ts) = (r.k.clone().unwrap(), r.v.unwrap(), r.ts.unwrap());
        let w = windows.entry((ts - ts.rem_euclid(WINDOW), k.clone())).or_default();
        *w = (w.0 + 1, w.1 + v);
        let g = groups.entry(k).or_insert((0, 0, i64::MIN));
        *g = (g.0 + 1, g.1 + v, g.2.max(v));
    }

    let (dir, savepoint) = savepoint_of_open_windows(&rows);

    let read = run_once(
        dir.path(),
        &format!(
            "SELECT concat('ROW ', CAST(key_group AS VARCHAR), ' ', CAST(CAST(slice_start AS BIGINT) AS VARCHAR), ' ',
  CAST(CAST(first_window_end AS BIGINT) AS VARCHAR), ' ', k, ' ', CAST(count_0 AS VARCHAR), ' ', CAST(sum_1 AS VARCHAR)) AS r
FROM weir.savepoint_rows('{savepoint}', 'WindowAggregate#0');
SELECT concat('GROUP ', CAST(key_group AS VARCHAR)) AS g FROM weir.savepoint('{savepoint}')
  WHERE state_id = 'WindowAggregate#0' AND key_group IS NOT NULL;"
        ),
    );
    assert!(read.ok, "{}", read.stderr);
    let mut open = BTreeMap::<(i64, String), (i64, i64)>::new();
    let mut keyed = Vec::new();
    for f in fields(&read.stdout, "ROW ") {
        let (start, end): (i64, i64) = (f[1].parse().unwrap(), f[2].parse().unwrap());
        assert_eq!(end, start + WINDOW, "a tumbling window's slice is the window");
        keyed.push((f[0].parse::<u64>().unwrap(), f[3].clone()));
        let row = (f[4].parse().unwrap(), f[5].parse().unwrap());
        assert!(open.insert((start, f[3].clone()), row).is_none(), "one row per window and key");
    }
    assert!(!open.is_empty(), "the last window is open: {}", read.stdout);
    let committed: BTreeMap<(i64, String), (i64, i64)> = read_sink(&dir.path().join("out"))
        .iter()
        .map(|r| {
            let start = parse_timestamp(r["window_start"].as_str().unwrap());
            ((start, r["k"].as_str().unwrap().to_string()), (r["c"].as_i64().unwrap(), r["s"].as_i64().unwrap()))
        })
        .collect();
    assert!(!committed.is_empty(), "windows fired before the savepoint");
    assert!(open.keys().all(|w| !committed.contains_key(w)), "a fired window is not kept");
    let mut all = committed.clone();
    all.extend(open.clone());
    assert_eq!(all, windows, "committed windows and the state's open ones are every window");
    let window_groups = key_groups_of(&keyed);
    let listed: BTreeSet<u64> = fields(&read.stdout, "GROUP ").iter().map(|f| f[0].parse().unwrap()).collect();
    assert_eq!(window_groups.values().copied().collect::<BTreeSet<_>>(), listed, "{}", read.stdout);

    // The group aggregate, its savepoint on S3.
    let moto = Moto::start();
    moto.create_bucket("saved");
    let env = moto.env();
    let gdir = scratch();
    write_input_files(gdir.path(), &rows);
    assert!(Command::new("mkfifo").arg(gdir.path().join("in/zz.pipe")).status().unwrap().success());
    let job = format!(
        "SET 'state.savepoints.dir' = 's3://saved/savepoints';
{}
CREATE TABLE totals (k VARCHAR, c BIGINT, s BIGINT, m BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO totals SELECT k, count(*) AS c, sum(v) AS s, max(v) AS m FROM src GROUP BY k;\n",
        tables(gdir.path())
    );
    let savepoint = savepoint_after_reading(gdir.path(), &env, &job, rows.len(), &|| true);
    assert!(savepoint.starts_with("s3://saved/savepoints/"), "{savepoint}");
    let read = run_once_with(
        gdir.path(),
        &format!(
            "SELECT concat('ROW ', CAST(key_group AS VARCHAR), ' ', k, ' ', CAST(count_0 AS VARCHAR), ' ',
  CAST(sum_1 AS VARCHAR), ' ', CAST(max_2 AS VARCHAR)) AS r
FROM weir_savepoint_rows('{savepoint}', 'GroupAggregate#0');
SELECT concat('GROUP ', CAST(key_group AS VARCHAR)) AS g FROM weir_savepoint('{savepoint}')
  WHERE state_id = 'GroupAggregate#0' AND key_group IS NOT NULL AND bytes > 0;"
        ),
        &env,
    );
    assert!(read.ok, "{}", read.stderr);
    let mut got = BTreeMap::new();
    let mut keyed = Vec::new();
    for f in fields(&read.stdout, "ROW ") {
        keyed.push((f[0].parse::<u64>().unwrap(), f[1].clone()));
        let row = (f[2].parse().unwrap(), f[3].parse().unwrap(), f[4].parse().unwrap());
        assert!(got.insert(f[1].clone(), row).is_none(), "one row per key");
    }
    assert_eq!(got, groups, "{}", read.stdout);
    let group_groups = key_groups_of(&keyed);
    let listed: BTreeSet<u64> = fields(&read.stdout, "GROUP ").iter().map(|f| f[0].parse().unwrap()).collect();
    assert_eq!(group_groups.values().copied().collect::<BTreeSet<_>>(), listed, "{}", read.stdout);
    for (k, g) in &group_groups {
        assert_eq!(window_groups.get(k).unwrap_or(g), g, "key {k}: the window's state and the group's agree");
    }
}

/// A state id the savepoint has not, an operator whose state has no row
/// form and a damaged savepoint are errors saying so, never a panic.
#[test]
fn unreadable_state_is_a_clear_error() {
    let rows = ordered_rows(9, 500);
    let dir = scratch();
    write_input_files(dir.path(), &rows);
    assert!(Command::new("mkfifo").arg(dir.path().join("in/zz.pipe")).status().unwrap().success());
    let sql = format!("{}\n{INSERT};\n", tables(dir.path()));
    let savepoint = savepoint_after_reading(dir.path(), &[], &sql, rows.len(), &|| true);
    let ask = |path: &str, id: &str| {
        let run = run_once(dir.path(), &format!("SELECT * FROM weir.savepoint_rows('{path}', '{id}');"));
        assert!(!run.stderr.contains("panicked"), "{}{}", run.stdout, run.stderr);
        format!("{}{}", run.stdout, run.stderr)
    };
    let said = ask(&savepoint, "WindowAggregate#7");
    assert!(said.contains("no state 'WindowAggregate#7'") && said.contains("WindowAggregate#0"), "{said}");

    let listed = run_once(
        dir.path(),
        &format!("SELECT concat('PART ', state_id) AS p FROM weir_savepoint('{savepoint}') WHERE key_group IS NULL;"),
    );
    let other = fields(&listed.stdout, "PART ")
        .into_iter()
        .map(|f| f[0].clone())
        .find(|id| !id.starts_with("WindowAggregate"))
        .unwrap_or_else(|| panic!("a part other than the window's: {}", listed.stdout));
    let said = ask(&savepoint, &other);
    assert!(said.contains(&other) && said.contains("only WindowAggregate and GroupAggregate"), "{said}");

    // Every file of a copy of the savepoint cut to half its length.
    let damaged = dir.path().join("damaged");
    let mut stack = vec![(std::path::PathBuf::from(&savepoint), damaged.clone())];
    while let Some((from, to)) = stack.pop() {
        std::fs::create_dir_all(&to).unwrap();
        for entry in std::fs::read_dir(&from).unwrap().map(Result::unwrap) {
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                stack.push((entry.path(), target));
            } else {
                let bytes = std::fs::read(entry.path()).unwrap();
                std::fs::write(&target, &bytes[..bytes.len() / 2]).unwrap();
            }
        }
    }
    let said = ask(damaged.to_str().unwrap(), "WindowAggregate#0");
    assert!(said.contains("weir_savepoint_rows") && said.contains(damaged.to_str().unwrap()), "{said}");
}

/// The lines of `stdout` holding `prefix`, from it on, as their fields
/// joined by one space (a `weir run` table's cell borders dropped), sorted:
/// psql's rows and `weir run`'s compare as equal.
fn rows_of(stdout: &str, prefix: &str) -> Vec<String> {
    let mut rows: Vec<String> = fields(stdout, prefix)
        .into_iter()
        .map(|f| f.into_iter().filter(|f| f != "|").collect::<Vec<_>>().join(" "))
        .collect();
    rows.sort();
    rows
}

/// psycopg 3 runs each query of argv[2:] as a prepared statement (the
/// extended protocol) and prints its rows' one column.
const PREPARED: &str = r#"
import sys
import psycopg

with psycopg.connect(f"host=127.0.0.1 port={sys.argv[1]} user=weir dbname=weir", autocommit=True) as conn:
    for query in sys.argv[2:]:
        for (r,) in conn.execute(query, prepare=True):
            print(r)
"#;

/// `weir.savepoint(…)` and `weir.savepoint_rows(…)` over pgwire, as the
/// issue spells them: psql (simple protocol) and psycopg's prepared
/// statements (extended protocol) against `weir serve` get the rows of the
/// `weir_…` spelling there, and of both spellings in `weir run`; the
/// window aggregate's rows are the oracle's open windows.
#[test]
fn both_spellings_answer_the_same_rows_over_pgwire() {
    let rows = ordered_rows(13, 1_500);
    let mut windows = BTreeMap::<(i64, String), (i64, i64)>::new();
    for r in &rows {
        let (k, ts) = (r.k.clone().unwrap(), r.ts.unwrap());
        let w = windows.entry((ts - ts.rem_euclid(WINDOW), k)).or_default();
        *w = (w.0 + 1, w.1 + r.v.unwrap());
    }
    let (dir, savepoint) = savepoint_of_open_windows(&rows);

    let parts = |function: &str| {
        format!(
            "SELECT concat('PART ', state_id, ' ', COALESCE(CAST(key_group AS VARCHAR), '-'), ' ', CAST(bytes AS VARCHAR),
  ' ', CAST(tasks AS VARCHAR), ' ', COALESCE(kind, '-')) AS p FROM {function}('{savepoint}')"
        )
    };
    let state = |function: &str| {
        format!(
            "SELECT concat('ROW ', CAST(key_group AS VARCHAR), ' ', CAST(CAST(slice_start AS BIGINT) AS VARCHAR), ' ', k, ' ',
  CAST(count_0 AS VARCHAR), ' ', CAST(sum_1 AS VARCHAR)) AS r FROM {function}('{savepoint}', 'WindowAggregate#0')"
        )
    };
    let queries =
        |spelling: &str| [parts(&format!("{spelling}savepoint")), state(&format!("{spelling}savepoint_rows"))];
    let run = |spelling: &str| {
        let run = run_once(dir.path(), &(queries(spelling).join(";\n") + ";"));
        assert!(run.ok, "{}", run.stderr);
        (rows_of(&run.stdout, "PART "), rows_of(&run.stdout, "ROW "))
    };
    let expected = run("weir_");
    assert_eq!(run("weir."), expected, "weir run");
    let (listed, open) = &expected;
    assert!(!listed.is_empty() && !open.is_empty(), "{expected:?}");
    // The open windows are the oracle's windows the job had not committed.
    let committed: BTreeSet<(i64, String)> = read_sink(&dir.path().join("out"))
        .iter()
        .map(|r| (parse_timestamp(r["window_start"].as_str().unwrap()), r["k"].as_str().unwrap().to_string()))
        .collect();
    let oracle: Vec<String> = {
        let mut by_key_group = BTreeMap::new();
        for f in open.iter().map(|r| r.split(' ').collect::<Vec<_>>()) {
            by_key_group.insert(f[2].to_string(), f[0].to_string());
        }
        let mut rows: Vec<String> = windows
            .iter()
            .filter(|(w, _)| !committed.contains(w))
            .map(|((start, k), (c, s))| {
                format!("{} {start} {k} {c} {s}", by_key_group.get(k).map_or("none", String::as_str))
            })
            .collect();
        rows.sort();
        rows
    };
    assert_eq!(open, &oracle, "the open windows' state");

    let server = Server::start(dir.path(), &[], &[]);
    for spelling in ["weir_", "weir."] {
        let [parts, state] = queries(spelling);
        let got = (rows_of(&psql_ok(server.port, &parts), "PART "), rows_of(&psql_ok(server.port, &state), "ROW "));
        assert_eq!(got, expected, "psql, {spelling}…");
        let script = dir.path().join("prepared.py");
        std::fs::write(&script, PREPARED).unwrap();
        let client = Command::new(python()).arg(&script).arg(server.port.to_string()).args([parts, state]).output();
        let client = client.unwrap();
        let stdout = String::from_utf8_lossy(&client.stdout);
        assert!(client.status.success(), "{}\n{}", String::from_utf8_lossy(&client.stderr), server.log());
        assert_eq!((rows_of(&stdout, "PART "), rows_of(&stdout, "ROW ")), expected, "psycopg, {spelling}…");
    }
}
