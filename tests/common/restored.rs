//! Every job the suite runs through [`super::weir_run`] whose output is
//! deterministic runs a second time, killed midway and restored from its
//! checkpoint, and must commit exactly what the uninterrupted run did.
//!
//! Midway is made certain, not left to timing: in the copy, the first file
//! of each input becomes a named pipe fed with half of that file's lines
//! and held open, so the job reads them, checkpoints, and waits. It is then
//! killed with SIGKILL, the pipe is replaced by the whole file, and the job
//! runs again: it must resume after the lines its checkpoint covers.
//!
//! The twin also runs on the spilling state backend with a budget small
//! enough that every stateful operator that can spill does (unless the job
//! chooses its backend itself): so every such job of the suite checks that
//! state spilled to disk, checkpointed and restored gives the in-memory
//! run's output.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{Run, normalize_json, read_sink};

/// The twin's state backend: spilling, with a budget of 64 KB, small
/// enough that the suite's stateful jobs spill (also for tests of their
/// own that run a job spilled).
pub const SPILLING: &str = "SET 'state.backend.type' = 'rocksdb';\nSET 'state.memory.budget' = '64 kb';\n";

/// The inputs and outputs of a job as its SQL names them (`'path' = '…'`),
/// told apart by whether they exist before the job runs.
pub struct Paths {
    inputs: Vec<PathBuf>,
    outputs: Vec<PathBuf>,
}

/// `Some` when the job's committed output must not depend on timing, so a
/// killed-and-restored run can be compared with the uninterrupted one:
/// filesystem sinks only (print is not transactional), event time only
/// (no processing-time features, watermarks per event), and no checkpoint
/// settings of its own (such tests kill jobs themselves).
pub fn deterministic(dir: &Path, sql: &str) -> Option<Paths> {
    let timing = [
        "'print'", "'datagen'", "'memory'", "EMIT EARLY", "PROCTIME", "LOCALTIMESTAMP", "CURRENT_TIMESTAMP", "CURRENT_DATE",
        "NOW()", "UNIX_TIMESTAMP()", "execution.checkpointing", "execution.savepoint", "EXPLAIN",
    ];
    if !sql.contains("INSERT INTO") || timing.iter().any(|t| sql.contains(t)) {
        return None;
    }
    if sql.contains("WATERMARK FOR") && sql.matches("WATERMARK FOR").count() != sql.matches("'on-event'").count() {
        return None;
    }
    let mut paths = Paths { inputs: Vec::new(), outputs: Vec::new() };
    for rest in sql.split("'path' = '").skip(1) {
        let path = PathBuf::from(rest.split('\'').next()?);
        if !path.starts_with(dir) {
            return None;
        }
        if path.exists() { &mut paths.inputs } else { &mut paths.outputs }.push(path);
    }
    (!paths.inputs.is_empty() && !paths.outputs.is_empty()).then_some(paths)
}

/// Copies `dir`'s files (the inputs, before the job ran) to `to`.
pub fn copy_tree(dir: &Path, to: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The file of `input` its source reads first: the input itself, or the
/// first visible file of its directory.
fn first_file(input: &Path) -> Option<PathBuf> {
    if input.is_file() {
        return Some(input.to_path_buf());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(input)
        .ok()?
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with(['.', '_']))
        .collect();
    files.sort();
    files.into_iter().next()
}

/// Runs the job of `sql` (written for `dir`) in `copy` (holding a copy of
/// `dir`'s inputs), killed once midway and run again to its end, and
/// checks that every output equals the uninterrupted run's in `dir`.
pub fn assert_same_after_kill(dir: &Path, copy: &Path, sql: &str, paths: &Paths, clean: &Run) {
    let moved = |p: &Path| copy.join(p.strip_prefix(dir).unwrap());
    let sql = sql.replace(&dir.display().to_string(), &copy.display().to_string());
    let file = copy.join("job.sql");
    let spilling = match sql.contains("state.backend") || sql.contains("state.memory.budget") {
        true => "",
        false => SPILLING,
    };
    std::fs::write(&file, format!("SET 'execution.checkpointing.interval' = '20 ms';\n{spilling}{sql}")).unwrap();

    let mut feeders = Vec::new();
    for input in &paths.inputs {
        let Some(first) = first_file(&moved(input)) else { continue };
        let text = std::fs::read_to_string(&first).unwrap();
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let half: String = lines[..lines.len() / 2].concat();
        std::fs::remove_file(&first).unwrap();
        assert!(Command::new("mkfifo").arg(&first).status().unwrap().success());
        feeders.push((first, text, half));
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("run")
        .arg(&file)
        .current_dir(copy)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Opening a pipe for writing waits for its reader: on threads, so that
    // a source that never opens its pipe cannot hang the test.
    let writers: Vec<_> = feeders
        .iter()
        .map(|(fifo, _, half)| {
            let (fifo, half) = (fifo.clone(), half.clone());
            std::thread::spawn(move || {
                let mut pipe = std::fs::OpenOptions::new().write(true).open(&fifo).ok()?;
                pipe.write_all(half.as_bytes()).ok()?;
                Some(pipe)
            })
        })
        .collect();
    // Some checkpoints complete while the job waits on its pipes.
    std::thread::sleep(Duration::from_millis(600));
    let finished_early = child.try_wait().unwrap();
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    // Writers still waiting for a reader, or blocked on a full pipe, are
    // let finish by reading their pipes here.
    let mut drains: Vec<std::fs::File> = feeders
        .iter()
        .filter_map(|(fifo, _, _)| {
            use std::os::unix::fs::OpenOptionsExt;
            const O_NONBLOCK: i32 = 0o4000;
            std::fs::OpenOptions::new().read(true).custom_flags(O_NONBLOCK).open(fifo).ok()
        })
        .collect();
    let mut buf = vec![0u8; 1 << 16];
    while !writers.iter().all(|w| w.is_finished()) {
        for d in &mut drains {
            let _ = d.read(&mut buf);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(drains);
    for w in writers {
        drop(w.join().unwrap());
    }
    assert!(
        finished_early.is_none(),
        "the job ended while its input was held open: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        copy.join("weir-state").read_dir().is_ok_and(|mut d| d.next().is_some()),
        "no checkpoint state after the kill"
    );
    for (fifo, text, _) in &feeders {
        std::fs::remove_file(fifo).unwrap();
        std::fs::write(fifo, text).unwrap();
    }
    let resumed = Command::new(env!("CARGO_BIN_EXE_weir")).arg("run").arg(&file).current_dir(copy).output().unwrap();
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "the restored run failed: {stderr}");
    for out in &paths.outputs {
        let rows = |p: &Path| {
            let mut v: Vec<String> = read_sink(p).iter().map(normalize_json).collect();
            v.sort();
            v
        };
        let (want, got) = (rows(out), rows(&moved(out)));
        assert!(
            want == got,
            "{}: killed and restored, the job committed {} rows, uninterrupted {} (first differences: {:?})\nclean stderr: {}\nrestored stderr: {stderr}",
            out.display(),
            got.len(),
            want.len(),
            got.iter().zip(&want).find(|(a, b)| a != b),
            clean.stderr
        );
    }
    let spilled = if stderr.contains("spilled to disk") { ", state spilled" } else { "" };
    eprintln!("killed midway and restored: same output in {}{spilled}", paths.outputs.len());
}
