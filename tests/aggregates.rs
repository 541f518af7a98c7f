//! GROUP BY without a window end to end: the `weir` binary aggregates a
//! JSON file and prints its changelog (`+I`, `-U`, `+U`, `-D`, as Flink's
//! print connector does). The changelog must be well formed (a key's `-U`
//! withdraws exactly its current row, `+I` only for a new key), and, applied
//! in order, must end in what DataFusion computes as a batch query over the
//! same rows.

use crate::common;

use common::*;

/// 3 000 rows over 40 keys, some without a key or value.
fn input_rows() -> Vec<Row> {
    let mut g = Lcg(7);
    (0..3000)
        .map(|i| Row {
            k: (g.below(50) != 0).then(|| format!("k{}", g.below(40))),
            v: (g.below(30) != 0).then(|| g.below(1000) as i64 - 100),
            ts: Some(T0 + i * 10),
        })
        .collect()
}

/// Settings of a job at parallelism 1.
const ONE: &str = "SET 'parallelism.default' = '1';";

/// The job: `settings` (SET statements), then `query` over the JSON files
/// of `dir/in` into a print sink of `sink_columns`.
fn job(dir: &std::path::Path, settings: &str, sink_columns: &str, query: &str) -> String {
    format!(
        "{settings}
CREATE TABLE t (k VARCHAR, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
CREATE TABLE out ({sink_columns}) WITH ('connector' = 'print');
INSERT INTO out {query};
",
        dir.join("in").display()
    )
}

/// Writes `rows` as files of 100 rows each: batches of their own, so
/// that results change between them.
fn write_input(dir: &std::path::Path, rows: &[Row]) {
    std::fs::create_dir_all(dir.join("in")).unwrap();
    for (i, chunk) in rows.chunks(100).enumerate() {
        write_json(&dir.join("in").join(format!("part-{i:03}.json")), chunk);
    }
}

fn run(rows: &[Row], parallelism: usize, sink_columns: &str, query: &str) -> Run {
    run_with(rows, &format!("SET 'parallelism.default' = '{parallelism}';"), sink_columns, query)
}

/// Runs `query` over `rows` after `settings`, through `weir_run` (which
/// also kills and restores a twin of the job).
pub(crate) fn run_with(rows: &[Row], settings: &str, sink_columns: &str, query: &str) -> Run {
    let dir = scratch();
    write_input(dir.path(), rows);
    let run = weir_run(dir.path(), &job(dir.path(), settings, sink_columns, query));
    assert!(run.ok, "weir failed:\n{}", run.stderr);
    run
}

/// DataFusion's answer to `query` over table `t` of `rows`, as sorted
/// `a|b|…` lines (NULL as `null`, floats with 6 decimals).
pub(crate) async fn oracle(rows: &[Row], query: &str) -> Vec<String> {
    let ctx = rows_table("t", rows);
    let batches = ctx.sql(query).await.unwrap().collect().await.unwrap();
    let mut lines = Vec::new();
    let opts = datafusion::arrow::util::display::FormatOptions::default().with_null("null");
    for b in &batches {
        let fmts: Vec<_> = b
            .columns()
            .iter()
            .map(|c| datafusion::arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &opts).unwrap())
            .collect();
        for r in 0..b.num_rows() {
            lines.push(fmts.iter().map(|f| f.value(r).to_string()).collect::<Vec<_>>().join("|"));
        }
    }
    lines.sort();
    lines
}

/// `query` with Flink's AVG of the integer `column` in DataFusion's terms:
/// the sum divided by the count, truncated (DataFusion's own is a DOUBLE
/// mean).
pub(crate) fn flink_avg(query: &str, column: &str) -> String {
    query.replace(&format!("avg({column})"), &format!("CAST(sum({column}) / NULLIF(count({column}), 0) AS DOUBLE)"))
}

/// Floats to 6 decimals, so that printed and batch averages compare.
pub(crate) fn rounded(lines: Vec<String>, column: usize) -> Vec<String> {
    let mut out: Vec<String> = lines
        .into_iter()
        .map(|l| {
            let mut cells: Vec<String> = l.split('|').map(String::from).collect();
            if let Ok(f) = cells[column].parse::<f64>() {
                cells[column] = format!("{f:.6}");
            }
            cells.join("|")
        })
        .collect();
    out.sort();
    out
}

/// COUNT, SUM, MIN, MAX, AVG and a FILTER per key (NULL keys included), at
/// parallelism 1 and 2.
#[tokio::test]
async fn group_by_without_a_window_ends_in_the_batch_result() {
    let rows = input_rows();
    let query = "SELECT k, count(*) AS n, count(v) AS nv, sum(v) AS s, min(v) AS lo, max(v) AS hi, avg(v) AS a, \
                 count(*) FILTER (WHERE v > 500) AS big FROM t GROUP BY k";
    let want = rounded(oracle(&rows, &flink_avg(query, "v")).await, 6);
    for parallelism in [1, 2] {
        let run = run(
            &rows,
            parallelism,
            "k VARCHAR, n BIGINT, nv BIGINT, s BIGINT, lo BIGINT, hi BIGINT, a DOUBLE, big BIGINT",
            query,
        );
        let (got, kinds) = apply_changelog(&run.stdout, 1);
        assert_rows_eq(&rounded(got, 6), &want, &format!("parallelism {parallelism}"));
        // 41 keys, each inserted once; the rest are updates, in pairs.
        assert_eq!(kinds.get("+I"), Some(&41), "{kinds:?}");
        assert_eq!(kinds.get("-U"), kinds.get("+U"), "{kinds:?}");
        assert!(!kinds.contains_key("-D"), "nothing is deleted from an append-only input: {kinds:?}");
    }
}

/// A global `count(*)` reads no column: only the row count crosses the
/// exchange (a projection to zero columns), and the one result row is
/// updated in place.
#[tokio::test]
async fn a_global_count_reads_no_column() {
    let rows = input_rows();
    let query = "SELECT count(*) AS n FROM t";
    let want = oracle(&rows, query).await;
    for parallelism in [1, 2] {
        let run = run(&rows, parallelism, "n BIGINT", query);
        let (got, kinds) = apply_changelog(&run.stdout, 0);
        assert_rows_eq(&got, &want, &format!("parallelism {parallelism}"));
        assert_eq!(kinds.get("+I"), Some(&1), "{kinds:?}");
    }
}

/// An aggregate of an aggregate (Nexmark q4's shape): a key's maximum moves
/// between buckets as it grows, so the outer aggregation must take it back
/// from its old bucket — and a bucket left empty is deleted.
#[tokio::test]
async fn an_aggregate_of_an_aggregate_retracts_what_changed() {
    let rows = input_rows();
    let query = "SELECT hi % 7 AS bucket, count(*) AS keys, sum(hi) AS total, avg(hi) AS mean \
                 FROM (SELECT k, max(v) AS hi FROM t WHERE k IS NOT NULL GROUP BY k) GROUP BY hi % 7";
    let want = rounded(oracle(&rows, &flink_avg(query, "hi")).await, 3);
    for parallelism in [1, 2] {
        let run = run(&rows, parallelism, "bucket BIGINT, keys BIGINT, total BIGINT, mean DOUBLE", query);
        let (got, kinds) = apply_changelog(&run.stdout, 1);
        assert_rows_eq(&rounded(got, 3), &want, &format!("parallelism {parallelism}"));
        assert!(kinds.get("-U").is_some_and(|n| *n > 0), "maxima moved: {kinds:?}");
    }
}

/// MIN and MAX of an updating result: a key's sum moves up and down as
/// rows come (values may be negative), and the outer MIN and MAX take back
/// whichever sum it withdraws, not the oldest — they end in the batch
/// answer.
#[tokio::test]
async fn min_and_max_of_an_updating_result_take_back_any_value() {
    let rows = input_rows();
    let query = "SELECT n % 3 AS bucket, min(s) AS lo, max(s) AS hi, count(*) AS keys \
                 FROM (SELECT k, sum(v) AS s, count(*) AS n FROM t WHERE k IS NOT NULL GROUP BY k) GROUP BY n % 3";
    let want = oracle(&rows, query).await;
    for parallelism in [1, 2] {
        let run = run(&rows, parallelism, "bucket BIGINT, lo BIGINT, hi BIGINT, keys BIGINT", query);
        let (got, kinds) = apply_changelog(&run.stdout, 1);
        assert_rows_eq(&got, &want, &format!("parallelism {parallelism}"));
        assert!(kinds.get("-U").is_some_and(|n| *n > 0), "sums moved between buckets: {kinds:?}");
    }
}

/// `top` is a column name, as in Flink (sqlparser alone reads it as SQL
/// Server's `SELECT TOP n`): an alias, a sink column, and a column read in
/// an outer query.
#[tokio::test]
async fn a_column_named_top() {
    let rows = input_rows();
    let query = "SELECT top % 7 AS bucket, count(*) AS keys, sum(top) AS top \
                 FROM (SELECT k, max(v) AS top FROM t WHERE k IS NOT NULL GROUP BY k) GROUP BY top % 7";
    // DataFusion's own parser has no such fix: the oracle says `hi`.
    let want = oracle(&rows, &query.replace("top", "hi")).await;
    let run = run(&rows, 1, "bucket BIGINT, keys BIGINT, top BIGINT", query);
    let (got, _) = apply_changelog(&run.stdout, 1);
    assert_rows_eq(&got, &want, "top");
}

/// A bucket whose last key leaves it is deleted (`-D`), and comes back as
/// `+I` when a key enters it again.
#[tokio::test]
async fn an_emptied_group_is_deleted() {
    // One key whose maximum climbs 1, 2, 3: buckets hi % 2 alternate.
    let rows: Vec<Row> = (1..=3).map(|i| Row { k: Some("a".into()), v: Some(i), ts: Some(T0 + i * 1000) }).collect();
    let dir = scratch();
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    // One file per row, read in order, so each is its own batch.
    for (i, r) in rows.iter().enumerate() {
        write_json(&dir.path().join("in").join(format!("part-{i}.json")), std::slice::from_ref(r));
    }
    let query =
        "SELECT hi % 2 AS odd, count(*) AS keys FROM (SELECT k, max(v) AS hi FROM t GROUP BY k) GROUP BY hi % 2";
    let run = weir_run(dir.path(), &job(dir.path(), ONE, "odd BIGINT, keys BIGINT", query));
    assert!(run.ok, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines, ["+I[1, 1]", "-D[1, 1]", "+I[0, 1]", "-D[0, 1]", "+I[1, 1]"], "{}", run.stdout);
}

/// What cannot run says why.
#[test]
fn what_an_updating_result_cannot_feed_is_refused_with_the_reason() {
    let rows = input_rows();
    let dir = scratch();
    write_input(dir.path(), &rows);
    let cases = [(
        "k VARCHAR, lo BIGINT",
        "SELECT k, median(n) FROM (SELECT k, count(*) AS n FROM t GROUP BY k) GROUP BY k",
        "only COUNT, SUM, AVG, COLLECT, MIN and MAX can take back an earlier value",
    )];
    // Each names where: the query's line and column, at least.
    for (columns, query, why) in cases {
        let out = run_failing(dir.path(), &job(dir.path(), ONE, columns, query));
        assert!(out.contains(why) && out.contains("job.sql:5:"), "{query}: {out}");
    }
    // A filesystem sink can only append.
    let sql = job(dir.path(), ONE, "k VARCHAR, n BIGINT", "SELECT k, count(*) FROM t GROUP BY k").replace(
        "'connector' = 'print'",
        &format!("'connector' = 'filesystem', 'path' = '{}', 'format' = 'json'", dir.path().join("out").display()),
    );
    let out = run_failing(dir.path(), &sql);
    assert!(
        out.contains("job.sql:5:17") && out.contains("can only append rows") && out.contains("'key.fields'"),
        "{out}"
    );
}

fn run_failing(dir: &std::path::Path, sql: &str) -> String {
    let run = weir_run(dir, sql);
    assert!(!run.ok, "expected an error, got:\n{}", run.stdout);
    run.stderr
}

/// A HAVING over changing results: a key whose sum leaves the range is
/// withdrawn (its `-U` passes, its `+U` does not), one that enters it is
/// inserted — the applied changes end in the batch HAVING.
#[tokio::test]
async fn having_withdraws_groups_that_stop_passing() {
    let rows = input_rows();
    let query = "SELECT k, sum(v) AS s FROM t GROUP BY k HAVING sum(v) < 6000";
    let want = oracle(&rows, query).await;
    let run = run(&rows, 2, "k VARCHAR, s BIGINT", query);
    let (got, kinds) = apply_changelog(&run.stdout, 1);
    assert_rows_eq(&got, &want, "HAVING");
    assert!(kinds.get("-U") > kinds.get("+U"), "some groups left the range: {kinds:?}");
}

/// Flink's aggregates that DataFusion names or means otherwise, in a GROUP
/// BY and in a window: `LISTAGG` (its values joined by `,` or the given
/// separator, in arrival order: compared as the multiset of its parts),
/// `VARIANCE` (the sample variance), `FIRST_VALUE` / `LAST_VALUE` (NULLs
/// skipped: the first and last values that are not NULL), and `COUNT(DISTINCT
/// a, b)` (tuples with a NULL not counted). Against DataFusion's answer
/// written independently: values ordered by time, the distinct tuples
/// counted from a `SELECT DISTINCT`.
#[tokio::test]
async fn flink_aggregates_that_datafusion_names_otherwise() {
    let rows = input_rows();
    let sorted_parts = |lines: Vec<String>, column: usize, separator: char| -> Vec<String> {
        let mut out: Vec<String> = lines
            .into_iter()
            .map(|l| {
                let mut cells: Vec<String> = l.split('|').map(String::from).collect();
                let mut parts: Vec<&str> = cells[column].split(separator).collect();
                parts.sort();
                cells[column] = parts.join(&separator.to_string());
                cells.join("|")
            })
            .collect();
        out.sort();
        out
    };
    // At parallelism 1 the rows of a key arrive in the files' order, which
    // is time order: first and last are the oracle's by time.
    let query = "SELECT k, LISTAGG(CAST(v AS VARCHAR)) AS l, LISTAGG(CAST(v AS VARCHAR), ';') AS l2, \
                 VARIANCE(CAST(v AS DOUBLE)) AS var, FIRST_VALUE(v) AS f, LAST_VALUE(v) AS la FROM t GROUP BY k";
    let oracle_query = "SELECT k, string_agg(CAST(v AS VARCHAR), ',') AS l, string_agg(CAST(v AS VARCHAR), ';') AS l2, \
                        var_samp(CAST(v AS DOUBLE)) AS var, first_value(v ORDER BY ts) FILTER (WHERE v IS NOT NULL) AS f, \
                        last_value(v ORDER BY ts) FILTER (WHERE v IS NOT NULL) AS la FROM t GROUP BY k";
    let want = rounded(sorted_parts(sorted_parts(oracle(&rows, oracle_query).await, 1, ','), 2, ';'), 3);
    let grouped = run(&rows, 1, "k VARCHAR, l VARCHAR, l2 VARCHAR, var DOUBLE, f BIGINT, la BIGINT", query);
    let (got, _) = apply_changelog(&grouped.stdout, 1);
    let got = rounded(sorted_parts(sorted_parts(got, 1, ','), 2, ';'), 3);
    assert!(want.len() > 30, "too few groups to be a test: {}", want.len());
    assert_rows_eq(&got, &want, "LISTAGG, VARIANCE, FIRST_VALUE, LAST_VALUE");

    // COUNT(DISTINCT k, v) per 1 s window (some k and v NULL).
    let query = "SELECT window_start, COUNT(DISTINCT k, v) AS n FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' SECOND)) \
                 GROUP BY window_start, window_end";
    let oracle_query = "SELECT w, count(*) FROM (SELECT DISTINCT date_bin(INTERVAL '1' SECOND, ts) AS w, k, v FROM t \
                        WHERE k IS NOT NULL AND v IS NOT NULL) GROUP BY w";
    let want: Vec<String> = oracle(&rows, oracle_query).await.iter().map(|l| l.replace(' ', "T")).collect();
    let windowed = run(&rows, 2, "ws TIMESTAMP(3), n BIGINT", query);
    let mut got: Vec<String> = windowed
        .stdout
        .lines()
        .map(|l| {
            let row = l.split_once("> ").map_or(l, |(_, r)| r);
            let row = row.trim_start_matches("+I[").trim_end_matches(']');
            let (ws, n) = row.split_once(", ").expect("two values");
            // The print sink leaves out zero seconds: `2026-01-01T00:00`.
            let ws = if ws.len() == 16 { format!("{ws}:00") } else { ws.to_string() };
            format!("{ws}|{n}")
        })
        .collect();
    got.sort();
    assert!(want.len() > 20, "too few windows to be a test: {}", want.len());
    assert_rows_eq(&got, &want, "COUNT(DISTINCT k, v)");
}

/// `GROUPING(k)`, `GROUPING_ID(k, m)` and `GROUP_ID()` over `CUBE (k, m)`
/// without a window (an updating result) and per window, against Flink's
/// definition computed here: each row counts in the four grouping sets,
/// `GROUPING_ID` the bits of the columns a set leaves out (k the high
/// bit), `GROUPING(k)` k's bit, `GROUP_ID()` 0 (no set repeats). A NULL
/// key of the input and a key a set leaves out print alike; the bits tell
/// them apart.
#[tokio::test]
async fn grouping_functions_tell_the_grouping_sets_apart() {
    let rows = input_rows();
    let text = |v: &Option<String>| v.clone().unwrap_or_else(|| "null".into());
    let mut counts: std::collections::BTreeMap<(String, String, u8), i64> = std::collections::BTreeMap::new();
    for r in &rows {
        let (k, m) = (text(&r.k), text(&r.v.map(|v| (v % 3).to_string())));
        for gid in 0u8..4 {
            let k = if gid & 2 == 0 { k.clone() } else { "null".into() };
            let m = if gid & 1 == 0 { m.clone() } else { "null".into() };
            *counts.entry((k, m, gid)).or_default() += 1;
        }
    }
    let mut want: Vec<String> =
        counts.iter().map(|((k, m, gid), n)| format!("{k}|{m}|{}|{gid}|0|{n}", gid >> 1)).collect();
    want.sort();
    let query = "SELECT k, m, GROUPING(k), GROUPING_ID(k, m), GROUP_ID(), COUNT(*) \
                 FROM (SELECT k, MOD(v, 3) AS m FROM t) GROUP BY CUBE (k, m)";
    let grouped = run(&rows, 2, "k VARCHAR, m BIGINT, g BIGINT, gi BIGINT, gid BIGINT, n BIGINT", query);
    let (got, _) = apply_changelog(&grouped.stdout, 4);
    assert!(want.len() > 100, "too few groups to be a test: {}", want.len());
    assert_rows_eq(&got, &want, "GROUPING, GROUPING_ID, GROUP_ID over CUBE");

    // The same per 10-minute window (all rows are in the first one).
    assert!(rows.iter().all(|r| r.ts.is_some_and(|ts| ts - T0 < 600_000)));
    let query = "SELECT k, MOD(v, 3), GROUPING(k), GROUPING_ID(k, MOD(v, 3)), GROUP_ID(), COUNT(*) \
                 FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' MINUTE)) \
                 GROUP BY window_start, window_end, CUBE (k, MOD(v, 3))";
    let windowed = run(&rows, 2, "k VARCHAR, m BIGINT, g BIGINT, gi BIGINT, gid BIGINT, n BIGINT", query);
    let (got, kinds) = apply_changelog(&windowed.stdout, 4);
    assert_eq!(kinds.keys().collect::<Vec<_>>(), ["+I"], "a window appends");
    assert_rows_eq(&got, &want, "per window");
}

/// Flink's MULTISET as the print sink shows the `MAP<T, INT>` Weir holds it
/// in, as Flink prints a map: `{value=count, …}` sorted by value, with the
/// `, ` that `apply_changelog` splits cells at turned into `|`.
fn printed_multiset<T: std::fmt::Display>(counts: &std::collections::BTreeMap<T, i64>) -> String {
    counts.iter().map(|(v, n)| format!("{v}={n}")).collect::<Vec<_>>().join("|")
}

/// `COLLECT(v % 7)` per key without a window (an updating result, NULL keys
/// and values included), at parallelism 1 and 2: applied in order, the
/// changes end in each key's multiset of its values that are not NULL,
/// counted here from the input rows (a key with only NULL values has the
/// empty multiset).
#[tokio::test]
async fn collect_per_key_ends_in_each_keys_multiset() {
    let rows = input_rows();
    let mut per_key: std::collections::BTreeMap<String, std::collections::BTreeMap<i64, i64>> = Default::default();
    for r in &rows {
        let counts = per_key.entry(r.k.clone().unwrap_or_else(|| "null".into())).or_default();
        if let Some(v) = r.v {
            *counts.entry(v % 7).or_default() += 1;
        }
    }
    let mut want: Vec<String> = per_key.iter().map(|(k, c)| format!("{k}|{{{}}}", printed_multiset(c))).collect();
    want.sort();
    let query = "SELECT k, COLLECT(v % 7) AS c FROM t GROUP BY k";
    for parallelism in [1, 2] {
        let run = run(&rows, parallelism, "k VARCHAR, c MAP<BIGINT, INT>", query);
        let (got, kinds) = apply_changelog(&run.stdout, 1);
        assert_rows_eq(&got, &want, &format!("COLLECT at parallelism {parallelism}"));
        assert_eq!(kinds.get("+I"), Some(&41), "{kinds:?}");
        assert!(kinds.get("+U").is_some_and(|n| *n > 0), "multisets grew: {kinds:?}");
    }
}

/// `COLLECT` over an updating result retracts: each key's maximum moves
/// between buckets as it grows, so a bucket's multiset of keys loses the
/// key (its count back to 0, the element gone) when the key leaves it.
/// Against the final maxima computed here.
#[tokio::test]
async fn collect_over_an_updating_result_takes_back_what_left() {
    let rows = input_rows();
    let mut maxima: std::collections::BTreeMap<String, i64> = Default::default();
    for r in &rows {
        if let (Some(k), Some(v)) = (&r.k, r.v) {
            let m = maxima.entry(k.clone()).or_insert(v);
            *m = (*m).max(v);
        }
    }
    let mut buckets: std::collections::BTreeMap<i64, std::collections::BTreeMap<String, i64>> = Default::default();
    for (k, hi) in &maxima {
        *buckets.entry(hi % 3).or_default().entry(k.clone()).or_default() += 1;
    }
    let mut want: Vec<String> = buckets.iter().map(|(b, ks)| format!("{b}|{{{}}}", printed_multiset(ks))).collect();
    want.sort();
    let query = "SELECT hi % 3 AS bucket, COLLECT(k) AS ks \
                 FROM (SELECT k, max(v) AS hi FROM t WHERE k IS NOT NULL GROUP BY k) GROUP BY hi % 3";
    for parallelism in [1, 2] {
        let run = run(&rows, parallelism, "bucket BIGINT, ks MAP<STRING, INT>", query);
        let (got, kinds) = apply_changelog(&run.stdout, 1);
        assert_rows_eq(&got, &want, &format!("COLLECT over changes at parallelism {parallelism}"));
        assert!(kinds.get("-U").is_some_and(|n| *n > 0), "maxima moved: {kinds:?}");
    }
}

/// A window job over `t` into a JSON file sink `out` (watermarks per
/// event, so the suite also runs it killed midway and restored from its
/// checkpoint, which holds the aggregates' state).
fn window_job(dir: &std::path::Path, parallelism: usize, sink_columns: &str, query: &str) -> String {
    format!(
        "SET 'parallelism.default' = '{parallelism}';
CREATE TABLE t (k VARCHAR, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json', 'scan.watermark.emit.strategy' = 'on-event');
CREATE TABLE out ({sink_columns}) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
INSERT INTO out {query};
",
        dir.join("in").display(),
        dir.join("out").display()
    )
}

/// Runs `query` per window over `rows` and returns the sink's rows.
fn run_window(rows: &[Row], parallelism: usize, sink_columns: &str, query: &str) -> Vec<serde_json::Value> {
    let dir = scratch();
    write_input(dir.path(), rows);
    let run = weir_run(dir.path(), &window_job(dir.path(), parallelism, sink_columns, query));
    assert!(run.ok, "weir failed:\n{}", run.stderr);
    read_sink(&dir.path().join("out"))
}

/// `COLLECT(k)` per 1-second TUMBLE window and `v % 3` (NULL keys skipped,
/// NULL values a group of their own), at parallelism 2, written as JSON
/// (Flink's JSON of a multiset: an object of element → count): each
/// window's multiset of keys, counted here from the input rows.
#[tokio::test]
async fn collect_per_window_is_each_windows_multiset() {
    let rows = input_rows();
    type Multiset = std::collections::BTreeMap<String, i64>;
    let mut per_window: std::collections::BTreeMap<(i64, Option<i64>), Multiset> = Default::default();
    for r in &rows {
        let ts = r.ts.expect("every row has a time");
        let counts = per_window.entry((ts - ts.rem_euclid(1000), r.v.map(|v| v % 3))).or_default();
        if let Some(k) = &r.k {
            *counts.entry(k.clone()).or_default() += 1;
        }
    }
    let mut want: Vec<String> = per_window.iter().map(|((ws, m), c)| format!("{ws}|{m:?}|{c:?}")).collect();
    want.sort();
    let query = "SELECT window_start, v % 3 AS m, COLLECT(k) AS ks FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' SECOND)) \
                 GROUP BY window_start, window_end, v % 3";
    let out = run_window(&rows, 2, "window_start TIMESTAMP(3), m BIGINT, ks MAP<STRING, INT>", query);
    let mut got: Vec<String> = out
        .iter()
        .map(|r| {
            let ws = parse_timestamp(r["window_start"].as_str().expect("a window start"));
            let ks: Multiset = serde_json::from_value(r["ks"].clone()).expect("an object of counts");
            format!("{ws}|{:?}|{ks:?}", r["m"].as_i64())
        })
        .collect();
    got.sort();
    assert!(want.len() > 60, "too few windows to be a test: {}", want.len());
    assert_rows_eq(&got, &want, "COLLECT per window");
}

/// `JSON_ARRAYAGG` (NULLs absent by default, `null` with `NULL ON NULL`,
/// with a FILTER) and `JSON_OBJECTAGG` (NULL values `null` by default) per 1-second
/// TUMBLE window and key, at parallelism 1 (a key's rows arrive in time
/// order, the order of the array): built here from the input rows.
#[tokio::test]
async fn json_aggregates_per_window_as_flinks() {
    let rows = input_rows();
    type Parts = (Vec<String>, Vec<String>, Vec<String>, Vec<String>);
    let mut per_window: std::collections::BTreeMap<(i64, String), Parts> = Default::default();
    for r in &rows {
        let ts = r.ts.expect("every row has a time");
        let key = (ts - ts.rem_euclid(1000), r.k.clone().unwrap_or_else(|| "null".into()));
        let (absent, nulls, object, big) = per_window.entry(key).or_default();
        let v = r.v.map_or("null".to_string(), |v| v.to_string());
        if r.v.is_some() {
            absent.push(v.clone());
        }
        if r.v.is_some_and(|v| v > 500) {
            big.push(v.clone());
        }
        nulls.push(v.clone());
        let ms = ts - T0;
        object.push(format!(
            "\"{:02}:{:02}:{:02}.{:03}\":{v}",
            ms / 3_600_000,
            ms / 60_000 % 60,
            ms / 1000 % 60,
            ms % 1000
        ));
    }
    let want: Vec<String> = per_window
        .iter()
        .map(|((ws, k), (absent, nulls, object, big))| {
            format!(
                "{ws}|{k}|[{}]|[{}]|{{{}}}|[{}]",
                absent.join(","),
                nulls.join(","),
                object.join(","),
                big.join(",")
            )
        })
        .collect();
    let query = "SELECT window_start, k, JSON_ARRAYAGG(v) AS a, JSON_ARRAYAGG(v NULL ON NULL) AS an, \
                 JSON_OBJECTAGG(KEY DATE_FORMAT(ts, 'HH:mm:ss.SSS') VALUE v) AS o, \
                 JSON_ARRAYAGG(v) FILTER (WHERE v > 500) AS big \
                 FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY window_start, window_end, k";
    let out =
        run_window(&rows, 1, "window_start TIMESTAMP(3), k VARCHAR, a STRING, an STRING, o STRING, big STRING", query);
    let text = |v: &serde_json::Value| v.as_str().map_or("null".to_string(), String::from);
    let mut got: Vec<String> = out
        .iter()
        .map(|r| {
            let ws = parse_timestamp(r["window_start"].as_str().expect("a window start"));
            format!("{ws}|{}|{}|{}|{}|{}", text(&r["k"]), text(&r["a"]), text(&r["an"]), text(&r["o"]), text(&r["big"]))
        })
        .collect();
    got.sort();
    let mut want = want;
    want.sort();
    assert!(want.len() > 600, "too few groups to be a test: {}", want.len());
    assert_rows_eq(&got, &want, "JSON_ARRAYAGG and JSON_OBJECTAGG per window");
}

/// `JSON_OBJECTAGG` without a window (an updating result), and a key that
/// comes twice failing the job as Flink's does.
#[tokio::test]
async fn json_objectagg_per_key_and_its_repeated_keys() {
    let rows = input_rows();
    let mut per_key: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for r in &rows {
        let ms = r.ts.expect("every row has a time") - T0;
        let v = r.v.map_or("null".to_string(), |v| v.to_string());
        if r.v.is_some() {
            per_key.entry(r.k.clone().unwrap_or_else(|| "null".into())).or_default().push(format!(
                "\"{:02}:{:02}:{:02}.{:03}\":{v}",
                ms / 3_600_000,
                ms / 60_000 % 60,
                ms / 1000 % 60,
                ms % 1000
            ));
        } else {
            per_key.entry(r.k.clone().unwrap_or_else(|| "null".into())).or_default();
        }
    }
    // The print sink's cells split at `, `; JSON has none.
    let mut want: Vec<String> = per_key.iter().map(|(k, o)| format!("{k}|{{{}}}", o.join(","))).collect();
    want.sort();
    let query =
        "SELECT k, JSON_OBJECTAGG(KEY DATE_FORMAT(ts, 'HH:mm:ss.SSS') VALUE v ABSENT ON NULL) AS o FROM t GROUP BY k";
    let run = run(&rows, 2, "k VARCHAR, o STRING", query);
    let (got, _) = apply_changelog(&run.stdout, 1);
    assert_rows_eq(&got, &want, "JSON_OBJECTAGG per key");

    let dir = scratch();
    write_input(dir.path(), &rows);
    let out =
        run_failing(dir.path(), &job(dir.path(), ONE, "o STRING", "SELECT JSON_OBJECTAGG(KEY 'same' VALUE v) FROM t"));
    assert!(out.contains("occurs more than once"), "{out}");
}
