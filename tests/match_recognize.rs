//! MATCH_RECOGNIZE end to end through the `weir` binary: patterns over
//! disordered input at parallelism 1 and 4, against a direct scan of each
//! key's rows in time order (the oracle here); Flink's documented Ticker
//! examples with their documented results; refusals with their reasons.
//! Matches leave once the watermark passes their rows, into files, so
//! every job also runs killed and restored.

use crate::common;

use std::collections::BTreeMap;

use common::*;

/// 3 000 rows over 40 keys, values and times unique, disordered by under
/// a second (the watermark is 2 s behind: no row is late).
fn rows() -> Vec<Row> {
    disordered_rows(71, 3000, 40)
}

/// Each key's `(ts, v)` in time order.
fn by_key(rows: &[Row]) -> BTreeMap<String, Vec<(i64, i64)>> {
    let mut keys: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for r in rows {
        if let (Some(k), Some(v), Some(ts)) = (&r.k, r.v, r.ts) {
            keys.entry(k.clone()).or_default().push((ts, v));
        }
    }
    for rows in keys.values_mut() {
        rows.sort();
    }
    keys
}

/// V-shapes found scanning each key from its start: a row, a drop of one
/// row or more (as many as there are: greedy), then a rise; the next
/// match starts after it. `(k, start_ts, bottom, end_ts, drops)` lines.
fn v_shapes(rows: &[Row]) -> Vec<String> {
    let mut out = Vec::new();
    for (k, rows) in by_key(rows) {
        let mut s = 0;
        while s + 2 < rows.len() {
            let mut e = s + 1;
            while e < rows.len() && rows[e].1 < rows[e - 1].1 {
                e += 1;
            }
            if e > s + 1 && e < rows.len() && rows[e].1 > rows[e - 1].1 {
                out.push(format!(
                    "{k}|{}|{}|{}|{}",
                    rows[s].0,
                    rows[e - 1].1,
                    rows[e].0,
                    e - s - 1
                ));
                s = e + 1;
            } else {
                s += 1;
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn v_shaped_values_are_the_scans_matches() {
    let rows = rows();
    let expected = v_shapes(&rows);
    assert!(expected.len() > 100, "the data has V-shapes: {}", expected.len());
    for parallelism in [1, 4] {
        let (dir, run) = run_kvt(
            &rows,
            parallelism,
            "k VARCHAR, start_ts TIMESTAMP(3), bottom BIGINT, end_ts TIMESTAMP(3), drops BIGINT",
            "files",
            "SELECT * FROM t MATCH_RECOGNIZE (
               PARTITION BY k ORDER BY ts
               MEASURES A.ts AS start_ts, LAST(B.v) AS bottom, C.ts AS end_ts, COUNT(B.v) AS drops
               ONE ROW PER MATCH
               AFTER MATCH SKIP PAST LAST ROW
               PATTERN (A B+ C)
               DEFINE B AS B.v < PREV(B.v), C AS C.v > PREV(C.v)
             ) AS m",
        );
        assert_rows_eq(
            &committed_lines(dir.path(), &["k", "start_ts", "bottom", "end_ts", "drops"]),
            &expected,
            &format!("V-shapes at parallelism {parallelism}"),
        );
        assert_eq!(run.counted("late rows"), 0);
    }
}

/// Three rows in a row of one key with increasing values, the third less
/// than `within` ms after the first; every row may start one (SKIP TO
/// NEXT ROW). `(k, first_ts, last_ts, sum)` lines.
fn rising_triples(rows: &[Row], within: i64) -> Vec<String> {
    let mut out = Vec::new();
    for (k, rows) in by_key(rows) {
        for w in rows.windows(3) {
            if w[0].1 < w[1].1 && w[1].1 < w[2].1 && w[2].0 - w[0].0 < within {
                out.push(format!("{k}|{}|{}|{}", w[0].0, w[2].0, w[0].1 + w[1].1 + w[2].1));
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn rising_triples_within_an_interval_are_the_scans_matches() {
    let rows = rows();
    let expected = rising_triples(&rows, 1000);
    let all = rising_triples(&rows, i64::MAX);
    assert!(
        expected.len() > 50 && expected.len() < all.len(),
        "WITHIN drops some: {} of {}",
        expected.len(),
        all.len()
    );
    for parallelism in [1, 4] {
        let (dir, _run) = run_kvt(
            &rows,
            parallelism,
            "k VARCHAR, first_ts TIMESTAMP(3), last_ts TIMESTAMP(3), total BIGINT",
            "files",
            "SELECT k, first_ts, last_ts, total FROM t MATCH_RECOGNIZE (
               PARTITION BY k ORDER BY ts
               MEASURES FIRST(X.ts) AS first_ts, MATCH_ROWTIME() AS last_ts, SUM(X.v) AS total
               AFTER MATCH SKIP TO NEXT ROW
               PATTERN (X{3}) WITHIN INTERVAL '1' SECOND
               DEFINE X AS LAST(X.v, 1) IS NULL OR X.v > LAST(X.v, 1)
             )",
        );
        assert_rows_eq(
            &committed_lines(dir.path(), &["k", "first_ts", "last_ts", "total"]),
            &expected,
            &format!("rising triples at parallelism {parallelism}"),
        );
    }
}

/// Flink's Ticker table (docs: Pattern Recognition), as JSON lines.
fn ticker(dir: &std::path::Path, prices: &[i64]) {
    std::fs::create_dir_all(dir.join("in")).expect("input dir");
    let lines: String = prices
        .iter()
        .enumerate()
        .map(|(i, p)| {
            format!("{{\"symbol\": \"ACME\", \"rowtime\": \"2011-04-01 10:00:{i:02}\", \"price\": {p}, \"tax\": 1}}\n")
        })
        .collect();
    std::fs::write(dir.join("in").join("ticker.json"), lines).expect("write input");
}

fn ticker_job(dir: &std::path::Path, sink: &str, query: &str) -> String {
    format!(
        "CREATE TABLE Ticker (symbol STRING, price BIGINT, tax BIGINT, rowtime TIMESTAMP(3),
           WATERMARK FOR rowtime AS rowtime - INTERVAL '1' SECOND)
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json', 'scan.watermark.emit.strategy' = 'on-event');
         CREATE TABLE out ({sink}) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
         INSERT INTO out {query};",
        dir.join("in").display(),
        dir.join("out").display()
    )
}

fn at(second: i64) -> String {
    parse_timestamp(&format!("2011-04-01 10:00:{second:02}")).to_string()
}

#[test]
fn flinks_ticker_example_finds_its_documented_period_of_falling_prices() {
    let dir = scratch();
    ticker(dir.path(), &[12, 17, 19, 21, 25, 18, 15, 14, 24, 25, 19]);
    let run = weir_run(
        dir.path(),
        &ticker_job(
            dir.path(),
            "symbol STRING, start_tstamp TIMESTAMP(3), bottom_tstamp TIMESTAMP(3), end_tstamp TIMESTAMP(3), avg_down BIGINT",
            "SELECT * FROM Ticker
             MATCH_RECOGNIZE (
               PARTITION BY symbol
               ORDER BY rowtime
               MEASURES
                 START_ROW.rowtime AS start_tstamp,
                 LAST(PRICE_DOWN.rowtime) AS bottom_tstamp,
                 LAST(PRICE_UP.rowtime) AS end_tstamp,
                 AVG(PRICE_DOWN.price) AS avg_down
               ONE ROW PER MATCH
               AFTER MATCH SKIP TO LAST PRICE_UP
               PATTERN (START_ROW PRICE_DOWN+ PRICE_UP) WITHIN INTERVAL '1' HOUR
               DEFINE
                 PRICE_DOWN AS (LAST(PRICE_DOWN.price, 1) IS NULL AND PRICE_DOWN.price < START_ROW.price) OR
                   PRICE_DOWN.price < LAST(PRICE_DOWN.price, 1),
                 PRICE_UP AS PRICE_UP.price > LAST(PRICE_DOWN.price, 1)
             ) MR",
        ),
    );
    assert!(run.ok, "weir failed:\n{}", run.stderr);
    // 18, 15 and 14 fell: their average, as an integer (AVG of a BIGINT).
    assert_eq!(
        committed_lines(
            dir.path(),
            &["symbol", "start_tstamp", "bottom_tstamp", "end_tstamp", "avg_down"]
        ),
        vec![format!("ACME|{}|{}|{}|15", at(4), at(7), at(8))]
    );
}

#[test]
fn flinks_aggregation_example_finds_its_documented_periods() {
    let dir = scratch();
    ticker(dir.path(), &[12, 17, 13, 16, 25, 2, 4, 10, 15, 25, 25, 30]);
    let run = weir_run(
        dir.path(),
        &ticker_job(
            dir.path(),
            "symbol STRING, start_tstamp TIMESTAMP(3), end_tstamp TIMESTAMP(3), avgPrice DOUBLE",
            "SELECT * FROM Ticker
             MATCH_RECOGNIZE (
               PARTITION BY symbol
               ORDER BY rowtime
               MEASURES
                 FIRST(A.rowtime) AS start_tstamp,
                 LAST(A.rowtime) AS end_tstamp,
                 AVG(CAST(A.price AS DOUBLE)) AS avgPrice
               ONE ROW PER MATCH
               AFTER MATCH SKIP PAST LAST ROW
               PATTERN (A+ B)
               DEFINE
                 A AS AVG(A.price) < 15
             ) MR",
        ),
    );
    assert!(run.ok, "weir failed:\n{}", run.stderr);
    assert_eq!(
        committed_lines(dir.path(), &["symbol", "start_tstamp", "end_tstamp", "avgPrice"]),
        vec![
            format!("ACME|{}|{}|14.5", at(0), at(3)),
            format!("ACME|{}|{}|13.5", at(5), at(10))
        ]
    );
}

/// A refused query's error, from `weir run`.
fn refusal(query: &str) -> String {
    let dir = scratch();
    ticker(dir.path(), &[1, 2, 3]);
    let run = run_once(dir.path(), &ticker_job(dir.path(), "symbol STRING, n BIGINT", query));
    assert!(!run.ok, "planned: {query}");
    run.stderr
}

#[test]
fn clauses_flink_refuses_are_refused_with_their_reasons() {
    let not_time = refusal(
        "SELECT * FROM Ticker MATCH_RECOGNIZE (PARTITION BY symbol ORDER BY price
           MEASURES A.price AS n PATTERN (A B) DEFINE B AS B.price > A.price)",
    );
    assert!(
        not_time.contains("MATCH_RECOGNIZE ORDER BY price (not a time attribute)")
            && not_time.contains("ORDER BY must start with its rowtime 'rowtime' ascending"),
        "{not_time}"
    );
    let undefined = refusal(
        "SELECT * FROM Ticker MATCH_RECOGNIZE (PARTITION BY symbol ORDER BY rowtime
           MEASURES C.price AS n PATTERN (A B) DEFINE B AS B.price > A.price)",
    );
    assert!(
        undefined.contains("'C' is not a pattern variable: the PATTERN has A, B"),
        "{undefined}"
    );
    let all_rows = refusal(
        "SELECT * FROM Ticker MATCH_RECOGNIZE (PARTITION BY symbol ORDER BY rowtime
           MEASURES A.price AS n ALL ROWS PER MATCH PATTERN (A B) DEFINE B AS B.price > A.price)",
    );
    assert!(all_rows.contains("ALL ROWS PER MATCH is not supported"), "{all_rows}");
    let greedy_end = refusal(
        "SELECT * FROM Ticker MATCH_RECOGNIZE (PARTITION BY symbol ORDER BY rowtime
           MEASURES A.price AS n PATTERN (A B*) DEFINE B AS B.price > A.price)",
    );
    assert!(
        greedy_end.contains("a greedy quantifier on the last variable"),
        "{greedy_end}"
    );
    let empty = refusal(
        "SELECT * FROM Ticker MATCH_RECOGNIZE (PARTITION BY symbol ORDER BY rowtime
           MEASURES A.price AS n PATTERN (A*?) DEFINE A AS A.price > 0)",
    );
    assert!(empty.contains("can match no rows"), "{empty}");
}

/// Rows behind the watermark when they arrive are counted and left out:
/// the matches are those of the other rows.
#[test]
fn late_rows_are_counted_left_out_and_sent_to_late_data_into() {
    // One key, a row a second, values going down and up; every tenth row
    // is followed by one 5 s older (the watermark is 2 s behind).
    let mut rows = Vec::new();
    let mut on_time = Vec::new();
    for i in 0..90i64 {
        let row = Row {
            k: Some("a".into()),
            v: Some((i * 37) % 11),
            ts: Some(T0 + i * 1000),
        };
        on_time.push(row.clone());
        rows.push(row);
        if i % 10 == 9 {
            rows.push(Row {
                k: Some("a".into()),
                v: Some(100),
                ts: Some(T0 + i * 1000 - 5000),
            });
        }
    }
    let dir = scratch();
    std::fs::create_dir_all(dir.path().join("in")).expect("input dir");
    write_json(&dir.path().join("in").join("part-000.json"), &rows);
    let late = dir.path().join("late");
    let sql = kvt_job(
        dir.path(),
        1,
        "k VARCHAR, start_ts TIMESTAMP(3), bottom BIGINT, end_ts TIMESTAMP(3), drops BIGINT",
        "files",
        "SELECT * FROM t MATCH_RECOGNIZE (
           PARTITION BY k ORDER BY ts
           MEASURES A.ts AS start_ts, LAST(B.v) AS bottom, C.ts AS end_ts, COUNT(*) - 2 AS drops
           PATTERN (A B+ C)
           DEFINE B AS B.v < PREV(B.v), C AS C.v > PREV(C.v)
         ) LATE DATA INTO late_rows",
    )
    .replace(
        "INSERT INTO out",
        &format!(
            "CREATE TABLE late_rows (v BIGINT, reason VARCHAR) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');\nINSERT INTO out",
            late.display()
        ),
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "weir failed:\n{}", run.stderr);
    assert_eq!(run.counted("late rows"), 9);
    let side: Vec<String> = read_sink(&late)
        .iter()
        .map(|r| format!("{}|{}", r["v"], r["reason"]))
        .collect();
    assert_eq!(side, vec!["100|\"late\""; 9], "the late rows in LATE DATA INTO's table");
    assert_rows_eq(
        &committed_lines(dir.path(), &["k", "start_ts", "bottom", "end_ts", "drops"]),
        &v_shapes(&on_time),
        "V-shapes without the late rows",
    );
}

/// MATCH_ROWTIME() is the matches' rowtime: a window TVF over a view of
/// them counts each match in the window of its last row.
#[test]
fn matches_are_windowed_by_their_match_rowtime() {
    let rows = rows();
    let mut expected: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for (_, rows) in by_key(&rows) {
        for w in rows.windows(2) {
            if w[1].1 > w[0].1 {
                let e = expected.entry(w[1].0 - w[1].0.rem_euclid(1000)).or_default();
                e.0 += 1;
                e.1 += w[0].1;
            }
        }
    }
    let expected: Vec<String> = expected.iter().map(|(w, (n, s))| format!("{w}|{n}|{s}")).collect();
    let dir = scratch();
    write_input_files(dir.path(), &rows);
    let job = kvt_job(
        dir.path(),
        4,
        "w TIMESTAMP(3), n BIGINT, s BIGINT",
        "files",
        "SELECT window_start, COUNT(*), SUM(p) FROM TABLE(TUMBLE(TABLE rises, DESCRIPTOR(mt), INTERVAL '1' SECOND))
         GROUP BY window_start, window_end",
    )
    .replace(
        "INSERT INTO",
        "CREATE VIEW rises AS SELECT * FROM t MATCH_RECOGNIZE (PARTITION BY k ORDER BY ts
           MEASURES MATCH_ROWTIME() AS mt, A.v AS p AFTER MATCH SKIP TO NEXT ROW
           PATTERN (A B) DEFINE B AS B.v > A.v);
         INSERT INTO",
    );
    let run = weir_run(dir.path(), &job);
    assert!(run.ok, "weir failed:\n{}", run.stderr);
    assert_eq!(run.counted("late rows"), 0);
    assert_rows_eq(
        &committed_lines(dir.path(), &["w", "n", "s"]),
        &expected,
        "rises per second",
    );
}
