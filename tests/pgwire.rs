//! `weir serve` against real Postgres clients: psql (Debian's
//! postgresql-client) and Python's psycopg 3 (in a venv made under the
//! target directory) read a materialized view of a bounded file; the rows
//! must equal DataFusion's batch computation of the same windows, also when
//! ALLOWED LATENESS re-fires windows (the view keeps the last row of each).
//! Also: Weir's statements and errors over pgwire, passwords and
//! loopback-only serving, garbage on the socket, a client leaving
//! mid-query, 50 clients at once, and stopping on SIGTERM. The limits on
//! clients are tested in `pgwire_limits.rs`.

use crate::common;
use crate::pgwire_common;

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use pgwire_common::*;

const DELAY: i64 = 2_000;
const TUMBLE: Shape = Shape::Tumble { size: 10_000, offset: 0 };

/// The windows of `src` kept in the view `v`, with the columns
/// `common::aggregate` computes.
const VIEW: &str = "CREATE MATERIALIZED VIEW v AS
SELECT window_start, window_end, k, count(*) AS c, count(DISTINCT v) AS d,
       sum(v) AS s, min(v) AS mn, max(v) AS mx, avg(v) AS a
FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, k";

/// Rows mostly in order, some sent back beyond the watermark delay (late,
/// dropped by the view as by the oracle).
fn input_rows() -> Vec<Row> {
    let mut g = Lcg(6);
    let mut ts = T0;
    let mut rows: Vec<Row> = (0..2_000)
        .map(|_| {
            ts += g.below(400) as i64;
            Row { k: Some(format!("k{}", g.below(5))), v: Some(g.below(50) as i64), ts: Some(ts) }
        })
        .collect();
    for i in (30..rows.len()).step_by(97) {
        rows[i].ts = rows[i].ts.map(|t| t - 1_000 - g.below(20_000) as i64);
    }
    rows
}

/// The view's rows by the oracle, as `common::normalize_batches` lines.
async fn expected(rows: &[Row]) -> Vec<String> {
    let (assigned, _late) = oracle_assign(rows, TUMBLE, DELAY);
    aggregate(&assigned, TUMBLE).await
}

/// Writes the input and the job file that defines `src` and `v`.
fn job_file(dir: &Path, rows: &[Row]) -> PathBuf {
    job_file_with(dir, rows, "")
}

/// [`job_file`], with window clauses after the view's GROUP BY.
fn job_file_with(dir: &Path, rows: &[Row], clauses: &str) -> PathBuf {
    write_json(&dir.join("in.json"), rows);
    let sql = format!(
        "CREATE TABLE src (k VARCHAR, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json',
        'scan.watermark.emit.strategy' = 'on-event');
{VIEW} {clauses};",
        dir.join("in.json").display()
    );
    let file = dir.join("job.sql");
    std::fs::write(&file, sql).expect("write job");
    file
}

#[tokio::test]
async fn psql_reads_a_materialized_view_and_runs_weir_statements() {
    let dir = scratch();
    let rows = input_rows();
    let file = job_file(dir.path(), &rows);
    let server = Server::start(dir.path(), &[file.to_str().unwrap()], &[]);
    let port = server.port;

    assert_eq!(psql_ok(port, "SELECT 1").trim(), "1");
    let jobs = server.wait_for_jobs();
    assert!(jobs.contains("|Finished|") && jobs.contains("CREATE MATERIALIZED VIEW v"), "{jobs}");

    let got = normalize_psql(&psql_ok(port, "SELECT * FROM v"));
    assert_rows_eq(&got, &expected(&rows).await, "the view over psql");

    // What a dashboard panel sends: filters, ORDER BY, LIMIT, aggregates.
    let top = psql_ok(port, "SELECT k, sum(c) FROM v WHERE window_start >= TIMESTAMP '2026-01-01 00:01:00' GROUP BY k ORDER BY k LIMIT 2");
    assert_eq!(top.lines().count(), 2, "{top}");
    // psql's \d reads pg_catalog.
    let described = psql_ok(port, "\\d v");
    assert!(described.contains("window_start|timestamp without time zone"), "{described}");

    // Weir's statements over pgwire, with the REPL's results.
    let created = psql(port, "CREATE TABLE g (n BIGINT, ts AS TO_TIMESTAMP_LTZ(1767225600000 + n, 3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen', 'rows-per-second' = '100', 'fields.n.kind' = 'sequence', 'fields.n.start' = '0', 'fields.n.end' = '100000000')", None);
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    assert!(String::from_utf8_lossy(&created.stderr).contains("Table 'g' created."));
    psql_ok(port, "SET 'parallelism.default' = '1'");
    psql_ok(port, "SET extra_float_digits = 3");
    let started = psql(port, "CREATE MATERIALIZED VIEW per_second AS SELECT window_start, count(*) AS c FROM TABLE(TUMBLE(TABLE g, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY window_start, window_end", None);
    let notice = String::from_utf8_lossy(&started.stderr);
    assert!(started.status.success(), "{notice}");
    let id = notice.split('\'').nth(1).expect("the job's id in the notice").to_string();
    assert!(psql_ok(port, "SHOW TABLES").lines().any(|l| l == "per_second"));
    assert!(psql_ok(port, "SHOW JOBS").contains(&format!("{id}|Running|")));
    let plan = psql_ok(port, "EXPLAIN SELECT k, count(*) FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end, k");
    assert!(!plan.trim().is_empty());
    psql_ok(port, &format!("STOP JOB '{id}'"));
    assert!(psql_ok(port, "SHOW JOBS").contains(&format!("{id}|Cancelled|")));

    // Errors carry SQLSTATEs (psql's verbose form: `ERROR:  CODE: message`).
    assert!(psql_err(port, "SELECT * FROM nope").contains("42P01"));
    assert!(psql_err(port, "SELEC 1").contains("42601"));
    let streaming = psql_err(port, "SELECT * FROM src");
    assert!(streaming.contains("0A000") && streaming.contains("CREATE MATERIALIZED VIEW"), "{streaming}");
    assert!(psql_err(port, "CREATE TABLE x (a BIGINT) WITH ('connector' = 'nope')").contains("ERROR"));

    // A job still running when the server stops is stopped with it, after
    // a last checkpoint.
    let started = psql(port, "INSERT INTO sink SELECT n FROM g", None);
    assert!(!started.status.success(), "no table 'sink' yet");
    psql_ok(port, "CREATE TABLE sink (n BIGINT) WITH ('connector' = 'blackhole')");
    let started = psql(port, "INSERT INTO sink SELECT n FROM g", None);
    let notice = String::from_utf8_lossy(&started.stderr);
    assert!(started.status.success(), "{notice}");
    let running = notice.split('\'').nth(1).expect("the job's id in the notice").to_string();
    assert!(psql_ok(port, "SHOW JOBS").contains(&format!("{running}|Running|")));

    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
    assert!(log.contains("SIGTERM: stopping."), "{log}");
    assert!(log.contains(&format!("job {running}: checkpoint")), "{log}");
    assert!(log.contains(&format!("job {running} stopped")), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

#[tokio::test]
async fn re_fired_windows_replace_their_rows_in_the_view() {
    let dir = scratch();
    let rows = input_rows();
    let lateness = 10_000;
    let d = decide(&rows, TUMBLE, DELAY, lateness, (i64::MIN, i64::MAX));
    let (_, late) = oracle_assign(&rows, TUMBLE, DELAY);
    assert!(late > d.late.len() as u64, "some rows must be saved by the lateness");
    let file = job_file_with(dir.path(), &rows, "ALLOWED LATENESS INTERVAL '10' SECOND");
    let server = Server::start(dir.path(), &[file.to_str().unwrap()], &[]);
    let jobs = server.wait_for_jobs();

    let expected = aggregate(&d.assigned, TUMBLE).await;
    let got = normalize_psql(&psql_ok(server.port, "SELECT * FROM v"));
    assert_rows_eq(&got, &expected, "the view with re-fired windows");
    // `job id|status|rows out|…`: more rows came out than the view keeps.
    let rows_out: usize = jobs.split('|').nth(2).and_then(|n| n.parse().ok()).expect("rows out");
    assert!(rows_out > expected.len(), "no window was re-fired: {jobs}");
}

/// psycopg 3 reads `v WHERE c > threshold` with a bound parameter
/// (extended protocol) and binary results, printing the column type OIDs
/// and the rows in the oracle's form; then runs a Weir statement as a
/// prepared statement and one that returns rows, which is refused.
const PSYCOPG_CLIENT: &str = r#"
import calendar, sys
from decimal import Decimal
import psycopg

def ms(t):
    return calendar.timegm(t.timetuple()) * 1000 + t.microsecond // 1000

def cell(x):
    return "null" if x is None else str(x)

port, threshold = sys.argv[1], int(sys.argv[2])
with psycopg.connect(f"host=127.0.0.1 port={port} user=weir dbname=weir", autocommit=True) as conn:
    cur = conn.cursor(binary=True)
    cur.execute("SELECT * FROM v WHERE c > %s", (threshold,))
    print("oids " + ",".join(str(d.type_code) for d in cur.description))
    for ws, we, k, c, d, s, mn, mx, a in cur:
        a = "null" if a is None else f"{a:.6f}"
        print("row " + "|".join([str(ms(ws)), str(ms(we)), cell(k), cell(c), cell(d), cell(s), cell(mn), cell(mx), a]))
    cur = conn.execute("CREATE TABLE t (a BIGINT) WITH ('connector' = 'blackhole')", prepare=True)
    print("prepared " + cur.statusmessage)
    print("tables " + ",".join(r[0] for r in conn.execute("SHOW TABLES")))
    jobs = conn.execute("SHOW JOBS", prepare=True)
    print("jobs " + ",".join(d.name for d in jobs.description))
    for row in jobs:
        print("job " + row[0] + "|" + row[1])
    print("describe " + ",".join(r[0] + ":" + r[1] for r in conn.execute("DESCRIBE v", prepare=True)))
    print("explain " + str(len(conn.execute("EXPLAIN INSERT INTO t SELECT v FROM src", prepare=True).fetchall()) > 0))
    # Decimals, in binary.
    cur = conn.cursor(binary=True)
    cur.execute("SELECT CAST(s AS DECIMAL(12, 2)) / 4 AS q, s FROM v WHERE c > %s", (threshold,))
    print("decimal oid " + str(cur.description[0].type_code))
    print("decimal exact " + str(all(q == Decimal(s) / 4 for q, s in cur)))
    # Grafana's PostgreSQL data source: a time series panel's query with its
    # macros expanded ($__timeGroupAlias, $__timeFilter), and the query
    # builder's catalog queries.
    since, until = "2026-01-01T00:00:00Z", "2026-01-01T00:10:00Z"
    series = conn.execute(f"""SELECT floor(extract(epoch from window_start)/60)*60 AS "time", k AS metric, sum(c) AS value
        FROM v WHERE window_start BETWEEN '{since}' AND '{until}' GROUP BY 1, 2 ORDER BY 1""").fetchall()
    direct = conn.execute(f"SELECT sum(c) FROM v WHERE window_start BETWEEN '{since}' AND '{until}'").fetchone()[0]
    print("grafana series " + str(len(series) > 1 and sum(r[2] for r in series) == direct))
    tables = [r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name")]
    print("grafana has v " + str("v" in tables))
    columns = conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position", ("v",))
    print("grafana columns " + ",".join(r[0] for r in columns))
"#;

#[tokio::test]
async fn psycopg_reads_the_view_with_parameters_and_binary_results() {
    let dir = scratch();
    let rows = input_rows();
    let file = job_file(dir.path(), &rows);
    let python = python();
    let server = Server::start(dir.path(), &[file.to_str().unwrap()], &[]);
    server.wait_for_jobs();

    let script = dir.path().join("client.py");
    std::fs::write(&script, PSYCOPG_CLIENT).expect("write client");
    let threshold = 8;
    let out = Command::new(python).arg(&script).arg(server.port.to_string()).arg(threshold.to_string()).output().expect("python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), server.log());
    let said = |what: &str| -> Vec<String> {
        stdout.lines().filter_map(|l| l.strip_prefix(what)).map(str::to_string).collect()
    };
    // timestamp, timestamp, text, int8 ×6 (AVG of a BIGINT is a BIGINT,
    // as in Flink)
    assert_eq!(said("oids "), ["1114,1114,25,20,20,20,20,20,20"]);
    let mut got = said("row ");
    got.sort();
    let expected: Vec<String> = expected(&rows)
        .await
        .into_iter()
        .filter(|r| r.split('|').nth(3).and_then(|c| c.parse::<i64>().ok()).is_some_and(|c| c > threshold))
        .collect();
    assert!(!expected.is_empty() && expected.len() < 400, "the filter should keep some windows: {}", expected.len());
    assert_rows_eq(&got, &expected, "the view over psycopg");
    assert_eq!(said("prepared "), ["CREATE TABLE"]);
    assert_eq!(said("tables "), ["src,t,v"]);
    // Weir's statements that answer with rows work prepared too: the same
    // jobs as SHOW JOBS over the simple protocol.
    assert_eq!(said("jobs "), ["job id,status,rows out,rows in,rows not used,watermark,diagnosis,statement"]);
    // (psql prints a multi-line statement on several lines: a job's line
    // is the one with all eight columns.)
    let simple: Vec<String> = psql_ok(server.port, "SHOW JOBS")
        .lines()
        .filter(|l| l.split('|').count() >= 8)
        .map(|l| l.split('|').take(2).collect::<Vec<_>>().join("|"))
        .collect();
    let mut prepared = said("job ");
    prepared.sort();
    let mut simple = simple;
    simple.sort();
    assert!(!prepared.is_empty());
    assert_eq!(prepared, simple);
    assert_eq!(
        said("describe "),
        ["window_start:TIMESTAMP(3),window_end:TIMESTAMP(3),k:VARCHAR,c:BIGINT,d:BIGINT,s:BIGINT,mn:BIGINT,mx:BIGINT,a:BIGINT"]
    );
    assert_eq!(said("explain "), ["True"]);
    assert_eq!(said("decimal oid "), ["1700"]);
    assert_eq!(said("decimal exact "), ["True"]);
    assert_eq!(said("grafana series "), ["True"]);
    assert_eq!(said("grafana has v "), ["True"]);
    assert_eq!(said("grafana columns "), ["window_start,window_end,k,c,d,s,mn,mx,a"]);
}

#[tokio::test]
async fn bad_clients_affect_only_themselves_and_fifty_clients_are_served_at_once() {
    let dir = scratch();
    let rows = input_rows();
    let file = job_file(dir.path(), &rows);
    let server = Server::start(dir.path(), &[file.to_str().unwrap()], &[]);
    server.wait_for_jobs();
    let port = server.port;
    let expected = expected(&rows).await;

    // A malformed message ends that connection, and only it.
    let mut bad = raw_login(port);
    bad.write_all(&[0xff, 0, 0, 0, 9, 1, 2, 3, 4, 5]).expect("garbage");
    let other = raw_login(port);
    assert!(closed_by_server(bad), "a malformed message did not close the connection");
    // Garbage instead of a startup message.
    let mut junk = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    junk.set_read_timeout(Some(Duration::from_secs(90))).expect("timeout");
    junk.write_all(b"\x00\x00\x00\x10GET / HTTP/1.1\r\n\r\n").expect("junk");
    assert!(closed_by_server(junk), "garbage did not close the connection");
    drop(other);

    // A client that leaves while its query runs.
    let mut leaving = raw_login(port);
    let query = b"SELECT count(*) FROM v a, v b, v c\0";
    let mut message = vec![b'Q'];
    message.extend(((query.len() + 4) as u32).to_be_bytes());
    message.extend(query);
    leaving.write_all(&message).expect("query");
    drop(leaving);

    // 50 clients at once, each with its own question.
    let keys: Vec<String> = (0..50).map(|i| format!("k{}", i % 5)).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = keys
            .iter()
            .map(|k| scope.spawn(move || (k, psql(port, &format!("SELECT * FROM v WHERE k = '{k}'"), None))))
            .collect();
        for h in handles {
            let (k, out) = h.join().expect("client thread");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let want: Vec<String> = expected.iter().filter(|r| r.split('|').nth(2) == Some(k.as_str())).cloned().collect();
            assert_rows_eq(&normalize_psql(&String::from_utf8_lossy(&out.stdout)), &want, k);
        }
    });

    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn without_a_password_only_loopback_clients_are_served() {
    let Some(address) = non_loopback_address() else {
        eprintln!("no non-loopback address: nothing to refuse");
        return;
    };
    let dir = scratch();
    let server = Server::start(dir.path(), &["--bind", "0.0.0.0"], &[]);
    let refused = psql_at(&address, server.port, "SELECT 1", None);
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && why.contains("only loopback clients"), "{why}");
    assert!(psql(server.port, "SELECT 1", None).status.success());
    server.stop();
    let server = Server::start(dir.path(), &["--bind", "0.0.0.0", "--password", "pw"], &[]);
    let from_afar = psql_at(&address, server.port, "SELECT 1", Some("pw"));
    assert!(from_afar.status.success(), "{}", String::from_utf8_lossy(&from_afar.stderr));
}

#[test]
fn a_password_is_required_when_set() {
    let dir = scratch();
    for (args, env) in [(&["--password", "s3cret"][..], &[][..]), (&[][..], &[("WEIR_PG_PASSWORD", "s3cret")][..])] {
        let server = Server::start(dir.path(), args, env);
        let wrong = psql(server.port, "SELECT 1", Some("wrong"));
        assert!(!wrong.status.success());
        let why = String::from_utf8_lossy(&wrong.stderr).to_lowercase();
        assert!(why.contains("password authentication failed for user \"weir\""), "{why}");
        assert!(!psql(server.port, "SELECT 1", None).status.success(), "no password given");
        let right = psql(server.port, "SELECT 1", Some("s3cret"));
        assert!(right.status.success(), "{}", String::from_utf8_lossy(&right.stderr));
        assert_eq!(String::from_utf8_lossy(&right.stdout).trim(), "1");
        let (status, log) = server.stop();
        assert!(status.success(), "{log}");
    }
}

/// Views of GROUP BY without a window, read over psql: one row per key,
/// kept current as rows arrive (the job's changes applied), equal to
/// DataFusion's batch answer; an aggregate of such results, and a view
/// that drops the key (its rows then kept as a multiset, each change
/// withdrawing one equal row); a Top-N, upserted by key and rank.
#[tokio::test]
async fn views_of_group_by_without_a_window_hold_the_current_results() {
    let dir = scratch();
    let rows = input_rows();
    let file = job_file(dir.path(), &rows);
    let server = Server::start(dir.path(), &[file.to_str().unwrap()], &[]);
    let port = server.port;
    // (name, query, read over psql, the oracle's order).
    let views = [
        ("per_key", "SELECT k, count(*) AS c, sum(v) AS s, max(v) AS mx FROM src GROUP BY k", "SELECT * FROM per_key ORDER BY k", "1"),
        (
            "buckets",
            "SELECT mx % 4 AS b, count(*) AS keys, sum(c) AS rows FROM (SELECT k, count(*) AS c, max(v) AS mx FROM src GROUP BY k) GROUP BY mx % 4",
            "SELECT * FROM buckets ORDER BY b",
            "1",
        ),
        ("counts", "SELECT c FROM (SELECT k, count(*) AS c FROM src GROUP BY k)", "SELECT * FROM counts ORDER BY c", "1"),
        // A Top-N: each key's three largest values, a rank's row replaced
        // as larger ones come (ties have equal rows).
        (
            "top3",
            "SELECT k, v, rn FROM (SELECT k, v, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v DESC) AS rn FROM src) WHERE rn <= 3",
            "SELECT * FROM top3 ORDER BY k, rn",
            "1, 3",
        ),
    ];
    for (name, query, _, _) in &views {
        let out = psql(port, &format!("CREATE MATERIALIZED VIEW {name} AS {query}"), None);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
    }
    server.wait_for_jobs();
    let ctx = datafusion::prelude::SessionContext::new();
    let schema = std::sync::Arc::new(datafusion::arrow::datatypes::Schema::new(vec![
        datafusion::arrow::datatypes::Field::new("k", datafusion::arrow::datatypes::DataType::Utf8, true),
        datafusion::arrow::datatypes::Field::new("v", datafusion::arrow::datatypes::DataType::Int64, true),
    ]));
    let batch = datafusion::arrow::array::RecordBatch::try_new(
        schema.clone(),
        vec![
            std::sync::Arc::new(datafusion::arrow::array::StringArray::from(rows.iter().map(|r| r.k.clone()).collect::<Vec<_>>())),
            std::sync::Arc::new(datafusion::arrow::array::Int64Array::from(rows.iter().map(|r| r.v).collect::<Vec<_>>())),
        ],
    )
    .unwrap();
    ctx.register_batch("src", batch).unwrap();
    for (name, query, read, order) in &views {
        let ordered = format!("SELECT * FROM ({query}) ORDER BY {order}");
        let batches = ctx.sql(&ordered).await.unwrap().collect().await.unwrap();
        let want: Vec<String> = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string()
            .lines()
            .filter(|l| l.starts_with("| "))
            .skip(1)
            .map(|l| l.trim_matches(|c| c == '|' || c == ' ').split('|').map(str::trim).collect::<Vec<_>>().join("|"))
            .collect();
        let got: Vec<String> = psql_ok(port, read).lines().filter(|l| !l.is_empty()).map(String::from).collect();
        assert_eq!(got, want, "{name}");
    }
    // A plain view over one: Weir expands it (DataFusion alone knows no
    // views) and answers as for the query written out; a view over a
    // stream is a streaming SELECT, refused with the alternative.
    psql_ok(port, "CREATE VIEW top_keys AS SELECT k, mx AS top FROM per_key WHERE c > 1");
    let through_view = psql_ok(port, "SELECT * FROM top_keys ORDER BY k");
    let written_out = psql_ok(port, "SELECT k, mx AS top FROM per_key WHERE c > 1 ORDER BY k");
    assert!(!through_view.trim().is_empty());
    assert_eq!(through_view, written_out);
    assert_eq!(psql_ok(port, "SHOW VIEWS").trim(), "top_keys");
    psql_ok(port, "CREATE VIEW live AS SELECT k FROM src");
    let refused = psql_err(port, "SELECT * FROM live");
    assert!(refused.contains("0A000") && refused.contains("MATERIALIZED VIEW"), "{refused}");
}

/// The SQLSTATE of an error comes from its kind and type: a division by
/// zero while a batch query runs is the user's data (`22012`), a bad
/// connector option a bad parameter (`22023`), a table Weir's own
/// statement names and cannot find `42P01`.
#[test]
fn runtime_errors_have_the_sqlstate_of_their_kind() {
    let dir = scratch();
    let server = Server::start(dir.path(), &[], &[]);
    let divided = psql_err(server.port, "SELECT a / 0 FROM (VALUES (1), (2)) AS t(a)");
    assert!(divided.contains("22012") && divided.contains("Divide by zero"), "{divided}");
    let option = psql_err(server.port, "CREATE TABLE x (a BIGINT) WITH ('connector' = 'nope')");
    assert!(option.contains("22023") && option.contains("unknown connector 'nope'"), "{option}");
    let dropped = psql_err(server.port, "DROP TABLE nope");
    assert!(dropped.contains("42P01"), "{dropped}");
    // A streaming job's failure keeps its cause's kind (a user's data:
    // class 22) through the task that raised it, not the exact cause:
    // with 'table.dml-sync' the INSERT waits for it.
    let streamed = psql_err(
        server.port,
        "SET 'table.dml-sync' = 'true';
         CREATE TABLE g (a BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '5');
         CREATE TABLE sink (a BIGINT) WITH ('connector' = 'blackhole');
         INSERT INTO sink SELECT a / 0 FROM g;",
    );
    assert!(streamed.contains("ERROR:  22000") && streamed.contains("Divide by zero"), "{streamed}");
    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
}
