//! Asynchronous snapshots (`checkpoint::snapshot`): a task's snapshot is
//! encoded and written off its loop while the stream goes on. A write that
//! fails abandons that checkpoint only, a slow one completes it later, a
//! kill in the middle of writes resumes from the checkpoint before; rows
//! processed while a write is in flight never reach that checkpoint. Each
//! run commits exactly what DataFusion computes over the same rows.

use crate::common;

use std::time::Duration;

use common::*;

const SINK: &str = "k VARCHAR, window_start TIMESTAMP(3), c BIGINT, s BIGINT, mx BIGINT";

/// Hopping windows: every row is in two windows, so state after a barrier
/// changes groups the checkpoint also holds.
const QUERY: &str = "SELECT k, window_start, count(*) AS c, sum(v) AS s, max(v) AS mx
FROM TABLE(HOP(TABLE t, DESCRIPTOR(ts), INTERVAL '1' SECOND, INTERVAL '2' SECOND))
GROUP BY k, window_start, window_end";

/// The same windows over the whole input, in DataFusion: each row counts
/// toward the window starting at its second and the one before.
const ORACLE: &str = "SELECT k, w, count(*), sum(v), max(v) FROM (
  SELECT k, v, CAST(date_bin(INTERVAL '1 second', ts) AS BIGINT) AS w FROM t
  UNION ALL
  SELECT k, v, CAST(date_bin(INTERVAL '1 second', ts) AS BIGINT) - 1000 AS w FROM t
) GROUP BY 1, 2";

const COLUMNS: &[&str] = &["k", "window_start", "c", "s", "mx"];

/// Rows over 4000 keys (many groups per checkpoint) and DataFusion's
/// answer over them.
fn rows_and_expected() -> (Vec<Row>, Vec<String>) {
    let rows = disordered_rows(23, 600_000, 4000);
    let expected = tokio::runtime::Runtime::new().unwrap().block_on(oracle_lines(&rows, ORACLE));
    assert!(expected.len() > 1000, "{}", expected.len());
    (rows, expected)
}

/// `rows` as 40 files (partitions) under `dir/in`.
fn input(dir: &std::path::Path, rows: &[Row]) {
    std::fs::create_dir_all(dir.join("in")).unwrap();
    for (i, chunk) in rows.chunks(rows.len().div_ceil(40)).enumerate() {
        write_json(&dir.join("in").join(format!("part-{i:02}.json")), chunk);
    }
}

/// The job, checkpointing every 50 ms, restarting after failures.
fn job(dir: &std::path::Path) -> String {
    format!(
        "SET 'execution.checkpointing.interval' = '50 ms';
SET 'restart-strategy.type' = 'fixed-delay';
SET 'restart-strategy.fixed-delay.attempts' = '10';
SET 'restart-strategy.fixed-delay.delay' = '20 ms';
{}",
        kvt_job(dir, 2, SINK, "filesystem", QUERY)
    )
}

fn env(failpoints: &str) -> Vec<(String, String)> {
    vec![("FAILPOINTS".to_string(), failpoints.to_string())]
}

/// Restarts `weir run` reported.
fn restarts(run: &Run) -> usize {
    run.stderr.matches("the job restarts from its latest checkpoint").count()
}

/// Writes that fail abandon their checkpoint and the job goes on (no
/// restart for them); slow writes complete their checkpoint later. A sink
/// failure afterwards restarts the job from a checkpoint completed after
/// those: the output is the uninterrupted computation's.
#[test]
fn failed_and_slow_snapshot_writes_fail_their_checkpoint_only() {
    let (rows, expected) = rows_and_expected();
    let dir = scratch();
    input(dir.path(), &rows);
    // The first write fails (the first checkpoint is abandoned), the two
    // after it are slow; the sink fails once, at the third checkpoint's
    // barrier (two sinks pass the point at each), which the coordinator
    // starts only once the second completed.
    let failpoints = "weir::checkpoint::write=1*return->2*sleep(150)->off;\
weir::sink::barrier=4*off->1*return(out)->off;weir::sink::write=sleep(1)";
    let run = run_once_with(dir.path(), &job(dir.path()), &env(failpoints));
    assert!(run.ok, "{}", run.stderr);
    assert!(run.stderr.contains("failpoint weir::checkpoint::write"), "no write failed:\n{}", run.stderr);
    assert!(
        run.stderr.contains("checkpoint abandoned: a task's state was not written"),
        "a failed write did not abandon its checkpoint:\n{}",
        run.stderr
    );
    assert_eq!(restarts(&run), 1, "only the sink's failure restarts the job:\n{}", run.stderr);
    assert!(run.stderr.contains("job restarted: resumed from checkpoint"), "never from a checkpoint:\n{}", run.stderr);
    assert_rows_eq(&committed_lines(dir.path(), COLUMNS), &expected, "failed and slow writes");
    assert!(hidden_files(&dir.path().join("out")).is_empty(), "uncommitted files left behind");
}

/// Every write is slow, so the window keeps folding rows into the groups a
/// checkpoint holds while that checkpoint is written; restarts from those
/// checkpoints (sink failures now and then) and a kill while writes are in
/// flight both end with the uninterrupted computation's output: nothing
/// after a barrier leaked into its checkpoint.
#[test]
fn state_changed_after_the_barrier_stays_out_of_the_checkpoint() {
    let (rows, expected) = rows_and_expected();
    let dir = scratch();
    input(dir.path(), &rows);
    let slow = "weir::checkpoint::write=sleep(80);weir::sink::write=sleep(2)";
    let failing = format!("{slow};weir::sink::barrier=3*off->1*return(out)->1*off->1*return(out)->off");
    let run = run_once_with(dir.path(), &job(dir.path()), &env(&failing));
    assert!(run.ok, "{}", run.stderr);
    assert!(restarts(&run) >= 2, "{} restarts:\n{}", restarts(&run), run.stderr);
    assert!(run.stderr.contains("job restarted: resumed from checkpoint"), "never from a checkpoint:\n{}", run.stderr);
    assert_rows_eq(&committed_lines(dir.path(), COLUMNS), &expected, "restarts from slow writes");

    // Killed once (SIGKILL) with writes in flight, then run to the end.
    let dir = scratch();
    input(dir.path(), &rows);
    let sql_file = dir.path().join("job.sql");
    std::fs::write(&sql_file, job(dir.path())).unwrap();
    let killed = killed_after_with(dir.path(), &sql_file, Duration::from_millis(1500), &env(slow), &mut || {});
    let last = run_once(dir.path(), &job(dir.path()));
    assert!(last.ok, "{}", last.stderr);
    assert_rows_eq(&committed_lines(dir.path(), COLUMNS), &expected, &format!("after a kill (killed: {killed})"));
    assert!(hidden_files(&dir.path().join("out")).is_empty(), "uncommitted files left behind");
}
