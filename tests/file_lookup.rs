//! A `filesystem` table as a lookup table (Flink's filesystem lookup):
//! `JOIN dims FOR SYSTEM_TIME AS OF s.proc AS d ON …` through the `weir`
//! binary, the stream a JSON file and the table a CSV file. The joined rows
//! must equal a join computed here over the same rows (keys with several
//! rows, keys the table lacks, NULL keys; INNER and LEFT); the table is read
//! again once `'lookup.join.cache.ttl'` has passed (checked with a stream
//! fed through a named pipe while the file changes); Flink's legacy options
//! declare the table; mistakes are errors that name them.

use crate::common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// The table: keys 0..20, key `k` with `k % 3 + 1` rows named `n<k>-<i>`;
/// `x` is the `i` of each.
fn dims() -> Vec<(i64, String, i64)> {
    (0..20).flat_map(|k| (0..k % 3 + 1).map(move |i| (k, format!("n{k}-{i}"), i))).collect()
}

fn write_dims(path: &Path, rows: &[(i64, String, i64)]) {
    let text: String = rows.iter().map(|(k, n, x)| format!("{k},{n},{x}\n")).collect();
    std::fs::write(path, text).expect("dims.csv");
}

/// The stream: `(k, v)`, `v` unique; keys past the table's and NULL ones.
fn stream() -> Vec<(Option<i64>, i64)> {
    let mut g = Lcg(5);
    (0..600).map(|v| ((g.below(12) != 0).then(|| g.below(26) as i64), v)).collect()
}

fn stream_json(rows: &[(Option<i64>, i64)]) -> String {
    rows.iter()
        .map(|(k, v)| format!("{{\"k\": {}, \"v\": {v}}}\n", k.map_or("null".into(), |k| k.to_string())))
        .collect()
}

fn tables(dir: &Path, dims_options: &str) -> String {
    format!(
        "CREATE TABLE s (k BIGINT, v BIGINT, proc AS PROCTIME())
  WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'json');
CREATE TABLE dims (id BIGINT, name STRING, x BIGINT) WITH ({dims_options});
CREATE TABLE out (v BIGINT, k BIGINT, name STRING, x BIGINT)
  WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'json');
",
        input = dir.join("in").display(),
        out = dir.join("out").display(),
    )
}

/// `v|k|name|x` lines of the output, sorted.
fn output(dir: &Path) -> Vec<String> {
    let text = |v: &serde_json::Value| if v.is_null() { "null".to_string() } else { v.to_string().trim_matches('"').to_string() };
    let mut lines: Vec<String> = read_sink(&dir.join("out"))
        .iter()
        .map(|r| format!("{}|{}|{}|{}", text(&r["v"]), text(&r["k"]), text(&r["name"]), text(&r["x"])))
        .collect();
    lines.sort();
    lines
}

/// The join computed here: each stream row with every table row of its
/// key; with `left`, a row without one with NULLs.
fn oracle(rows: &[(Option<i64>, i64)], table: &[(i64, String, i64)], left: bool) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in rows {
        let matches: Vec<&(i64, String, i64)> = table.iter().filter(|(id, _, _)| Some(*id) == *k).collect();
        let key = k.map_or("null".to_string(), |k| k.to_string());
        for (_, n, x) in &matches {
            out.push(format!("{v}|{key}|{n}|{x}"));
        }
        if matches.is_empty() && left {
            out.push(format!("{v}|{key}|null|null"));
        }
    }
    out.sort();
    out
}

#[test]
fn rows_are_joined_with_every_row_of_their_key() {
    let rows = stream();
    for (join, left) in [("JOIN", false), ("LEFT JOIN", true)] {
        for parallelism in [1, 2] {
            let dir = scratch();
            std::fs::create_dir_all(dir.path().join("in")).unwrap();
            std::fs::write(dir.path().join("in/part-0.json"), stream_json(&rows)).unwrap();
            write_dims(&dir.path().join("dims.csv"), &dims());
            let options = format!("'connector' = 'filesystem', 'path' = '{}', 'format' = 'csv'", dir.path().join("dims.csv").display());
            let sql = format!(
                "SET 'parallelism.default' = '{parallelism}';\n{}INSERT INTO out SELECT s.v, s.k, d.name, d.x FROM s {join} dims FOR SYSTEM_TIME AS OF s.proc AS d ON s.k = d.id;\n",
                tables(dir.path(), &options)
            );
            let run = weir_run(dir.path(), &sql);
            assert!(run.ok, "{join}: {}", run.stderr);
            let want = oracle(&rows, &dims(), left);
            assert!(want.len() > 500, "{}", want.len());
            assert_rows_eq(&output(dir.path()), &want, &format!("{join} at parallelism {parallelism}"));
        }
    }
}

/// Flink's legacy options (`'connector.type' = 'filesystem'`,
/// `'connector.path'`, `'format.type'`), as Nexmark q13 declares its side
/// input, and a table read both as a stream and looked up in by one job.
#[test]
fn legacy_options_and_a_table_both_streamed_and_looked_up() {
    let rows = stream();
    let dir = scratch();
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    std::fs::write(dir.path().join("in/part-0.json"), stream_json(&rows)).unwrap();
    write_dims(&dir.path().join("dims.csv"), &dims());
    let options = format!(
        "'connector.type' = 'filesystem', 'connector.path' = 'file://{}', 'format.type' = 'csv'",
        dir.path().join("dims.csv").display()
    );
    let sql = format!(
        "{}CREATE TABLE names (name STRING) WITH ('connector' = 'filesystem', 'path' = '{names}', 'format' = 'csv');
SET 'table.dml-sync' = 'true';
INSERT INTO out SELECT s.v, s.k, d.name, d.x FROM s JOIN dims FOR SYSTEM_TIME AS OF s.proc AS d ON s.k = d.id;
INSERT INTO names SELECT name FROM dims;
",
        tables(dir.path(), &options),
        names = dir.path().join("names").display()
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    assert_rows_eq(&output(dir.path()), &oracle(&rows, &dims(), false), "legacy options");
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("names"))
        .unwrap()
        .flat_map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap().lines().map(String::from).collect::<Vec<_>>())
        .collect();
    names.sort();
    let mut want: Vec<String> = dims().into_iter().map(|(_, n, _)| n).collect();
    want.sort();
    assert_eq!(names, want, "the same table read as a stream");
}

/// With a short reload interval — the filesystem connector's
/// `'lookup.join.cache.ttl'`, or Flink's FULL cache options — rows that
/// come after the file changed and the interval passed see the new rows;
/// rows before, the old ones. The stream is a named pipe held open
/// between its two halves.
#[test]
fn the_table_is_read_again_on_its_schedule() {
    for reload in [
        "'lookup.join.cache.ttl' = '200 ms'",
        "'lookup.cache' = 'FULL', 'lookup.full-cache.reload-strategy' = 'PERIODIC', \
         'lookup.full-cache.periodic-reload.interval' = '200 ms'",
    ] {
        read_again(reload);
    }
}

fn read_again(reload: &str) {
    let dir = scratch();
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    let fifo = dir.path().join("in/part-0.json");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let dims_path = dir.path().join("dims.csv");
    let before = vec![(1, "old".to_string(), 1), (2, "two".to_string(), 2)];
    let after = vec![(1, "new".to_string(), 10), (3, "three".to_string(), 3)];
    write_dims(&dims_path, &before);
    let options = format!("'connector' = 'filesystem', 'path' = '{}', 'format' = 'csv', {reload}", dims_path.display());
    let sql = format!(
        "SET 'execution.checkpointing.interval' = '100 ms';\n{}INSERT INTO out SELECT s.v, s.k, d.name, d.x FROM s LEFT JOIN dims FOR SYSTEM_TIME AS OF s.proc AS d ON s.k = d.id;\n",
        tables(dir.path(), &options)
    );
    std::fs::write(dir.path().join("job.sql"), sql).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("run")
        .arg(dir.path().join("job.sql"))
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let first: Vec<(Option<i64>, i64)> = (0..30).map(|v| (Some(v % 4), v)).collect();
    let second: Vec<(Option<i64>, i64)> = (30..60).map(|v| (Some(v % 4), v)).collect();
    let mut pipe = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    pipe.write_all(stream_json(&first).as_bytes()).unwrap();
    pipe.flush().unwrap();
    // The first rows are looked up, then the file changes and the TTL passes.
    std::thread::sleep(Duration::from_millis(1500));
    write_dims(&dims_path, &after);
    std::thread::sleep(Duration::from_millis(600));
    pipe.write_all(stream_json(&second).as_bytes()).unwrap();
    drop(pipe);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut want = oracle(&first, &before, true);
    want.extend(oracle(&second, &after, true));
    want.sort();
    assert_rows_eq(&output(dir.path()), &want, &format!("before and after the file changed ({reload})"));
}

#[test]
fn mistakes_are_named() {
    let dir = scratch();
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    std::fs::write(dir.path().join("in/part-0.json"), stream_json(&stream())).unwrap();
    let fs = format!("'connector' = 'filesystem', 'path' = '{}', 'format' = 'csv'", dir.path().join("dims.csv").display());
    for (dims_options, join, says) in [
        ("'connector.type' = 'kafka', 'connector.topic' = 't'".to_string(), "JOIN", "'connector.type' = 'kafka'"),
        ("'connector.type' = 'filesystem', 'connector.path' = '/x', 'format.type' = 'csv', 'format.fields.0.name' = 'a'".to_string(), "JOIN", "'format.fields.0.name'"),
        (format!("{fs}, 'lookup.join.cache.ttl' = 'soon'"), "JOIN", "'lookup.join.cache.ttl'"),
        (format!("{fs}, 'lookup.cache' = 'PARTIAL'"), "JOIN", "looked up whole: 'FULL'"),
        (
            format!("{fs}, 'lookup.full-cache.reload-strategy' = 'TIMED', 'lookup.full-cache.timed-reload.at-time' = '25:00'"),
            "JOIN",
            "'lookup.full-cache.timed-reload.at-time'",
        ),
        (format!("{fs}, 'lookup.full-cache.reload-strategy' = 'TIMED'"), "JOIN", "lookup.full-cache.timed-reload.at-time"),
        ("'connector' = 'datagen'".to_string(), "JOIN", "FOR SYSTEM_TIME AS OF is for lookup tables"),
    ] {
        let sql = format!(
            "{}INSERT INTO out SELECT s.v, s.k, d.name, d.x FROM s {join} dims FOR SYSTEM_TIME AS OF s.proc AS d ON s.k = d.id;\n",
            tables(dir.path(), &dims_options)
        );
        std::fs::write(dir.path().join("job.sql"), &sql).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_weir")).arg("run").arg(dir.path().join("job.sql")).current_dir(dir.path()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{dims_options}: accepted");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(stderr.contains(says), "{dims_options}: expected {says:?} in {stderr}");
    }
}
