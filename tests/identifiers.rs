//! Identifiers as Flink takes them: case kept and matched exactly, quoted
//! (backticks or double quotes) or not — `A.dateTime` finds a column
//! declared `` `dateTime` ``, output columns keep their case, and
//! `datetime` is another name. (The sink's path is Flink's `file://` URL.)

mod common;

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
