//! A savepoint restored into a changed query (docs/checkpoints.md, "State
//! identity"): a tumbling-window job runs over the first part of its input
//! (JSON files, then a named pipe that keeps it running), is stopped with
//! `STOP JOB … WITH SAVEPOINT` once it has read every one of those rows,
//! and an edited query starts from the savepoint on the rest (files named
//! after the pipe). The windows the first run fired (end at most its last
//! watermark) hold the old query's rows; every later window the edited
//! query's, computed by DataFusion over the whole input — an added
//! aggregate column over the rows after the savepoint only. Unsafe edits
//! are refused before anything runs, naming the operator and the
//! difference.

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::SessionContext;

use common::repl_session::ReplSession;
use common::*;

/// Rows, one every 250 ms, keys a/b/c; the first `SPLIT` are read before
/// the savepoint (the last of them mid-window, so that the open windows'
/// state carries over).
const ROWS: i64 = 240;
const SPLIT: i64 = 130;
const STEP: i64 = 250;
const SIZE: i64 = 10_000;
const DELAY: i64 = 2_000;

fn rows() -> Vec<Row> {
    (0..ROWS)
        .map(|i| Row {
            k: Some(["a", "b", "c"][(i % 3) as usize].to_string()),
            v: Some(i % 7 + 1),
            ts: Some(T0 + i * STEP),
        })
        .collect()
}

/// Windows whose end is at most this fired before the savepoint: the
/// watermark had reached the first part's last time minus the delay.
fn fired_before(window_start: i64) -> bool {
    window_start + SIZE - 1 <= T0 + (SPLIT - 1) * STEP - DELAY
}

/// The job's input directory: the first part, the pipe, and (before the
/// second run) the rest.
fn first_part(dir: &Path) {
    let rows = rows();
    std::fs::create_dir_all(dir.join("in")).unwrap();
    write_json(&dir.join("in/a.json"), &rows[..SPLIT as usize]);
    assert!(
        Command::new("mkfifo")
            .arg(dir.join("in/m.pipe"))
            .status()
            .unwrap()
            .success()
    );
}

fn second_part(dir: &Path) {
    write_json(&dir.join("in/z.json"), &rows()[SPLIT as usize..]);
}

/// Settings, the source table and `body` (sink tables and INSERTs).
fn job(dir: &Path, settings: &str, body: &str) -> String {
    format!(
        "SET 'execution.checkpointing.interval' = '100 ms';
{settings}
CREATE TABLE t (k VARCHAR, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
  WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'json', 'scan.watermark.emit.strategy' = 'on-event');
{body}
",
        input = dir.join("in").display()
    )
    .replace("$DIR", &dir.display().to_string())
}

/// A filesystem sink table `name` of `columns` under `dir/name`.
fn sink(name: &str, columns: &str) -> String {
    format!(
        "CREATE TABLE {name} ({columns}) WITH ('connector' = 'filesystem', 'path' = '$DIR/{name}', 'format' = 'json');"
    )
}

const OUT: &str = "window_start TIMESTAMP(3), k VARCHAR, c BIGINT, s BIGINT";

/// The windowed aggregation of the first run, with `select` as its SELECT
/// list (after `SELECT`, hints included).
fn aggregation(select: &str) -> String {
    format!(
        "SELECT {select} FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end, k"
    )
}

fn base() -> String {
    format!(
        "{}\nINSERT INTO out {};",
        sink("out", OUT),
        aggregation("window_start, k, count(*) AS c, sum(v) AS s")
    )
}

/// Runs `sql` in a REPL until the job has read the first part, stops it
/// with a savepoint and returns the savepoint's path.
fn savepoint(dir: &Path, sql: &str) -> String {
    let mut repl = ReplSession::start(dir, &[]);
    repl.send(sql);
    let id = repl.job_id();
    // Every row before the pipe read: the savepoint's state holds them all.
    loop {
        repl.send(&format!(
            "SELECT concat('READ ', CAST(rows_in AS VARCHAR)) AS r FROM weir.jobs WHERE job_id = '{id}';\n"
        ));
        let read = repl.wait_for("READ ");
        let read: i64 = read.split_whitespace().next().unwrap_or_default().parse().unwrap();
        assert!(read <= SPLIT, "{read} rows read of {SPLIT}");
        if read == SPLIT {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let path = repl.stop_with_savepoint(&id);
    repl.quit();
    path
}

/// Runs `sql` (from a savepoint) over the rest of the input to its end:
/// once the job has opened the pipe, the pipe is closed.
fn resume(dir: &Path, sql: &str) -> std::process::Output {
    second_part(dir);
    run_to_end(dir, sql)
}

/// `weir run` of `sql`, ending the pipe's input once the job reads it (or
/// leaving it alone if the job ends first, refused).
fn run_to_end(dir: &Path, sql: &str) -> std::process::Output {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::write(dir.join("second.sql"), sql).unwrap();
    let mut job = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("run")
        .arg(dir.join("second.sql"))
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Opening a pipe to write without waiting fails until it has a reader.
    let pipe = dir.join("in/m.pipe");
    while job.try_wait().unwrap().is_none() {
        if let Ok(writer) = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&pipe)
        {
            drop(writer);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    job.wait_with_output().unwrap()
}

/// The restoring settings of the second run.
fn from(savepoint: &str, more: &str) -> String {
    format!("SET 'execution.savepoint.path' = '{savepoint}';\n{more}")
}

/// DataFusion over every row as table `t` (`k`, `v`, `ts` in epoch ms,
/// `ws` its window's start, `after`: 1 for a row after the savepoint).
async fn oracle(query: &str) -> Vec<Vec<String>> {
    let rows = rows();
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Utf8, false),
        Field::new("v", DataType::Int64, false),
        Field::new("ts", DataType::Int64, false),
        Field::new("ws", DataType::Int64, false),
        Field::new("after", DataType::Int64, false),
    ]));
    let ts = |r: &Row| r.ts.unwrap();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.k.clone().unwrap()))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.v.unwrap()))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(ts))),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| ts(r) - ts(r).rem_euclid(SIZE)),
        )),
        Arc::new(Int64Array::from_iter_values((0..ROWS).map(|i| i64::from(i >= SPLIT)))),
    ];
    let ctx = SessionContext::new();
    ctx.register_batch("t", RecordBatch::try_new(schema, columns).unwrap())
        .unwrap();
    let lines = normalize_batches(&ctx.sql(query).await.unwrap().collect().await.unwrap());
    lines
        .iter()
        .map(|l| l.split('|').map(str::to_string).collect())
        .collect()
}

/// The rows of sink directory `dir/name` as `columns` (timestamps in epoch
/// ms; a column the row lacks as `null`).
fn sink_rows(dir: &Path, name: &str, columns: &[&str]) -> Vec<Vec<String>> {
    read_sink(&dir.join(name))
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|c| match row.get(*c) {
                    None | Some(serde_json::Value::Null) => "null".to_string(),
                    Some(serde_json::Value::String(s)) if *c == "window_start" => parse_timestamp(s).to_string(),
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                })
                .collect()
        })
        .collect()
}

/// The old query's oracle for the windows fired before the savepoint and
/// `edited`'s for the others, as sorted lines of `columns` — the first
/// being the window start — padded with `null` where the old query had no
/// such column.
async fn expected(old: &str, edited: &str, columns: usize) -> Vec<String> {
    let mut lines: Vec<String> = oracle(old)
        .await
        .into_iter()
        .filter(|r| fired_before(r[0].parse().unwrap()))
        .chain(
            oracle(edited)
                .await
                .into_iter()
                .filter(|r| !fired_before(r[0].parse().unwrap())),
        )
        .map(|mut r| {
            r.resize(columns, "null".to_string());
            r.join("|")
        })
        .collect();
    lines.sort();
    lines
}

fn lines(rows: Vec<Vec<String>>) -> Vec<String> {
    let mut lines: Vec<String> = rows.into_iter().map(|r| r.join("|")).collect();
    lines.sort();
    lines
}

const OLD: &str = "SELECT ws, k, count(*) AS c, sum(v) AS s FROM t GROUP BY ws, k";

/// A first run of the base query, stopped with a savepoint, in a new
/// directory.
fn first_run(settings: &str, body: &str) -> (tempfile::TempDir, String) {
    let dir = scratch();
    first_part(dir.path());
    let path = savepoint(dir.path(), &job(dir.path(), settings, body));
    let fired = sink_rows(dir.path(), "out", &["window_start"]);
    assert!(!fired.is_empty(), "the first run fired no window");
    assert!(
        fired.iter().all(|w| fired_before(w[0].parse().unwrap())),
        "a window fired before its end"
    );
    (dir, path)
}

/// The edited query `body` from the savepoint of the base query; it must
/// succeed. Returns its directory and the run's log.
fn edited(settings: &str, body: &str) -> (tempfile::TempDir, String) {
    let (dir, path) = first_run("", &base());
    let out = resume(dir.path(), &job(dir.path(), &from(&path, settings), body));
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{log}");
    (dir, log)
}

/// A filter after the aggregation: the windows after the savepoint are
/// the edited query's, with the restored windows complete.
#[tokio::test]
async fn a_filter_after_the_aggregation_keeps_the_state() {
    let body = format!(
        "{}\nINSERT INTO out SELECT * FROM ({}) WHERE s > 40;",
        sink("out", OUT),
        aggregation("window_start, k, count(*) AS c, sum(v) AS s")
    );
    let (dir, _) = edited("", &body);
    let got = lines(sink_rows(dir.path(), "out", &["window_start", "k", "c", "s"]));
    let edited = "SELECT * FROM (SELECT ws, k, count(*) AS c, sum(v) AS s FROM t GROUP BY ws, k) WHERE s > 40";
    assert_rows_eq(&got, &expected(OLD, edited, 4).await, "a filter after the aggregation");
}

/// A projection after the aggregation (a computed column).
#[tokio::test]
async fn a_projection_after_the_aggregation_keeps_the_state() {
    let body = format!(
        "{}\nINSERT INTO out SELECT window_start, k, c, s, s * 2 + c AS x FROM ({});",
        sink("out", &format!("{OUT}, x BIGINT")),
        aggregation("window_start, k, count(*) AS c, sum(v) AS s")
    );
    let (dir, _) = edited("", &body);
    let got = lines(sink_rows(dir.path(), "out", &["window_start", "k", "c", "s", "x"]));
    let edited = "SELECT ws, k, count(*) AS c, sum(v) AS s, sum(v) * 2 + count(*) AS x FROM t GROUP BY ws, k";
    assert_rows_eq(
        &got,
        &expected(OLD, edited, 5).await,
        "a projection after the aggregation",
    );
}

/// An added aggregate column starts empty for the keys the savepoint
/// restored: over the windows after the savepoint it aggregates the rows
/// after it only; the other columns are over every row.
#[tokio::test]
async fn an_added_aggregate_starts_empty_for_restored_keys() {
    let body = format!(
        "{}\nINSERT INTO out {};",
        sink("out", &format!("{OUT}, m BIGINT, n BIGINT")),
        aggregation("window_start, k, count(*) AS c, sum(v) AS s, max(v) AS m, count(v) AS n")
    );
    let (dir, log) = edited("", &body);
    assert!(log.contains("added aggregates") && log.contains("start empty"), "{log}");
    let got = lines(sink_rows(dir.path(), "out", &["window_start", "k", "c", "s", "m", "n"]));
    let edited = "SELECT ws, k, count(*) AS c, sum(v) AS s, max(CASE WHEN after = 1 THEN v END) AS m, \
                  count(CASE WHEN after = 1 THEN v END) AS n FROM t GROUP BY ws, k";
    assert_rows_eq(&got, &expected(OLD, edited, 6).await, "an added aggregate");
}

/// A new sink in a statement set: the aggregation's state restores, and
/// the new INSERT reads the shared source from the savepoint's positions.
#[tokio::test]
async fn a_new_sink_in_a_statement_set_keeps_the_state() {
    let body = format!(
        "{}\n{}\nEXECUTE STATEMENT SET BEGIN\nINSERT INTO raw SELECT k, v, ts FROM t;\nINSERT INTO out {};\nEND;",
        sink("out", OUT),
        sink("raw", "k VARCHAR, v BIGINT, ts TIMESTAMP(3)"),
        aggregation("window_start, k, count(*) AS c, sum(v) AS s")
    );
    let (dir, _) = edited("", &body);
    let got = lines(sink_rows(dir.path(), "out", &["window_start", "k", "c", "s"]));
    assert_rows_eq(&got, &expected(OLD, OLD, 4).await, "the aggregation beside a new sink");
    let raw = lines(sink_rows(dir.path(), "raw", &["k", "v"]));
    let after = lines(oracle("SELECT k, v FROM t WHERE after = 1").await);
    assert_rows_eq(&raw, &after, "the new sink: the rows after the savepoint");
}

/// Another parallelism.
#[tokio::test]
async fn another_parallelism_keeps_the_state() {
    let (dir, _) = edited("SET 'parallelism.default' = '3';", &base());
    let got = lines(sink_rows(dir.path(), "out", &["window_start", "k", "c", "s"]));
    assert_rows_eq(&got, &expected(OLD, OLD, 4).await, "at parallelism 3");
}

/// An operator with a UID keeps its state when the edited query plans
/// another operator of its kind before it (its derived id would change
/// from WindowAggregate#0 to #1, and the new one would take its state);
/// the new one starts empty and says so.
#[tokio::test]
async fn a_uid_follows_its_operator_when_it_moves() {
    let uid = "window_start, k, count(*) AS c, sum(v) AS s";
    let (dir, path) = first_run(
        "",
        &format!(
            "{}\nINSERT INTO out {};",
            sink("out", OUT),
            aggregation(&format!("/*+ UID('WindowAggregate' = 'per_key') */ {uid}"))
        ),
    );
    let body = format!(
        "{}\n{}\nEXECUTE STATEMENT SET BEGIN\nINSERT INTO big SELECT window_start, count(*) AS c FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '20' SECOND)) GROUP BY window_start, window_end;\nINSERT INTO out {};\nEND;",
        sink("out", OUT),
        sink("big", "window_start TIMESTAMP(3), c BIGINT"),
        aggregation(&format!("/*+ UID('WindowAggregate#1' = 'per_key') */ {uid}"))
    );
    let sql = job(dir.path(), &from(&path, ""), &body);
    let out = resume(dir.path(), &sql);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("WindowAggregate#0 had no state in the savepoint and started empty"),
        "{log}"
    );
    let got = lines(sink_rows(dir.path(), "out", &["window_start", "k", "c", "s"]));
    assert_rows_eq(&got, &expected(OLD, OLD, 4).await, "the moved operator");
    // The new aggregation saw the rows after the savepoint only.
    let big = lines(sink_rows(dir.path(), "big", &["window_start", "c"]));
    let after = lines(
        oracle("SELECT ts - ts % 20000 AS w, count(*) AS c FROM t WHERE after = 1 GROUP BY ts - ts % 20000").await,
    );
    assert_rows_eq(&big, &after, "the new aggregation");
}

/// Unsafe edits are refused before anything runs, naming the operator
/// and the difference: another group key, another aggregate function, a
/// removed aggregation (unless its state may be dropped).
#[tokio::test]
async fn unsafe_edits_are_refused_naming_the_operator() {
    let (dir, path) = first_run("", &base());
    let before = read_sink(&dir.path().join("out")).len();
    second_part(dir.path());
    let refused = |body: String, why: &[&str]| {
        let run = run_once(dir.path(), &job(dir.path(), &from(&path, ""), &body));
        assert!(!run.ok, "{body} ran");
        for w in why {
            assert!(run.stderr.contains(w), "{w:?} not in: {}", run.stderr);
        }
        assert_eq!(read_sink(&dir.path().join("out")).len(), before, "a refused job wrote");
    };
    refused(
        format!(
            "{}\nINSERT INTO out SELECT window_start, k, count(*) AS c, sum(v) AS s FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end, k, v;",
            sink("out", OUT)
        ),
        &[
            "the state of WindowAggregate#0 was saved as",
            "keys [k Utf8] became keys [k Utf8, v Int64]",
        ],
    );
    refused(
        format!(
            "{}\nINSERT INTO out {};",
            sink("out", OUT),
            aggregation("window_start, k, count(*) AS c, max(v) AS s")
        ),
        &[
            "the state of WindowAggregate#0 was saved as",
            "sum(Int64)",
            "max(Int64)",
        ],
    );
    let removed = format!(
        "{}\nINSERT INTO raw SELECT k, v, ts FROM t;",
        sink("raw", "k VARCHAR, v BIGINT, ts TIMESTAMP(3)")
    );
    refused(
        removed.clone(),
        &[
            "state of WindowAggregate#0",
            "which no operator of this query claims",
            "execution.savepoint.ignore-unclaimed-state",
        ],
    );

    // With ignore-unclaimed-state the removed aggregation's state is
    // dropped, and the job runs on from the savepoint's positions.
    let ignore = from(&path, "SET 'execution.savepoint.ignore-unclaimed-state' = 'true';");
    let out = run_to_end(dir.path(), &job(dir.path(), &ignore, &removed));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("WindowAggregate#0") && log.contains("was dropped"),
        "{log}"
    );
    let raw = lines(sink_rows(dir.path(), "raw", &["k", "v"]));
    assert_rows_eq(
        &raw,
        &lines(oracle("SELECT k, v FROM t WHERE after = 1").await),
        "after dropping the aggregation",
    );
}

/// Where the compatibility goldens are: one savepoint per Weir release
/// (docs/checkpoints.md, "Compatibility goldens").
fn goldens() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/savepoints")
}

/// Rows as JSON lines with epoch-millisecond times, as a golden keeps its
/// input.
fn json_lines(rows: &[Row]) -> String {
    rows.iter()
        .map(|r| {
            format!(
                "{{\"k\": \"{}\", \"v\": {}, \"ts\": {}}}\n",
                r.k.clone().unwrap(),
                r.v.unwrap(),
                r.ts.unwrap()
            )
        })
        .collect()
}

/// Writes this build's golden: the base query's savepoint after the first
/// part of the input, the output the job had committed, its input and its
/// SQL. Run once per release (`cargo test --test integration -- --ignored
/// savepoint_evolution::make_compatibility_golden`) and commit the directory.
#[test]
#[ignore]
fn make_compatibility_golden() {
    let dir = scratch();
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    let rows = rows();
    std::fs::write(dir.path().join("in/a.json"), json_lines(&rows[..SPLIT as usize])).unwrap();
    assert!(
        Command::new("mkfifo")
            .arg(dir.path().join("in/m.pipe"))
            .status()
            .unwrap()
            .success()
    );
    let sql = job(dir.path(), "", &base());
    let path = savepoint(dir.path(), &sql);
    let golden = goldens().join(format!("{}-tumble-sum", env!("CARGO_PKG_VERSION")));
    let _ = std::fs::remove_dir_all(&golden);
    for (from, to) in [(Path::new(&path), "savepoint"), (&dir.path().join("out"), "out")] {
        std::fs::create_dir_all(golden.join(to)).unwrap();
        common::restored::copy_tree(from, &golden.join(to));
    }
    std::fs::write(golden.join("first.json"), json_lines(&rows[..SPLIT as usize])).unwrap();
    std::fs::write(golden.join("rest.json"), json_lines(&rows[SPLIT as usize..])).unwrap();
    std::fs::write(
        golden.join("job.sql"),
        sql.replace(&dir.path().display().to_string(), "$DIR"),
    )
    .unwrap();
    std::fs::write(
        golden.join("oracle.sql"),
        format!("-- columns: window_start,k,c,s\n{OLD}\n"),
    )
    .unwrap();
}

/// Every golden savepoint — one per Weir release — restores in this build:
/// its job, started from it over the rest of its input, ends with the
/// output DataFusion computes over the whole input (`oracle.sql` over `t`:
/// `k`, `v`, `ts` in epoch ms, `ws` its 10 s window's start). A raised
/// state format must migrate these, not refuse them.
#[tokio::test]
async fn savepoints_of_every_release_restore() {
    let mut goldens: Vec<std::path::PathBuf> = std::fs::read_dir(goldens())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    goldens.sort();
    assert!(
        !goldens.is_empty(),
        "no golden savepoint in {}",
        self::goldens().display()
    );
    for golden in goldens {
        let dir = scratch();
        for part in ["savepoint", "out"] {
            std::fs::create_dir_all(dir.path().join(part)).unwrap();
            common::restored::copy_tree(&golden.join(part), &dir.path().join(part));
        }
        std::fs::create_dir_all(dir.path().join("in")).unwrap();
        std::fs::copy(golden.join("first.json"), dir.path().join("in/a.json")).unwrap();
        std::fs::copy(golden.join("rest.json"), dir.path().join("in/z.json")).unwrap();
        assert!(
            Command::new("mkfifo")
                .arg(dir.path().join("in/m.pipe"))
                .status()
                .unwrap()
                .success()
        );
        let sql = std::fs::read_to_string(golden.join("job.sql")).unwrap();
        let sql = format!(
            "SET 'execution.savepoint.path' = '{}';\n{}",
            dir.path().join("savepoint").display(),
            sql.replace("$DIR", &dir.path().display().to_string())
        );
        let out = run_to_end(dir.path(), &sql);
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{}: {log}", golden.display());
        assert!(log.contains("resumed from savepoint"), "{log}");

        let oracle_sql = std::fs::read_to_string(golden.join("oracle.sql")).unwrap();
        let columns: Vec<&str> = oracle_sql
            .lines()
            .next()
            .unwrap()
            .trim_start_matches("-- columns: ")
            .split(',')
            .collect();
        let mut input = std::fs::read_to_string(golden.join("first.json")).unwrap();
        input.push_str(&std::fs::read_to_string(golden.join("rest.json")).unwrap());
        let (mut k, mut v, mut ts) = (Vec::new(), Vec::new(), Vec::new());
        for line in input.lines() {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            k.push(row["k"].as_str().unwrap().to_string());
            v.push(row["v"].as_i64().unwrap());
            ts.push(row["ts"].as_i64().unwrap());
        }
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, false),
            Field::new("v", DataType::Int64, false),
            Field::new("ts", DataType::Int64, false),
            Field::new("ws", DataType::Int64, false),
        ]));
        let ws: Vec<i64> = ts.iter().map(|t| t - t.rem_euclid(SIZE)).collect();
        let columns_in: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(k)),
            Arc::new(Int64Array::from(v)),
            Arc::new(Int64Array::from(ts)),
            Arc::new(Int64Array::from(ws)),
        ];
        let ctx = SessionContext::new();
        ctx.register_batch("t", RecordBatch::try_new(schema, columns_in).unwrap())
            .unwrap();
        let query: String = oracle_sql.lines().skip(1).collect::<Vec<_>>().join("\n");
        let expected = normalize_batches(&ctx.sql(&query).await.unwrap().collect().await.unwrap());
        let got = lines(sink_rows(dir.path(), "out", &columns));
        assert_rows_eq(&got, &expected, &golden.display().to_string());
    }
}

/// `EXPLAIN` shows every stateful part's state id, the UID hint's among
/// them; a hint naming no stateful operator, an ambiguous kind, one id for
/// two operators and a malformed id are refused, quoting the hint.
#[test]
fn uid_hints_are_shown_and_checked() {
    let dir = scratch();
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    let tables = format!(
        "{}\n{}",
        sink("out", OUT),
        sink("big", "window_start TIMESTAMP(3), c BIGINT")
    );
    let per_key = |hint: &str| {
        format!(
            "INSERT INTO out {}",
            aggregation(&format!("{hint} window_start, k, count(*) AS c, sum(v) AS s"))
        )
    };
    let big = "INSERT INTO big SELECT window_start, count(*) AS c FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '20' SECOND)) GROUP BY window_start, window_end";
    let explain = |statement: String| {
        run_once(
            dir.path(),
            &job(dir.path(), "", &format!("{tables}\nEXPLAIN {statement};")),
        )
    };

    let shown = explain(per_key("/*+ UID('windowaggregate' = 'per_key') */"));
    assert!(shown.ok, "{}", shown.stderr);
    assert!(
        shown.stdout.contains("state id: per_key") && shown.stdout.contains("state id: Source#0"),
        "{}",
        shown.stdout
    );
    let set = |hint: &str| format!("STATEMENT SET BEGIN\n{big};\n{};\nEND", per_key(hint));
    let both = explain(set("/*+ UID('WindowAggregate#1' = 'per_key') */"));
    assert!(both.ok, "{}", both.stderr);
    assert!(
        both.stdout.contains("state id: WindowAggregate#0") && both.stdout.contains("state id: per_key"),
        "{}",
        both.stdout
    );

    for (statement, why) in [
        (
            set("/*+ UID('WindowAggregate' = 'per_key') */"),
            "is ambiguous: this query has 2 WindowAggregate operators (WindowAggregate#0, WindowAggregate#1)",
        ),
        (
            per_key("/*+ UID('GroupAggregate' = 'x') */"),
            "no stateful operator 'GroupAggregate' (its stateful parts: Source#0, WindowAggregate#0)",
        ),
        (
            set("/*+ UID('WindowAggregate#0' = 'x', 'WindowAggregate#1' = 'x') */"),
            "the state id 'x' is given to two stateful operators",
        ),
        (
            per_key("/*+ UID('WindowAggregate' = 'a#1') */"),
            "'a#1' cannot be a state id",
        ),
        (
            per_key("/*+ UID('Source' = 'clicks') */"),
            "a source's state id cannot be set",
        ),
    ] {
        let run = explain(statement);
        assert!(!run.ok, "{}", run.stdout);
        assert!(
            run.stderr.contains(why) && run.stderr.contains("UID"),
            "{why:?} not in {}",
            run.stderr
        );
    }
}
