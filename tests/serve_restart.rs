//! `weir serve` keeps its catalog under `state.dir` (docs/serve.md): a
//! Kafka → TUMBLE → Kafka exactly-once job and a materialized view over
//! the same live topic, the server SIGKILLed and started again 5 times with
//! no SQL run by hand after the first start; the committed output and the
//! view read with psql equal DataFusion's batch computation of the input.
//! Also: tables, views and settings through a SIGTERM restart, a stopped
//! job not restarted, a dropped table not restored, a setup file that
//! declares again what was restored, and a damaged catalog refused.

use crate::common;
use crate::pgwire_common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::kafka::Broker;
use common::*;
use pgwire_common::*;

const TUMBLE: Shape = Shape::Tumble {
    size: 10_000,
    offset: 0,
};
/// The WATERMARK delay of `src`.
const DELAY: i64 = 2_000;

const WINDOWS: &str = "SELECT window_start, window_end, k, count(*) AS c, count(DISTINCT v) AS d,
       sum(v) AS s, min(v) AS mn, max(v) AS mx, avg(v) AS a
FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, k";

/// Event time advancing, out of order by less than the watermark delay:
/// no row is late, so the oracle is every row's window.
fn input_rows(n: usize) -> Vec<Row> {
    let mut g = Lcg(22);
    let mut ts = T0;
    (0..n)
        .map(|_| {
            ts += g.below(40) as i64;
            Row {
                k: Some(format!("k{}", g.below(12))),
                v: Some(g.below(1000) as i64),
                ts: Some(ts - g.below(1_500) as i64),
            }
        })
        .collect()
}

fn json_record(r: &Row) -> (Option<Vec<u8>>, Vec<u8>) {
    (None, common::kafka::json_record(r))
}

fn setup_sql(broker: &Broker) -> String {
    let servers = broker.bootstrap();
    format!(
        "SET 'execution.checkpointing.interval' = '200 ms';
CREATE TABLE src (k VARCHAR, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND) WITH (
  'connector' = 'kafka', 'topic' = 'in', 'properties.bootstrap.servers' = '{servers}',
  'properties.group.id' = 'weir-serve', 'scan.startup.mode' = 'earliest-offset', 'format' = 'json',
  'scan.watermark.emit.strategy' = 'on-event');
CREATE TABLE out (window_start TIMESTAMP(3), window_end TIMESTAMP(3), k VARCHAR,
  c BIGINT, d BIGINT, s BIGINT, mn BIGINT, mx BIGINT, a DOUBLE) WITH (
  'connector' = 'kafka', 'topic' = 'out', 'properties.bootstrap.servers' = '{servers}',
  'format' = 'json', 'key.fields' = 'k', 'sink.delivery-guarantee' = 'exactly-once');
INSERT INTO out {WINDOWS};
CREATE MATERIALIZED VIEW v AS {WINDOWS};"
    )
}

/// The input, appended a few rows at a time while the server runs, and at
/// its end a row an hour ahead that moves the watermark past every window.
struct Feed {
    rows: Vec<Row>,
    sent: usize,
}

impl Feed {
    fn tick(&mut self, broker: &Broker) {
        if self.done() {
            return;
        }
        let to = (self.sent + 40).min(self.rows.len());
        let mut records: Vec<_> = self.rows[self.sent..to].iter().map(json_record).collect();
        if to == self.rows.len() {
            let last = self.rows.iter().filter_map(|r| r.ts).max().unwrap_or(T0);
            records.push(json_record(&Row {
                k: Some("end".into()),
                v: Some(0),
                ts: Some(last + 3_600_000),
            }));
        }
        broker.produce("in", 0, &records);
        self.sent = to;
    }

    fn done(&self) -> bool {
        self.sent == self.rows.len()
    }

    /// Feeds for `how_long`.
    fn run_for(&mut self, broker: &Broker, how_long: Duration) {
        let until = Instant::now() + how_long;
        while Instant::now() < until {
            self.tick(broker);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn sigkill(server: Server) -> String {
    let _ = Command::new("kill").args(["-KILL", &server.pid().to_string()]).status();
    // Dropping reaps it (its SIGTERM finds it dead).
    let log = server.log();
    drop(server);
    log
}

#[tokio::test]
async fn a_kafka_job_and_a_view_survive_five_sigkills() {
    let broker = Broker::start();
    broker.create_topic("in", 1);
    broker.create_topic("out", 1);
    let rows = input_rows(30_000);
    let (assigned, late) = oracle_assign(&rows, TUMBLE, DELAY);
    assert_eq!(late, 0, "the input has no late rows");
    let want = aggregate(&assigned, TUMBLE).await;
    // Most of the input is there from the start, the rest comes live.
    let backlog = 20_000;
    for chunk in rows[..backlog].chunks(5_000) {
        broker.produce("in", 0, &chunk.iter().map(json_record).collect::<Vec<_>>());
    }
    let mut feed = Feed { rows, sent: backlog };

    let dir = scratch();
    let setup = dir.path().join("setup.sql");
    std::fs::write(&setup, setup_sql(&broker)).unwrap();
    let setup_arg = setup.to_str().unwrap();
    let mut logs = String::new();
    let mut g = Lcg(5);
    let mut progress = Vec::new();
    for start in 0..6 {
        // Started again with the setup file on some restarts, as a user
        // would, and without on the others: no SQL by hand either way.
        let args: &[&str] = if start == 0 || start % 2 == 1 {
            &[setup_arg]
        } else {
            &[]
        };
        let server = Server::start(dir.path(), args, &[]);
        if start == 5 {
            while !feed.done() {
                feed.run_for(&broker, Duration::from_millis(200));
            }
            let until = Instant::now() + Duration::from_secs(180);
            while broker.committed_json_rows("out").len() < want.len() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(200));
            }
            // Anything it should not add would come within a checkpoint.
            std::thread::sleep(Duration::from_millis(1_000));
            assert_rows_eq(
                &broker.committed_json_rows("out"),
                &want,
                "the committed output after 5 SIGKILLs",
            );
            let until = Instant::now() + Duration::from_secs(180);
            let view = loop {
                let view = normalize_psql(&psql_ok(server.port, "SELECT * FROM v"));
                if view == want || Instant::now() > until {
                    break view;
                }
                std::thread::sleep(Duration::from_millis(200));
            };
            assert_rows_eq(&view, &want, "the materialized view over psql after 5 SIGKILLs");
            logs.push_str(&server.log());
            break;
        }
        feed.run_for(&broker, Duration::from_millis(2_000 + g.below(2_000)));
        logs.push_str(&sigkill(server));
        progress.push(broker.committed_json_rows("out").len());
    }
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    // Every restart restored both jobs, the durable one from a checkpoint.
    assert_eq!(logs.matches("restored: resumed from checkpoint").count(), 5, "{logs}");
    assert!(
        logs.matches("already restored: not started again").count() >= 2 * 2,
        "{logs}"
    );
    assert!(!logs.contains("not restored"), "{logs}");
}

/// The catalog of `dir`'s server.
fn catalog(dir: &Path) -> std::path::PathBuf {
    dir.join("weir-state").join("serve").join("catalog.json")
}

const SEQ_END: i64 = 1_000;
const SEQ: &str = "CREATE TABLE seq (id BIGINT) WITH ('connector' = 'datagen',
  'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '1000')";

/// psql's answer to `sql` once it is `want`, or the last one after a minute.
fn poll(port: u16, sql: &str, want: &str) -> String {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let got = psql_ok(port, sql);
        if got == want || Instant::now() > until {
            return got;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

const GEN: &str =
    "CREATE TABLE gen (id BIGINT, name VARCHAR) WITH ('connector' = 'datagen', 'rows-per-second' = '100')";

#[tokio::test]
async fn tables_views_settings_and_jobs_survive_a_sigterm() {
    let dir = scratch();
    let server = Server::start(dir.path(), &[], &[]);
    let port = server.port;
    psql_ok(port, GEN);
    psql_ok(port, "CREATE TABLE sink1 (id BIGINT) WITH ('connector' = 'blackhole')");
    psql_ok(
        port,
        "CREATE TABLE sink2 (name VARCHAR) WITH ('connector' = 'blackhole')",
    );
    psql_ok(
        port,
        "CREATE TABLE dropped (id BIGINT) WITH ('connector' = 'blackhole')",
    );
    psql_ok(port, "DROP TABLE dropped");
    psql_ok(port, "CREATE VIEW named AS SELECT name FROM gen WHERE id > 0");
    psql_ok(port, "SET 'table.local-time-zone' = 'Asia/Tokyo'");
    // A view of a bounded source: its job finishes, and the view is served
    // again after the restart.
    psql_ok(port, SEQ);
    psql_ok(
        port,
        "CREATE MATERIALIZED VIEW total AS SELECT count(*) AS n, sum(id) AS s FROM seq",
    );
    let total = format!("{SEQ_END}|{}\n", (1..=SEQ_END).sum::<i64>());
    assert_eq!(poll(port, "SELECT * FROM total", &total), total);
    psql_ok(port, "INSERT INTO sink1 SELECT id FROM gen");
    psql_ok(port, "INSERT INTO sink2 SELECT name FROM named");
    let jobs_before = psql_ok(port, "SHOW JOBS");
    // A statement's lines after its first hold the DDL of the views it reads.
    let ids: Vec<String> = jobs_before
        .lines()
        .filter(|l| l.contains("|Running|"))
        .filter_map(|l| Some(l.split('|').next()?.to_string()))
        .collect();
    assert_eq!(ids.len(), 2, "{jobs_before}");
    psql_ok(port, &format!("STOP JOB '{}'", ids[0]));
    let tables_before = psql_ok(port, "SHOW TABLES");
    let views_before = psql_ok(port, "SHOW VIEWS");
    let settings_before = psql_ok(port, "SET");
    let (status, log) = server.stop();
    assert!(status.success(), "{log}");

    let server = Server::start(dir.path(), &[], &[]);
    let port = server.port;
    assert_eq!(psql_ok(port, "SHOW TABLES"), tables_before);
    assert!(!tables_before.contains("dropped"), "{tables_before}");
    assert_eq!(psql_ok(port, "SHOW VIEWS"), views_before);
    assert_eq!(psql_ok(port, "SET"), settings_before);
    assert!(
        settings_before.contains("table.local-time-zone|Asia/Tokyo"),
        "{settings_before}"
    );
    // The stopped job stays stopped; the other runs again, with its id.
    let jobs = psql_ok(port, "SHOW JOBS");
    assert_eq!(jobs.matches("|Running|").count(), 1, "{jobs}");
    assert!(
        jobs.contains(&format!("{}|Running|", ids[1])) && !jobs.contains(&ids[0]),
        "{jobs}\n{}",
        server.log()
    );
    assert!(
        server.log().contains(&format!("Job '{}' restored", ids[1])),
        "{}",
        server.log()
    );
    assert_eq!(poll(port, "SELECT * FROM total", &total), total);
    let (status, log) = server.stop();
    assert!(status.success(), "{log}");

    // A setup file declaring again what was restored: the same declaration
    // is skipped, another one refused with the conflict named.
    let same = dir.path().join("same.sql");
    std::fs::write(&same, format!("{GEN};\nINSERT INTO sink2 SELECT name FROM named;")).unwrap();
    let server = Server::start(dir.path(), &[same.to_str().unwrap()], &[]);
    assert!(
        server.log().contains("Table 'gen' already restored."),
        "{}",
        server.log()
    );
    assert!(
        server.log().contains(&format!("Job '{}' already restored", ids[1])),
        "{}",
        server.log()
    );
    assert_eq!(psql_ok(server.port, "SHOW JOBS").matches("|Running|").count(), 1);
    drop(server);
    let other = dir.path().join("other.sql");
    std::fs::write(&other, GEN.replace("'100'", "'5'")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["serve", "--pg-port", "0", other.to_str().unwrap()])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("table 'gen' was restored from") && stderr.contains("another declaration"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_damaged_catalog_is_refused_and_kept() {
    let dir = scratch();
    let file = catalog(dir.path());
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let damaged = b"{\"version\": 1, \"settings\": [], \"tables\": [{\"name\": \"t\"";
    std::fs::write(&file, damaged).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["serve", "--pg-port", "0"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("catalog.json: the catalog of weir serve is damaged"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), damaged);
}

#[tokio::test]
async fn an_entry_that_cannot_be_restored_is_reported_and_the_others_go_on() {
    let dir = scratch();
    let server = Server::start(dir.path(), &[], &[]);
    psql_ok(
        server.port,
        "CREATE TABLE a (id BIGINT) WITH ('connector' = 'blackhole')",
    );
    psql_ok(
        server.port,
        "CREATE TABLE b (id BIGINT) WITH ('connector' = 'blackhole')",
    );
    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
    // Table a's declaration as a later build might refuse it.
    let file = catalog(dir.path());
    let mut saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(saved["tables"][0]["name"], "a", "{saved}");
    saved["tables"][0]["ddl"] = "CREATE TABLE a (id NOSUCHTYPE) WITH ('connector' = 'blackhole')".into();
    let damaged = serde_json::to_vec(&saved).unwrap();
    std::fs::write(&file, &damaged).unwrap();

    let server = Server::start(dir.path(), &[], &[]);
    let log = server.log();
    assert!(
        log.contains("catalog.json (table 'a')") && log.contains("NOSUCHTYPE"),
        "{log}"
    );
    let tables = psql_ok(server.port, "SHOW TABLES");
    let names: Vec<&str> = tables
        .lines()
        .map(|l| l.split('|').next().unwrap_or_default())
        .collect();
    assert!(names.contains(&"b") && !names.contains(&"a"), "{tables}");
    // The catalog as it was is kept beside the one now written.
    let kept: Vec<_> = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("catalog.json."))
        })
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}\n{log}");
    assert_eq!(std::fs::read(&kept[0]).unwrap(), damaged);
    let name = kept[0].file_name().unwrap_or_default().to_string_lossy().into_owned();
    assert!(log.contains(&format!("is kept in ./weir-state/serve/{name}.")), "{log}");
}

/// A savepoint starts a job once: killed after its first checkpoint of its
/// own, the restored job resumes from its latest checkpoint, not from the
/// savepoint again.
#[tokio::test]
async fn a_job_from_a_savepoint_resumes_from_its_own_checkpoint() {
    let dir = scratch();
    let server = Server::start(dir.path(), &[], &[]);
    let port = server.port;
    psql_ok(port, "SET 'execution.checkpointing.interval' = '100 ms'");
    psql_ok(port, GEN);
    psql_ok(port, "CREATE TABLE sink1 (id BIGINT) WITH ('connector' = 'blackhole')");
    psql_ok(port, "INSERT INTO sink1 SELECT id FROM gen");
    let jobs = psql_ok(port, "SHOW JOBS");
    let id = jobs.split('|').next().unwrap_or_default().to_string();
    psql_ok(port, &format!("STOP JOB '{id}' WITH SAVEPOINT"));
    let savepoints: Vec<_> = std::fs::read_dir(dir.path().join("weir-state").join("savepoints"))
        .unwrap()
        .filter_map(|e| Some(e.ok()?.path()))
        .collect();
    assert_eq!(savepoints.len(), 1, "{savepoints:?}");
    psql_ok(
        port,
        &format!("SET 'execution.savepoint.path' = '{}'", savepoints[0].display()),
    );
    // The client is told where the job started, in a notice.
    let started = psql(port, "INSERT INTO sink1 SELECT id FROM gen", None);
    let notice = String::from_utf8_lossy(&started.stderr);
    assert!(
        started.status.success() && notice.contains(&format!("Job '{id}' started: resumed from savepoint")),
        "{notice}"
    );
    // The catalog drops the savepoint from the job's settings once the job
    // has a checkpoint of its own.
    let file = catalog(dir.path());
    let until = Instant::now() + Duration::from_secs(60);
    let from_savepoint = || {
        let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        saved["jobs"][0]["settings"]
            .to_string()
            .contains("execution.savepoint.path")
    };
    while from_savepoint() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!from_savepoint(), "{}", std::fs::read_to_string(&file).unwrap());
    sigkill(server);
    let server = Server::start(dir.path(), &[], &[]);
    let log = server.log();
    assert!(
        log.contains(&format!("Job '{id}' restored: resumed from checkpoint")),
        "{log}"
    );
}

/// A statement set's job (`BEGIN STATEMENT SET; …; END;`) is kept as its
/// statements and runs again after a SIGKILL as the same job.
#[tokio::test]
async fn a_statement_set_runs_again_as_the_same_job() {
    let dir = scratch();
    let server = Server::start(dir.path(), &[], &[]);
    let port = server.port;
    psql_ok(port, GEN);
    psql_ok(port, "CREATE TABLE sink1 (id BIGINT) WITH ('connector' = 'blackhole')");
    psql_ok(
        port,
        "CREATE TABLE sink2 (name VARCHAR) WITH ('connector' = 'blackhole')",
    );
    psql_ok(port, "BEGIN STATEMENT SET");
    psql_ok(port, "INSERT INTO sink1 SELECT id FROM gen");
    psql_ok(port, "INSERT INTO sink2 SELECT name FROM gen");
    psql_ok(port, "END");
    let jobs = psql_ok(port, "SHOW JOBS");
    assert_eq!(jobs.matches("|Running|").count(), 1, "{jobs}");
    let id = jobs.split('|').next().unwrap_or_default().to_string();
    sigkill(server);
    let server = Server::start(dir.path(), &[], &[]);
    let log = server.log();
    assert!(log.contains(&format!("Job '{id}' restored")), "{log}");
    let jobs = psql_ok(server.port, "SHOW JOBS");
    assert!(
        jobs.starts_with(&format!("{id}|Running|")) && jobs.contains("INSERT INTO sink2"),
        "{jobs}"
    );
}
