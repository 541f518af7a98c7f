//! State survives `kill -9`: a job checkpointing every 100 ms is killed at
//! random moments and run again each time; what it finally commits equals
//! an uninterrupted run's output — no row lost, none duplicated.

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::repl_session::ReplSession;
use common::*;

fn job_sql(dir: &std::path::Path, interval: &str, parallelism: usize) -> String {
    format!(
        "SET 'execution.checkpointing.interval' = '{interval}';
SET 'parallelism.default' = '{parallelism}';
CREATE TABLE src (k VARCHAR, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
  WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'json',
        'scan.watermark.emit.strategy' = 'on-event'{SPLITS});
CREATE TABLE out (window_start TIMESTAMP(3), window_end TIMESTAMP(3), k VARCHAR,
  c BIGINT, d BIGINT, s BIGINT, mn BIGINT, mx BIGINT, a DOUBLE)
  WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'json');
INSERT INTO out
SELECT window_start, window_end, k, count(*) AS c, count(DISTINCT v) AS d,
       sum(v) AS s, min(v) AS mn, max(v) AS mx, avg(v) AS a
FROM TABLE(HOP(TABLE src, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND))
GROUP BY window_start, window_end, k;",
        input = dir.join("in").display(),
        out = dir.join("out").display()
    )
}

/// Read in 4 MB splits (by every subtask) unless a test takes [`SPLITS`]
/// out.
const SPLITS: &str = ", 'source.split-size' = '4 mb'";

/// One file of about 30 MB (eight 4 MB splits, read by every subtask),
/// rows out of order within the watermark delay and none late: the output
/// then does not depend on how inputs interleave at any parallelism (a
/// split's rows are never behind the watermark of the subtask reading it,
/// which has read only rows before them). (Rows near the watermark can be late or not at
/// parallelism > 1 depending on which input speaks first, in Flink too.)
fn input(dir: &std::path::Path) {
    input_in_parts(dir, 1);
}

/// The same rows dealt round robin into `parts` files (partitions): each
/// keeps within the watermark delay, so none is late at any parallelism.
fn input_in_parts(dir: &std::path::Path, parts: usize) {
    std::fs::create_dir_all(dir.join("in")).unwrap();
    let mut g = Lcg(77);
    let mut ts = T0;
    let rows: Vec<Row> = (0..600_000)
        .map(|i| {
            ts += g.below(20) as i64;
            let back = if i % 1000 == 7 { 1_900 } else { g.below(1_500) as i64 };
            Row { k: Some(format!("k{}", g.below(20))), v: Some(g.below(100) as i64), ts: Some(ts - back) }
        })
        .collect();
    for p in 0..parts {
        let mine: Vec<Row> = rows.iter().skip(p).step_by(parts).cloned().collect();
        write_json(&dir.join(format!("in/part-{p}.json")), &mine);
    }
}

/// Milliseconds within which to kill a run: a fifth of an uninterrupted
/// run, so that ten kills fit and the job still advances between them.
fn started_budget(clean: &Duration) -> u64 {
    (clean.as_millis() as u64 / 5).max(200)
}

fn committed(dir: &std::path::Path) -> Vec<String> {
    let mut rows: Vec<String> = read_sink(&dir.join("out")).iter().map(normalize_json).collect();
    rows.sort();
    rows
}

/// Also across parallelism 1 → 4 → 2 → … → 3: restores rescale.
#[test]
fn a_job_killed_ten_times_commits_exactly_the_uninterrupted_output() {
    let clean = scratch();
    input(clean.path());
    let started = std::time::Instant::now();
    let run = weir_run(clean.path(), &job_sql(clean.path(), "100 ms", 1));
    let clean_duration = started.elapsed();
    assert!(run.ok, "{}", run.stderr);
    let expected = committed(clean.path());
    assert!(expected.len() > 1000);

    let dir = scratch();
    input(dir.path());
    let sql_file = dir.path().join("job.sql");
    let mut g = Lcg(99);
    let mut progress = Vec::new();
    // The job makes progress across runs through its checkpoints.
    let budget = started_budget(&clean_duration);
    while progress.len() < 10 {
        // Each restart runs at another parallelism: state moves between
        // subtasks by key group, partitions by number.
        let parallelism = [1, 4, 2][progress.len() % 3];
        std::fs::write(&sql_file, job_sql(dir.path(), "100 ms", parallelism)).unwrap();
        // Until a checkpoint has committed, kills come later each time: on
        // a loaded machine the first ones may all fall before any did.
        let waited = if progress.iter().all(|n| *n == 0) { progress.len() as u64 * budget / 3 } else { 0 };
        let after = Duration::from_millis(100 + waited + g.below(budget));
        if !killed_after(dir.path(), &sql_file, after, &mut || {}) {
            break;
        }
        progress.push(read_sink(&dir.path().join("out")).len());
    }
    assert!(progress.len() >= 10, "the job finished before 10 kills: {progress:?}");
    // Committed output only grows, and the kills fell both after some
    // checkpoints had committed and before the end: recovery was exercised.
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    assert!(progress.iter().any(|n| *n > 0), "no checkpoint ever completed: {progress:?}");
    assert!(progress[0] < expected.len(), "the first run was not interrupted: {progress:?}");
    let last = weir_run(dir.path(), &job_sql(dir.path(), "100 ms", 3));
    assert!(last.ok, "{}", last.stderr);
    assert_rows_eq(&committed(dir.path()), &expected, "after 10 kills");
    assert!(hidden_files(&dir.path().join("out")).is_empty(), "uncommitted files left behind");
    assert_eq!(finished_records(dir.path()), 1, "a finished job leaves only the record that it finished");
}

/// `STOP JOB … WITH SAVEPOINT` and `execution.savepoint.path`: a job
/// stopped with a savepoint at parallelism 1, resumed and stopped again at
/// 4, and resumed to its end at 2, commits exactly what one uninterrupted
/// run does. A named pipe in the source directory keeps the job running
/// until the test closes it.
#[test]
fn savepoints_resume_at_parallelism_one_four_two() {
    use std::process::Stdio;

    let statements = |dir: &std::path::Path, parallelism: usize, savepoint: Option<&str>| {
        let restore = savepoint.map(|p| format!("SET 'execution.savepoint.path' = '{p}';\n")).unwrap_or_default();
        format!(
            "SET 'parallelism.default' = '{parallelism}';\n{restore}{}\n",
            job_sql(dir, "100 ms", parallelism)
                .lines()
                .filter(|l| !l.starts_with("SET 'parallelism"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    };

    let clean = scratch();
    input(clean.path());
    let run = weir_run(clean.path(), &job_sql(clean.path(), "100 ms", 1));
    assert!(run.ok, "{}", run.stderr);
    let expected = committed(clean.path());

    let dir = scratch();
    input(dir.path());
    let pipe = dir.path().join("in/zz.pipe");
    assert!(Command::new("mkfifo").arg(&pipe).status().unwrap().success());

    // One REPL session: start the job, stop it with a savepoint.
    let stop_with_savepoint = |parallelism: usize, savepoint: Option<&str>, wait_for_output: bool| -> String {
        let mut repl = ReplSession::start(dir.path(), &[]);
        repl.send(&statements(dir.path(), parallelism, savepoint));
        let id = repl.job_id();
        // Let the job commit something of its own before it is stopped.
        let before = committed(dir.path()).len();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while wait_for_output && committed(dir.path()).len() == before && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(300));
        let path = repl.stop_with_savepoint(&id);
        repl.quit();
        path
    };
    let first = stop_with_savepoint(1, None, true);
    let partial = committed(dir.path()).len();
    assert!(partial > 0 && partial < expected.len(), "{partial} of {}", expected.len());
    let second = stop_with_savepoint(4, Some(&first), false);
    assert_ne!(first, second);

    // Resume at parallelism 2 and let the input end: close the pipe.
    std::fs::write(dir.path().join("last.sql"), statements(dir.path(), 2, Some(&second))).unwrap();
    let last = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("run")
        .arg(dir.path().join("last.sql"))
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    drop(std::fs::OpenOptions::new().write(true).open(&pipe).unwrap());
    let out = last.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_rows_eq(&committed(dir.path()), &expected, "after savepoints at 1, 4, 2");
    assert!(hidden_files(&dir.path().join("out")).is_empty());
}

/// A savepoint path that holds no savepoint is an error naming it, and
/// leaves nothing behind there.
#[test]
fn a_missing_savepoint_is_an_error_that_creates_nothing() {
    let dir = scratch();
    input(dir.path());
    let missing = dir.path().join("no-such-savepoint");
    let sql =
        format!("SET 'execution.savepoint.path' = '{}';\n{}", missing.display(), job_sql(dir.path(), "100 ms", 1));
    let run = weir_run(dir.path(), &sql);
    assert!(!run.ok);
    assert!(run.stderr.contains(&format!("no savepoint in {}", missing.display())), "{}", run.stderr);
    assert!(!missing.exists());
    assert!(read_sink(&dir.path().join("out")).is_empty());
}

/// How many job state directories in `dir` hold nothing but the record
/// that their job finished (the last checkpoint id its next run numbers
/// after).
fn finished_records(dir: &std::path::Path) -> usize {
    let Ok(jobs) = std::fs::read_dir(dir.join("weir-state")) else {
        return 0;
    };
    jobs.filter(|job| {
        let names: Vec<String> = std::fs::read_dir(job.as_ref().unwrap().path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names == ["finished"]
    })
    .count()
}

/// The state store of the only job that ran in `dir`.
fn job_store(dir: &std::path::Path) -> std::path::PathBuf {
    let mut jobs: Vec<_> = std::fs::read_dir(dir.join("weir-state")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    jobs.remove(0)
}

/// A flipped byte in the latest checkpoint, and a task's state gone from
/// the one before: recovery says so, resumes from the one before those,
/// withdraws the output the damaged ones had committed, and in the end the
/// job has committed exactly what an uninterrupted run does.
#[test]
fn damaged_checkpoints_fall_back_and_the_output_stays_exact() {
    let clean = scratch();
    input(clean.path());
    let started = std::time::Instant::now();
    // The file read whole: in splits at parallelism 2, the last two
    // checkpoints before the kill sometimes committed no output, which
    // this test needs (seen once in a full run, not looked into yet).
    let whole = |dir: &std::path::Path, parallelism| job_sql(dir, "100 ms", parallelism).replace(SPLITS, "");
    let run = weir_run(clean.path(), &whole(clean.path(), 2));
    let clean_duration = started.elapsed();
    assert!(run.ok, "{}", run.stderr);
    let expected = committed(clean.path());

    let dir = scratch();
    input(dir.path());
    let sql_file = dir.path().join("job.sql");
    std::fs::write(&sql_file, whole(dir.path(), 2)).unwrap();
    // Killed once at least three checkpoints completed and some output is
    // committed (a kill too early just runs again, resuming).
    let complete = loop {
        assert!(
            killed_after(dir.path(), &sql_file, clean_duration / 3, &mut || {}),
            "the job finished before it could be killed"
        );
        let db = sled::open(job_store(dir.path())).unwrap();
        let ids: Vec<String> = db
            .open_tree("complete")
            .unwrap()
            .iter()
            .keys()
            .map(|k| String::from_utf8(k.unwrap().to_vec()).unwrap())
            .collect();
        if ids.len() >= 3 && !read_sink(&dir.path().join("out")).is_empty() {
            break ids;
        }
    };
    // What the damaged checkpoints committed is there, to be withdrawn.
    let stamped: Vec<String> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| {
            complete[complete.len() - 2..]
                .iter()
                .any(|id| name.ends_with(&format!("-ckpt{}", id.parse::<u64>().unwrap())))
        })
        .collect();
    assert!(!stamped.is_empty(), "the damaged checkpoints committed nothing");
    {
        let db = sled::open(job_store(dir.path())).unwrap();
        let states = db.open_tree("states").unwrap();
        let latest = &complete[complete.len() - 1];
        let (key, value) = states.scan_prefix(format!("{latest}/")).next().unwrap().unwrap();
        let mut torn = value.to_vec();
        let last = torn.len() - 1;
        torn[last] ^= 0x5a;
        states.insert(key, torn).unwrap();
        let before = &complete[complete.len() - 2];
        let (key, _) = states.scan_prefix(format!("{before}/")).next().unwrap().unwrap();
        states.remove(key).unwrap();
        db.flush().unwrap();
    }
    let resumed = weir_run(dir.path(), &whole(dir.path(), 1));
    assert!(resumed.ok, "{}", resumed.stderr);
    assert_eq!(
        resumed.stderr.matches("checkpoint is damaged; falling back to the previous one").count(),
        2,
        "{}",
        resumed.stderr
    );
    assert!(resumed.stderr.contains("fails its checksum"), "{}", resumed.stderr);
    assert!(resumed.stderr.contains("task states, its completion record says"), "{}", resumed.stderr);
    assert_rows_eq(&committed(dir.path()), &expected, "after falling back past damaged checkpoints");
}

/// `AT_LEAST_ONCE`: barriers are not aligned, so a restore may count some
/// rows twice but never loses one: every window of the uninterrupted run is
/// committed with at least its count. Two partitions feed two window tasks,
/// so rows do pass barriers.
#[test]
fn at_least_once_loses_nothing_across_kills() {
    // Two files, each over the whole time range, one per subtask: read in
    // splits, a subtask would read a split of the second file after the
    // first file's, whose watermark makes its rows late.
    let sql = |dir: &std::path::Path| {
        job_sql(dir, "100 ms", 2).replace(SPLITS, "").replace(
            "SET 'parallelism.default' = '2';",
            "SET 'parallelism.default' = '2';\nSET 'execution.checkpointing.mode' = 'AT_LEAST_ONCE';",
        )
    };
    let clean = scratch();
    input_in_parts(clean.path(), 2);
    let started = std::time::Instant::now();
    let run = weir_run(clean.path(), &sql(clean.path()));
    let clean_duration = started.elapsed();
    assert!(run.ok, "{}", run.stderr);
    let expected = read_sink(&clean.path().join("out"));

    let dir = scratch();
    input_in_parts(dir.path(), 2);
    let sql_file = dir.path().join("job.sql");
    std::fs::write(&sql_file, sql(dir.path())).unwrap();
    let mut g = Lcg(5);
    let budget = started_budget(&clean_duration);
    for _ in 0..4 {
        if !killed_after(dir.path(), &sql_file, Duration::from_millis(100 + g.below(budget)), &mut || {}) {
            break;
        }
    }
    let last = weir_run(dir.path(), &sql(dir.path()));
    assert!(last.ok, "{}", last.stderr);
    let key = |row: &serde_json::Value| format!("{} {} {}", row["window_start"], row["window_end"], row["k"]);
    let mut counts: std::collections::HashMap<String, Vec<i64>> = std::collections::HashMap::new();
    for row in read_sink(&dir.path().join("out")) {
        counts.entry(key(&row)).or_default().push(row["c"].as_i64().unwrap());
    }
    let mut duplicated = 0;
    for row in &expected {
        let want = row["c"].as_i64().unwrap();
        let got = counts.get(&key(row)).unwrap_or_else(|| panic!("window {} lost", key(row)));
        assert!(got.iter().any(|c| *c >= want), "window {} counted {got:?}, expected at least {want}", key(row));
        duplicated += usize::from(got.len() > 1 || got[0] > want);
    }
    eprintln!("at least once: {duplicated} of {} windows counted rows twice", expected.len());
}

/// A job is its statement over its tables' definitions: the same INSERT
/// over a table redefined (another path) starts afresh instead of resuming
/// the other's state, which is left alone.
#[test]
fn a_redefined_table_makes_a_new_job() {
    let dir = scratch();
    input(dir.path());
    let sql_file = dir.path().join("job.sql");
    std::fs::write(&sql_file, job_sql(dir.path(), "100 ms", 1)).unwrap();
    let interrupted = killed_after(dir.path(), &sql_file, Duration::from_millis(800), &mut || {});
    assert!(interrupted, "the job finished before it could be killed");
    let old = job_store(dir.path());
    std::fs::create_dir_all(dir.path().join("in2")).unwrap();
    std::fs::copy(dir.path().join("in/part-0.json"), dir.path().join("in2/part-0.json")).unwrap();
    let moved = job_sql(dir.path(), "100 ms", 1)
        .replace(&format!("'{}'", dir.path().join("in").display()), &format!("'{}'", dir.path().join("in2").display()));
    std::fs::write(&sql_file, moved).unwrap();
    assert!(!killed_after(dir.path(), &sql_file, Duration::from_secs(60), &mut || {}));
    let logs: String = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("run-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert!(!logs.contains("resumed from"), "{logs}");
    assert_eq!(finished_records(dir.path()), 1, "the second job finished");
    assert!(old.join("db").exists(), "the first job's state is kept");
}
