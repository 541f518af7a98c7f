//! The planner's golden files: the `EXPLAIN` of every query script under
//! `queries/` and of focused cases under `sql/tests/plans/cases/`, and the
//! error of every refusal under `sql/tests/plans/fail/`, pinned as text so
//! that a change of plan shows as a reviewable diff. They plan without
//! running anything, in milliseconds, without the `weir` binary.
//!
//! Every INSERT and SELECT of a script is planned as `EXPLAIN`; other
//! statements (CREATE, SET, views) run as they are. A statement right after
//! a line `-- fail` must be refused, and its error is what is pinned; any
//! other must plan. `WEIR_BLESS=1 cargo test -p weir-sql --test plans`
//! writes the golden files anew.

use std::path::{Path, PathBuf};

use weir_sql::script::parse_script;
use weir_sql::session::{Outcome, Session};
use weir_sql::statement::WeirStatement;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// The text pinned for `script`: each planned statement's first line and
/// its plan or error.
async fn plans_of(script: &Path) -> String {
    let source = std::fs::read_to_string(script).unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    let lines: Vec<&str> = source.lines().collect();
    let statements = parse_script(&source).unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    let mut session = Session::new();
    let mut out = String::new();
    for s in statements {
        let line = s.start.line as usize;
        let must_fail = line >= 2 && lines.get(line - 2).is_some_and(|l| l.trim() == "-- fail");
        let planned = matches!(s.statement, WeirStatement::Insert { .. } | WeirStatement::Query { .. });
        let statement = match planned {
            true => parse_script(&format!("EXPLAIN {}", s.text))
                .unwrap_or_else(|e| panic!("{}:{line}: {e}", script.display()))
                .remove(0),
            false => s,
        };
        let result = session.execute(&statement).await;
        let head = statement.text.lines().next().unwrap_or_default().trim().to_string();
        match (result, must_fail) {
            (Ok(Outcome::Explain(plan)), false) => out.push_str(&format!("-- line {line}: {head}\n{plan}\n")),
            (Ok(_), false) => {}
            (Err(e), true) => out.push_str(&format!("-- line {line}: {head}\nerror: {e}\n\n")),
            (Ok(_), true) => panic!("{}:{line}: planned, but is marked -- fail", script.display()),
            (Err(e), false) => panic!("{}:{line}: {e}", script.display()),
        }
    }
    out
}

/// The `.sql` files under `dir`, recursively, sorted.
fn scripts(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "sql") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Compares (or with `WEIR_BLESS`, writes) the golden file of each script.
async fn check(dir: &Path, golden_dir: impl Fn(&Path) -> PathBuf) {
    let bless = std::env::var_os("WEIR_BLESS").is_some();
    let mut failures = Vec::new();
    let found = scripts(dir);
    assert!(!found.is_empty(), "no scripts under {}", dir.display());
    for script in found {
        let got = plans_of(&script).await;
        let golden = golden_dir(&script);
        if bless {
            std::fs::create_dir_all(golden.parent().expect("a parent")).expect("golden directory");
            std::fs::write(&golden, &got).expect("write golden");
            continue;
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        if got != want {
            let at = got.lines().zip(want.lines()).position(|(g, w)| g != w).unwrap_or(got.lines().count().min(want.lines().count()));
            failures.push(format!(
                "{}: differs from {} at line {}:\n  got:  {}\n  want: {}",
                script.display(),
                golden.display(),
                at + 1,
                got.lines().nth(at).unwrap_or("(end)"),
                want.lines().nth(at).unwrap_or("(end)"),
            ));
        }
    }
    assert!(failures.is_empty(), "{}\nrun with WEIR_BLESS=1 to accept the new plans", failures.join("\n"));
}

#[tokio::test]
async fn query_scripts_plan_as_pinned() {
    let queries = Path::new(ROOT).join("queries");
    let golden = |script: &Path| {
        let relative = script.strip_prefix(&queries).expect("under queries/").with_extension("explain");
        Path::new(ROOT).join("sql/tests/plans/queries").join(relative)
    };
    check(&queries, golden).await;
}

#[tokio::test]
async fn focused_cases_plan_as_pinned() {
    for group in ["cases", "fail"] {
        let dir = Path::new(ROOT).join("sql/tests/plans").join(group);
        check(&dir, |script: &Path| script.with_extension("explain")).await;
    }
}
