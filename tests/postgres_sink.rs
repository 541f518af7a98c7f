//! The PostgreSQL sink against a real server (`common::postgres`): the
//! `weir` binary reads JSON files and writes Postgres tables — appends,
//! upserts and deletes on a primary key — and what the tables hold at the
//! end must equal DataFusion's batch answer to the same query over the same
//! rows (or, for appended rows, the input itself). On top: twenty SIGKILLs
//! at random moments, some exactly between a checkpoint's completion and
//! its transaction (the failpoint `weir::postgres::commit`), the server
//! restarted under a running job, and errors (a constraint violation, an
//! updating query into a table without a key, unsupported types and URLs).

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::postgres::Postgres;
use common::*;

/// Flink's JDBC URL of the server, the user as a URL parameter.
fn url(pg: &Postgres) -> String {
    format!("jdbc:postgresql://127.0.0.1:{}/postgres?user=postgres", pg.port)
}

/// Rows with unique `v`, `keys` keys and ordered times.
fn rows(seed: u64, n: i64, keys: u64) -> Vec<Row> {
    disordered_rows(seed, n, keys)
}

/// The input table `t` (`k`, `v`, `ts`) over `dir/in`.
fn source(dir: &Path) -> String {
    format!(
        "CREATE TABLE t (k VARCHAR, v BIGINT, ts TIMESTAMP(3))
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');",
        dir.join("in").display()
    )
}

/// Writes `rows` as JSON files of `per_file` rows.
fn input(dir: &Path, rows: &[Row], per_file: usize) {
    std::fs::create_dir_all(dir.join("in")).unwrap();
    for (i, chunk) in rows.chunks(per_file).enumerate() {
        write_json(&dir.join("in").join(format!("part-{i:04}.json")), chunk);
    }
}

/// A Postgres query's rows as sorted `a|b|…` lines.
fn table_lines(pg: &Postgres, query: &str) -> Vec<String> {
    let mut lines: Vec<String> = pg.psql(query).lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// DataFusion's answer to `query` over `t` of `rows`.
fn oracle(rows: &[Row], query: &str) -> Vec<String> {
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(oracle_lines(rows, query))
}

/// How many rows Postgres deleted from `table` (its statistics lag a
/// little behind the commits: waits for them).
fn deleted(pg: &Postgres, table: &str) -> i64 {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let n: i64 = pg
            .psql(&format!(
                "SELECT n_tup_del FROM pg_stat_user_tables WHERE relname = '{table}'"
            ))
            .trim()
            .parse()
            .unwrap_or(0);
        if n > 0 || Instant::now() > until {
            return n;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

const HISTOGRAM: &str = "SELECT n, count(*) AS keys FROM (SELECT k, count(*) AS n FROM t GROUP BY k) GROUP BY n";
const SMALL: &str = "SELECT k, count(*) AS c, sum(v) AS s FROM t GROUP BY k HAVING count(*) < 60";

/// A GROUP BY of a GROUP BY (buckets empty as keys move on: `-D`) and a
/// HAVING (a key that passes the bound leaves as a `-U` alone) written to
/// tables with primary keys, with checkpoints (exactly once, rows written
/// per checkpoint) and without (written as they come, in batches of
/// `'sink.buffer-flush.max-rows'`): the tables equal the batch answers.
#[test]
fn upserts_and_deletes_equal_the_oracle() {
    let pg = Postgres::start();
    let data = rows(3, 3000, 50);
    for (i, interval) in ["100 ms", "0"].iter().enumerate() {
        let (hist, small) = (format!("hist{i}"), format!("small{i}"));
        pg.psql(&format!(
            "CREATE TABLE {hist} (n bigint PRIMARY KEY, keys bigint NOT NULL)"
        ));
        pg.psql(&format!(
            "CREATE TABLE {small} (k text PRIMARY KEY, c bigint, s bigint)"
        ));
        let dir = scratch();
        input(dir.path(), &data, 100);
        let sql = format!(
            "SET 'execution.checkpointing.interval' = '{interval}';
SET 'parallelism.default' = '2';
{source}
CREATE TABLE {hist} (n BIGINT, keys BIGINT, PRIMARY KEY (n) NOT ENFORCED)
  WITH ('connector' = 'jdbc', 'url' = '{url}', 'table-name' = '{hist}', 'username' = 'postgres',
        'sink.buffer-flush.max-rows' = '7');
CREATE TABLE {small} (k VARCHAR, c BIGINT, s BIGINT, PRIMARY KEY (k) NOT ENFORCED)
  WITH ('connector' = 'postgres', 'url' = 'postgres://postgres@127.0.0.1:{port}/postgres', 'table' = '{small}');
EXECUTE STATEMENT SET BEGIN
INSERT INTO {hist} {HISTOGRAM};
INSERT INTO {small} {SMALL};
END;
",
            source = source(dir.path()),
            url = url(&pg),
            port = pg.port,
        );
        let run = run_once(dir.path(), &sql);
        assert!(run.ok, "{}", run.stderr);
        assert_rows_eq(
            &table_lines(&pg, &format!("SELECT n, keys FROM {hist}")),
            &oracle(&data, HISTOGRAM),
            &hist,
        );
        assert_rows_eq(
            &table_lines(&pg, &format!("SELECT k, c, s FROM {small}")),
            &oracle(&data, SMALL),
            &small,
        );
        // Without checkpoints the sink writes every 7 rows, so buckets and
        // keys were in the table when their `-D` came. (With checkpoints,
        // the whole input may fall into one checkpoint: a key's changes
        // then collapse to its last.)
        if *interval == "0" {
            assert!(deleted(&pg, &hist) > 0, "{hist}: no bucket was ever deleted");
            assert!(deleted(&pg, &small) > 0, "{small}: no key was ever deleted");
        }
    }
}

/// Every type Weir has, appended to a table without a primary key, reads
/// back from Postgres as the values written (formatted here as Postgres
/// prints them).
#[test]
fn appends_every_type() {
    let pg = Postgres::start();
    pg.psql(
        "CREATE TABLE typed (id bigint, ti smallint, si smallint, i integer, d double precision, f real, \
         dec numeric(12, 3), s text, b boolean, dt date, ts timestamp(3), ltz timestamptz)",
    );
    let dir = scratch();
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    let n = 500i64;
    let mut lines = String::new();
    let mut expected = Vec::new();
    for id in 0..n {
        let ms = T0 + id * 86_400_123;
        let (ts, day) = (sql_timestamp(ms), &sql_timestamp(ms)[..10]);
        let null = id % 17 == 0;
        let s = if null {
            "null".to_string()
        } else {
            format!("\"name '{id}' \\\"q\\\"\"")
        };
        lines.push_str(&format!(
            "{{\"id\": {id}, \"ti\": {}, \"si\": {}, \"i\": {}, \"d\": {}, \"f\": {}, \"dec\": {}.{:03}, \"s\": {s}, \
             \"b\": {}, \"dt\": \"{day}\", \"ts\": \"{ts}\", \"ltz\": \"{ts}\"}}\n",
            id % 100 - 50,
            id * 3 - 700,
            id * 100_000,
            id as f64 / 4.0,
            id as f32 / 2.0,
            id - 250,
            id % 1000,
            id % 2 == 0,
        ));
        let dec = format!("{}.{:03}", id - 250, id % 1000);
        expected.push(format!(
            "{id}|{}|{}|{}|{}|{}|{dec}|{}|{}|{day}|{ts}|{ts}+00",
            id % 100 - 50,
            id * 3 - 700,
            id * 100_000,
            id as f64 / 4.0,
            id as f32 / 2.0,
            if null {
                "null".to_string()
            } else {
                format!("name '{id}' \"q\"")
            },
            if id % 2 == 0 { "t" } else { "f" },
        ));
    }
    std::fs::write(dir.path().join("in/rows.json"), lines).unwrap();
    let columns = "id BIGINT, ti TINYINT, si SMALLINT, i INT, d DOUBLE, f FLOAT, dec DECIMAL(12, 3), s VARCHAR, \
                   b BOOLEAN, dt DATE, ts TIMESTAMP(3), ltz TIMESTAMP_LTZ(3)";
    let sql = format!(
        "SET 'execution.checkpointing.interval' = '200 ms';
CREATE TABLE src ({columns}) WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'json');
CREATE TABLE typed ({columns}) WITH ('connector' = 'jdbc', 'url' = '{url}', 'table-name' = 'typed',
  'username' = 'postgres', 'password' = 'unused');
INSERT INTO typed SELECT * FROM src;
",
        input = dir.path().join("in").display(),
        url = url(&pg),
    );
    let run = run_once(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    let got = table_lines(
        &pg,
        "SELECT id, ti, si, i, d, f, dec, coalesce(s, 'null'), b, dt, to_char(ts, 'YYYY-MM-DD HH24:MI:SS.MS'), \
         to_char(ltz AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS') || '+00' FROM typed",
    );
    expected.sort();
    assert_rows_eq(&got, &expected, "typed");
}

/// Refusals, each naming what is wrong: an updating query into a table
/// without a primary key (as Flink refuses it), a type Postgres tables
/// cannot hold, another database's JDBC URL, `'sink.parallelism'`.
#[test]
fn refusals_are_clear() {
    let pg = Postgres::start();
    pg.psql("CREATE TABLE plain (k text, c bigint)");
    let dir = scratch();
    input(dir.path(), &rows(1, 10, 3), 100);
    let job = |table: &str, with: &str, query: &str| {
        format!(
            "{}\nCREATE TABLE {table} WITH ('connector' = 'jdbc', 'url' = '{}', 'table-name' = 'plain'{with});\nINSERT INTO {query};\n",
            source(dir.path()),
            url(&pg)
        )
    };
    let cases = [
        (
            job(
                "plain (k VARCHAR, c BIGINT)",
                "",
                "plain SELECT k, count(*) FROM t GROUP BY k",
            ),
            "can only append rows",
        ),
        (
            job("plain (k VARCHAR, c ARRAY<INT>)", "", "plain SELECT k, ARRAY[1] FROM t"),
            "column 'c' has type ARRAY<INT>, which PostgreSQL tables cannot hold",
        ),
        (
            job("plain (k VARCHAR, c BIGINT)", "", "plain SELECT k, v FROM t")
                .replace("jdbc:postgresql://", "jdbc:mysql://"),
            "Weir writes and looks up PostgreSQL only",
        ),
        (
            job(
                "plain (k VARCHAR, c BIGINT)",
                ", 'sink.parallelism' = '2'",
                "plain SELECT k, v FROM t",
            ),
            "'sink.parallelism' = '2': a sink runs at its query's parallelism",
        ),
    ];
    for (sql, message) in cases {
        let run = run_once(dir.path(), &sql);
        assert!(
            !run.ok && run.stderr.contains(message),
            "expected '{message}' in:\n{}",
            run.stderr
        );
    }
}

/// A row that breaks a CHECK constraint, and one that breaks NOT NULL,
/// fail the job with Postgres's message and the table's name; the rows of
/// the failed checkpoint are not in the table.
#[test]
fn a_constraint_violation_fails_the_job_naming_the_table() {
    let pg = Postgres::start();
    pg.psql("CREATE TABLE capped (k text PRIMARY KEY, c bigint CHECK (c < 5))");
    pg.psql("CREATE TABLE named (k text PRIMARY KEY, c bigint NOT NULL)");
    let dir = scratch();
    input(dir.path(), &rows(2, 200, 3), 100);
    for (table, query, message) in [
        (
            "capped",
            "SELECT k, count(*) FROM t GROUP BY k",
            "violates check constraint \"capped_c_check\"",
        ),
        (
            "named",
            "SELECT k, CAST(NULL AS BIGINT) FROM t GROUP BY k",
            "violates not-null constraint",
        ),
    ] {
        let sql = format!(
            "SET 'execution.checkpointing.interval' = '100 ms';
{}
CREATE TABLE {table} (k VARCHAR, c BIGINT, PRIMARY KEY (k) NOT ENFORCED)
  WITH ('connector' = 'postgres', 'url' = '{}', 'table-name' = '{table}');
INSERT INTO {table} {query};
",
            source(dir.path()),
            url(&pg)
        );
        let run = run_once(dir.path(), &sql);
        assert!(!run.ok, "{table}: the job succeeded");
        assert!(
            run.stderr
                .contains(&format!("postgres table {table} at 127.0.0.1:{}", pg.port))
                && run.stderr.contains(message),
            "{table}: expected the table and '{message}' in:\n{}",
            run.stderr
        );
        // Nothing half-written: every row the table holds is below the cap.
        assert_eq!(
            pg.psql(&format!("SELECT count(*) FROM {table} WHERE c >= 5 OR c IS NULL"))
                .trim(),
            "0"
        );
    }
}

/// `weir run` of `file` in `dir` with `FAILPOINTS` set to `failpoints`,
/// killed with SIGKILL after `after` unless it ends first. Returns how it
/// ended and its log.
fn run_killed(dir: &Path, file: &Path, after: Duration, failpoints: &str) -> (Ended, String) {
    let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    let log_path = dir.join(format!("run-{n}.log"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("run")
        .arg(file)
        .current_dir(dir)
        .env("WEIR_LOG", "warn,weir_engine=info,weir_connectors=info")
        .env("FAILPOINTS", failpoints)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .expect("start weir");
    let until = Instant::now() + after;
    let ended = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break if status.success() {
                Ended::Finished
            } else {
                Ended::Crashed
            };
        }
        if Instant::now() >= until {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            break Ended::Killed;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (ended, std::fs::read_to_string(&log_path).unwrap_or_default())
}

#[derive(Debug, PartialEq)]
enum Ended {
    Finished,
    Killed,
    /// Failed or aborted (the failpoint).
    Crashed,
}

/// Rows of the chaos job: `v` from 0 to `CHAOS_ROWS - 1`, key `k<v % 40>`.
const CHAOS_ROWS: i64 = 100_000;

/// The chaos job's input, as the oracle reads it.
fn chaos_rows() -> Vec<Row> {
    (0..CHAOS_ROWS)
        .map(|v| Row {
            k: Some(format!("k{}", v % 40)),
            v: Some(v),
            ts: Some(T0 + v),
        })
        .collect()
}

fn chaos_tables(pg: &Postgres) {
    pg.psql("CREATE TABLE log (k text, v bigint)");
    pg.psql("CREATE TABLE totals (k text PRIMARY KEY, n bigint, total bigint)");
}

/// Appended rows read back as `k|v` lines.
fn log_lines(pg: &Postgres) -> Vec<String> {
    table_lines(pg, "SELECT k, v FROM log")
}

/// The input rows as [`log_lines`] reads them.
fn input_lines(rows: &[Row]) -> Vec<String> {
    let mut lines: Vec<String> = rows
        .iter()
        .map(|r| format!("{}|{}", r.k.as_ref().unwrap(), r.v.unwrap()))
        .collect();
    lines.sort();
    lines
}

const TOTALS: &str = "SELECT k, count(*) AS n, sum(v) AS total FROM t GROUP BY k";

/// The chaos job over the table `t` that `source` declares: every row
/// appended to `log` (no key: a repeated row would show), per key totals
/// upserted into `totals`.
fn chaos_job(source: &str, pg: &Postgres, parallelism: usize) -> String {
    format!(
        "SET 'execution.checkpointing.interval' = '100 ms';
SET 'parallelism.default' = '{parallelism}';
{source}
CREATE TABLE log (k VARCHAR, v BIGINT)
  WITH ('connector' = 'jdbc', 'url' = '{url}', 'table-name' = 'log', 'sink.buffer-flush.max-rows' = '500');
CREATE TABLE totals (k VARCHAR, n BIGINT, total BIGINT, PRIMARY KEY (k) NOT ENFORCED)
  WITH ('connector' = 'jdbc', 'url' = '{url}', 'table-name' = 'totals');
EXECUTE STATEMENT SET BEGIN
INSERT INTO log SELECT k, v FROM t;
INSERT INTO totals {TOTALS};
END;
",
        url = url(pg),
    )
}

/// The chaos rows paced: a sequence at 4000 rows a second, so that a run
/// lasts long enough to be killed twenty times. (A datagen sequence is
/// split by parallelism, so its runs keep one.)
fn paced() -> String {
    format!(
        "CREATE TABLE seq (v BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '4000',
  'fields.v.kind' = 'sequence', 'fields.v.start' = '0', 'fields.v.end' = '{}');
CREATE VIEW t AS SELECT CONCAT('k', CAST(v % 40 AS VARCHAR)) AS k, v FROM seq;",
        CHAOS_ROWS - 1
    )
}

/// Twenty SIGKILLs at random moments; every fourth run instead dies at
/// one of its first commits, between "checkpoint durable" and its
/// transaction (the failpoint). Then a run to the end: `log` holds every
/// input row exactly once and `totals` equals the batch aggregation.
#[test]
fn exactly_once_through_twenty_kills() {
    let pg = Postgres::start();
    chaos_tables(&pg);
    let dir = scratch();
    let file = dir.path().join("job.sql");
    std::fs::write(&file, chaos_job(&paced(), &pg, 2)).unwrap();
    let mut g = Lcg(2026);
    let mut progress = Vec::new();
    let mut at_commit = 0;
    for kill in 0..20 {
        // Every fourth run dies at one of its first commits (given time
        // to reach it); the others are killed at a random moment.
        let (failpoint, after) = match kill % 4 {
            3 => (
                format!("weir::postgres::commit={}*off->return", g.below(4)),
                Duration::from_secs(10),
            ),
            _ => (String::new(), Duration::from_millis(300 + g.below(1200))),
        };
        let (ended, log) = run_killed(dir.path(), &file, after, &failpoint);
        match ended {
            Ended::Finished => panic!("run {kill} finished before its kill: the input is too small\n{log}"),
            Ended::Crashed => {
                assert!(
                    log.contains("failpoint weir::postgres::commit"),
                    "run {kill} failed:\n{log}"
                );
                at_commit += 1;
            }
            Ended::Killed => {}
        }
        progress.push(pg.psql("SELECT count(*) FROM log").trim().parse::<usize>().unwrap());
    }
    assert!(at_commit == 5, "runs that died at a commit: {at_commit} of 5");
    assert!(
        progress.windows(2).all(|w| w[0] <= w[1]),
        "committed rows went back: {progress:?}"
    );
    assert!(
        progress.iter().filter(|n| **n > 0).count() >= 5,
        "too few runs committed: {progress:?}"
    );
    let (ended, log) = run_killed(dir.path(), &file, Duration::from_secs(120), "");
    assert_eq!(ended, Ended::Finished, "{log}");
    let data = chaos_rows();
    assert_rows_eq(&log_lines(&pg), &input_lines(&data), "log after 20 kills");
    assert_rows_eq(
        &table_lines(&pg, "SELECT k, n, total FROM totals"),
        &oracle(&data, TOTALS),
        "totals after 20 kills",
    );
}

/// The server stopped (immediately: connections dropped) and started again
/// under a running job: the sink retries its commit, or the job fails and
/// its next run recovers; the tables end as the oracle says.
#[test]
fn postgres_restarted_mid_run() {
    let pg = Postgres::start();
    chaos_tables(&pg);
    let dir = scratch();
    let file = dir.path().join("job.sql");
    std::fs::write(&file, chaos_job(&paced(), &pg, 2)).unwrap();
    let log_path = dir.path().join("restart.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("run")
        .arg(&file)
        .current_dir(dir.path())
        .env("WEIR_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    // Once rows are committed, the server goes away for a moment.
    let until = Instant::now() + Duration::from_secs(30);
    while pg.psql("SELECT count(*) FROM log").trim() == "0" {
        assert!(Instant::now() < until, "nothing committed");
        std::thread::sleep(Duration::from_millis(50));
    }
    pg.stop();
    std::thread::sleep(Duration::from_millis(1500));
    pg.run();
    let status = child.wait().unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("retrying"), "the sink did not retry:\n{log}");
    if !status.success() {
        // Retries ran out: the next run recovers.
        let (ended, again) = run_killed(dir.path(), &file, Duration::from_secs(120), "");
        assert_eq!(ended, Ended::Finished, "{log}\n{again}");
    }
    let data = chaos_rows();
    assert_rows_eq(&log_lines(&pg), &input_lines(&data), "log after a server restart");
    assert_rows_eq(
        &table_lines(&pg, "SELECT k, n, total FROM totals"),
        &oracle(&data, TOTALS),
        "totals after a server restart",
    );
}

/// A job at parallelism 3 dies at its first commit (checkpoint durable,
/// nothing written) and runs again at parallelism 1: recovery writes what
/// each of the three old subtasks prepared, each against its own marker,
/// and the tables end as the oracle says.
#[test]
fn recovery_at_another_parallelism_writes_every_old_subtasks_rows() {
    let pg = Postgres::start();
    chaos_tables(&pg);
    let data = chaos_rows();
    let dir = scratch();
    input(dir.path(), &data, 1000);
    let file = dir.path().join("job.sql");
    // Checkpoints every 10 ms: the first comes long before the input ends.
    std::fs::write(
        &file,
        chaos_job(&source(dir.path()), &pg, 3).replace("'100 ms'", "'10 ms'"),
    )
    .unwrap();
    let (ended, log) = run_killed(
        dir.path(),
        &file,
        Duration::from_secs(60),
        "weir::postgres::commit=return",
    );
    assert_eq!(ended, Ended::Crashed, "{log}");
    assert_eq!(
        pg.psql("SELECT count(*) FROM log").trim(),
        "0",
        "the first run committed"
    );
    std::fs::write(&file, chaos_job(&source(dir.path()), &pg, 1)).unwrap();
    let (ended, log) = run_killed(dir.path(), &file, Duration::from_secs(60), "");
    assert_eq!(ended, Ended::Finished, "{log}");
    assert!(
        log.contains("written at recovery"),
        "nothing was rolled forward:\n{log}"
    );
    assert_rows_eq(
        &log_lines(&pg),
        &input_lines(&data),
        "log after a restore at parallelism 1",
    );
    assert_rows_eq(
        &table_lines(&pg, "SELECT k, n, total FROM totals"),
        &oracle(&data, TOTALS),
        "totals at parallelism 1",
    );
}
