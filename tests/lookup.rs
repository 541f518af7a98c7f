//! Lookup joins against a real PostgreSQL server (`common::postgres`): the
//! `weir` binary reads a JSON stream, looks each row's key up in a
//! Postgres table and writes JSON part files. The joined rows must equal
//! DataFusion's batch join of the same input rows with the table's rows;
//! order, caching (lookups counted by `pg_stat_statements`), a slow key, a
//! server restart and a crash with lookups in flight are checked on top.

use crate::common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::postgres::Postgres;
use common::*;
use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

/// Keys of the table are 0..KEYS; the stream also asks for keys past it.
const KEYS: i64 = 40;

/// The slow key of the `users_slow` view.
const SLOW: i64 = 7;

/// The stream: row `v` (its position, unique) asks for key `k`.
fn stream(n: usize, seed: u64) -> Vec<(i64, i64)> {
    let mut g = Lcg(seed);
    (0..n as i64).map(|v| (g.below(KEYS as u64 + 10) as i64, v)).collect()
}

/// The table's rows: `(id, name, tier)`; some ids have no name.
fn users() -> Vec<(i64, Option<String>, String)> {
    (0..KEYS)
        .map(|id| (id, (id % 5 != 0).then(|| format!("user{id}")), ["gold", "silver"][(id % 2) as usize].to_string()))
        .collect()
}

/// Creates `users` and the views lookups are slowed down by.
fn dimension(pg: &Postgres) {
    pg.psql("CREATE TABLE users (id integer PRIMARY KEY, name text, tier varchar(10))");
    let values: Vec<String> = users()
        .iter()
        .map(|(id, name, tier)| format!("({id}, {}, '{tier}')", name.as_ref().map_or("NULL".into(), |n| format!("'{n}'"))))
        .collect();
    pg.psql(&format!("INSERT INTO users VALUES {}", values.join(", ")));
    // One key answers after 1.5 s, the others at once.
    pg.psql(&format!(
        "CREATE VIEW users_slow AS SELECT u.* FROM users u, LATERAL (SELECT pg_sleep(CASE WHEN u.id = {SLOW} THEN 1.5 ELSE 0 END)) s"
    ));
    // Every lookup takes 100 ms.
    pg.psql("CREATE VIEW users_100ms AS SELECT u.* FROM users u, LATERAL (SELECT pg_sleep(0.1)) s");
    pg.psql("SELECT pg_stat_statements_reset()");
}

fn write_stream(dir: &std::path::Path, rows: &[(i64, i64)]) {
    write_files(dir, rows, rows.len().max(1));
}

/// The stream in files of `per_file` rows, read one batch each: a job
/// reads its input over time as lookups free room.
fn write_files(dir: &std::path::Path, rows: &[(i64, i64)], per_file: usize) {
    std::fs::create_dir_all(dir.join("in")).unwrap();
    for (i, chunk) in rows.chunks(per_file).enumerate() {
        let lines: Vec<String> = chunk.iter().map(|(k, v)| format!("{{\"k\": {k}, \"v\": {v}}}")).collect();
        std::fs::write(dir.join("in").join(format!("part-{i:04}.json")), lines.join("\n") + "\n").unwrap();
    }
}

/// The job: the stream joined with `table` (`JOIN` or `LEFT JOIN`) with
/// `options` added to the lookup table's.
fn job(dir: &std::path::Path, pg: &Postgres, table: &str, join: &str, options: &str, settings: &str) -> String {
    format!(
        "{settings}
CREATE TABLE s (k BIGINT, v BIGINT, proc_time AS PROCTIME())
  WITH ('connector' = 'filesystem', 'path' = '{dir}/in', 'format' = 'json');
CREATE TABLE users (id BIGINT, name VARCHAR, tier VARCHAR)
  WITH ('connector' = 'postgres', 'url' = '{url}', 'table' = '{table}'{options});
CREATE TABLE out (k BIGINT, v BIGINT, name VARCHAR, tier VARCHAR)
  WITH ('connector' = 'filesystem', 'path' = '{dir}/out', 'format' = 'json');
INSERT INTO out SELECT s.k, s.v, u.name, u.tier FROM s {join} users FOR SYSTEM_TIME AS OF s.proc_time AS u ON s.k = u.id;
",
        dir = dir.display(),
        url = pg.url()
    )
}

fn line(k: Option<i64>, v: Option<i64>, name: Option<&str>, tier: Option<&str>) -> String {
    let s = |o: Option<String>| o.unwrap_or_else(|| "null".into());
    format!("{}|{}|{}|{}", s(k.map(|x| x.to_string())), s(v.map(|x| x.to_string())), s(name.map(Into::into)), s(tier.map(Into::into)))
}

/// The output rows in the order written (one subtask, one part file at a
/// time), as lines.
fn output(dir: &std::path::Path) -> Vec<String> {
    read_sink(&dir.join("out"))
        .iter()
        .map(|r| line(r["k"].as_i64(), r["v"].as_i64(), r["name"].as_str(), r["tier"].as_str()))
        .collect()
}

/// DataFusion's batch join of the stream's rows with the table's rows,
/// sorted.
fn oracle(rows: &[(i64, i64)], join: &str) -> Vec<String> {
    let s = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, true), Field::new("v", DataType::Int64, true)]));
    let s_batch = RecordBatch::try_new(
        Arc::clone(&s),
        vec![
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
        ],
    )
    .unwrap();
    let u = users();
    let u_schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("tier", DataType::Utf8, false),
    ]));
    let u_batch = RecordBatch::try_new(
        Arc::clone(&u_schema),
        vec![
            Arc::new(Int64Array::from_iter_values(u.iter().map(|r| r.0))),
            Arc::new(StringArray::from_iter(u.iter().map(|r| r.1.clone()))),
            Arc::new(StringArray::from_iter_values(u.iter().map(|r| r.2.clone()))),
        ],
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ctx = SessionContext::new();
        ctx.register_table("s", Arc::new(MemTable::try_new(s, vec![vec![s_batch]]).unwrap())).unwrap();
        ctx.register_table("u", Arc::new(MemTable::try_new(u_schema, vec![vec![u_batch]]).unwrap())).unwrap();
        let batches = ctx
            .sql(&format!("SELECT s.k, s.v, u.name, u.tier FROM s {join} u ON s.k = u.id"))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let mut lines = Vec::new();
        for b in batches {
            let col = |i: usize| b.column(i).clone();
            let (k, v) = (col(0), col(1));
            let k = k.as_any().downcast_ref::<Int64Array>().unwrap();
            let v = v.as_any().downcast_ref::<Int64Array>().unwrap();
            let name = b.column(2).as_any().downcast_ref::<StringArray>().unwrap();
            let tier = b.column(3).as_any().downcast_ref::<StringArray>().unwrap();
            for i in 0..b.num_rows() {
                use datafusion::arrow::array::Array;
                let get = |a: &StringArray| (!a.is_null(i)).then(|| a.value(i).to_string());
                lines.push(line(Some(k.value(i)), Some(v.value(i)), get(name).as_deref(), get(tier).as_deref()));
            }
        }
        lines.sort();
        lines
    })
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The `v` of each output line, in output order.
fn positions(lines: &[String]) -> Vec<i64> {
    lines.iter().map(|l| l.split('|').nth(1).unwrap().parse().unwrap()).collect()
}

fn run(dir: &std::path::Path, sql: &str) -> Run {
    let run = weir_run(dir, sql);
    assert!(run.ok, "weir failed:\n{}", run.stderr);
    run
}

/// Ordered output keeps input order exactly, behind a key that answers
/// after 1.5 s; INNER and LEFT joins equal DataFusion's.
#[test]
fn ordered_output_keeps_input_order() {
    let pg = Postgres::start();
    dimension(&pg);
    let rows = stream(300, 1);
    assert!(rows.iter().any(|r| r.0 == SLOW));
    for join in ["JOIN", "LEFT JOIN"] {
        let dir = scratch();
        write_stream(dir.path(), &rows);
        run(dir.path(), &job(dir.path(), &pg, "users_slow", join, ", 'lookup.output-mode' = 'ordered'", ""));
        let got = output(dir.path());
        assert_rows_eq(&sorted(got.clone()), &oracle(&rows, join), join);
        let pos = positions(&got);
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "{join}: output not in input order: {pos:?}");
    }
}

/// The stream's PROCTIME() passed through a subquery or a view is still
/// its processing time (the cookbook's expanding-arrays recipe joins so):
/// the same rows as DataFusion's join.
#[test]
fn proctime_through_a_subquery_or_view() {
    let pg = Postgres::start();
    dimension(&pg);
    let rows = stream(200, 7);
    for (view, from) in [
        ("", "FROM (SELECT k, v, proc_time FROM s WHERE v >= 0) AS s JOIN"),
        ("CREATE VIEW sv AS SELECT k, v, proc_time FROM s;\n", "FROM sv AS s JOIN"),
    ] {
        let dir = scratch();
        write_stream(dir.path(), &rows);
        let sql = job(dir.path(), &pg, "users", "JOIN", "", "").replace("FROM s JOIN", from);
        let sql = sql.replace("INSERT INTO out", &format!("{view}INSERT INTO out"));
        run(dir.path(), &sql);
        assert_rows_eq(&sorted(output(dir.path())), &oracle(&rows, "JOIN"), from);
    }
}

/// Unordered output emits rows of fast keys while the slow key's lookup is
/// pending: the same rows as DataFusion's join, but the slow key's rows
/// come after rows that followed them in the input.
#[test]
fn unordered_output_is_not_blocked_by_a_slow_key() {
    let pg = Postgres::start();
    dimension(&pg);
    let rows = stream(300, 2);
    let dir = scratch();
    write_stream(dir.path(), &rows);
    run(dir.path(), &job(dir.path(), &pg, "users_slow", "LEFT JOIN", ", 'lookup.output-mode' = 'unordered'", ""));
    let got = output(dir.path());
    assert_rows_eq(&sorted(got.clone()), &oracle(&rows, "LEFT JOIN"), "unordered");
    let pos = positions(&got);
    let first_slow = rows.iter().find(|r| r.0 == SLOW).unwrap().1;
    let at = pos.iter().position(|p| *p == first_slow).unwrap();
    assert!(
        pos[at..].iter().all(|p| rows[*p as usize].0 == SLOW || *p < first_slow) && pos[..at].iter().any(|p| *p > first_slow),
        "rows after the slow key's first row waited for it: {pos:?}"
    );
}

/// With a cache, each distinct key is looked up once; without, at most
/// once per batch (and at least once per distinct key).
#[test]
fn cache_looks_each_key_up_once() {
    let pg = Postgres::start();
    dimension(&pg);
    let rows = stream(2000, 3);
    let distinct = rows.iter().map(|r| r.0).collect::<HashSet<_>>().len() as u64;
    let dir = scratch();
    write_stream(dir.path(), &rows);
    let options = ", 'lookup.cache.max-rows' = '1000', 'lookup.cache.ttl' = '10 min', 'lookup.max-concurrent' = '4'";
    run(dir.path(), &job(dir.path(), &pg, "users", "JOIN", options, ""));
    assert_rows_eq(&sorted(output(dir.path())), &oracle(&rows, "JOIN"), "cached");
    assert_eq!(pg.calls("FROM \"users\""), distinct, "lookups with a cache");
}

/// `'lookup.cache' = 'FULL'` (Flink's full cache): the table is read
/// whole once and every lookup is answered from memory.
#[test]
fn a_full_cache_reads_the_table_once() {
    let pg = Postgres::start();
    dimension(&pg);
    let rows = stream(2000, 5);
    let dir = scratch();
    write_stream(dir.path(), &rows);
    let options = ", 'lookup.cache' = 'FULL', 'lookup.full-cache.periodic-reload.interval' = '1 h'";
    run(dir.path(), &job(dir.path(), &pg, "users", "LEFT JOIN", options, ""));
    assert_rows_eq(&sorted(output(dir.path())), &oracle(&rows, "LEFT JOIN"), "from the full cache");
    assert_eq!(pg.calls("FROM \"users\""), 1, "one read of the whole table");
}

/// `'lookup.rate-limit'`: Postgres records when each lookup reached it;
/// with 10 per second (and the limiter's burst of as many), no second
/// holds more than twice the rate and the 40 lookups span at least the
/// 3 s the limit implies. The output is still exact.
#[test]
fn the_rate_limit_spaces_lookups() {
    let pg = Postgres::start();
    dimension(&pg);
    pg.psql("CREATE TABLE calls (at timestamptz)");
    pg.psql("CREATE FUNCTION note_call() RETURNS int LANGUAGE sql VOLATILE AS $$ INSERT INTO calls VALUES (clock_timestamp()) RETURNING 1 $$");
    pg.psql("CREATE VIEW users_noted AS SELECT u.* FROM users u, LATERAL (SELECT note_call()) c");
    let rows: Vec<(i64, i64)> = (0..KEYS).map(|k| (k, k)).collect();
    let dir = scratch();
    write_stream(dir.path(), &rows);
    let options = ", 'lookup.rate-limit' = '10/s', 'lookup.max-concurrent' = '8', 'lookup.cache.max-rows' = '0'";
    run(dir.path(), &job(dir.path(), &pg, "users_noted", "JOIN", options, ""));
    assert_rows_eq(&sorted(output(dir.path())), &oracle(&rows, "JOIN"), "rate-limited");
    let calls: Vec<f64> = pg
        .psql("SELECT extract(epoch FROM at) FROM calls ORDER BY at")
        .lines()
        .map(|l| l.trim().parse().expect("an epoch"))
        .collect();
    assert_eq!(calls.len() as i64, KEYS, "one lookup per key");
    let span = calls[calls.len() - 1] - calls[0];
    assert!(span >= 2.9, "40 lookups at 10/s after a burst of 10 take 3 s, took {span:.2} s");
    let busiest = calls.iter().map(|t| calls.iter().filter(|u| **u >= *t && **u < t + 1.0).count()).max().unwrap();
    assert!(busiest <= 20, "{busiest} lookups within one second");
}

/// Postgres stops mid-stream and comes back: lookups retry with back-off
/// and the output is complete and exact.
#[test]
fn postgres_restart_is_survived() {
    let pg = Postgres::start();
    dimension(&pg);
    let rows = stream(400, 4);
    let dir = scratch();
    write_stream(dir.path(), &rows);
    // 100 ms per lookup, one at a time, no cache: the job runs for seconds.
    let options = ", 'lookup.max-concurrent' = '1', 'lookup.max-retries' = '20'";
    std::fs::write(dir.path().join("job.sql"), job(dir.path(), &pg, "users_100ms", "LEFT JOIN", options, "")).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("run")
        .arg(dir.path().join("job.sql"))
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    pg.stop();
    std::thread::sleep(Duration::from_millis(1500));
    pg.run();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("retrying"), "the restart fell outside the job: {}", String::from_utf8_lossy(&out.stderr));
    assert_rows_eq(&sorted(output(dir.path())), &oracle(&rows, "LEFT JOIN"), "after a restart");
}

/// The job is killed (SIGKILL) while lookups are in flight, repeatedly,
/// checkpointing every 200 ms; each run restores from the last checkpoint
/// and re-issues the lookups it holds. The committed output is exactly the
/// batch join: no row lost, none twice.
#[test]
fn crash_with_lookups_in_flight_loses_nothing() {
    let pg = Postgres::start();
    dimension(&pg);
    let rows = stream(600, 5);
    let dir = scratch();
    write_files(dir.path(), &rows, 10);
    let options = ", 'lookup.max-concurrent' = '2', 'lookup.output-mode' = 'unordered'";
    let sql = job(dir.path(), &pg, "users_100ms", "LEFT JOIN", options, "SET 'execution.checkpointing.interval' = '200 ms';");
    let file = dir.path().join("job.sql");
    std::fs::write(&file, &sql).unwrap();
    let mut kills = 0;
    while kills < 4 && killed_after(dir.path(), &file, Duration::from_millis(1200), &mut || {}) {
        kills += 1;
    }
    assert!(kills > 0, "the job finished before it was killed");
    assert!(!output(dir.path()).is_empty() || kills < 4, "no checkpoint committed in {kills} runs");
    run(dir.path(), &sql);
    let got = output(dir.path());
    assert_rows_eq(&sorted(got), &oracle(&rows, "LEFT JOIN"), "after kills");
}

/// Mistakes are named: a missing 'url', ON without an equality on the
/// table's columns, AS OF a column that is not PROCTIME(), a table type
/// lookups cannot read, and a server that cannot be reached.
#[test]
fn errors_are_clear() {
    let dir = scratch();
    write_stream(dir.path(), &[(1, 1)]);
    let base = |table_options: &str, on: &str, as_of: &str| {
        format!(
            // A server that is down is retried by a restart strategy: the
            // job would wait for it for ever.
            "SET 'restart-strategy.type' = 'none';
CREATE TABLE s (k BIGINT, v BIGINT, proc_time AS PROCTIME()) WITH ('connector' = 'filesystem', 'path' = '{dir}/in', 'format' = 'json');
CREATE TABLE users (id BIGINT, name VARCHAR) WITH ('connector' = 'postgres'{table_options});
CREATE TABLE out (k BIGINT, name VARCHAR) WITH ('connector' = 'filesystem', 'path' = '{dir}/out', 'format' = 'json');
INSERT INTO out SELECT s.k, u.name FROM s JOIN users FOR SYSTEM_TIME AS OF {as_of} AS u ON {on};
",
            dir = dir.path().display()
        )
    };
    let fails = |sql: String, message: &str| {
        let r = weir_run(dir.path(), &sql);
        assert!(!r.ok && r.stderr.contains(message), "expected '{message}' in:\n{}", r.stderr);
    };
    let good = ", 'url' = 'postgres://postgres@127.0.0.1:1/x', 'table' = 'users', 'lookup.max-retries' = '0'";
    fails(base(", 'table' = 'users'", "s.k = u.id", "s.proc_time"), "missing required option 'url'");
    fails(base(good, "s.k > u.id", "s.proc_time"), "a lookup join needs ON to equate columns of 'users'");
    fails(base(good, "s.k = u.id", "s.v"), "needs a PROCTIME() column");
    fails(base(good, "s.k = u.id", "s.proc_time"), "cannot connect to 127.0.0.1:1");
    fails(
        base(good, "s.k = u.id", "s.proc_time").replace("name VARCHAR) WITH ('connector' = 'postgres'", "name DECIMAL(10, 2)) WITH ('connector' = 'postgres'"),
        "column 'name' has type DECIMAL(10, 2), which lookups cannot read",
    );
    let plain = base(good, "s.k = u.id", "s.proc_time").replace(" FOR SYSTEM_TIME AS OF s.proc_time", "");
    fails(plain, "can only be joined as a lookup table");
}
