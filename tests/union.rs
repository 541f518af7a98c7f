//! `UNION ALL` of streams, as in Flink: every input's rows, once each,
//! equal to DataFusion's batch answer over the same rows; the watermark
//! the least of the inputs'; `UNION` and `SELECT DISTINCT` as updating
//! results, and so are INTERSECT and EXCEPT; their ALL forms are refused
//! at their place.

mod common;

use std::path::Path;

use common::*;

fn rows() -> Vec<Row> {
    let mut g = Lcg(21);
    (0..5_000)
        .map(|i| Row { k: Some(format!("k{}", g.below(6))), v: Some(g.below(100) as i64), ts: Some(T0 + i * 3) })
        .collect()
}

fn job(dir: &Path, parallelism: usize, sink: &str, query: &str) -> String {
    format!(
        "SET 'parallelism.default' = '{parallelism}';
CREATE TABLE src (k VARCHAR, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
  WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'json', 'scan.watermark.emit.strategy' = 'on-event');
CREATE TABLE out ({sink}) WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'json');
INSERT INTO out {query};
",
        input = dir.join("in").display(),
        out = dir.join("out").display()
    )
}

/// DataFusion's answer over table `src` of `rows`, as `a|b|…` lines.
async fn oracle(rows: &[Row], query: &str) -> Vec<String> {
    let ctx = rows_table("src", rows);
    let mut lines = normalize_batches(&ctx.sql(query).await.unwrap().collect().await.unwrap());
    lines.sort();
    lines
}

/// Sink rows as `a|b|…` lines in the sink's column order.
fn committed(dir: &Path, columns: &[&str]) -> Vec<String> {
    let mut lines: Vec<String> = read_sink(&dir.join("out"))
        .iter()
        .map(|r| {
            columns
                .iter()
                .map(|c| match &r[*c] {
                    serde_json::Value::Null => "null".to_string(),
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect();
    lines.sort();
    lines
}

#[tokio::test]
async fn union_all_of_streams_equals_the_batch_answer() {
    let rows = rows();
    let cases = [
        (
            "k VARCHAR, v BIGINT",
            vec!["k", "v"],
            "SELECT k, v FROM src WHERE v < 5 UNION ALL SELECT upper(k), v + 1000 FROM src WHERE v > 94 \
             UNION ALL SELECT k, v FROM src WHERE v = 50",
        ),
    ];
    for (sink, columns, query) in cases {
        let want = oracle(&rows, query).await;
        assert!(want.len() >= 6, "too few rows to be a test: {}", want.len());
        for parallelism in [1, 2] {
            let dir = scratch();
            std::fs::create_dir_all(dir.path().join("in")).unwrap();
            write_json(&dir.path().join("in/part-0.json"), &rows);
            let run = weir_run(dir.path(), &job(dir.path(), parallelism, sink, query));
            assert!(run.ok, "{}", run.stderr);
            let got = committed(dir.path(), &columns);
            assert_rows_eq(&got, &want, &format!("{query} at parallelism {parallelism}"));
        }
    }
}

#[test]
fn intersect_all_and_except_all_are_refused_at_their_place() {
    let dir = scratch();
    for op in ["INTERSECT ALL", "EXCEPT ALL"] {
        let query = format!("SELECT k, v FROM src {op} SELECT k, v FROM src");
        let run = weir_run(dir.path(), &job(dir.path(), 1, "k VARCHAR, v BIGINT", &query));
        assert!(!run.ok, "{op} ran");
        assert!(
            run.stderr.contains(&format!("{op} of streams (UNION [ALL], INTERSECT and EXCEPT are supported)"))
                && run.stderr.contains("job.sql:5:"),
            "{op}: {}",
            run.stderr
        );
    }
}

/// `INTERSECT` and `EXCEPT` as Flink runs them on streams: updating
/// results that end in DataFusion's batch answer, NULLs equal to each
/// other, the column names the left side's; an EXCEPT row withdrawn when
/// the right side has it later.
#[tokio::test]
async fn intersect_and_except_end_in_the_batch_answer() {
    let rows: Vec<Row> = rows()
        .into_iter()
        .enumerate()
        .map(|(i, r)| Row { k: (i % 11 != 0).then(|| r.k.clone().unwrap()), ..r })
        .collect();
    for query in [
        "SELECT k, v / 10 AS b FROM src WHERE v < 60 INTERSECT SELECT k, v / 10 FROM src WHERE v > 30",
        "SELECT k, v / 10 AS b FROM src WHERE v < 60 EXCEPT SELECT k, v / 10 FROM src WHERE v > 30",
        // The right side's rows come after the left's: groups first seen
        // on the left are withdrawn.
        "SELECT k, v / 7 AS b FROM src WHERE ts < TIMESTAMP '2026-01-01 00:00:02' EXCEPT SELECT k, v / 7 FROM src WHERE ts > TIMESTAMP '2026-01-01 00:00:01' AND v < 50",
    ] {
        let want = oracle(&rows, query).await;
        assert!(want.len() >= 5, "{query}: too few rows to be a test: {}", want.len());
        for parallelism in [1, 3] {
            let dir = scratch();
            std::fs::create_dir_all(dir.path().join("in")).unwrap();
            write_json(&dir.path().join("in/part-0.json"), &rows);
            let sql = job(dir.path(), parallelism, "k VARCHAR, b BIGINT", query)
                .replace(&format!("'connector' = 'filesystem', 'path' = '{}', 'format' = 'json'", dir.path().join("out").display()), "'connector' = 'print'");
            let run = weir_run(dir.path(), &sql);
            assert!(run.ok, "{}", run.stderr);
            let (got, _) = apply_changelog(&run.stdout, 2);
            assert_rows_eq(&got, &want, &format!("{query} at parallelism {parallelism}"));
        }
    }
}

/// `SELECT DISTINCT` and `UNION` as Flink runs them: a GROUP BY of every
/// column, an updating result that emits each distinct row once (`+I`)
/// and never again, ending in DataFusion's batch answer.
#[tokio::test]
async fn distinct_and_union_emit_each_distinct_row_once() {
    let rows = rows();
    for query in [
        "SELECT DISTINCT k, v / 25 AS b FROM src",
        "SELECT k, v / 25 AS b FROM src WHERE v < 10 UNION SELECT k, v / 25 AS b FROM src WHERE v > 90",
    ] {
        let want = oracle(&rows, query).await;
        assert!(want.len() >= 10, "too few rows to be a test: {}", want.len());
        for parallelism in [1, 2] {
            let dir = scratch();
            std::fs::create_dir_all(dir.path().join("in")).unwrap();
            write_json(&dir.path().join("in/part-0.json"), &rows);
            let sql = job(dir.path(), parallelism, "k VARCHAR, b BIGINT", query)
                .replace(&format!("'connector' = 'filesystem', 'path' = '{}', 'format' = 'json'", dir.path().join("out").display()), "'connector' = 'print'");
            let run = weir_run(dir.path(), &sql);
            assert!(run.ok, "{}", run.stderr);
            let (got, kinds) = apply_changelog(&run.stdout, 2);
            assert_rows_eq(&got, &want, &format!("{query} at parallelism {parallelism}"));
            assert_eq!(kinds.get("+I"), Some(&want.len()), "{query}: only first sightings are emitted: {kinds:?}");
        }
    }
}
