//! Joins of two streams end to end: the `weir` binary reads two JSON files,
//! joins them (window joins of every join type, interval joins) and writes
//! JSON part files; the rows must equal DataFusion running the same join as
//! a batch query over the same rows (with the windows computed here), with
//! both inputs out of order within the watermark delay. Every run also goes
//! through a kill and restore midway (`common::restored`), so join state is
//! checkpointed and restored too.

use crate::common;

use std::sync::Arc;

use common::*;
use datafusion::arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

const DELAY: i64 = 2_000;

/// Rows every ~200 ms over `n` rows, keys `k{first}`..`k{first + keys - 1}`,
/// moved back by less than the watermark delay (out of order, never late).
pub(crate) fn side_rows(n: usize, first: u64, keys: u64, seed: u64) -> Vec<Row> {
    let mut g = Lcg(seed);
    let mut ts = T0;
    let mut rows: Vec<(i64, Row)> = (0..n)
        .map(|_| {
            ts += g.below(400) as i64;
            let row = Row {
                k: Some(format!("k{}", first + g.below(keys))),
                v: Some(g.below(100) as i64),
                ts: Some(ts),
            };
            (ts + g.below((DELAY / 2) as u64) as i64, row)
        })
        .collect();
    rows.sort_by_key(|(at, _)| *at);
    rows.into_iter().map(|(_, r)| r).collect()
}

pub(crate) fn tables(dir: &std::path::Path, out_columns: &str) -> String {
    let table = |name: &str| {
        format!(
            "CREATE TABLE {name} (k VARCHAR, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json', 'scan.watermark.emit.strategy' = 'on-event');\n",
            dir.join(name).display()
        )
    };
    format!(
        "{}{}CREATE TABLE out ({out_columns}) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');\n",
        table("l"),
        table("r"),
        dir.join("out").display()
    )
}

/// Runs `sql` over `left` and `right` (written to `l/` and `r/`); returns
/// the output rows as lines of `columns`.
pub(crate) fn run_join(left: &[Row], right: &[Row], sql: &str, columns: &[&str]) -> (Vec<String>, Run) {
    let dir = scratch();
    for (name, rows) in [("l", left), ("r", right)] {
        std::fs::create_dir_all(dir.path().join(name)).unwrap();
        write_json(&dir.path().join(name).join("part-0.json"), rows);
    }
    let run = weir_run(dir.path(), &sql.replace("DIR", &dir.path().display().to_string()));
    assert!(run.ok, "weir failed:\n{}", run.stderr);
    (output_lines(dir.path(), columns), run)
}

/// The rows committed to `dir`/out as lines of `columns` (timestamps as
/// epoch milliseconds), sorted.
pub(crate) fn output_lines(dir: &std::path::Path, columns: &[&str]) -> Vec<String> {
    let mut got: Vec<String> = read_sink(&dir.join("out"))
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|c| match row.get(*c).unwrap_or(&serde_json::Value::Null) {
                    serde_json::Value::Null => "null".to_string(),
                    serde_json::Value::String(s) if c.ends_with("ts") || c.starts_with('w') => {
                        parse_timestamp(s).to_string()
                    }
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect();
    got.sort();
    got
}

/// The windows `[start, end)` of a row at `ts`: TUMBLE of `size` or HOP of
/// `slide`/`size`.
fn windows_of(ts: i64, slide: i64, size: i64) -> Vec<(i64, i64)> {
    let last = ts - ts.rem_euclid(slide);
    let mut out = Vec::new();
    let mut start = last;
    while start > ts - size {
        out.push((start, start + size));
        start -= slide;
    }
    out
}

/// A table of the oracle: the rows, with their windows when `windows` is
/// given (one row per window, as the window TVF gives).
fn oracle_table(rows: &[Row], windows: Option<(i64, i64)>) -> MemTable {
    let ts_type = DataType::Timestamp(TimeUnit::Millisecond, None);
    let mut fields = vec![
        Field::new("k", DataType::Utf8, true),
        Field::new("v", DataType::Int64, true),
        Field::new("ts", ts_type.clone(), true),
    ];
    let mut expanded: Vec<(&Row, Option<(i64, i64)>)> = Vec::new();
    for r in rows {
        match windows {
            Some((slide, size)) => {
                expanded.extend(windows_of(r.ts.unwrap(), slide, size).into_iter().map(|w| (r, Some(w))))
            }
            None => expanded.push((r, None)),
        }
    }
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(
            expanded.iter().map(|(r, _)| r.k.clone()).collect::<Vec<_>>(),
        )),
        Arc::new(Int64Array::from(expanded.iter().map(|(r, _)| r.v).collect::<Vec<_>>())),
        Arc::new(TimestampMillisecondArray::from(
            expanded.iter().map(|(r, _)| r.ts).collect::<Vec<_>>(),
        )),
    ];
    if windows.is_some() {
        fields.push(Field::new("window_start", ts_type.clone(), false));
        fields.push(Field::new("window_end", ts_type, false));
        columns.push(Arc::new(TimestampMillisecondArray::from(
            expanded.iter().map(|(_, w)| w.unwrap().0).collect::<Vec<_>>(),
        )));
        columns.push(Arc::new(TimestampMillisecondArray::from(
            expanded.iter().map(|(_, w)| w.unwrap().1).collect::<Vec<_>>(),
        )));
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    MemTable::try_new(schema, vec![vec![batch]]).unwrap()
}

/// DataFusion's answer to `query` over tables `l`, `r` and, with
/// `windows`, `lw`, `rw` (the rows with their windows), as lines
/// (timestamps in epoch milliseconds).
pub(crate) async fn oracle(left: &[Row], right: &[Row], windows: Option<(i64, i64)>, query: &str) -> Vec<String> {
    let ctx = SessionContext::new();
    ctx.register_table("l", Arc::new(oracle_table(left, None))).unwrap();
    ctx.register_table("r", Arc::new(oracle_table(right, None))).unwrap();
    if windows.is_some() {
        ctx.register_table("lw", Arc::new(oracle_table(left, windows))).unwrap();
        ctx.register_table("rw", Arc::new(oracle_table(right, windows)))
            .unwrap();
    }
    let batches = ctx.sql(query).await.unwrap().collect().await.unwrap();
    let mut lines = Vec::new();
    for b in &batches {
        let columns: Vec<ArrayRef> = b
            .columns()
            .iter()
            .map(|c| match c.data_type() {
                DataType::Timestamp(..) => cast(c, &DataType::Int64).unwrap(),
                _ => Arc::clone(c),
            })
            .collect();
        for row in 0..b.num_rows() {
            let cells: Vec<String> = columns
                .iter()
                .map(|c| {
                    if c.is_null(row) {
                        "null".to_string()
                    } else if let Some(s) = c.as_any().downcast_ref::<StringArray>() {
                        s.value(row).to_string()
                    } else {
                        c.as_any().downcast_ref::<Int64Array>().unwrap().value(row).to_string()
                    }
                })
                .collect();
            lines.push(cells.join("|"));
        }
    }
    lines.sort();
    lines
}

const WINDOW_OUT: &str = "lk VARCHAR, lv BIGINT, lts TIMESTAMP(3), rk VARCHAR, rv BIGINT, rts TIMESTAMP(3), ws TIMESTAMP(3), we TIMESTAMP(3)";
const WINDOW_COLUMNS: [&str; 8] = ["lk", "lv", "lts", "rk", "rv", "rts", "ws", "we"];
const SELECT_WINDOW: &str = "SELECT L.k, L.v, L.ts, R.k, R.v, R.ts, COALESCE(L.window_start, R.window_start), COALESCE(L.window_end, R.window_end)";

/// A window join of each type over TUMBLE (and an inner one over HOP)
/// equals the batch join of the rows' windows; keys k0–k5 on the left and
/// k3–k8 on the right leave rows without a partner on both sides.
#[tokio::test]
async fn window_joins_of_every_type_equal_the_batch_join() {
    let left = side_rows(900, 0, 6, 1);
    let right = side_rows(900, 3, 6, 2);
    let cases = [
        ("JOIN", "TUMBLE", (10_000, 10_000)),
        ("LEFT JOIN", "TUMBLE", (10_000, 10_000)),
        ("RIGHT JOIN", "TUMBLE", (10_000, 10_000)),
        ("FULL JOIN", "TUMBLE", (10_000, 10_000)),
        ("JOIN", "HOP", (5_000, 15_000)),
    ];
    for (join, tvf, (slide, size)) in cases {
        let args = if tvf == "TUMBLE" {
            format!("INTERVAL '{}' SECOND", size / 1000)
        } else {
            format!("INTERVAL '{}' SECOND, INTERVAL '{}' SECOND", slide / 1000, size / 1000)
        };
        let on = "ON L.k = R.k AND L.window_start = R.window_start AND L.window_end = R.window_end";
        let sql = format!(
            "{}SET 'parallelism.default' = '2';
INSERT INTO out {SELECT_WINDOW}
FROM (SELECT * FROM TABLE({tvf}(TABLE l, DESCRIPTOR(ts), {args}))) L
{join} (SELECT * FROM TABLE({tvf}(TABLE r, DESCRIPTOR(ts), {args}))) R
{on};",
            tables(std::path::Path::new("DIR"), WINDOW_OUT)
        );
        let want = oracle(
            &left,
            &right,
            Some((slide, size)),
            &format!("{SELECT_WINDOW} FROM lw L {join} rw R {on}"),
        )
        .await;
        let (got, run) = run_join(&left, &right, &sql, &WINDOW_COLUMNS);
        assert!(
            want.len() > 1_000,
            "{join} {tvf}: too few rows to be a test: {}",
            want.len()
        );
        assert_rows_eq(&got, &want, &format!("{join} over {tvf}"));
        assert_eq!(run.counted("late rows"), 0, "{join} {tvf}");
        if join != "JOIN" {
            assert!(
                want.iter().any(|r| r.contains("null")),
                "{join}: the test must have rows without a partner"
            );
        }
    }
}

/// Flink's window semi and anti joins, written as `IN` / `EXISTS` /
/// `NOT EXISTS` subqueries correlated on the window: the left rows of each
/// window that have (or lack) a partner in the same window, once each,
/// equal DataFusion's answer to the same subqueries over the rows' windows.
#[tokio::test]
async fn window_semi_and_anti_joins_equal_the_batch_answer() {
    let left = side_rows(900, 0, 6, 5);
    let right = side_rows(300, 3, 6, 6);
    let same_window = "L.window_start = R.window_start AND L.window_end = R.window_end";
    let tumble = |t: &str| format!("TABLE(TUMBLE(TABLE {t}, DESCRIPTOR(ts), INTERVAL '10' SECOND))");
    for condition in [
        format!("L.k IN (SELECT R.k FROM {{R}} R WHERE {same_window})"),
        format!("EXISTS (SELECT * FROM {{R}} R WHERE L.k = R.k AND {same_window})"),
        format!("NOT EXISTS (SELECT * FROM {{R}} R WHERE L.k = R.k AND {same_window})"),
    ] {
        let select = "SELECT L.k, L.v, L.ts, L.window_start, L.window_end FROM {L} L WHERE ";
        let sql = format!(
            "{}SET 'parallelism.default' = '2';\nINSERT INTO out {}{};",
            tables(
                std::path::Path::new("DIR"),
                "k VARCHAR, v BIGINT, ts TIMESTAMP(3), ws TIMESTAMP(3), we TIMESTAMP(3)"
            ),
            select.replace("{L}", &tumble("l")),
            condition.replace("{R}", &tumble("r"))
        );
        let query = format!("{}{}", select.replace("{L}", "lw"), condition.replace("{R}", "rw"));
        let want = oracle(&left, &right, Some((10_000, 10_000)), &query).await;
        let (got, run) = run_join(&left, &right, &sql, &["k", "v", "ts", "ws", "we"]);
        assert!(
            want.len() > 100 && want.len() < left.len(),
            "{condition}: not a test: {} rows",
            want.len()
        );
        assert_rows_eq(&got, &want, &condition);
        assert_eq!(run.counted("late rows"), 0, "{condition}");
    }
}

/// Flink's window anti join written as `NOT IN` (its documentation's
/// form), with NULL keys on both sides: a NULL among a window's right
/// rows drops every left row of that window, a NULL left key is dropped
/// when its window has right rows and kept when it has none. Checked
/// against SQL's definition of `NOT IN` row by row (DataFusion's batch
/// `NOT IN` takes no correlated window).
#[test]
fn window_anti_joins_written_as_not_in_treat_nulls_as_sql_does() {
    let mut left = side_rows(900, 0, 6, 7);
    let mut right = side_rows(300, 3, 6, 8);
    for (i, r) in left.iter_mut().enumerate() {
        if i % 53 == 0 {
            r.k = None;
        }
    }
    for (i, r) in right.iter_mut().enumerate() {
        if i % 97 == 0 {
            r.k = None;
        }
    }
    // Left rows run past the right side's last window, whose windows have
    // no right rows at all.
    left.extend(side_rows(100, 0, 6, 9).into_iter().map(|r| Row {
        ts: r.ts.map(|t| t + 400_000),
        ..r
    }));
    let window = |ts: i64| ts - ts.rem_euclid(10_000);
    let mut right_keys: std::collections::BTreeMap<i64, Vec<Option<String>>> = Default::default();
    for r in &right {
        right_keys.entry(window(r.ts.unwrap())).or_default().push(r.k.clone());
    }
    let mut want: Vec<String> = left
        .iter()
        .filter(|l| match right_keys.get(&window(l.ts.unwrap())) {
            None => true,
            Some(keys) => l.k.is_some() && keys.iter().all(|k| k.is_some() && *k != l.k),
        })
        .map(|l| {
            let ws = window(l.ts.unwrap());
            format!(
                "{}|{}|{}|{ws}|{}",
                l.k.as_deref().unwrap_or("null"),
                l.v.unwrap(),
                l.ts.unwrap(),
                ws + 10_000
            )
        })
        .collect();
    want.sort();
    let tumble = |t: &str| format!("TABLE(TUMBLE(TABLE {t}, DESCRIPTOR(ts), INTERVAL '10' SECOND))");
    let sql = format!(
        "{}SET 'parallelism.default' = '2';
INSERT INTO out SELECT L.k, L.v, L.ts, L.window_start, L.window_end FROM {} L
WHERE L.k NOT IN (SELECT R.k FROM {} R WHERE L.window_start = R.window_start AND L.window_end = R.window_end);",
        tables(
            std::path::Path::new("DIR"),
            "k VARCHAR, v BIGINT, ts TIMESTAMP(3), ws TIMESTAMP(3), we TIMESTAMP(3)"
        ),
        tumble("l"),
        tumble("r"),
    );
    let (got, run) = run_join(&left, &right, &sql, &["k", "v", "ts", "ws", "we"]);
    assert!(
        want.len() > 50 && want.len() < left.len(),
        "not a test: {} rows",
        want.len()
    );
    assert!(
        want.iter().any(|r| r.starts_with("null|")),
        "a NULL left key must pass in a window without right rows"
    );
    assert!(
        right_keys.values().any(|keys| keys.contains(&None)),
        "some window must hold a NULL right key"
    );
    assert_rows_eq(&got, &want, "NOT IN");
    assert_eq!(run.counted("late rows"), 0);
}

pub(crate) const INTERVAL_OUT: &str = "lk VARCHAR, lv BIGINT, lts TIMESTAMP(3), rk VARCHAR, rv BIGINT, rts TIMESTAMP(3)";
pub(crate) const INTERVAL_COLUMNS: [&str; 6] = ["lk", "lv", "lts", "rk", "rv", "rts"];

/// Interval joins, bounds written as BETWEEN in ON or as strict and
/// non-strict comparisons in WHERE, equal the batch join of the same rows.
#[tokio::test]
async fn interval_joins_equal_the_batch_join() {
    let left = side_rows(1_500, 0, 4, 3);
    let right = side_rows(1_500, 0, 4, 4);
    let select = "SELECT L.k, L.v, L.ts, R.k, R.v, R.ts";
    for (from, settings) in [
        (
            "FROM l L JOIN r R ON L.k = R.k AND R.ts BETWEEN L.ts - INTERVAL '1' SECOND AND L.ts + INTERVAL '2' SECOND",
            "SET 'parallelism.default' = '2';",
        ),
        (
            "FROM l L, r R WHERE L.k = R.k AND R.ts > L.ts - INTERVAL '500' MILLISECOND AND L.ts + INTERVAL '1' SECOND >= R.ts",
            "",
        ),
        (
            "FROM l L JOIN r R ON R.ts BETWEEN L.ts AND L.ts + INTERVAL '300' MILLISECOND",
            "",
        ),
    ] {
        let sql = format!(
            "{}{settings}\nINSERT INTO out {select} {from};",
            tables(std::path::Path::new("DIR"), INTERVAL_OUT)
        );
        let want = oracle(&left, &right, None, &format!("{select} {from}")).await;
        let (got, run) = run_join(&left, &right, &sql, &INTERVAL_COLUMNS);
        assert!(want.len() > 1_000, "too few rows to be a test: {}", want.len());
        assert_rows_eq(&got, &want, from);
        assert_eq!(run.counted("late rows"), 0, "{from}");
    }
}

/// Outer interval joins: a row of an outer side that met no partner goes
/// out once, padded with NULLs, when the watermark passes its bound; the
/// output only appends, and equals the batch outer join of the same rows
/// (also killed and restored from a checkpoint, through the files sink).
#[tokio::test]
async fn outer_interval_joins_pad_rows_without_partners() {
    let left = side_rows(1_500, 0, 6, 13);
    let right = side_rows(1_500, 2, 6, 14);
    let select = "SELECT L.k, L.v, L.ts, R.k, R.v, R.ts";
    for (join, settings) in [("LEFT", "SET 'parallelism.default' = '2';"), ("RIGHT", ""), ("FULL", "SET 'parallelism.default' = '3';")] {
        let from = format!(
            "FROM l L {join} JOIN r R ON L.k = R.k AND L.v < R.v AND R.ts BETWEEN L.ts - INTERVAL '300' MILLISECOND AND L.ts + INTERVAL '1' SECOND"
        );
        let sql = format!(
            "{}{settings}\nINSERT INTO out {select} {from};",
            tables(std::path::Path::new("DIR"), INTERVAL_OUT)
        );
        let want = oracle(&left, &right, None, &format!("{select} {from}")).await;
        let (got, run) = run_join(&left, &right, &sql, &INTERVAL_COLUMNS);
        let padded = want.iter().filter(|r| r.contains("null")).count();
        assert!(want.len() > 1_000 && padded > 100, "too few rows to be a test: {} ({padded} padded)", want.len());
        assert_rows_eq(&got, &want, &from);
        assert_eq!(run.counted("late rows"), 0, "{from}");
    }
}

/// A stream joined with its own windowed aggregate, as Nexmark q7 does:
/// the rows whose value is their window's maximum. The aggregate's
/// `window_end` is its rowtime, bounded against the stream's in WHERE.
#[tokio::test]
async fn a_stream_joins_its_windowed_aggregate() {
    let left = side_rows(2_000, 0, 4, 5);
    let maxima = "SELECT MAX(v) AS mx, window_end AS we FROM {W} GROUP BY window_start, window_end";
    let join = "ON L.v = R.mx WHERE L.ts BETWEEN R.we - INTERVAL '10' SECOND AND R.we";
    let select = "SELECT L.k, L.v, L.ts, R.mx, R.we";
    let sql = format!(
        "{}SET 'parallelism.default' = '2';\nINSERT INTO out {select} FROM l L JOIN ({}) R {join};",
        tables(
            std::path::Path::new("DIR"),
            "lk VARCHAR, lv BIGINT, lts TIMESTAMP(3), mx BIGINT, we TIMESTAMP(3)"
        ),
        maxima.replace("{W}", "TABLE(TUMBLE(TABLE l, DESCRIPTOR(ts), INTERVAL '10' SECOND))")
    );
    let want = oracle(
        &left,
        &[],
        Some((10_000, 10_000)),
        &format!("{select} FROM l L JOIN ({}) R {join}", maxima.replace("{W}", "lw")),
    )
    .await;
    let (got, run) = run_join(&left, &[], &sql, &["lk", "lv", "lts", "mx", "we"]);
    assert!(want.len() > 30, "too few rows to be a test: {}", want.len());
    assert_rows_eq(&got, &want, "rows that are their window's maximum");
    assert_eq!(run.counted("late rows"), 0);
}

/// Two windowed aggregates joined on their windows, as Nexmark q8 does
/// (people and their auctions of the same 10 s): a window join whose rows
/// are the windows' results.
#[tokio::test]
async fn windowed_aggregates_join_on_their_windows() {
    let left = side_rows(1_500, 0, 6, 6);
    let right = side_rows(1_500, 3, 6, 7);
    let counts =
        "SELECT k, count(*) AS c, window_start AS ws, window_end AS we FROM {L} GROUP BY k, window_start, window_end";
    let maxima =
        "SELECT k, max(v) AS mx, window_start AS ws, window_end AS we FROM {R} GROUP BY k, window_start, window_end";
    let tumble = |t: &str| format!("TABLE(TUMBLE(TABLE {t}, DESCRIPTOR(ts), INTERVAL '10' SECOND))");
    let select = "SELECT P.k, P.c, A.mx, P.ws, P.we";
    let on = "ON P.k = A.k AND P.ws = A.ws AND P.we = A.we";
    let sql = format!(
        "{}SET 'parallelism.default' = '2';\nINSERT INTO out {select} FROM ({}) P JOIN ({}) A {on};",
        tables(
            std::path::Path::new("DIR"),
            "k VARCHAR, c BIGINT, mx BIGINT, ws TIMESTAMP(3), we TIMESTAMP(3)"
        ),
        counts.replace("{L}", &tumble("l")),
        maxima.replace("{R}", &tumble("r"))
    );
    let query = format!(
        "{select} FROM ({}) P JOIN ({}) A {on}",
        counts.replace("{L}", "lw"),
        maxima.replace("{R}", "rw")
    );
    let want = oracle(&left, &right, Some((10_000, 10_000)), &query).await;
    let (got, run) = run_join(&left, &right, &sql, &["k", "c", "mx", "ws", "we"]);
    assert!(want.len() > 50, "too few rows to be a test: {}", want.len());
    assert_rows_eq(&got, &want, "windows of both aggregates");
    assert_eq!(run.counted("late rows"), 0);
}

/// Nexmark q5's shape: the keys with the most rows in each HOP window —
/// per-key counts joined back with the maximum count of their window (an
/// aggregation of the counts grouped by their windows).
#[tokio::test]
async fn the_busiest_keys_of_each_window() {
    let left = side_rows(2_000, 0, 5, 8);
    let counts =
        "SELECT k, count(*) AS num, window_start AS ws, window_end AS we FROM {W} GROUP BY k, window_start, window_end";
    let maxima = "SELECT max(num) AS maxn, ws, we FROM ({C}) C GROUP BY ws, we";
    let select = "SELECT A.k, A.num, A.ws, A.we";
    let on = "ON A.ws = M.ws AND A.we = M.we AND A.num >= M.maxn";
    let query = |w: &str| {
        let c = counts.replace("{W}", w);
        format!("{select} FROM ({c}) A JOIN ({}) M {on}", maxima.replace("{C}", &c))
    };
    let sql = format!(
        "{}SET 'parallelism.default' = '2';\nINSERT INTO out {};",
        tables(
            std::path::Path::new("DIR"),
            "k VARCHAR, num BIGINT, ws TIMESTAMP(3), we TIMESTAMP(3)"
        ),
        query("TABLE(HOP(TABLE l, DESCRIPTOR(ts), INTERVAL '2' SECOND, INTERVAL '10' SECOND))")
    );
    let want = oracle(&left, &[], Some((2_000, 10_000)), &query("lw")).await;
    let (got, run) = run_join(&left, &[], &sql, &["k", "num", "ws", "we"]);
    assert!(want.len() > 100, "too few rows to be a test: {}", want.len());
    assert_rows_eq(&got, &want, "the busiest keys of each window");
    assert_eq!(run.counted("late rows"), 0);
}

/// A regular inner join (Nexmark q3's kind): no window, no time bound —
/// every row is kept and met by every later row of the other side; the
/// output equals the batch join, and a one-sided time condition is just a
/// filter.
#[tokio::test]
async fn regular_inner_joins_equal_the_batch_join() {
    let left = side_rows(1_500, 0, 4, 9);
    let right = side_rows(1_500, 2, 4, 10);
    let select = "SELECT L.k, L.v, L.ts, R.k, R.v, R.ts";
    for from in [
        "FROM l L JOIN r R ON L.k = R.k AND L.v = R.v",
        "FROM l L, r R WHERE L.v = R.v AND R.ts >= L.ts AND L.k IN ('k2', 'k3')",
    ] {
        let sql = format!(
            "{}SET 'parallelism.default' = '2';\nINSERT INTO out {select} {from};",
            tables(std::path::Path::new("DIR"), INTERVAL_OUT)
        );
        let want = oracle(&left, &right, None, &format!("{select} {from}")).await;
        let (got, run) = run_join(&left, &right, &sql, &INTERVAL_COLUMNS);
        assert!(want.len() > 500, "too few rows to be a test: {}", want.len());
        assert_rows_eq(&got, &want, from);
        assert_eq!(run.counted("late rows"), 0, "{from}");
    }
}

/// Joins keep and move only the columns read above them and by their
/// condition, and a condition on one side alone drops that side's rows
/// before the exchange (in ON or an inner join's WHERE), except on the side
/// an outer join preserves, which keeps its rows whatever ON says of them. Each query
/// equals the batch join, and the plan shows what was dropped.
#[tokio::test]
async fn joins_keep_only_the_rows_and_columns_they_need() {
    let left = side_rows(1_500, 0, 4, 11);
    let right = side_rows(1_500, 2, 4, 12);
    let cases = [
        (
            "SELECT L.k, R.ts",
            "FROM l L JOIN r R ON L.k = R.k AND L.v = R.v WHERE R.v > 30 AND L.k <> 'k3'",
            "lk VARCHAR, rts TIMESTAMP(3)",
            vec!["lk", "rts"],
            // DataFusion's filter pushdown also infers each side's
            // condition onto the other through the equal keys.
            "  Filter: k@0 != k3 AND v@1 > 30\n  Project: k@0, v@1\n",
        ),
        (
            // A comma join with its condition in WHERE (Flink's Nexmark
            // writes them): DataFusion's optimizer makes it an equi-join.
            "SELECT L.k, R.v",
            "FROM l L, r R WHERE L.k = R.k AND L.v = R.v AND R.v > 60",
            "lk VARCHAR, rv BIGINT",
            vec!["lk", "rv"],
            "  RegularJoin: Inner\n    on: [k@0 = k@0, v@1 = v@1]\n",
        ),
        (
            "SELECT L.v, R.v",
            "FROM l L JOIN r R ON L.k = R.k AND R.ts BETWEEN L.ts AND L.ts + INTERVAL '1' SECOND AND L.v < 20",
            "lv BIGINT, rv BIGINT",
            vec!["lv", "rv"],
            "  Filter: v@1 < 20\nStage 1 (parallelism 2)\n",
        ),
        (
            "SELECT L.k, L.v, R.v, L.window_start",
            "FROM (SELECT * FROM TABLE(TUMBLE(TABLE l, DESCRIPTOR(ts), INTERVAL '10' SECOND))) L
             LEFT JOIN (SELECT * FROM TABLE(TUMBLE(TABLE r, DESCRIPTOR(ts), INTERVAL '10' SECOND))) R
             ON L.k = R.k AND L.window_start = R.window_start AND L.window_end = R.window_end AND L.v > 50 AND R.v < 50",
            "lk VARCHAR, lv BIGINT, rv BIGINT, ws TIMESTAMP(3)",
            vec!["lk", "lv", "rv", "ws"],
            // The right side's condition is applied before its windows
            // are even assigned.
            "  Filter: v@1 < 50\n  WindowAssign: TUMBLE(size 10 s)\n",
        ),
        (
            // Window results aggregated per window: the join keeps only
            // the key and the windows, which the aggregation groups by.
            "SELECT L.window_start, count(*)",
            "FROM (SELECT * FROM TABLE(TUMBLE(TABLE l, DESCRIPTOR(ts), INTERVAL '10' SECOND))) L
             JOIN (SELECT * FROM TABLE(TUMBLE(TABLE r, DESCRIPTOR(ts), INTERVAL '10' SECOND))) R
             ON L.k = R.k AND L.window_start = R.window_start AND L.window_end = R.window_end
             GROUP BY L.window_start, L.window_end",
            "ws TIMESTAMP(3), n BIGINT",
            vec!["ws", "n"],
            "  Project: k@0, window_start@3, window_end@4\n",
        ),
    ];
    for (select, from, out, columns, plan) in cases {
        let sql = format!(
            "{}SET 'parallelism.default' = '2';\nINSERT INTO out {select} {from};",
            tables(std::path::Path::new("DIR"), out)
        );
        let windows = from.contains("TUMBLE").then_some((10_000, 10_000));
        let batch_from = from
            .replace(
                "(SELECT * FROM TABLE(TUMBLE(TABLE l, DESCRIPTOR(ts), INTERVAL '10' SECOND)))",
                "lw",
            )
            .replace(
                "(SELECT * FROM TABLE(TUMBLE(TABLE r, DESCRIPTOR(ts), INTERVAL '10' SECOND)))",
                "rw",
            );
        let want = oracle(&left, &right, windows, &format!("{select} {batch_from}")).await;
        let (got, run) = run_join(&left, &right, &sql, &columns);
        // A window's count stands for many joined rows.
        let least = if select.contains("count") { 20 } else { 100 };
        assert!(want.len() > least, "too few rows to be a test: {}", want.len());
        assert_rows_eq(&got, &want, from);
        assert_eq!(run.counted("late rows"), 0, "{from}");
        let explain = run_explain(&sql.replace("INSERT INTO", "EXPLAIN INSERT INTO"));
        assert!(explain.contains(plan), "{from}: no {plan:?} in:\n{explain}");
        assert!(
            !explain.contains("v@1 > 50"),
            "{from}: the preserved side was filtered:\n{explain}"
        );
    }
}

/// EXPLAIN's output for `sql` over empty inputs.
fn run_explain(sql: &str) -> String {
    let dir = scratch();
    let run = weir_run(dir.path(), &sql.replace("DIR", &dir.path().display().to_string()));
    assert!(run.ok, "weir failed:\n{}", run.stderr);
    run.stdout
}

/// An outer join without a window or bounds (an updating result) into
/// files, outer interval joins and joins that mix windows are refused
/// with errors that say what to write instead.
#[test]
fn unbounded_and_mismatched_joins_are_refused() {
    let dir = scratch();
    let base = tables(dir.path(), INTERVAL_OUT);
    for (query, says) in [
        (
            "INSERT INTO out SELECT L.k, L.v, L.ts, R.k, R.v, R.ts FROM l L LEFT JOIN r R ON L.k = R.k;",
            "can only append rows",
        ),
        (
            "INSERT INTO out SELECT L.k, L.v, L.ts, R.k, R.v, R.ts FROM l L LEFT JOIN r R ON R.ts BETWEEN L.ts AND L.ts + INTERVAL '1' SECOND;",
            "a LEFT interval join without an equality of the two sides' columns",
        ),
        (
            "INSERT INTO out SELECT L.k, L.v, L.ts, R.k, R.v, R.ts
FROM (SELECT * FROM TABLE(TUMBLE(TABLE l, DESCRIPTOR(ts), INTERVAL '10' SECOND))) L
JOIN (SELECT * FROM TABLE(TUMBLE(TABLE r, DESCRIPTOR(ts), INTERVAL '5' SECOND))) R
ON L.k = R.k AND L.window_start = R.window_start AND L.window_end = R.window_end;",
            "the same windows on both sides",
        ),
        (
            "INSERT INTO out SELECT L.k, L.v, L.ts, L.k, L.v, L.ts FROM l L WHERE L.k IN (SELECT R.k FROM r R);",
            "an IN / EXISTS subquery over streams outside a window is not supported",
        ),
        (
            "INSERT INTO out SELECT L.k, L.v, L.ts, L.k, L.v, L.ts
FROM (SELECT * FROM TABLE(TUMBLE(TABLE l, DESCRIPTOR(ts), INTERVAL '10' SECOND))) L
WHERE L.k NOT IN (SELECT max(R.k) FROM TABLE(TUMBLE(TABLE r, DESCRIPTOR(ts), INTERVAL '10' SECOND)) R
  WHERE L.window_start = R.window_start AND L.window_end = R.window_end);",
            "NOT IN (subquery) over streams is not supported: write NOT EXISTS",
        ),
    ] {
        let run = weir_run(dir.path(), &format!("{base}{query}"));
        assert!(!run.ok, "{query}");
        assert!(run.stderr.contains(says), "{query}: {}", run.stderr);
    }
}
