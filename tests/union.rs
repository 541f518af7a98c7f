//! `UNION ALL` of streams, as in Flink: every input's rows, once each,
//! equal to DataFusion's batch answer over the same rows; the watermark
//! the least of the inputs'; `UNION` and `SELECT DISTINCT` as updating
//! results, and so are INTERSECT and EXCEPT and their ALL forms.

use crate::common;

use std::path::Path;

use common::*;

fn rows() -> Vec<Row> {
    let mut g = Lcg(21);
    (0..5_000)
        .map(|i| Row {
            k: Some(format!("k{}", g.below(6))),
            v: Some(g.below(100) as i64),
            ts: Some(T0 + i * 3),
        })
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
    let cases = [(
        "k VARCHAR, v BIGINT",
        vec!["k", "v"],
        "SELECT k, v FROM src WHERE v < 5 UNION ALL SELECT upper(k), v + 1000 FROM src WHERE v > 94 \
             UNION ALL SELECT k, v FROM src WHERE v = 50",
    )];
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

/// `INTERSECT ALL` and `EXCEPT ALL` as Flink runs them on streams:
/// updating results whose rows, applied as a multiset, end in the rows of
/// the left side each as many times as the fewer of the two sides has it
/// (INTERSECT ALL) or as the left side has it more than the right (EXCEPT
/// ALL), NULLs equal to each other: counted here row by row (DataFusion's
/// batch ALL forms do not keep those counts).
#[test]
fn intersect_all_and_except_all_end_in_the_multiset_answer() {
    let rows: Vec<Row> = rows()
        .into_iter()
        .enumerate()
        .map(|(i, r)| Row {
            k: (i % 11 != 0).then(|| r.k.clone().unwrap()),
            ..r
        })
        .collect();
    let side = |keep: &dyn Fn(i64) -> bool| {
        let mut counts: std::collections::BTreeMap<String, i64> = Default::default();
        for r in rows.iter().filter(|r| keep(r.v.unwrap())) {
            *counts
                .entry(format!("{}|{}", r.k.as_deref().unwrap_or("null"), r.v.unwrap() / 10))
                .or_default() += 1;
        }
        counts
    };
    let (left, right) = (side(&|v| v < 60), side(&|v| v > 30));
    for (op, copies) in [
        (
            "INTERSECT ALL",
            (&|l: i64, r: i64| l.min(r)) as &dyn Fn(i64, i64) -> i64,
        ),
        ("EXCEPT ALL", &|l: i64, r: i64| (l - r).max(0)),
    ] {
        let want: Vec<String> = left
            .iter()
            .flat_map(|(row, l)| std::iter::repeat_n(row.clone(), copies(*l, *right.get(row).unwrap_or(&0)) as usize))
            .collect();
        assert!(want.len() >= 100, "{op}: too few rows to be a test: {}", want.len());
        let query = format!("SELECT k, v / 10 AS b FROM src WHERE v < 60 {op} SELECT k, v / 10 FROM src WHERE v > 30");
        for parallelism in [1, 3] {
            let dir = scratch();
            std::fs::create_dir_all(dir.path().join("in")).unwrap();
            // Ten files, read one after another: counts change between them.
            for (i, part) in rows.chunks(500).enumerate() {
                write_json(&dir.path().join(format!("in/part-{i}.json")), part);
            }
            let sql = job(dir.path(), parallelism, "k VARCHAR, b BIGINT", &query).replace(
                &format!(
                    "'connector' = 'filesystem', 'path' = '{}', 'format' = 'json'",
                    dir.path().join("out").display()
                ),
                "'connector' = 'print'",
            );
            let run = weir_run(dir.path(), &sql);
            assert!(run.ok, "{}", run.stderr);
            let (mut got, kinds) = apply_multiset_changelog(&run.stdout);
            got.sort();
            let mut want = want.clone();
            want.sort();
            assert_rows_eq(&got, &want, &format!("{query} at parallelism {parallelism}"));
            assert!(
                kinds.contains_key("-U"),
                "{op}: counts that change withdraw copies: {kinds:?}"
            );
        }
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
        .map(|(i, r)| Row {
            k: (i % 11 != 0).then(|| r.k.clone().unwrap()),
            ..r
        })
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
            let sql = job(dir.path(), parallelism, "k VARCHAR, b BIGINT", query).replace(
                &format!(
                    "'connector' = 'filesystem', 'path' = '{}', 'format' = 'json'",
                    dir.path().join("out").display()
                ),
                "'connector' = 'print'",
            );
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
            let sql = job(dir.path(), parallelism, "k VARCHAR, b BIGINT", query).replace(
                &format!(
                    "'connector' = 'filesystem', 'path' = '{}', 'format' = 'json'",
                    dir.path().join("out").display()
                ),
                "'connector' = 'print'",
            );
            let run = weir_run(dir.path(), &sql);
            assert!(run.ok, "{}", run.stderr);
            let (got, kinds) = apply_changelog(&run.stdout, 2);
            assert_rows_eq(&got, &want, &format!("{query} at parallelism {parallelism}"));
            assert_eq!(
                kinds.get("+I"),
                Some(&want.len()),
                "{query}: only first sightings are emitted: {kinds:?}"
            );
        }
    }
}
