//! Damaged or lost state never duplicates or loses output: a job with an
//! exactly-once filesystem sink is killed with SIGKILL while its input is
//! held open, its sled state is then damaged (truncated, bytes flipped,
//! cut in half, deleted, zero-filled, the whole directory gone, an
//! operator's state replaced by random bytes), and it is run again. It
//! either resumes from an older checkpoint and withdraws what the newer
//! ones committed, or refuses to start afresh over committed output until
//! `execution.state-recovery.allow-fresh-start` allows it — and in the end
//! its output equals an uninterrupted run's.

use crate::common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn job_sql(dir: &Path, allow_fresh_start: bool) -> String {
    let allow = match allow_fresh_start {
        true => "SET 'execution.state-recovery.allow-fresh-start' = 'true';\n",
        false => "",
    };
    format!(
        "{allow}SET 'execution.checkpointing.interval' = '50 ms';
SET 'parallelism.default' = '2';
CREATE TABLE src (k VARCHAR, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
  WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'json',
        'scan.watermark.emit.strategy' = 'on-event');
CREATE TABLE out (window_start TIMESTAMP(3), window_end TIMESTAMP(3), k VARCHAR, c BIGINT, s BIGINT)
  WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'json');
INSERT INTO out
SELECT window_start, window_end, k, count(*) AS c, sum(v) AS s
FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' SECOND))
GROUP BY window_start, window_end, k;",
        input = dir.join("in.json").display(),
        out = dir.join("out").display()
    )
}

/// Rows in event-time order within the watermark delay: none is late, so
/// the output does not depend on where a run was cut.
fn input_lines() -> Vec<String> {
    let mut g = Lcg(5);
    let mut ts = T0;
    let rows: Vec<Row> = (0..200_000)
        .map(|_| {
            ts += g.below(20) as i64;
            Row {
                k: Some(format!("k{}", g.below(20))),
                v: Some(g.below(100) as i64),
                ts: Some(ts - g.below(1_500) as i64),
            }
        })
        .collect();
    let scratch = scratch();
    let file = scratch.path().join("rows.json");
    write_json(&file, &rows);
    std::fs::read_to_string(file).unwrap().lines().map(|l| format!("{l}\n")).collect()
}

fn weir(dir: &Path, allow_fresh_start: bool) -> Output {
    let file = dir.join("job.sql");
    std::fs::write(&file, job_sql(dir, allow_fresh_start)).unwrap();
    Command::new(env!("CARGO_BIN_EXE_weir")).arg("run").arg(&file).current_dir(dir).output().unwrap()
}

fn committed(dir: &Path) -> Vec<String> {
    let mut rows: Vec<String> = read_sink(&dir.join("out")).iter().map(normalize_json).collect();
    rows.sort();
    rows
}

/// Files of the sink committed at a checkpoint (`-ckpt<n>`).
fn checkpointed_files(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("out"))
        .map(|d| d.filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains("-ckpt")).count())
        .unwrap_or(0)
}

/// Runs the job with its input a named pipe fed the first half of `lines`
/// and held open, kills it with SIGKILL once it has committed output at a
/// few checkpoints, and leaves the whole input as a plain file.
fn killed_midway(dir: &Path, lines: &[String]) {
    let input = dir.join("in.json");
    assert!(Command::new("mkfifo").arg(&input).status().unwrap().success());
    let file = dir.join("job.sql");
    std::fs::write(&file, job_sql(dir, false)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("run")
        .arg(&file)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let half: String = lines[..lines.len() / 2].concat();
    let (fifo, done) = (input.clone(), std::sync::mpsc::channel::<()>());
    let feeder = std::thread::spawn(move || {
        let mut pipe = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        // The job may be killed before it has read it all.
        let _ = pipe.write_all(half.as_bytes());
        // Held open until the job is killed: the job waits for more.
        let _ = done.1.recv();
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while checkpointed_files(dir) < 4 {
        assert!(Instant::now() < deadline, "no output committed at checkpoints within a minute");
        assert!(child.try_wait().unwrap().is_none(), "the job ended while its input was held open");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    done.0.send(()).unwrap();
    feeder.join().unwrap();
    std::fs::remove_file(&input).unwrap();
    std::fs::write(&input, lines.concat()).unwrap();
}

/// The state directory of the only job that ran in `dir`.
fn job_store(dir: &Path) -> PathBuf {
    let mut jobs: Vec<_> = std::fs::read_dir(dir.join("weir-state")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    jobs.remove(0)
}

/// What is done to the state after the kill.
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// The last 4 KiB of sled's `db` file cut off.
    Truncate,
    /// Eight bytes in the middle of `db` inverted.
    Flip,
    /// The second half of `db` cut off.
    Cut,
    /// `db` deleted.
    Delete,
    /// `db` overwritten with zeros, its length kept.
    ZeroFill,
    /// The job's whole state directory deleted.
    Directory,
}

impl Damage {
    fn apply(self, store: &Path) {
        let db = store.join("db");
        let len = std::fs::metadata(&db).unwrap().len();
        let open = || std::fs::OpenOptions::new().read(true).write(true).open(&db).unwrap();
        match self {
            Damage::Truncate => open().set_len(len.saturating_sub(4096)).unwrap(),
            Damage::Cut => open().set_len(len / 2).unwrap(),
            Damage::Flip => {
                let mut bytes = std::fs::read(&db).unwrap();
                let mid = bytes.len() / 2;
                for b in &mut bytes[mid..mid + 8] {
                    *b ^= 0xff;
                }
                std::fs::write(&db, bytes).unwrap();
            }
            Damage::Delete => std::fs::remove_file(&db).unwrap(),
            Damage::ZeroFill => std::fs::write(&db, vec![0u8; len as usize]).unwrap(),
            Damage::Directory => std::fs::remove_dir_all(store).unwrap(),
        }
    }
}

/// Runs the job again after `damage`; returns whether it refused to start
/// afresh first.
fn rerun_after(dir: &Path, damage: Damage, expected: &[String]) -> bool {
    let before = committed(dir);
    let resumed = weir(dir, false);
    let stderr = String::from_utf8_lossy(&resumed.stderr).into_owned();
    if resumed.status.success() {
        assert!(
            stderr.contains("resumed from checkpoint"),
            "{damage:?}: the restart did not say where it resumed: {stderr}"
        );
        assert_rows_eq(&committed(dir), expected, &format!("{damage:?}: resumed"));
        return false;
    }
    assert!(
        stderr.contains("already holds output it committed")
            && stderr.contains("execution.state-recovery.allow-fresh-start"),
        "{damage:?}: the restart failed for another reason ({}): {stderr}",
        resumed.status
    );
    assert_eq!(committed(dir), before, "{damage:?}: the refused start changed the output");
    let fresh = weir(dir, true);
    let stderr = String::from_utf8_lossy(&fresh.stderr);
    assert!(fresh.status.success(), "{damage:?}: starting afresh failed ({}): {stderr}", fresh.status);
    assert!(stderr.contains("started afresh"), "{damage:?}: the fresh start did not say so: {stderr}");
    assert_rows_eq(&committed(dir), expected, &format!("{damage:?}: started afresh"));
    true
}

#[test]
fn damaged_or_lost_state_never_duplicates_or_loses_output() {
    let lines = input_lines();
    let clean = scratch();
    std::fs::write(clean.path().join("in.json"), lines.concat()).unwrap();
    let run = weir(clean.path(), false);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let expected = committed(clean.path());
    assert!(expected.len() > 1000, "{}", expected.len());

    let damages = [Damage::Truncate, Damage::Flip, Damage::Cut, Damage::Delete, Damage::ZeroFill, Damage::Directory];
    for damage in damages {
        let dir = scratch();
        killed_midway(dir.path(), &lines);
        damage.apply(&job_store(dir.path()));
        let refused = rerun_after(dir.path(), damage, &expected);
        if matches!(damage, Damage::Directory) {
            assert!(refused, "a job whose state directory is gone started afresh over its committed output");
        }
        assert!(hidden_files(&dir.path().join("out")).is_empty(), "{damage:?}: uncommitted files left behind");
    }
}

/// A task state that passes its checksum but holds random bytes where an
/// operator's state should be: the checkpoint is damaged, the one before
/// it is restored, and what the damaged one committed is withdrawn.
#[test]
fn random_bytes_as_operator_state_fall_back_to_the_previous_checkpoint() {
    let lines = input_lines();
    let clean = scratch();
    std::fs::write(clean.path().join("in.json"), lines.concat()).unwrap();
    assert!(weir(clean.path(), false).status.success());
    let expected = committed(clean.path());

    let dir = scratch();
    killed_midway(dir.path(), &lines);
    {
        let db = sled::open(job_store(dir.path())).unwrap();
        let latest = db.open_tree("complete").unwrap().iter().keys().last().unwrap().unwrap();
        let latest = String::from_utf8(latest.to_vec()).unwrap();
        let states = db.open_tree("states").unwrap();
        let mut g = Lcg(17);
        let mut replaced = 0;
        for entry in states.scan_prefix(format!("{latest}/")) {
            let (key, value) = entry.unwrap();
            let parts = decode_parts(&value[4..]);
            let garbled: Vec<(String, Vec<u8>)> = parts
                .into_iter()
                // Operators' parts are named by their state id
                // (`WindowAggregate#0`); the source's is `Source#0`.
                .map(|(name, bytes)| match name.contains('#') && !name.starts_with("Source") {
                    true => {
                        replaced += 1;
                        (name, (0..bytes.len().max(16)).map(|_| g.below(256) as u8).collect())
                    }
                    false => (name, bytes),
                })
                .collect();
            let body = encode_parts(&garbled);
            let mut value = crc32fast::hash(&body).to_le_bytes().to_vec();
            value.extend_from_slice(&body);
            states.insert(key, value).unwrap();
        }
        assert!(replaced > 0, "no operator state in checkpoint {latest}");
        db.flush().unwrap();
    }
    let resumed = weir(dir.path(), false);
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "{stderr}");
    assert!(stderr.contains("cannot be decoded: damaged"), "{stderr}");
    assert!(stderr.contains("resumed from checkpoint"), "{stderr}");
    assert_rows_eq(&committed(dir.path()), &expected, "after random operator state");
}

/// State of another shape never reaches an operator: a savepoint of the
/// job, restored by a query that aggregates otherwise, is refused naming
/// the operator whose state does not fit, and the output stays as it was.
#[test]
fn a_savepoint_of_another_query_is_refused_naming_the_operator() {
    let dir = scratch();
    killed_midway(dir.path(), &input_lines());
    let savepoint = job_store(dir.path());
    let before = committed(dir.path());
    let other = job_sql(dir.path(), false).replace("sum(v) AS s", "max(v) AS s").replace(
        "SET 'parallelism.default'",
        &format!("SET 'execution.savepoint.path' = '{}';\nSET 'parallelism.default'", savepoint.display()),
    );
    let file = dir.path().join("other.sql");
    std::fs::write(&file, other).unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_weir")).arg("run").arg(&file).current_dir(dir.path()).output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "a query of another shape started from the savepoint: {stderr}");
    assert!(
        stderr.contains("cannot be restored")
            && stderr.contains("the state of WindowAggregate#0 was saved as")
            && stderr.contains("sum(")
            && stderr.contains("max("),
        "{stderr}"
    );
    assert_eq!(committed(dir.path()), before, "the refused start changed the output");
}

/// A checkpoint written before state identity (its completion record the
/// task count alone, its operators named by position) is refused, not
/// misread, and not skipped for a fresh start: the output stays as it was.
#[test]
fn a_checkpoint_of_state_format_1_is_refused() {
    let dir = scratch();
    killed_midway(dir.path(), &input_lines());
    let before = committed(dir.path());
    {
        let db = sled::open(job_store(dir.path())).unwrap();
        let complete = db.open_tree("complete").unwrap();
        for entry in complete.iter() {
            let (key, record) = entry.unwrap();
            // Checksum, then the task count, then the manifest.
            let tasks: [u8; 8] = record[4..12].try_into().unwrap();
            complete.insert(key, &tasks).unwrap();
        }
        db.flush().unwrap();
    }
    let run = weir(dir.path(), false);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "a format-1 checkpoint was restored: {stderr}");
    assert!(stderr.contains("state format 1") && stderr.contains("cannot be restored by this job"), "{stderr}");
    assert_eq!(committed(dir.path()), before, "the refused start changed the output");
}

/// A task state's parts as the store writes them (engine/src/checkpoint/
/// store.rs): a count, then per part a length-prefixed name and value,
/// little-endian.
fn decode_parts(mut body: &[u8]) -> Vec<(String, Vec<u8>)> {
    let read = |b: &mut &[u8]| {
        let (n, rest) = b.split_at(8);
        *b = rest;
        u64::from_le_bytes(n.try_into().unwrap()) as usize
    };
    let n = read(&mut body);
    (0..n)
        .map(|_| {
            let len = read(&mut body);
            let (name, rest) = body.split_at(len);
            body = rest;
            let len = read(&mut body);
            let (value, rest) = body.split_at(len);
            body = rest;
            (String::from_utf8(name.to_vec()).unwrap(), value.to_vec())
        })
        .collect()
}

fn encode_parts(parts: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = (parts.len() as u64).to_le_bytes().to_vec();
    for (name, value) in parts {
        out.extend_from_slice(&(name.len() as u64).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
        out.extend_from_slice(value);
    }
    out
}
