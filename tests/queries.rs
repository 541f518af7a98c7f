//! Every example under `queries/` (subdirectories such as `nexmark/`
//! included) runs to completion, and the quickstart prints the windows it
//! promises.

use crate::common;

use std::path::Path;
use std::process::Command;

fn run(file: &Path) -> (bool, String, String) {
    let dir = common::scratch();
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("run")
        .arg(file)
        .current_dir(dir.path())
        .output()
        .expect("start weir");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn queries_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../queries")
}

/// The `.sql` files under `dir`, at any depth.
fn sql_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("queries/") {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(sql_files(&path));
        } else if path.extension().is_some_and(|e| e == "sql") {
            files.push(path);
        }
    }
    files
}

#[test]
fn every_example_query_runs() {
    let files = sql_files(&queries_dir());
    assert!(files.iter().any(|f| f.parent() != Some(&queries_dir())), "no example queries in subdirectories");
    for path in &files {
        let (ok, _, stderr) = run(path);
        assert!(ok, "{} failed:\n{stderr}", path.display());
    }
    assert!(!files.is_empty(), "no example queries found");
}

/// The quickstart: 100 000 rows at 10 ms apart are 1 000 s of event time,
/// so 100 ten-second windows per key... printed as Flink's print sink does.
#[test]
fn quickstart_prints_every_window() {
    let (ok, stdout, stderr) = run(&queries_dir().join("quickstart.sql"));
    assert!(ok, "{stderr}");
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("+I[")).collect();
    // 1 000 s of data in 10 s windows, 4 channels each.
    assert_eq!(rows.len(), 100 * 4, "{stdout}");
    // Each window of each channel holds 1 000 / 4 = 250 orders.
    assert!(rows.iter().all(|r| r.contains(", 250, ")), "{}", rows[0]);
}

/// Each Flink-form Nexmark query (`queries/nexmark-flink/`: one table of
/// every event, views, ROW access) writes as many rows as the same query
/// over the per-kind tables (`queries/nexmark/`): the two read the same
/// events, so `weir bench` compares like with like.
#[test]
fn flink_form_nexmark_queries_write_what_the_per_kind_ones_write() {
    let written = |stderr: &str| -> u64 {
        let line = stderr.lines().find(|l| l.contains("finished:")).unwrap_or_else(|| panic!("no summary: {stderr}"));
        let count = line.split("finished: ").nth(1).and_then(|r| r.split(' ').next()).expect("a count");
        count.parse().expect("a number")
    };
    let files = sql_files(&queries_dir().join("nexmark-flink"));
    assert!(files.len() >= 5, "{files:?}");
    for flink in files {
        let per_kind = queries_dir().join("nexmark").join(flink.file_name().unwrap());
        let (ok, _, flink_err) = run(&flink);
        assert!(ok, "{}: {flink_err}", flink.display());
        let (ok, _, kind_err) = run(&per_kind);
        assert!(ok, "{}: {kind_err}", per_kind.display());
        let n = written(&flink_err);
        assert!(n > 0, "{}: nothing written", flink.display());
        assert_eq!(n, written(&kind_err), "{}", flink.display());
    }
}
