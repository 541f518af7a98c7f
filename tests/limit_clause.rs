//! `LIMIT n [OFFSET m]` on a stream, as Flink runs it: the first rows to
//! arrive, once each, append-only; after `ORDER BY` the time attribute,
//! the earliest rows by time. Checked against the input rows: which rows
//! may pass, how many, and (sorted) exactly which.

use crate::common;

use common::*;

/// 3 000 rows in ten files, times out of order within the watermark delay.
fn rows() -> Vec<Row> {
    let mut g = Lcg(33);
    (0..3000)
        .map(|i| Row {
            k: Some(format!("k{}", g.below(5))),
            v: Some(i),
            ts: Some(T0 + i * 10 - g.below(500) as i64),
        })
        .collect()
}

fn run(parallelism: usize, query: &str) -> Vec<(i64, i64)> {
    let dir = scratch();
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    for (i, part) in rows().chunks(300).enumerate() {
        write_json(&dir.path().join(format!("in/part-{i:02}.json")), part);
    }
    let sql = format!(
        "SET 'parallelism.default' = '{parallelism}';
CREATE TABLE src (k VARCHAR, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
  WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'json');
CREATE TABLE out (v BIGINT, ts TIMESTAMP(3)) WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'json');
INSERT INTO out {query};",
        input = dir.path().join("in").display(),
        out = dir.path().join("out").display()
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    read_sink(&dir.path().join("out"))
        .iter()
        .map(|r| {
            (
                r["v"].as_i64().expect("v"),
                parse_timestamp(r["ts"].as_str().expect("ts")),
            )
        })
        .collect()
}

#[test]
fn limit_passes_that_many_input_rows_once() {
    let input: std::collections::BTreeMap<i64, i64> = rows().iter().map(|r| (r.v.unwrap(), r.ts.unwrap())).collect();
    for (parallelism, query, n) in [
        (1, "SELECT v, ts FROM src LIMIT 25", 25),
        (2, "SELECT v, ts FROM src WHERE v % 2 = 0 LIMIT 40 OFFSET 10", 40),
        (2, "SELECT v, ts FROM src LIMIT 5000", 3000),
    ] {
        let got = run(parallelism, query);
        assert_eq!(got.len(), n, "{query}");
        let distinct: std::collections::BTreeSet<i64> = got.iter().map(|(v, _)| *v).collect();
        assert_eq!(distinct.len(), n, "{query}: a row passed twice");
        assert!(
            got.iter().all(|(v, ts)| input.get(v) == Some(ts)),
            "{query}: a row that is not the input's"
        );
        if query.contains("% 2") {
            assert!(got.iter().all(|(v, _)| v % 2 == 0), "{query}: the filter");
        }
    }
    // At parallelism 1 the first rows to arrive are the first file's.
    let mut first: Vec<i64> = run(1, "SELECT v, ts FROM src LIMIT 25")
        .iter()
        .map(|(v, _)| *v)
        .collect();
    first.sort();
    assert_eq!(first, (0..25).collect::<Vec<_>>());
}

#[test]
fn order_by_time_then_limit_passes_the_earliest_rows() {
    let mut by_time: Vec<(i64, i64)> = rows().iter().map(|r| (r.ts.unwrap(), r.v.unwrap())).collect();
    by_time.sort();
    let want: Vec<(i64, i64)> = by_time.iter().take(30).map(|(ts, v)| (*v, *ts)).collect();
    let got = run(2, "SELECT v, ts FROM src ORDER BY ts LIMIT 30");
    let (mut got_sorted, mut want_sorted) = (got.clone(), want.clone());
    got_sorted.sort();
    want_sorted.sort();
    assert_eq!(got_sorted, want_sorted);
}

#[test]
fn limit_over_an_updating_result_is_refused() {
    let dir = scratch();
    let run = weir_run(
        dir.path(),
        "CREATE TABLE src (k VARCHAR, v BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
SELECT k, count(*) FROM src GROUP BY k LIMIT 3;",
    );
    assert!(!run.ok);
    assert!(
        run.stderr
            .contains("LIMIT over the results of a GROUP BY without a window (or another updating result"),
        "{}",
        run.stderr
    );
}
