//! Flink's own documentation as a test suite. Weir promises to run Flink
//! SQL unchanged; the examples in Flink's SQL pages (window TVFs, window
//! aggregation, group aggregation, window joins, set operations, time
//! zones, …) come with the rows Flink gives for them, so each one is a
//! check of that promise that nobody here had to invent.
//!
//! Each example is `tests/flink_docs/<page>-<n>.sql`: the page's input
//! (its table as a CSV file under `tests/flink_docs/data/`, named through
//! `${DATA}`, or its `VALUES`), its query exactly as the page writes it,
//! and an `INSERT INTO` a `print` sink; and `<page>-<n>.expected`, the
//! page's result rows as the print sink shows them (`#` lines are
//! comments). The `.sql` file's header names the page and the section.
//! Each runs through the real `weir run`; its changelog is applied, and
//! the final rows must be the documented ones, in any order.
//!
//! Examples Weir cannot run yet, or runs to other rows, wait in
//! `tests/flink_docs/pending/`, outside the passing suite; the ignored
//! test `pending_examples_still_fail` tells which of them fail and how,
//! and fails when one of them passes, so that it is moved up.

use crate::common;

use std::path::{Path, PathBuf};

use common::{scratch, weir_run};

/// The directory of the examples.
fn docs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/flink_docs")
}

/// One documented example: its name (`window-tvf-3`), its SQL with
/// `${DATA}` replaced, and its expected rows, sorted.
struct Example {
    name: String,
    sql: String,
    expected: Vec<String>,
}

/// Every `*.sql` of `dir` with its `.expected`, in name order.
fn examples(dir: &Path) -> Vec<Example> {
    let data = docs_dir().join("data").canonicalize().expect("tests/flink_docs/data exists");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap_or_else(|e| panic!("{}: {e}", dir.display())).path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|sql_path| {
            let name = sql_path.file_stem().expect("a file name").to_string_lossy().into_owned();
            let sql = std::fs::read_to_string(&sql_path)
                .unwrap_or_else(|e| panic!("{}: {e}", sql_path.display()))
                .replace("${DATA}", &data.display().to_string());
            let expected_path = sql_path.with_extension("expected");
            let mut expected: Vec<String> = std::fs::read_to_string(&expected_path)
                .unwrap_or_else(|e| panic!("{name}.sql has no {}: {e}", expected_path.display()))
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from)
                .collect();
            expected.sort();
            Example { name, sql, expected }
        })
        .collect()
}

/// The rows left after applying, in order, the changes the print sink
/// wrote (`+I[…]`, `-U[…]`, `+U[…]`, `-D[…]`, after an optional `n> `
/// subtask prefix): an insert adds its row, a retraction removes one
/// equal row, which must be there. Rows may repeat (a TVF's rows), so
/// they are a multiset, sorted.
fn final_rows(stdout: &str) -> Result<Vec<String>, String> {
    let mut rows: Vec<String> = Vec::new();
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        let change = match line.split_once("> ") {
            Some((subtask, rest)) if subtask.chars().all(|c| c.is_ascii_digit()) => rest,
            _ => line,
        };
        let (kind, values) = change.split_at_checked(2).ok_or_else(|| format!("not a change on stdout: {line}"))?;
        let values = values
            .strip_prefix('[')
            .and_then(|v| v.strip_suffix(']'))
            .ok_or_else(|| format!("not a change on stdout: {line}"))?;
        match kind {
            "+I" | "+U" => rows.push(values.to_string()),
            "-U" | "-D" => {
                let at = rows.iter().position(|r| r == values).ok_or_else(|| format!("{line} retracts a row that is not there"))?;
                rows.swap_remove(at);
            }
            _ => return Err(format!("not a change on stdout: {line}")),
        }
    }
    rows.sort();
    Ok(rows)
}

/// Runs one example; `Err` says how it failed (the error weir gave, or
/// the rows missing and unexpected).
fn check(example: &Example) -> Result<(), String> {
    let dir = scratch();
    let run = weir_run(dir.path(), &example.sql);
    if !run.ok {
        let error: Vec<&str> = run.stderr.lines().skip_while(|l| !l.contains("error")).take(3).collect();
        let error = if error.is_empty() { run.stderr.trim().to_string() } else { error.join("\n") };
        let job = dir.path().join("job.sql").display().to_string();
        return Err(error.replace(&job, &format!("{}.sql", example.name)));
    }
    let got = final_rows(&run.stdout)?;
    if got == example.expected {
        return Ok(());
    }
    let (mut missing, mut unexpected) = (example.expected.clone(), Vec::new());
    for row in got {
        match missing.iter().position(|r| *r == row) {
            Some(at) => {
                missing.remove(at);
            }
            None => unexpected.push(row),
        }
    }
    let list = |rows: &[String]| if rows.is_empty() { "(none)".to_string() } else { rows.join("\n              ") };
    Err(format!(
        "other rows than the documented ones\n  missing:    {}\n  unexpected: {}",
        list(&missing),
        list(&unexpected)
    ))
}

/// Every example of `tests/flink_docs/` gives the rows its page shows.
#[test]
fn flink_documentation_examples_give_the_documented_rows() {
    let all = examples(&docs_dir());
    assert!(all.len() >= 30, "only {} examples found in {}", all.len(), docs_dir().display());
    let failures: Vec<String> = all
        .iter()
        .filter_map(|example| check(example).err().map(|why| format!("{}.sql: {why}", example.name)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} examples from Flink's documentation failed:\n\n{}",
        failures.len(),
        all.len(),
        failures.join("\n\n")
    );
}

/// The examples of `tests/flink_docs/pending/` still fail: prints how each
/// fails, and fails itself when one passes (move it to `tests/flink_docs/`).
#[test]
#[ignore = "reports the documented examples Weir cannot run yet; run with --ignored"]
fn pending_examples_still_fail() {
    let pending = examples(&docs_dir().join("pending"));
    let mut passing = Vec::new();
    for example in &pending {
        match check(example) {
            Ok(()) => passing.push(example.name.clone()),
            Err(why) => println!("{}.sql: {why}\n", example.name),
        }
    }
    assert!(passing.is_empty(), "these pending examples now pass; move them to tests/flink_docs/: {passing:?}");
}
