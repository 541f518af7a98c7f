//! Top-N, window Top-N and deduplication (`ROW_NUMBER() OVER (…)` bounded
//! by a filter), end to end through the `weir` binary on disordered input,
//! at parallelism 1 and 4, against DataFusion's batch answer over the same
//! rows (its `ROW_NUMBER()` computes the ranks directly). Values are unique
//! so that ranks do not depend on arrival order. Append-only results go
//! to files, and so also run killed and restored from their checkpoint.

use crate::common;

use std::collections::BTreeMap;

use common::*;

/// 3 000 rows over 40 keys, values and times unique, disordered.
fn rows() -> Vec<Row> {
    disordered_rows(41, 3000, 40)
}

/// Flink's NULL order in DataFusion's terms (Calcite's LOW collation).
const DESC: &str = "DESC NULLS LAST";

/// [`changes_end_in`] over [`rows`].
async fn ends_in(
    oracle: &str,
    sink: &str,
    query: &str,
    key_len: usize,
    parallelism: &[usize],
) -> Vec<BTreeMap<String, usize>> {
    changes_end_in(&rows(), oracle, sink, query, key_len, parallelism).await
}

fn count(kinds: &BTreeMap<String, usize>, kind: &str) -> usize {
    kinds.get(kind).copied().unwrap_or(0)
}

/// Each rank of a key is a row (key and rank), updated in place as better
/// rows come.
#[tokio::test]
async fn top_n_per_key_ends_in_the_batch_ranking() {
    let kinds = ends_in(
        &format!("SELECT k, rn, v FROM (SELECT k, v, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v {DESC}) AS rn FROM t) WHERE rn <= 3"),
        "k VARCHAR, rn BIGINT, v BIGINT",
        "SELECT k, rn, v FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v DESC) AS rn FROM t) WHERE rn <= 3",
        2,
        &[1, 4],
    )
    .await;
    assert!(
        kinds.iter().all(|k| count(k, "-U") > 0),
        "ranks moved as better rows came: {kinds:?}"
    );
}

/// Without the number (Flink's Top-N without rank number), rows enter as
/// `+I` and leave as `-D`.
#[tokio::test]
async fn top_n_without_the_number_inserts_and_deletes_rows() {
    let kinds = ends_in(
        &format!("SELECT k, v FROM (SELECT k, v, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v {DESC}) AS rn FROM t) WHERE rn <= 2"),
        "k VARCHAR, v BIGINT",
        "SELECT k, v FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v DESC) AS rn FROM t) WHERE rn <= 2",
        0,
        &[1, 4],
    )
    .await;
    assert!(
        kinds
            .iter()
            .all(|k| k.keys().all(|k| k == "+I" || k == "-D") && count(k, "-D") > 0),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn a_global_top_n_and_a_range_of_ranks() {
    ends_in(
        &format!("SELECT rn, k, v FROM (SELECT k, v, ROW_NUMBER() OVER (ORDER BY v {DESC}, k) AS rn FROM t) WHERE rn > 2 AND rn <= 5"),
        "rn BIGINT, k VARCHAR, v BIGINT",
        "SELECT rn, k, v FROM (SELECT *, ROW_NUMBER() OVER (ORDER BY v DESC, k) AS rn FROM t) WHERE 5 >= rn AND rn > 2",
        1,
        &[2],
    )
    .await;
}

/// Over an updating input (a GROUP BY's results) a rank's row can leave
/// and the next one move up: every row is kept, retractions take back.
#[tokio::test]
async fn top_n_over_an_updating_result() {
    let kinds = ends_in(
        &format!(
            "SELECT rn, k, n FROM (SELECT k, n, ROW_NUMBER() OVER (ORDER BY n {DESC}, k) AS rn
               FROM (SELECT k, SUM(v) - 1500 * COUNT(*) AS n FROM t GROUP BY k)) WHERE rn <= 3"
        ),
        "rn BIGINT, k VARCHAR, n BIGINT",
        "SELECT rn, k, n FROM (SELECT *, ROW_NUMBER() OVER (ORDER BY n DESC, k) AS rn
           FROM (SELECT k, SUM(v) - 1500 * COUNT(*) AS n FROM t GROUP BY k)) WHERE rn <= 3",
        1,
        &[1, 4],
    )
    .await;
    assert!(kinds.iter().all(|k| count(k, "-U") > 0), "{kinds:?}");
}

/// Replacing a key's row is an update, as Flink's deduplication.
#[tokio::test]
async fn keep_last_by_event_time_is_an_updating_result() {
    let kinds = ends_in(
        "SELECT k, v FROM (SELECT k, v, ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts DESC) AS rn FROM t) WHERE rn = 1",
        "k VARCHAR, v BIGINT",
        "SELECT k, v FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts DESC) AS rn FROM t) WHERE rn = 1",
        1,
        &[1, 4],
    )
    .await;
    assert!(
        kinds.iter().all(|k| count(k, "+U") > 0 && count(k, "-D") == 0),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn keep_first_by_event_time_is_append_only_and_survives_a_kill() {
    let rows = rows();
    let expected = oracle_lines(
        &rows,
        "SELECT k, v, CAST(ts AS BIGINT), rn FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts) AS rn FROM t) WHERE rn = 1",
    )
    .await;
    for parallelism in [1, 4] {
        let (dir, run) = run_kvt(
            &rows,
            parallelism,
            "k VARCHAR, v BIGINT, ts TIMESTAMP(3), rn BIGINT",
            "files",
            "SELECT k, v, ts, rn FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts ASC) AS rn FROM t) WHERE rn <= 1",
        );
        assert_rows_eq(
            &committed_lines(dir.path(), &["k", "v", "ts", "rn"]),
            &expected,
            &format!("first row per key at parallelism {parallelism}"),
        );
        assert_eq!(run.counted("late rows"), 0);
    }
}

/// A row earlier than its key's emitted first row, behind the watermark,
/// is late (counted, and sent to `LATE DATA INTO`); a later one is a
/// duplicate (dropped silently).
#[test]
fn keep_first_counts_an_earlier_row_behind_the_watermark_as_late() {
    let dir = scratch();
    let row = |k: &str, v: i64, s: i64| Row {
        k: Some(k.into()),
        v: Some(v),
        ts: Some(T0 + s * 1000),
    };
    let rows = [
        row("a", 1, 10),
        row("a", 2, 12),
        row("b", 3, 20),
        row("a", 4, 9),
        row("a", 5, 30),
    ];
    write_input_files(dir.path(), &rows);
    let late = dir.path().join("late");
    let sql = kvt_job(
        dir.path(),
        1,
        "k VARCHAR, v BIGINT",
        "files",
        "SELECT k, v FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts) AS rn FROM t) WHERE rn = 1
         LATE DATA INTO late_rows",
    )
    .replace(
        "INSERT INTO out",
        &format!(
            "CREATE TABLE late_rows (k VARCHAR, v BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');\nINSERT INTO out",
            late.display()
        ),
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(committed_lines(dir.path(), &["k", "v"]), vec!["a|1", "b|3"]);
    assert_eq!(run.counted("late rows"), 1, "{}", run.stderr);
    let side: Vec<String> = read_sink(&late)
        .iter()
        .map(|r| format!("{}|{}", r["k"], r["v"]))
        .collect();
    assert_eq!(side, vec!["\"a\"|4"], "the late row in the side table");
}

fn window_start_sql(size_ms: i64) -> String {
    format!(
        "CAST(arrow_cast(date_bin(INTERVAL '{size_ms} milliseconds', ts, to_timestamp_millis(0)), 'Timestamp(Millisecond, None)') AS BIGINT)"
    )
}

#[tokio::test]
async fn window_top_n_over_a_window_tvf_fires_once_per_window() {
    let rows = rows();
    let ws = window_start_sql(2000);
    let expected = oracle_lines(
        &rows,
        &format!(
            "SELECT ws, ws + 2000, k, v, rn FROM (SELECT {ws} AS ws, k, v, ROW_NUMBER() OVER (PARTITION BY {ws} ORDER BY v {DESC}) AS rn FROM t) WHERE rn <= 3"
        ),
    )
    .await;
    for parallelism in [1, 4] {
        let (dir, run) = run_kvt(
            &rows,
            parallelism,
            "window_start TIMESTAMP(3), window_end TIMESTAMP(3), k VARCHAR, v BIGINT, rn BIGINT",
            "files",
            "SELECT window_start, window_end, k, v, rn FROM (
               SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY v DESC) AS rn
               FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '2' SECOND))) WHERE rn <= 3",
        );
        assert_rows_eq(
            &committed_lines(dir.path(), &["window_start", "window_end", "k", "v", "rn"]),
            &expected,
            &format!("top 3 per window at parallelism {parallelism}"),
        );
        assert_eq!(run.counted("late rows"), 0);
    }
}

#[tokio::test]
async fn window_top_n_over_a_window_aggregation() {
    let rows = rows();
    let ws = window_start_sql(5000);
    let expected = oracle_lines(
        &rows,
        &format!(
            "SELECT ws, k, s, rn FROM (SELECT ws, k, s, ROW_NUMBER() OVER (PARTITION BY ws ORDER BY s {DESC}, k) AS rn
               FROM (SELECT {ws} AS ws, k, SUM(v) AS s FROM t GROUP BY 1, k)) WHERE rn <= 2"
        ),
    )
    .await;
    for parallelism in [1, 4] {
        let (dir, _run) = run_kvt(
            &rows,
            parallelism,
            "window_start TIMESTAMP(3), k VARCHAR, s BIGINT, rn BIGINT",
            "files",
            "SELECT window_start, k, s, rn FROM (
               SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY s DESC, k) AS rn FROM (
                 SELECT window_start, window_end, k, SUM(v) AS s
                 FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '5' SECOND))
                 GROUP BY window_start, window_end, k)) WHERE rn <= 2",
        );
        assert_rows_eq(
            &committed_lines(dir.path(), &["window_start", "k", "s", "rn"]),
            &expected,
            &format!("top 2 keys per window at parallelism {parallelism}"),
        );
    }
}

/// Over a window aggregation with `ALLOWED LATENESS`, a late row within
/// the lateness re-fires its window's result, which replaces its group's
/// row in the ranking; the changed ranks leave as updates. Applied in
/// order, the changes end in the batch ranking of the final results (rows
/// later than the lateness left out, as the window aggregation does).
#[tokio::test]
async fn window_top_n_follows_re_fired_windows_within_their_lateness() {
    let mut g = Lcg(47);
    let mut rows: Vec<Row> = (0..900)
        .map(|i| Row {
            k: Some(format!("k{}", g.below(6))),
            v: Some(g.below(1000) as i64),
            ts: Some(T0 + i * 20),
        })
        .collect();
    // Every 13th row comes 2.5 to 9 s late: some within the 3 s of lateness
    // past the 2 s delay, some beyond.
    for i in (40..rows.len()).step_by(13) {
        rows[i].ts = rows[i].ts.map(|t| t - 2_500 - g.below(6_500) as i64);
    }
    let shape = Shape::Tumble { size: 2_000, offset: 0 };
    let decided = decide(&rows, shape, 2_000, 3_000, (i64::MIN, i64::MAX));
    assert!(decided.late.len() > 3, "some rows are beyond the lateness");
    let ctx = datafusion::prelude::SessionContext::new();
    let schema = std::sync::Arc::new(datafusion::arrow::datatypes::Schema::new(vec![
        datafusion::arrow::datatypes::Field::new("ws", datafusion::arrow::datatypes::DataType::Int64, false),
        datafusion::arrow::datatypes::Field::new("k", datafusion::arrow::datatypes::DataType::Utf8, true),
        datafusion::arrow::datatypes::Field::new("v", datafusion::arrow::datatypes::DataType::Int64, true),
    ]));
    let columns: Vec<datafusion::arrow::array::ArrayRef> = vec![
        std::sync::Arc::new(datafusion::arrow::array::Int64Array::from_iter_values(
            decided.assigned.iter().map(|a| a.0),
        )),
        std::sync::Arc::new(datafusion::arrow::array::StringArray::from_iter(
            decided.assigned.iter().map(|a| a.2.k.clone()),
        )),
        std::sync::Arc::new(datafusion::arrow::array::Int64Array::from_iter(
            decided.assigned.iter().map(|a| a.2.v),
        )),
    ];
    ctx.register_batch(
        "w",
        datafusion::arrow::array::RecordBatch::try_new(schema, columns).unwrap(),
    )
    .unwrap();
    let batches = ctx
        .sql(&format!(
            "SELECT ws, rn, k, s FROM (SELECT ws, k, s, ROW_NUMBER() OVER (PARTITION BY ws ORDER BY s {DESC}, k) AS rn
               FROM (SELECT ws, k, SUM(v) AS s FROM w GROUP BY ws, k)) WHERE rn <= 2"
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut expected = normalize_batches(&batches);
    expected.sort();
    // Files of 100 rows, read one after the other: the job's watermark
    // moves between them, so windows fire and re-fire as the rows come.
    let dir = scratch();
    write_input_files(dir.path(), &rows);
    let run = weir_run(
        dir.path(),
        &kvt_job(
            dir.path(),
            1,
            "window_start TIMESTAMP(3), rn BIGINT, k VARCHAR, s BIGINT",
            "print",
            "SELECT window_start, rn, k, s FROM (
               SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY s DESC, k) AS rn FROM (
                 SELECT window_start, window_end, k, SUM(v) AS s
                 FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '2' SECOND))
                 GROUP BY window_start, window_end, k)) WHERE rn <= 2
             ALLOWED LATENESS INTERVAL '3' SECOND",
        ),
    );
    assert!(run.ok, "{}", run.stderr);
    // Rows are told apart by their window and rank.
    let (got, kinds) = apply_changelog(&run.stdout, 2);
    let mut got: Vec<String> = got
        .iter()
        .map(|l| {
            let (ws, rest) = l.split_once('|').unwrap();
            format!("{}|{rest}", parse_timestamp(ws))
        })
        .collect();
    got.sort();
    assert_rows_eq(&got, &expected, "the top 2 per window after re-fires");
    assert!(
        kinds.get("+U").copied().unwrap_or(0) > 0,
        "re-fires changed ranks: {kinds:?}"
    );
    assert_eq!(run.counted("late rows"), decided.late.len() as u64);
}

/// Ordered by a `PROCTIME()` column, a deduplication goes by arrival: the
/// first row of each key stays (append-only: only `+I`), or the latest
/// replaces it (`-U`/`+U`). At parallelism 1 the files are read one after
/// the other, each a batch: rows arrive in file order.
#[test]
fn deduplication_by_arrival_keeps_the_first_or_the_latest_row() {
    let rows = rows();
    let mut first: BTreeMap<String, i64> = BTreeMap::new();
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    for r in &rows {
        let (k, v) = (r.k.clone().unwrap(), r.v.unwrap());
        first.entry(k.clone()).or_insert(v);
        last.insert(k, v);
    }
    for (order, want) in [("ASC", &first), ("DESC", &last)] {
        let dir = scratch();
        write_input_files(dir.path(), &rows);
        let sql = format!(
            "CREATE TABLE t (k VARCHAR, v BIGINT, ts TIMESTAMP(3), proc AS PROCTIME())
               WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
             CREATE TABLE out (k VARCHAR, v BIGINT) WITH ('connector' = 'print');
             INSERT INTO out SELECT k, v FROM (
               SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY proc {order}) AS rn FROM t) WHERE rn = 1;",
            dir.path().join("in").display()
        );
        let run = weir_run(dir.path(), &sql);
        assert!(run.ok, "{}", run.stderr);
        let (got, kinds) = apply_changelog(&run.stdout, 1);
        let mut want: Vec<String> = want.iter().map(|(k, v)| format!("{k}|{v}")).collect();
        want.sort();
        assert_eq!(got, want, "ORDER BY proc {order}");
        match order {
            "ASC" => assert_eq!(kinds.keys().collect::<Vec<_>>(), ["+I"], "keep-first appends"),
            _ => assert!(count(&kinds, "+U") > 0, "keep-last updates: {kinds:?}"),
        }
    }
}

/// NULL ranks as Flink's default collation puts it: last descending,
/// first ascending.
#[test]
fn null_ranks_last_descending_and_first_ascending() {
    let rows = [
        Row {
            k: Some("a".into()),
            v: None,
            ts: Some(T0),
        },
        Row {
            k: Some("a".into()),
            v: Some(1),
            ts: Some(T0 + 1),
        },
    ];
    for (order, first) in [("DESC", "a|1"), ("ASC", "a|null")] {
        let dir = scratch();
        write_input_files(dir.path(), &rows);
        let query = format!(
            "SELECT k, v FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v {order}) AS rn FROM t) WHERE rn = 1"
        );
        let run = weir_run(
            dir.path(),
            &kvt_job(dir.path(), 1, "k VARCHAR, v BIGINT", "print", &query),
        );
        assert!(run.ok, "{}", run.stderr);
        let (got, _) = apply_changelog(&run.stdout, 1);
        assert_eq!(got, vec![first], "ORDER BY v {order}: {}", run.stdout);
    }
}

#[test]
fn what_a_ranking_cannot_be_is_refused_with_the_place() {
    // Where the function is: line 5 (the INSERT), its column.
    let at = |query: &str, what: &str| {
        format!(
            "job.sql:5:{}:",
            "INSERT INTO out ".len() + query.find(what).unwrap() + 1
        )
    };
    let q = "SELECT k, v FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY k) AS rn FROM t) WHERE rn = 1";
    let e = kvt_failing(&rows(), q);
    assert!(e.contains(&at(q, "ROW_NUMBER")) && e.contains("needs ORDER BY"), "{e}");
    let e = kvt_failing(
        &rows(),
        "SELECT k, v FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v) AS rn FROM t)",
    );
    assert!(e.contains("must be bounded by a filter"), "{e}");
    let e = kvt_failing(
        &rows(),
        "SELECT k, v FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v) AS rn FROM t) WHERE rn > 2",
    );
    assert!(e.contains("needs an upper bound"), "{e}");
    let q = "SELECT k, SUM(v) OVER (PARTITION BY k) FROM t";
    let e = kvt_failing(&rows(), q);
    assert!(
        e.contains(&at(q, "SUM")) && e.contains("needs ORDER BY in a streaming query: its time attribute"),
        "{e}"
    );
}
