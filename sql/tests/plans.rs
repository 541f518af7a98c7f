//! The planner's golden files: the `EXPLAIN` of every query script under
//! `queries/` and of focused cases under `sql/tests/plans/cases/`, and the
//! error of every refusal under `sql/tests/plans/fail/`, pinned as text so
//! that a change of plan shows as a reviewable diff. They plan without
//! running anything, in milliseconds, without the `weir` binary.
//!
//! Every INSERT, SELECT and statement set of a script is planned as
//! `EXPLAIN`; other statements (CREATE, SET, views) run as they are. A statement right after
//! a line `-- fail` must be refused, and its error is what is pinned; any
//! other must plan. The cases and refusals first run
//! `sql/tests/plans/tables.sql` (the tables they read); a line
//! `-- parallelism: 1 4` plans a case at each parallelism, pinned as
//! `name.p1.explain`, `name.p4.explain`.
//! `WEIR_BLESS=1 cargo test -p weir-sql --test plans` writes the golden
//! files anew.

use std::path::{Path, PathBuf};

use weir_sql::script::parse_script;
use weir_sql::session::{Outcome, Session};
use weir_sql::statement::WeirStatement;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Runs the statements of `path` as they are, for what they create.
async fn prepare(session: &mut Session, path: &Path) {
    let source = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for s in parse_script(&source).unwrap_or_else(|e| panic!("{}: {e}", path.display())) {
        if let Err(e) = session.execute(&s).await {
            panic!("{}: {e}", path.display());
        }
    }
}

/// The text pinned for `script`, after `prelude` and at `parallelism`:
/// each planned statement's first line and its plan or error.
async fn plans_of(script: &Path, prelude: Option<&Path>, parallelism: Option<usize>) -> String {
    let source = std::fs::read_to_string(script).unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    let lines: Vec<&str> = source.lines().collect();
    let statements = parse_script(&source).unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    let mut session = Session::new();
    if let Some(prelude) = prelude {
        prepare(&mut session, prelude).await;
    }
    if let Some(p) = parallelism {
        let set = parse_script(&format!("SET 'parallelism.default' = '{p}'")).expect("a SET").remove(0);
        session.execute(&set).await.expect("parallelism is set");
    }
    let mut out = String::new();
    for s in statements {
        let line = s.start.line as usize;
        let must_fail = line >= 2 && lines.get(line - 2).is_some_and(|l| l.trim() == "-- fail");
        let planned = matches!(
            s.statement,
            WeirStatement::Insert { .. } | WeirStatement::Query { .. } | WeirStatement::StatementSet(_)
        );
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

/// The parallelisms a script's `-- parallelism: …` line names, if any.
fn parallelisms(script: &Path) -> Vec<usize> {
    let source = std::fs::read_to_string(script).unwrap_or_default();
    source
        .lines()
        .find_map(|l| l.strip_prefix("-- parallelism:"))
        .map(|list| list.split_whitespace().map(|p| p.parse().expect("a parallelism")).collect())
        .unwrap_or_default()
}

/// Compares (or with `WEIR_BLESS`, writes) the golden files of each script,
/// planned after `prelude`.
async fn check(dir: &Path, prelude: Option<&Path>, golden_dir: impl Fn(&Path) -> PathBuf) {
    let bless = std::env::var_os("WEIR_BLESS").is_some();
    let mut failures = Vec::new();
    let found = scripts(dir);
    assert!(!found.is_empty(), "no scripts under {}", dir.display());
    let runs = found.iter().flat_map(|script| {
        let ps = parallelisms(script);
        let runs: Vec<(PathBuf, Option<usize>)> = match ps.is_empty() {
            true => vec![(script.clone(), None)],
            false => ps.into_iter().map(|p| (script.clone(), Some(p))).collect(),
        };
        runs
    });
    for (script, parallelism) in runs.collect::<Vec<_>>() {
        let got = plans_of(&script, prelude, parallelism).await;
        let golden = match parallelism {
            None => golden_dir(&script),
            Some(p) => golden_dir(&script).with_extension(format!("p{p}.explain")),
        };
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
    check(&queries, None, golden).await;
}

#[tokio::test]
async fn focused_cases_plan_as_pinned() {
    let plans = Path::new(ROOT).join("sql/tests/plans");
    let tables = plans.join("tables.sql");
    for group in ["cases", "fail"] {
        check(&plans.join(group), Some(&tables), |script: &Path| script.with_extension("explain")).await;
    }
}
