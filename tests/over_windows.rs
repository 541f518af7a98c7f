//! OVER aggregation and LAG end to end through the `weir` binary, on
//! disordered input at parallelism 1 and 4, against DataFusion's batch
//! window functions over the same rows. Rows leave once the watermark
//! passes them, into files, so every job also runs killed and restored.

use crate::common;

use common::*;

/// 3 000 rows over 40 keys, values and times unique, disordered.
fn rows() -> Vec<Row> {
    disordered_rows(43, 3000, 40)
}

/// Flink's integer AVG: the sum divided by the count, truncated.
fn flink_avg(window: &str) -> String {
    format!("SUM(v) OVER {window} / COUNT(v) OVER {window}")
}

#[tokio::test]
async fn rows_and_range_frames_end_in_the_batch_answer() {
    let rows = rows();
    let rows3 = "(PARTITION BY k ORDER BY ts ROWS BETWEEN 3 PRECEDING AND CURRENT ROW)";
    let range = "(PARTITION BY k ORDER BY ts RANGE BETWEEN INTERVAL '2' SECOND PRECEDING AND CURRENT ROW)";
    let all = "(PARTITION BY k ORDER BY ts)";
    let expected = oracle_lines(
        &rows,
        &format!(
            "SELECT k, v, SUM(v) OVER {rows3}, MIN(v) OVER {rows3}, MAX(v) OVER {range}, COUNT(*) OVER {range},
                    {}, LAG(v, 2, -1) OVER {all} FROM t",
            flink_avg(all)
        ),
    )
    .await;
    for parallelism in [1, 4] {
        let (dir, run) = run_kvt(
            &rows,
            parallelism,
            "k VARCHAR, v BIGINT, s BIGINT, mn BIGINT, mx BIGINT, c BIGINT, a BIGINT, l BIGINT",
            "files",
            "SELECT k, v, SUM(v) OVER r3, MIN(v) OVER r3, MAX(v) OVER r2s, COUNT(*) OVER r2s, AVG(v) OVER w, LAG(v, 2, -1) OVER w
             FROM t
             WINDOW r3 AS (PARTITION BY k ORDER BY ts ROWS BETWEEN 3 PRECEDING AND CURRENT ROW),
                    r2s AS (PARTITION BY k ORDER BY ts RANGE BETWEEN INTERVAL '2' SECOND PRECEDING AND CURRENT ROW),
                    w AS (PARTITION BY k ORDER BY ts)",
        );
        assert_rows_eq(
            &committed_lines(dir.path(), &["k", "v", "s", "mn", "mx", "c", "a", "l"]),
            &expected,
            &format!("OVER windows at parallelism {parallelism}"),
        );
        assert_eq!(run.counted("late rows"), 0);
    }
}

/// Rows with equal times are peers of a RANGE frame: each sees all of them.
#[tokio::test]
async fn range_peers_share_their_values_and_a_global_window_runs_on_one_subtask() {
    let mut rows = rows();
    for r in rows.iter_mut() {
        r.ts = r.ts.map(|t| t - t % 50);
    }
    let expected = oracle_lines(
        &rows,
        "SELECT v, SUM(v) OVER (ORDER BY ts RANGE BETWEEN INTERVAL '0.2' SECOND PRECEDING AND CURRENT ROW),
                COUNT(*) OVER (ORDER BY ts) FROM t",
    )
    .await;
    let (dir, _run) = run_kvt(
        &rows,
        4,
        "v BIGINT, s BIGINT, c BIGINT",
        "files",
        "SELECT v, SUM(v) OVER (ORDER BY ts RANGE BETWEEN INTERVAL '0.2' SECOND PRECEDING AND CURRENT ROW),
                COUNT(*) OVER (ORDER BY ts) FROM t",
    );
    assert_rows_eq(
        &committed_lines(dir.path(), &["v", "s", "c"]),
        &expected,
        "RANGE peers over all rows",
    );
}

/// A row behind the watermark when it arrives cannot be put in order: it
/// is late, counted and left out, as Flink does — and with `LATE DATA
/// INTO`, written to the side table with the reason.
#[test]
fn a_row_behind_the_watermark_is_late() {
    let dir = scratch();
    let row = |v: i64, s: i64| Row {
        k: Some("a".into()),
        v: Some(v),
        ts: Some(T0 + s * 1000),
    };
    write_input_files(dir.path(), &[row(1, 10), row(2, 20), row(3, 11), row(4, 30)]);
    let late = dir.path().join("late");
    let sql = kvt_job(
        dir.path(),
        1,
        "v BIGINT, s BIGINT",
        "files",
        "SELECT v, SUM(v) OVER (PARTITION BY k ORDER BY ts) FROM t LATE DATA INTO late_rows",
    )
    .replace(
        "INSERT INTO out",
        &format!(
            "CREATE TABLE late_rows (v BIGINT, reason VARCHAR) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');\nINSERT INTO out",
            late.display()
        ),
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(committed_lines(dir.path(), &["v", "s"]), vec!["1|1", "2|3", "4|7"]);
    assert_eq!(run.counted("late rows"), 1);
    let side: Vec<String> = read_sink(&late)
        .iter()
        .map(|r| format!("{}|{}", r["v"], r["reason"]))
        .collect();
    assert_eq!(side, vec!["3|\"late\""]);
}

#[test]
fn what_an_over_window_cannot_be_is_refused() {
    let e = kvt_failing(&rows(), "SELECT k, SUM(v) OVER (PARTITION BY k ORDER BY v) FROM t");
    assert!(
        e.contains("not ordered by a time attribute") && e.contains("('ts')"),
        "{e}"
    );
    let e = kvt_failing(
        &rows(),
        "SELECT k, SUM(v) OVER (PARTITION BY k ORDER BY ts ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING) FROM t",
    );
    assert!(e.contains("ends at CURRENT ROW"), "{e}");
    let e = kvt_failing(&rows(), "SELECT k, LEAD(v) OVER (PARTITION BY k ORDER BY ts) FROM t");
    assert!(e.contains("LEAD over a stream"), "{e}");
    let e = kvt_failing(
        &rows(),
        "SELECT k, SUM(v) OVER (PARTITION BY k ORDER BY ts DESC) FROM t",
    );
    assert!(e.contains("not ordered by a time attribute ascending"), "{e}");
}
