//! Statement sets (Flink's `EXECUTE STATEMENT SET BEGIN … END` and the SQL
//! client's `BEGIN STATEMENT SET;` … `END;`): several INSERTs run as one
//! job, each sink writing exactly what its INSERT alone writes — also
//! after the job is killed and restored (`weir_run`'s restored twin).

mod common;

use std::path::Path;

use common::*;

fn tables(dir: &Path) -> String {
    format!(
        "CREATE TABLE src (k VARCHAR, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
  WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'json', 'scan.watermark.emit.strategy' = 'on-event');
CREATE TABLE counts (ws TIMESTAMP(3), k VARCHAR, n BIGINT)
  WITH ('connector' = 'filesystem', 'path' = '{counts}', 'format' = 'json');
CREATE TABLE big (k VARCHAR, v BIGINT)
  WITH ('connector' = 'filesystem', 'path' = '{big}', 'format' = 'json');
",
        input = dir.join("in").display(),
        counts = dir.join("counts").display(),
        big = dir.join("big").display(),
    )
}

const COUNTS: &str = "INSERT INTO counts SELECT window_start, k, count(*) FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '2' SECOND)) GROUP BY window_start, window_end, k";
const BIG: &str = "INSERT INTO big SELECT k, v FROM src WHERE v > 95";

fn input(dir: &Path) {
    std::fs::create_dir_all(dir.join("in")).unwrap();
    let mut g = Lcg(3);
    let rows: Vec<Row> = (0..6_000)
        .map(|i| Row { k: Some(format!("k{}", g.below(5))), v: Some(g.below(100) as i64), ts: Some(T0 + i * 5) })
        .collect();
    write_json(&dir.join("in/part-0.json"), &rows);
}

fn sink(dir: &Path, table: &str) -> Vec<String> {
    // Whole rows (serde_json orders an object's keys).
    let mut rows: Vec<String> = read_sink(&dir.join(table)).iter().map(|r| r.to_string()).collect();
    rows.sort();
    rows
}

/// Runs `statements` after the tables; the outputs of both sinks, and
/// how many jobs started.
fn run(statements: &str) -> (Vec<String>, Vec<String>, usize) {
    let dir = scratch();
    input(dir.path());
    let run = weir_run(dir.path(), &format!("{}{statements}", tables(dir.path())));
    assert!(run.ok, "{}", run.stderr);
    let jobs = run.stderr.matches(" started").count();
    (sink(dir.path(), "counts"), sink(dir.path(), "big"), jobs)
}

#[test]
fn a_statement_set_writes_what_each_insert_alone_writes() {
    let (counts, _, _) = run(&format!("{COUNTS};\n"));
    let (_, big, _) = run(&format!("{BIG};\n"));
    assert!(counts.len() > 20 && big.len() > 20, "too few rows: {} {}", counts.len(), big.len());
    for set in [
        format!("EXECUTE STATEMENT SET BEGIN\n{COUNTS};\n{BIG};\nEND;\n"),
        format!("BEGIN STATEMENT SET;\n{COUNTS};\n{BIG};\nEND;\n"),
    ] {
        let (got_counts, got_big, jobs) = run(&set);
        assert_eq!(jobs, 1, "{set}: one job");
        assert_rows_eq(&got_counts, &counts, &set);
        assert_rows_eq(&got_big, &big, &set);
    }
}

/// What a statement set refuses, at its place.
#[test]
fn statement_set_errors() {
    let dir = scratch();
    input(dir.path());
    for (statements, why) in [
        ("EXECUTE STATEMENT SET BEGIN\nSELECT 1;\nEND;\n", "a statement set holds INSERT statements up to END"),
        ("EXECUTE STATEMENT SET BEGIN END;\n", "a statement set needs at least one INSERT"),
        ("END;\n", "END without BEGIN STATEMENT SET"),
        ("BEGIN STATEMENT SET;\nSHOW TABLES;\n", "statements other than INSERT inside BEGIN STATEMENT SET"),
    ] {
        let run = weir_run(dir.path(), &format!("{}{statements}", tables(dir.path())));
        assert!(!run.ok, "{statements} succeeded");
        assert!(run.stderr.contains(why) && run.stderr.contains("job.sql:"), "{statements}: {}", run.stderr);
    }
}
