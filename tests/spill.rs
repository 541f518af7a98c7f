//! The spilling state backend end to end: Flink's `SET
//! 'state.backend.type' = 'rocksdb'` with a `state.memory.budget` far below
//! the windows' state makes the window aggregate spill to local disk, and
//! the committed output still equals DataFusion's batch computation over
//! the same rows — at parallelism 2, for every kind of window, and after a
//! kill and a restore from checkpoints of spilled state (`weir_run` runs
//! each job a second time, killed midway).

use crate::common;
use crate::joins::{INTERVAL_COLUMNS, INTERVAL_OUT, oracle, output_lines, run_join, side_rows, tables};
use crate::windows::run_windows;

use common::*;

const SPILLING: &str = "SET 'state.backend.type' = 'rocksdb';
SET 'state.memory.budget' = '64 kb';
SET 'parallelism.default' = '2';";

/// Dense rows: 3 000 keys within each 10 s window, so that a window's
/// state is many times a subtask's 32 KB share of the budget.
fn dense_rows(n: usize, seed: u64) -> Vec<Row> {
    let mut g = Lcg(seed);
    let mut ts = T0;
    (0..n)
        .map(|_| {
            ts += g.below(4) as i64;
            Row { k: Some(format!("k{}", g.below(3_000))), v: Some(g.below(50) as i64), ts: Some(ts) }
        })
        .collect()
}

#[tokio::test]
async fn windows_spilled_to_disk_equal_the_batch_oracle() {
    let rows = dense_rows(30_000, 81);
    for (window, shape) in [
        ("TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '10' SECOND)", Shape::Tumble { size: 10_000, offset: 0 }),
        (
            "HOP(TABLE src, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '15' SECOND)",
            Shape::Hop { slide: 5_000, size: 15_000 },
        ),
        (
            "CUMULATE(TABLE src, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '20' SECOND)",
            Shape::Cumulate { step: 5_000, max: 20_000 },
        ),
    ] {
        let (expected, late) = oracle_results(&rows, shape, 2_000).await;
        assert_eq!(late, 0);
        let (got, run) = run_windows(std::slice::from_ref(&rows), window, SPILLING);
        assert!(expected.len() > 10_000, "{window}: too few groups to spill: {}", expected.len());
        assert_rows_eq(&got, &expected, window);
        assert!(run.counted("bytes of state spilled to disk") > 64 << 10, "{window}: {}", run.stderr);
    }
}

/// The same job under the default backend spills nothing and says so by
/// saying nothing.
#[tokio::test]
async fn the_default_backend_keeps_state_in_memory() {
    let rows = dense_rows(5_000, 82);
    let (_, run) = run_windows(
        &[rows],
        "TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '10' SECOND)",
        "SET 'state.memory.budget' = '64 kb';",
    );
    assert!(!run.stderr.contains("spilled"), "{}", run.stderr);
}

/// A full disk under the spill files fails the job with an error naming
/// the operator, the spill directory and the disk's error, and commits
/// nothing: no window is emitted with part of its state missing.
#[test]
fn a_full_disk_fails_the_spilling_job_with_the_disks_error() {
    let disk = common::tmpfs::Tmpfs::mount("64k");
    let dir = scratch();
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    write_json(&dir.path().join("in/part-00.json"), &dense_rows(30_000, 83));
    let settings = format!(
        "{SPILLING}\nSET 'execution.checkpointing.interval' = '0';\nSET 'state.dir' = '{}';",
        disk.path().display()
    );
    let sql =
        crate::windows::window_sql(dir.path(), "TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '10' SECOND)", &settings);
    let run = run_once(dir.path(), &sql);
    assert!(!run.ok, "the job finished on a full disk:\n{}", run.stderr);
    let spill_dir = disk.path().join("spill").display().to_string();
    assert!(run.stderr.contains(&format!("spilling state to {spill_dir}/")), "{}", run.stderr);
    assert!(run.stderr.contains("No space left on device"), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert!(read_sink(&dir.path().join("out")).is_empty(), "a failed job committed output");
}

/// SESSION windows buffer their rows until a session closes: under the
/// budget the newest buffered batches spill and are read back when their
/// sessions fire; the sessions equal the merging oracle's.
#[tokio::test]
async fn sessions_spilled_to_disk_equal_the_merging_oracle() {
    let rows = dense_rows(30_000, 84);
    let (assigned, late) = decide_sessions(&rows, 3_000, 2_000);
    let expected = aggregate(&assigned, Shape::Session).await;
    assert_eq!(late, 0);
    assert!(expected.len() > 3_000, "{} sessions", expected.len());
    let window = "SESSION(TABLE src PARTITION BY k, DESCRIPTOR(ts), INTERVAL '3' SECOND)";
    let (got, run) = run_windows(std::slice::from_ref(&rows), window, SPILLING);
    assert_rows_eq(&got, &expected, "sessions");
    assert!(run.counted("bytes of state spilled to disk") > 64 << 10, "{}", run.stderr);
}

/// GROUP BY without a window over 3 000 keys, each revisited many times:
/// under the budget the coldest groups spill and come back when their key
/// does, and the applied changelog ends in DataFusion's batch result,
/// also for an aggregate of that aggregate (Nexmark q4's shape), and after
/// a kill and a restore.
#[tokio::test]
async fn group_by_spilled_to_disk_ends_in_the_batch_result() {
    use crate::aggregates::{flink_avg, oracle, rounded, run_with};
    let rows = dense_rows(20_000, 85);
    let query = "SELECT k, count(*) AS n, sum(v) AS s, min(v) AS lo, max(v) AS hi, avg(v) AS a FROM t GROUP BY k";
    let want = rounded(oracle(&rows, &flink_avg(query, "v")).await, 5);
    let run = run_with(&rows, SPILLING, "k VARCHAR, n BIGINT, s BIGINT, lo BIGINT, hi BIGINT, a DOUBLE", query);
    let (got, _) = apply_changelog(&run.stdout, 1);
    assert_rows_eq(&rounded(got, 5), &want, "GROUP BY k");
    assert!(run.counted("bytes of state spilled to disk") > 64 << 10, "{}", run.stderr);

    let query = "SELECT hi % 7 AS bucket, count(*) AS keys, sum(hi) AS total \
                 FROM (SELECT k, max(v) AS hi FROM t GROUP BY k) GROUP BY hi % 7";
    let want = oracle(&rows, query).await;
    let run = run_with(&rows, SPILLING, "bucket BIGINT, keys BIGINT, total BIGINT", query);
    let (got, _) = apply_changelog(&run.stdout, 1);
    assert_rows_eq(&got, &want, "an aggregate of an aggregate");
    assert!(run.counted("bytes of state spilled to disk") > 64 << 10, "{}", run.stderr);
}

/// A Top-3 per key, a keep-last and a keep-first deduplication over 3 000
/// keys spill their partitions (most rows meet one spilled long before;
/// keep-first spills the keys whose first row has left) and end in
/// DataFusion's batch ranking of the same rows (kills and restores of
/// spilled rankings: `top_n.rs`'s file-sink jobs, whose restored twins
/// run spilled, and the engine's `rank::spill_tests`).
#[tokio::test]
async fn top_n_and_deduplication_spilled_to_disk_end_in_the_batch_ranking() {
    use crate::aggregates::{oracle, run_with};
    // 6 000 keys: a deduplication keeps one row's worth per key, which
    // read in time order (the input behind first) is little over a
    // subtask's share of the budget with half as many.
    let rows = disordered_rows(87, 40_000, 6_000);
    for (query, oracle_query, sink, key_len) in [
        (
            "SELECT k, rn, v FROM (SELECT k, v, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v DESC) AS rn FROM t) \
             WHERE rn <= 3",
            "SELECT k, rn, v FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v DESC NULLS LAST) AS rn \
             FROM t) WHERE rn <= 3",
            "k VARCHAR, rn BIGINT, v BIGINT",
            2,
        ),
        (
            "SELECT k, v FROM (SELECT k, v, ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts DESC) AS rn FROM t) \
             WHERE rn = 1",
            "SELECT k, v FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts DESC) AS rn FROM t) \
             WHERE rn = 1",
            "k VARCHAR, v BIGINT",
            1,
        ),
        (
            "SELECT k, v FROM (SELECT k, v, ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts) AS rn FROM t) WHERE rn = 1",
            "SELECT k, v FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts) AS rn FROM t) WHERE rn = 1",
            "k VARCHAR, v BIGINT",
            1,
        ),
    ] {
        let want = oracle(&rows, oracle_query).await;
        assert!(want.len() > 2_000, "too few rows to be a test: {}", want.len());
        let run = run_with(&rows, SPILLING, sink, query);
        let (got, _) = apply_changelog(&run.stdout, key_len);
        assert_rows_eq(&got, &want, query);
        assert!(run.counted("bytes of state spilled to disk") > 64 << 10, "{query}: {}", run.stderr);
    }
}

/// An interval join of ten minutes each way and a regular inner join, each
/// holding far more rows than the budget, spill their inner sides and end
/// in DataFusion's batch join of the same rows, through a kill and a
/// restore from checkpoints that list the spilled runs.
#[tokio::test]
async fn interval_and_regular_joins_spilled_to_disk_equal_the_batch_join() {
    let left = side_rows(20_000, 0, 1_000, 83);
    let right = side_rows(20_000, 0, 1_000, 84);
    let select = "SELECT L.k, L.v, L.ts, R.k, R.v, R.ts";
    for (from, least) in [
        (
            "FROM l L JOIN r R ON L.k = R.k AND R.ts BETWEEN L.ts - INTERVAL '10' MINUTE AND L.ts + INTERVAL '10' MINUTE",
            50_000,
        ),
        ("FROM l L JOIN r R ON L.k = R.k AND L.v < R.v + 5 AND L.v > R.v - 5", 2_000),
    ] {
        let sql = format!(
            "{}{SPILLING}\nINSERT INTO out {select} {from};",
            tables(std::path::Path::new("DIR"), INTERVAL_OUT)
        );
        let want = oracle(&left, &right, None, &format!("{select} {from}")).await;
        let (got, run) = run_join(&left, &right, &sql, &INTERVAL_COLUMNS);
        assert!(want.len() > least, "too few rows to be a test: {}", want.len());
        assert_rows_eq(&got, &want, from);
        assert_eq!(run.counted("late rows"), 0, "{from}");
        assert!(run.counted("bytes of state spilled to disk") > 64 << 10, "{from}: {}", run.stderr);
    }
}

/// A restore that spills and finds no room on the disk fails its attempt
/// and keeps its checkpoint: a full disk is not damage, so the job neither
/// falls back to an older checkpoint nor sets its state aside, and once
/// there is room it resumes from its newest checkpoint, with exact output.
/// The spill directory (`state.dir`/spill) is a link to a small tmpfs, so
/// that the checkpoint store itself has room.
#[tokio::test]
async fn a_restore_without_room_to_spill_fails_and_resumes_once_there_is_room() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    const FULL: &str = "No space left on device";
    let (left, right) = (side_rows(20_000, 0, 1_000, 85), side_rows(20_000, 0, 1_000, 86));
    let select = "SELECT L.k, L.v, L.ts, R.k, R.v, R.ts";
    let from =
        "FROM l L JOIN r R ON L.k = R.k AND R.ts BETWEEN L.ts - INTERVAL '10' MINUTE AND L.ts + INTERVAL '10' MINUTE";
    let want = oracle(&left, &right, None, &format!("{select} {from}")).await;
    let dir = scratch();
    for (name, rows) in [("l", &left), ("r", &right)] {
        std::fs::create_dir_all(dir.path().join(name)).unwrap();
        write_json(&dir.path().join(name).join("part-0.json"), rows);
    }
    let state = dir.path().join("state");
    std::fs::write(
        dir.path().join("job.sql"),
        format!(
            "{}{SPILLING}\nSET 'execution.checkpointing.interval' = '50 ms';\nSET 'state.dir' = '{}';\n\
             INSERT INTO out {select} {from};",
            tables(dir.path(), INTERVAL_OUT),
            state.display()
        ),
    )
    .unwrap();
    let weir = |log: &str| {
        Command::new(env!("CARGO_BIN_EXE_weir"))
            .arg("run")
            .arg(dir.path().join("job.sql"))
            .current_dir(dir.path())
            .env("WEIR_LOG", "warn,weir_engine::checkpoint::coordinator=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join(log)).unwrap())
            .spawn()
            .unwrap()
    };
    let said = |log: &str| std::fs::read_to_string(dir.path().join(log)).unwrap_or_default();
    let completed = |log: &str| -> Vec<u64> {
        said(log)
            .lines()
            .filter_map(|l| l.split("checkpoint complete checkpoint=").nth(1))
            .filter_map(|rest| rest.split(' ').next()?.parse().ok())
            .collect()
    };

    // Half the right side through a pipe held open: the job checkpoints its
    // spilled state and waits for more, and is killed.
    let right_file = dir.path().join("r/part-0.json");
    let whole = std::fs::read_to_string(&right_file).unwrap();
    let half: String = whole.split_inclusive('\n').take(right.len() / 2).collect();
    std::fs::remove_file(&right_file).unwrap();
    assert!(Command::new("mkfifo").arg(&right_file).status().unwrap().success());
    let mut child = weir("first.log");
    let (fifo, done) = (right_file.clone(), std::sync::mpsc::channel::<()>());
    let feeder = std::thread::spawn(move || {
        let mut pipe = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        let _ = std::io::Write::write_all(&mut pipe, half.as_bytes());
        let _ = done.1.recv();
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while completed("first.log").len() < 5 {
        assert!(Instant::now() < deadline, "five checkpoints did not complete within a minute: {}", said("first.log"));
        assert!(
            child.try_wait().unwrap().is_none(),
            "the job ended while its input was held open: {}",
            said("first.log")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    done.0.send(()).unwrap();
    feeder.join().unwrap();
    let newest = completed("first.log").into_iter().max().unwrap();
    std::fs::remove_file(&right_file).unwrap();
    std::fs::write(&right_file, &whole).unwrap();

    // The spill files of the killed run are gone with it (a checkpoint
    // links the runs it lists); the spill directory becomes a full disk.
    let disk = common::tmpfs::Tmpfs::mount("64k");
    std::fs::remove_dir_all(state.join("spill")).unwrap();
    std::os::unix::fs::symlink(disk.path(), state.join("spill")).unwrap();
    let mut child = weir("full.log");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !said("full.log").contains(FULL) {
        assert!(Instant::now() < deadline, "no error named the full disk within a minute: {}", said("full.log"));
        assert!(child.try_wait().unwrap().is_none(), "the job ended on a full disk: {}", said("full.log"));
        std::thread::sleep(Duration::from_millis(20));
    }
    // Its restarts fail the same way for a while.
    std::thread::sleep(Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();
    let full = said("full.log");
    assert!(full.contains("spilling state to"), "{full}");
    for wrong in ["damaged", "falling back", "set aside", "afresh"] {
        assert!(!full.contains(wrong), "a full disk was taken for damaged state ({wrong}): {full}");
    }
    assert!(completed("full.log").is_empty(), "the job ran on without its state: {full}");

    disk.grow("256m");
    let mut child = weir("room.log");
    let status = child.wait().unwrap();
    let room = said("room.log");
    assert!(status.success(), "the job failed once there was room ({status}): {room}");
    let resumed: u64 = room
        .split("resumed from checkpoint ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .unwrap_or_else(|| panic!("the job did not resume from a checkpoint: {room}"));
    assert!(resumed >= newest, "resumed from checkpoint {resumed}, older than the newest complete one, {newest}");
    assert!(!room.contains("damaged"), "{room}");
    assert_rows_eq(&output_lines(dir.path(), &INTERVAL_COLUMNS), &want, "output after a restore that found no room");
}
