//! `weir.pending_windows` and SHOW JOBS' diagnosis ("why is there no
//! output?") against jobs whose cause the test knows: a Kafka topic of two
//! partitions where partition 1 has two rows at the start and then stays
//! silent while partition 0 goes on. Without `'source.idle-timeout'` every
//! window waits for partition 1: the table names it, per key group the
//! oldest window the test's own rows open, and the diagnosis says to set
//! the timeout. With it, once the timeout passes, no row blames partition
//! 1 and the windows partition 0's watermark passed arrive in the sink,
//! counted as the test's rows count them. Read with psql from `weir serve`.

use crate::common;
use crate::pgwire_common::{Server, psql_ok};

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::kafka::{Broker, json_record};
use common::{Row, T0, parse_timestamp, scratch};
use datafusion::arrow::array::{ArrayRef, StringArray};
use weir_engine::runtime::exchange::key_groups;

const WINDOW: i64 = 10_000;
const DELAY: i64 = 1_000;

/// One record the test produced.
#[derive(Debug, Clone)]
struct Record {
    partition: i32,
    k: String,
    ts: i64,
}

/// Partition 1: two rows early in the first window, then nothing;
/// partition 0: a row every 500 ms for 35 s, a new key every 5 s (so that
/// key groups' oldest windows differ).
fn initial_records() -> Vec<Record> {
    let mut records = vec![
        Record { partition: 1, k: "p1-a".into(), ts: T0 + 1_000 },
        Record { partition: 1, k: "p1-b".into(), ts: T0 + 2_000 },
    ];
    records.extend((0..70).map(|i| Record { partition: 0, k: format!("k{}", i / 10), ts: T0 + i * 500 }));
    records
}

fn produce(broker: &Broker, topic: &str, records: &[Record]) {
    for p in [0, 1] {
        let rows: Vec<_> = records
            .iter()
            .filter(|r| r.partition == p)
            .map(|r| (None, json_record(&Row { k: Some(r.k.clone()), v: Some(1), ts: Some(r.ts) })))
            .collect();
        if !rows.is_empty() {
            broker.produce(topic, p, &rows);
        }
    }
}

/// A partition's watermark once its rows are read: its greatest event
/// time minus the declared delay.
fn watermark_of(records: &[Record], partition: i32) -> i64 {
    records.iter().filter(|r| r.partition == partition).map(|r| r.ts).max().expect("rows") - DELAY
}

/// Per key group, the oldest window (start, end) of the rows that the
/// watermark `wm` has not fired (a window fires at `end - 1`).
fn oldest_open(records: &[Record], wm: i64) -> BTreeMap<u64, (i64, i64)> {
    let keys: ArrayRef = Arc::new(StringArray::from_iter_values(records.iter().map(|r| r.k.as_str())));
    let groups = key_groups(&[keys], records.len(), &mut Vec::new()).expect("string keys hash");
    let mut out: BTreeMap<u64, (i64, i64)> = BTreeMap::new();
    for (r, g) in records.iter().zip(groups) {
        let start = r.ts.div_euclid(WINDOW) * WINDOW;
        let end = start + WINDOW;
        if end - 1 > wm && out.get(&(g as u64)).is_none_or(|(_, e)| end < *e) {
            out.insert(g as u64, (start, end));
        }
    }
    out
}

/// The window counts of `records` for the windows ending by `until`, as
/// the sink's rows normalize (`common::normalize_json`).
fn counts(records: &[Record], until: i64) -> Vec<String> {
    let mut by: BTreeMap<(i64, String), i64> = BTreeMap::new();
    for r in records {
        let start = r.ts.div_euclid(WINDOW) * WINDOW;
        if start + WINDOW <= until {
            *by.entry((start, r.k.clone())).or_insert(0) += 1;
        }
    }
    let mut rows: Vec<String> =
        by.into_iter().map(|((s, k), c)| format!("{s}|{}|{k}|{c}|null|null|null|null|null", s + WINDOW)).collect();
    rows.sort();
    rows
}

/// Sets its flag when dropped: a feeding thread stops even when the test
/// fails (its scope would wait for it for ever).
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A job counting `topic`'s rows per key in 10 s windows into `sink`.
fn job_file(dir: &Path, broker: &Broker, topic: &str, sink: &str, extra: &str) -> String {
    let file = dir.join(format!("{topic}.sql"));
    std::fs::write(
        &file,
        format!(
            "SET 'parallelism.default' = '2';
SET 'execution.checkpointing.interval' = '500 ms';
CREATE TABLE {topic} (k VARCHAR, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH (
  'connector' = 'kafka', 'topic' = '{topic}', 'properties.bootstrap.servers' = '{servers}',
  'scan.startup.mode' = 'earliest-offset', 'format' = 'json'{extra});
CREATE TABLE {sink} (window_start TIMESTAMP(3), window_end TIMESTAMP(3), k VARCHAR, c BIGINT) WITH (
  'connector' = 'kafka', 'topic' = '{sink}', 'properties.bootstrap.servers' = '{servers}', 'format' = 'json');
INSERT INTO {sink} SELECT window_start, window_end, k, count(*) AS c
FROM TABLE(TUMBLE(TABLE {topic}, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end, k;",
            servers = broker.bootstrap()
        ),
    )
    .expect("job file");
    file.to_string_lossy().into_owned()
}

const PENDING: &str = "SELECT key_group, window_start, window_end, source_table, partition, partition_watermark, \
partition_idle, partition_silent_ms, diagnosis FROM weir.pending_windows ORDER BY key_group";

fn rows(out: &str) -> Vec<Vec<String>> {
    out.lines().filter(|l| !l.is_empty()).map(|l| l.split('|').map(str::to_string).collect()).collect()
}

/// The table's (key group → window) map; each key group once.
fn windows(rows: &[Vec<String>]) -> BTreeMap<u64, (i64, i64)> {
    let mut out = BTreeMap::new();
    for r in rows {
        let window = (parse_timestamp(&r[1]), parse_timestamp(&r[2]));
        assert!(out.insert(r[0].parse().expect("key group"), window).is_none(), "key group twice: {rows:?}");
    }
    out
}

/// Polls `check` every 200 ms for up to 90 s.
#[track_caller]
fn poll(server: &Server, what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let until = Instant::now() + Duration::from_secs(90);
    loop {
        match check() {
            Ok(()) => return,
            Err(last) => assert!(Instant::now() < until, "{what}: {last}\n{}", server.log()),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_silent_partition_is_named_until_the_idle_timeout_marks_it_idle() {
    let broker = Broker::start();
    let records = initial_records();

    // Without an idle timeout partition 1 holds every window back.
    let dir = scratch();
    broker.create_topic("orders_a", 2);
    broker.create_topic("totals_a", 1);
    produce(&broker, "orders_a", &records);
    let file = job_file(dir.path(), &broker, "orders_a", "totals_a", "");
    let server = Server::start(dir.path(), &[file.as_str()], &[]);
    let held = watermark_of(&records, 1);
    assert!(held < watermark_of(&records, 0));
    let expected = oldest_open(&records, held);
    let mut table = Vec::new();
    poll(&server, "the silent partition is not diagnosed", || {
        table = rows(&psql_ok(server.port, PENDING));
        if windows(&table) != expected {
            return Err(format!("windows {table:?}, expected {expected:?}"));
        }
        match table.iter().all(|r| r[8].contains("set 'source.idle-timeout'")) {
            true => Ok(()),
            false => Err(format!("no hint yet: {table:?}")),
        }
    });
    for r in &table {
        assert_eq!(r[3..5], ["orders_a", "1"], "{r:?}");
        assert_eq!(parse_timestamp(&r[5]), held, "{r:?}");
        assert_eq!(r[6], "f", "{r:?}");
        let silent: i64 = r[7].parse().expect("silent ms");
        assert!(silent >= 5_000, "{r:?}");
        let end = &common::sql_timestamp(parse_timestamp(&r[2]))[..19];
        let held_at = &common::sql_timestamp(held)[..19];
        let cause = format!("window ending {end} waits for partition orders_a-1 (watermark {held_at}), silent for ");
        assert!(r[8].starts_with(&cause), "{r:?}");
    }
    // SHOW JOBS says the same of the job's oldest window (read a moment
    // later: the silence is longer).
    let oldest = expected.values().map(|w| w.1).min().expect("open windows");
    let jobs = psql_ok(server.port, "SHOW JOBS");
    let line = jobs.lines().find(|l| l.contains("|Running|")).unwrap_or_else(|| panic!("{jobs}"));
    let diagnosis = line.split('|').nth(6).expect("diagnosis column");
    let of_oldest = table.iter().find(|r| parse_timestamp(&r[2]) == oldest).expect("the oldest window's row");
    let cause = |d: &str| d.split(", silent for").next().map(str::to_string);
    assert_eq!(cause(diagnosis), cause(&of_oldest[8]), "{jobs}");
    assert!(diagnosis.ends_with("; set 'source.idle-timeout'"), "{jobs}");
    assert!(broker.committed_json_rows("totals_a").is_empty(), "no window may have fired");
    drop(server);

    // With it, partition 1 turns idle after 2 s and stops holding windows
    // back; partition 0 keeps getting rows (past the first 35 s) so that
    // its watermark carries the job on.
    let dir = scratch();
    broker.create_topic("orders_b", 2);
    broker.create_topic("totals_b", 1);
    produce(&broker, "orders_b", &records);
    let file = job_file(dir.path(), &broker, "orders_b", "totals_b", ", 'source.idle-timeout' = '2 s'");
    let server = Server::start(dir.path(), &[file.as_str()], &[]);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut ts = T0 + 35_000;
            while !stop.load(Ordering::Relaxed) {
                produce(&broker, "orders_b", &[Record { partition: 0, k: "live".into(), ts }]);
                ts += 500;
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        let _stop = StopOnDrop(&stop);
        // The windows partition 0's first rows close (the live rows come
        // after them) arrive as the test's rows count them.
        let closed = T0 + 30_000;
        let expected = counts(&records, closed);
        poll(&server, "the windows do not arrive", || {
            let blamed = psql_ok(server.port, "SELECT count(*) FROM weir.pending_windows WHERE partition = 1");
            if blamed.trim() != "0" {
                return Err(format!("partition 1 still blamed: {}", psql_ok(server.port, PENDING)));
            }
            let got: Vec<String> = broker
                .committed_json_rows("totals_b")
                .into_iter()
                .filter(|r| r.split('|').nth(1).and_then(|e| e.parse::<i64>().ok()).is_some_and(|e| e <= closed))
                .collect();
            match got == expected {
                true => Ok(()),
                false => Err(format!("output {got:?}, expected {expected:?}")),
            }
        });
        // Partition 1 is idle and stays out of the table while the job
        // goes on.
        let idle = psql_ok(server.port, "SELECT idle FROM weir.watermarks WHERE partition = 1");
        assert_eq!(idle.trim(), "t", "{}", server.log());
        std::thread::sleep(Duration::from_secs(1));
        let table = rows(&psql_ok(server.port, PENDING));
        assert!(table.iter().all(|r| r[4] != "1" && !r[8].contains("orders_b-1")), "{table:?}");
    });
}
