//! Identifiers as Flink takes them: case kept and matched exactly, quoted
//! (backticks or double quotes) or not — `A.dateTime` finds a column
//! declared `` `dateTime` ``, output columns keep their case, and
//! `datetime` is another name. (The sink's path is Flink's `file://` URL.)

use crate::common;

use common::*;

#[test]
fn identifiers_keep_their_case_and_match_exactly() {
    let dir = scratch();
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    let rows: Vec<Row> = (0..50).map(|i| Row { k: Some(format!("k{}", i % 3)), v: Some(i), ts: Some(T0 + i * 100) }).collect();
    write_json(&dir.path().join("in/part-0.json"), &rows);
    let tables = format!(
        "CREATE TABLE Bids (k VARCHAR, v BIGINT, ts TIMESTAMP(3))
  WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'json');
CREATE TABLE `Out` (Key VARCHAR, bidValue BIGINT)
  WITH ('connector' = 'filesystem', 'path' = 'file://{out}', 'format' = 'json');
",
        input = dir.path().join("in").display(),
        out = dir.path().join("out").display()
    );
    let run = weir_run(dir.path(), &format!("{tables}INSERT INTO Out SELECT B.k AS Key, B.v * 2 AS bidValue FROM Bids AS B WHERE B.v > 40;\n"));
    assert!(run.ok, "{}", run.stderr);
    let mut got: Vec<String> = read_sink(&dir.path().join("out")).iter().map(|r| r.to_string()).collect();
    got.sort();
    let mut want: Vec<String> = rows
        .iter()
        .filter(|r| r.v.unwrap() > 40)
        .map(|r| serde_json::json!({"Key": r.k, "bidValue": r.v.unwrap() * 2}).to_string())
        .collect();
    want.sort();
    assert_eq!(got, want, "output columns keep their case");
    // Another case is another name, as in Flink.
    let other = weir_run(dir.path(), &format!("{tables}INSERT INTO out SELECT k, v FROM bids;\n"));
    assert!(!other.ok);
    assert!(other.stderr.contains("table 'out' not found") && other.stderr.contains("job.sql:5:13"), "{}", other.stderr);
}

/// Unaliased expressions are named `EXPR$i` (`i` their position in the
/// select list), as Calcite names them for Flink: a view's column read by
/// that name gives the expression's values, DESCRIBE and a query's header
/// show the names.
#[test]
fn unaliased_expressions_are_named_after_their_position() {
    let dir = scratch();
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    let rows: Vec<Row> = (0..50).map(|i| Row { k: Some(format!("k{}", i % 3)), v: Some(i), ts: Some(T0 + i * 100) }).collect();
    write_json(&dir.path().join("in/part-0.json"), &rows);
    let sql = format!(
        "CREATE TABLE Bids (k VARCHAR, v BIGINT, ts TIMESTAMP(3))
  WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'json');
CREATE TABLE `Out` (Key VARCHAR, bidValue BIGINT)
  WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'json');
CREATE VIEW doubled AS SELECT k, v * 2, UPPER(k) FROM Bids;
DESCRIBE doubled;
SELECT 1 + 1, 'x' AS u, LOWER('A') FROM (VALUES (1)) AS t(a);
SET 'table.dml-sync' = 'true';
INSERT INTO `Out` SELECT `EXPR$2`, `EXPR$1` FROM doubled WHERE `EXPR$1` > 80;
",
        input = dir.path().join("in").display(),
        out = dir.path().join("out").display()
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    let described: Vec<&str> = run.stdout.lines().filter(|l| l.contains("EXPR$")).collect();
    assert!(described.iter().any(|l| l.contains("EXPR$1") && l.contains("BIGINT")), "{}", run.stdout);
    assert!(described.iter().any(|l| l.contains("EXPR$2") && l.contains("VARCHAR")), "{}", run.stdout);
    let header = run.stdout.lines().find(|l| l.contains(" u ")).unwrap_or_else(|| panic!("no header in {}", run.stdout));
    let names: Vec<&str> = header.split('|').map(str::trim).filter(|n| !n.is_empty()).collect();
    assert_eq!(names, ["EXPR$0", "u", "EXPR$2"], "{header}");
    let mut got: Vec<String> = read_sink(&dir.path().join("out")).iter().map(|r| r.to_string()).collect();
    got.sort();
    let mut want: Vec<String> = rows
        .iter()
        .filter(|r| r.v.unwrap() * 2 > 80)
        .map(|r| serde_json::json!({"Key": r.k.as_deref().map(str::to_uppercase), "bidValue": r.v.unwrap() * 2}).to_string())
        .collect();
    want.sort();
    assert!(!want.is_empty());
    assert_eq!(got, want);
}
