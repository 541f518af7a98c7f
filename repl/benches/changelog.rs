//! Decoding the changelog formats: `weir run` reads a file of Debezium
//! records (a snapshot, then updates, inserts and deletes of 10 000 keys)
//! into a blackhole table, and the same rows as plain `json` (the after
//! images only) for comparison. Each run reports wall time and the `weir`
//! process's CPU time (from `wait4`); records per CPU second is the
//! figure that does not depend on what else the machine runs.
//!
//! `cargo bench --bench changelog [-- --records 1000000]`
//!
//! Both runs check that every record decoded and that the rows written are
//! the changelog rows the generator made (the plain run: one per record).

mod support;

use std::fmt::Write as _;

use support::{WeirRun, flag};

fn main() {
    let records: usize = flag("--records", "1000000").parse().expect("--records takes a number");
    let dir = tempfile::tempdir().expect("temp dir");
    let (debezium, json, changes) = inputs(records);
    std::fs::write(dir.path().join("cdc.json"), debezium).expect("write records");
    std::fs::write(dir.path().join("rows.json"), json).expect("write rows");
    for (format, file, rows) in [("json", "rows.json", records as u64), ("debezium-json", "cdc.json", changes)] {
        let sql = format!(
            "CREATE TABLE src (id BIGINT, name VARCHAR, category VARCHAR, weight BIGINT, updated TIMESTAMP(3))
               WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = '{format}');
             CREATE TABLE sink (id BIGINT, name VARCHAR, category VARCHAR, weight BIGINT, updated TIMESTAMP(3))
               WITH ('connector' = 'blackhole');
             INSERT INTO sink SELECT * FROM src;",
            dir.path().join(file).display()
        );
        let (usage, written) = WeirRun::to_end(&sql);
        assert_eq!(written.bad_records, 0, "{format}: every record decodes");
        assert_eq!(written.rows, rows, "{format}: the changelog rows of the records");
        println!(
            "{format:>14}: {records} records in {:.2} s wall, {:.2} s CPU: {:.0} records/s per core, {:.1} MiB peak",
            usage.wall,
            usage.cpu,
            records as f64 / usage.cpu,
            usage.peak_rss_mib
        );
    }
}

/// `records` Debezium records over 10 000 keys (the first 10 000 a
/// snapshot, then 60% updates, 25% inserts of deleted keys, 15% deletes),
/// and as many plain rows; and the number of changelog rows the records
/// stand for (an update is two: `-U` and `+U`).
fn inputs(records: usize) -> (String, String, u64) {
    let keys = 10_000.min(records);
    let mut live = vec![true; keys];
    let mut state: u64 = 2026;
    let mut next = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
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
    let mut changes = 0;
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
        changes += if op == "u" { 2 } else { 1 };
        last[id] = v;
        let _ = writeln!(
            cdc,
            "{{\"before\": {before}, \"after\": {after}, {source}, \"op\": \"{op}\", \"ts_ms\": 1767225600001, \"transaction\": null}}"
        );
        let _ = writeln!(rows, "{}", row(id, v));
    }
    (cdc, rows, changes)
}
