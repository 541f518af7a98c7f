//! Changelogs through a real broker (nisshi, per test on loopback):
//! Debezium records in a topic read with the value's metadata, and the
//! `upsert-kafka` connector both ways — a CDC history written as upserts
//! and tombstones, read back as a changelog (also after a SIGKILL, whose
//! restart rebuilds each key's latest row from the topic). Every result
//! is compared with the test's own replay of the history.

use crate::common;
use crate::common::history;

use std::collections::BTreeMap;
use std::time::Duration;

use common::kafka::Broker;
use common::*;
use history::{Change, debezium, final_rows, history, per_category};

/// Debezium's records of `changes` as its Kafka connector writes them:
/// keyed by the row's id, in one partition.
fn produce_debezium(broker: &Broker, topic: &str, changes: &[Change], extra: &[&str]) {
    broker.create_topic(topic, 1);
    let records: Vec<(Option<Vec<u8>>, Vec<u8>)> = debezium(changes)
        .lines()
        .zip(changes)
        .map(|(line, c)| {
            let id = match c {
                Change::Snapshot(p) | Change::Insert(p) | Change::Delete(p) | Change::Update(_, p) => p.id,
            };
            (Some(format!("{{\"id\": {id}}}").into_bytes()), line.as_bytes().to_vec())
        })
        .chain(extra.iter().map(|e| (None, e.as_bytes().to_vec())))
        .collect();
    broker.produce(topic, 0, &records);
}

fn products_ddl(name: &str, with: &str) -> String {
    format!(
        "CREATE TABLE {name} (id BIGINT, name VARCHAR, category VARCHAR, weight BIGINT, updated TIMESTAMP(3),
           PRIMARY KEY (id) NOT ENFORCED) WITH ({with});"
    )
}

/// A Debezium topic read as a changelog: the table, a GROUP BY with the
/// value's metadata, a malformed record counted.
#[test]
fn debezium_topic_with_value_metadata() {
    let broker = Broker::start();
    let (changes, table) = history(31, 300);
    produce_debezium(
        &broker,
        "cdc",
        &changes,
        &["{\"before\": null, \"after\": {\"id\": 1}, \"op\": \"t\"}"],
    );
    let servers = broker.bootstrap();
    let dir = scratch();
    let run = run_once(
        dir.path(),
        &format!(
            "SET 'parallelism.default' = '2';
{}
CREATE TABLE out (category VARCHAR, origin VARCHAR, n BIGINT, w BIGINT) WITH ('connector' = 'print');
INSERT INTO out SELECT category, db || '.' || origin, COUNT(*), SUM(weight) FROM products GROUP BY category, db || '.' || origin;",
            run_sql_ddl(&servers)
        ),
    );
    assert!(run.ok, "{}", run.stderr);
    let (got, _) = apply_changelog(&run.stdout, 2);
    let want: Vec<String> = per_category(&table)
        .iter()
        .map(|l| {
            let (c, rest) = l.split_once('|').unwrap();
            format!("{c}|inventory.products|{rest}")
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(run.counted("records that could not be decoded"), 1, "{}", run.stderr);

    // Each row's Kafka metadata is its record's (a `-U` too: its record is
    // the update's, as in Flink): a live row's offset is that of the last
    // change of its id.
    let ddl = run_sql_ddl(&servers);
    let run = run_once(
        dir.path(),
        &format!(
            "{ddl}\nCREATE TABLE out3 (id BIGINT, off BIGINT) WITH ('connector' = 'print');\nINSERT INTO out3 SELECT id, off FROM products;"
        ),
    );
    assert!(run.ok, "{}", run.stderr);
    let mut last: BTreeMap<i64, usize> = BTreeMap::new();
    for (offset, c) in changes.iter().enumerate() {
        let id = match c {
            Change::Snapshot(p) | Change::Insert(p) | Change::Delete(p) | Change::Update(_, p) => p.id,
        };
        last.insert(id, offset);
    }
    let mut want: Vec<String> = table.keys().map(|id| format!("{id}|{}", last[id])).collect();
    want.sort();
    assert_eq!(upserted_by_first_column(&run.stdout), want);

    // Without ignore-parse-errors the job fails naming topic, partition
    // and offset.
    let run = run_once(
        dir.path(),
        &format!(
            "{}\nCREATE TABLE out2 (id BIGINT) WITH ('connector' = 'print');\nINSERT INTO out2 SELECT id FROM products;",
            products_ddl(
                "products",
                &format!(
                    "'connector' = 'kafka', 'topic' = 'cdc', 'properties.bootstrap.servers' = '{servers}', \
                     'scan.bounded.mode' = 'latest-offset', 'format' = 'debezium-json'"
                )
            )
        ),
    );
    assert!(
        !run.ok && run.stderr.contains(&format!("cdc/0:{}", changes.len())),
        "{}",
        run.stderr
    );
}

/// The rows the `print` changes leave when applied by their first
/// column, as an upsert sink keyed by it applies them (a retraction's
/// other columns are not compared), as sorted `a|b|…` lines.
fn upserted_by_first_column(stdout: &str) -> Vec<String> {
    let mut rows: BTreeMap<String, String> = BTreeMap::new();
    for line in stdout.lines() {
        let line = line.split_once("> ").map_or(line, |(_, rest)| rest);
        let (kind, values) = line.split_at(2);
        let values = values.trim_start_matches('[').trim_end_matches(']').replace(", ", "|");
        let key = values.split('|').next().unwrap_or_default().to_string();
        match kind {
            "+I" | "+U" => {
                rows.insert(key, values);
            }
            _ => {
                rows.remove(&key);
            }
        }
    }
    let mut rows: Vec<String> = rows.into_values().collect();
    rows.sort();
    rows
}

/// The Debezium topic `cdc` as a table with the value's and Kafka's
/// metadata.
fn run_sql_ddl(servers: &str) -> String {
    format!(
        "CREATE TABLE products (id BIGINT, name VARCHAR, category VARCHAR, weight BIGINT, updated TIMESTAMP(3),
  origin VARCHAR METADATA FROM 'value.source.table' VIRTUAL,
  db VARCHAR METADATA FROM 'value.source.database' VIRTUAL,
  off BIGINT METADATA FROM 'offset' VIRTUAL,
  PRIMARY KEY (id) NOT ENFORCED)
 WITH ('connector' = 'kafka', 'topic' = 'cdc', 'properties.bootstrap.servers' = '{servers}',
       'scan.bounded.mode' = 'latest-offset', 'format' = 'debezium-json',
       'debezium-json.ignore-parse-errors' = 'true');"
    )
}

/// The committed messages of an upsert topic applied in order (a value
/// upserts its key, a tombstone deletes it): the table a compacted topic
/// ends as, as sorted `id|name|category|weight` lines.
fn compacted(broker: &Broker, topic: &str) -> Vec<String> {
    let mut table: BTreeMap<String, String> = BTreeMap::new();
    for r in broker.read_committed(topic) {
        let key = String::from_utf8(r.key.expect("a key")).unwrap();
        match r.value {
            None => {
                table.remove(&key);
            }
            Some(v) => {
                let v: serde_json::Value = serde_json::from_slice(&v).unwrap();
                // With EXCEPT_KEY the id is in the key only.
                let k: serde_json::Value = serde_json::from_str(&key).unwrap();
                let line = format!(
                    "{}|{}|{}|{}",
                    k["id"],
                    v["name"].as_str().unwrap(),
                    v["category"].as_str().unwrap(),
                    v["weight"]
                );
                table.insert(key, line);
            }
        }
    }
    let mut rows: Vec<String> = table.into_values().collect();
    rows.sort();
    rows
}

fn upsert_with(servers: &str, topic: &str, extra: &str) -> String {
    format!(
        "'connector' = 'upsert-kafka', 'topic' = '{topic}', 'properties.bootstrap.servers' = '{servers}',
         'key.format' = 'json', 'value.format' = 'json'{extra}"
    )
}

/// A CDC history into an upsert topic (keys and tombstones), and back;
/// the value holding every column, and only the others (`EXCEPT_KEY`).
#[test]
fn upsert_kafka_round_trip() {
    let broker = Broker::start();
    let servers = broker.bootstrap();
    let (changes, table) = history(41, 400);
    for (topic, layout) in [
        ("products", ""),
        ("products_except_key", ", 'value.fields-include' = 'EXCEPT_KEY'"),
    ] {
        round_trip(&broker, &servers, &changes, &table, topic, layout);
    }
}

fn round_trip(
    broker: &Broker,
    servers: &str,
    changes: &[Change],
    table: &BTreeMap<i64, history::Product>,
    topic: &str,
    layout: &str,
) {
    let dir = scratch();
    std::fs::write(dir.path().join("cdc.json"), debezium(changes)).unwrap();
    broker.create_topic(topic, 2);
    let run = run_once(
        dir.path(),
        &format!(
            "{}\n{}\nINSERT INTO products_upsert SELECT * FROM products;",
            products_ddl(
                "products",
                &format!(
                    "'connector' = 'filesystem', 'path' = '{}', 'format' = 'debezium-json'",
                    dir.path().join("cdc.json").display()
                )
            ),
            products_ddl("products_upsert", &upsert_with(servers, topic, layout))
        ),
    );
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(compacted(broker, topic), final_rows(table), "{topic}");
    // Keys are the primary key's columns; with EXCEPT_KEY values are not.
    for r in broker.read_committed(topic) {
        let key: serde_json::Value = serde_json::from_slice(&r.key.unwrap()).unwrap();
        assert!(
            key.as_object().is_some_and(|k| k.len() == 1 && k["id"].is_i64()),
            "{key}"
        );
        if let Some(v) = r.value {
            let v: serde_json::Value = serde_json::from_slice(&v).unwrap();
            assert_eq!(v.get("id").is_some(), layout.is_empty(), "{v}");
        }
    }
    // Read back: the table, and a GROUP BY over it.
    let read = |sink: &str, query: &str, key_len: usize| {
        let run = run_once(
            dir.path(),
            &format!(
                "SET 'parallelism.default' = '2';\n{}\nCREATE TABLE out ({sink}) WITH ('connector' = 'print');\nINSERT INTO out {query};",
                products_ddl(
                    "back",
                    &upsert_with(
                        servers,
                        topic,
                        &format!("{layout}, 'scan.bounded.mode' = 'latest-offset'")
                    )
                )
            ),
        );
        assert!(run.ok, "{}", run.stderr);
        apply_changelog(&run.stdout, key_len)
    };
    let (rows, _) = read(
        "id BIGINT, name VARCHAR, category VARCHAR, weight BIGINT",
        "SELECT id, name, category, weight FROM back",
        1,
    );
    assert_eq!(rows, final_rows(table), "{topic}");
    let (groups, kinds) = read(
        "category VARCHAR, n BIGINT, w BIGINT",
        "SELECT category, COUNT(*), SUM(weight) FROM back GROUP BY category",
        1,
    );
    assert_eq!(groups, per_category(table), "{topic}");
    assert!(kinds.contains_key("-U"), "{kinds:?}");
}

/// Killed midway, a reader of an upsert topic rebuilds each key's latest
/// row from the topic: updates after the restart retract the right rows.
#[test]
fn upsert_source_restored_after_a_kill() {
    let broker = Broker::start();
    let servers = broker.bootstrap();
    let (changes, table) = history(51, 600);
    // The history as upserts: a row per insert or update, a tombstone per
    // delete; the second half arrives while the job is down.
    broker.create_topic("upserts", 1);
    let messages: Vec<(Option<Vec<u8>>, Option<Vec<u8>>)> = changes
        .iter()
        .map(|c| match c {
            Change::Snapshot(p) | Change::Insert(p) | Change::Update(_, p) => (
                Some(format!("{{\"id\":{}}}", p.id).into_bytes()),
                Some(history::row(p).to_string().into_bytes()),
            ),
            Change::Delete(p) => (Some(format!("{{\"id\":{}}}", p.id).into_bytes()), None),
        })
        .collect();
    let half = messages.len() / 2;
    let dir = scratch();
    let sql = format!(
        "SET 'execution.checkpointing.interval' = '100 ms';
{}
{}
INSERT INTO totals SELECT category, COUNT(*) AS n, SUM(weight) AS w FROM src GROUP BY category;",
        products_ddl("src", &upsert_with(&servers, "upserts", "")),
        format!(
            "CREATE TABLE totals (category VARCHAR, n BIGINT, w BIGINT, PRIMARY KEY (category) NOT ENFORCED) WITH ({});",
            upsert_with(&servers, "totals", "")
        )
    );
    broker.create_topic("totals", 1);
    std::fs::write(dir.path().join("job.sql"), &sql).unwrap();
    // Tombstones go through the sink of another table: the harness's
    // producer writes values only. The first half, then a kill.
    produce_upserts(&dir, "first", &servers, &messages[..half]);
    assert!(killed_after(
        dir.path(),
        &dir.path().join("job.sql"),
        Duration::from_secs(4),
        &mut || {}
    ));
    produce_upserts(&dir, "second", &servers, &messages[half..]);
    assert!(killed_after(
        dir.path(),
        &dir.path().join("job.sql"),
        Duration::from_secs(6),
        &mut || {}
    ));
    let mut totals: BTreeMap<String, String> = BTreeMap::new();
    for r in broker.read_committed("totals") {
        let key = String::from_utf8(r.key.unwrap()).unwrap();
        match r.value {
            None => {
                totals.remove(&key);
            }
            Some(v) => {
                let v: serde_json::Value = serde_json::from_slice(&v).unwrap();
                totals.insert(
                    key,
                    format!("{}|{}|{}", v["category"].as_str().unwrap(), v["n"], v["w"]),
                );
            }
        }
    }
    let got: Vec<String> = totals.into_values().collect();
    let logs: String = (0..10)
        .filter_map(|n| std::fs::read_to_string(dir.path().join(format!("run-{n}.log"))).ok())
        .collect();
    assert!(logs.contains("resumed from checkpoint"), "{logs}");
    assert_eq!(got, per_category(&table), "{logs}");
}

/// Writes `messages` (key, value or tombstone) to the `upserts` topic
/// through Weir's own upsert sink, from a file of Maxwell records in
/// `dir/<name>`: the tests' producer writes no tombstones, a changelog
/// file's deletes become them.
fn produce_upserts(
    dir: &tempfile::TempDir,
    name: &str,
    servers: &str,
    messages: &[(Option<Vec<u8>>, Option<Vec<u8>>)],
) {
    let feed = dir.path().join(name);
    std::fs::create_dir_all(&feed).unwrap();
    let mut lines = String::new();
    for (key, value) in messages {
        let key: serde_json::Value = serde_json::from_slice(key.as_deref().unwrap()).unwrap();
        let line = match value {
            Some(v) => {
                let v: serde_json::Value = serde_json::from_slice(v).unwrap();
                serde_json::json!({"type": "insert", "data": v})
            }
            None => serde_json::json!({"type": "delete", "data": {"id": key["id"]}}),
        };
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    let file = feed.join("part.json");
    std::fs::write(&file, lines).unwrap();
    let run = run_once(
        &feed,
        &format!(
            "{}\n{}\nINSERT INTO upserts SELECT * FROM feed;",
            products_ddl(
                "feed",
                &format!(
                    "'connector' = 'filesystem', 'path' = '{}', 'format' = 'maxwell-json'",
                    file.display()
                )
            ),
            products_ddl(
                "upserts",
                &upsert_with(servers, "upserts", ", 'sink.delivery-guarantee' = 'at-least-once'")
            )
        ),
    );
    assert!(run.ok, "{}", run.stderr);
}

#[test]
fn upsert_kafka_needs_a_primary_key_and_insert_only_values() {
    let dir = scratch();
    for (ddl, says) in [
        (
            "CREATE TABLE t (id BIGINT, v BIGINT) WITH ('connector' = 'upsert-kafka', 'topic' = 't', \
             'properties.bootstrap.servers' = 'localhost:1', 'key.format' = 'json', 'value.format' = 'json');",
            "require to define a PRIMARY KEY",
        ),
        (
            "CREATE TABLE t (id BIGINT, v BIGINT, PRIMARY KEY (id) NOT ENFORCED) WITH ('connector' = 'upsert-kafka', \
             'topic' = 't', 'properties.bootstrap.servers' = 'localhost:1', 'key.format' = 'json', \
             'value.format' = 'debezium-json');",
            "insert-only",
        ),
        (
            "CREATE TABLE t (id BIGINT, v BIGINT, PRIMARY KEY (id) NOT ENFORCED) WITH ('connector' = 'upsert-kafka', \
             'topic' = 't', 'properties.bootstrap.servers' = 'localhost:1', 'key.format' = 'json', \
             'value.format' = 'json', 'sink.buffer-flush.max-rows' = '10');",
            "together",
        ),
    ] {
        let run = run_once(dir.path(), ddl);
        assert!(run.stderr.contains(says), "{ddl}: {}{}", run.stdout, run.stderr);
    }
}
