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

/// Each operator of `plan` (an `EXPLAIN`) by kind, with the lines under it.
fn operators(plan: &str) -> Vec<(String, Vec<String>)> {
    let mut found: Vec<(String, Vec<String>)> = Vec::new();
    for line in plan.lines() {
        match line.strip_prefix("    ") {
            Some(detail) => {
                if let Some((_, details)) = found.last_mut() {
                    details.push(detail.trim().to_string());
                }
            }
            None => {
                let kind = line.trim().split(':').next().unwrap_or_default();
                found.push((kind.to_string(), Vec::new()));
            }
        }
    }
    found
}

/// `EXPLAIN` marks exactly the operators whose state nothing frees, by
/// Flink's rules: a GROUP BY, a regular join side, Top-N and deduplication
/// without a state TTL (`table.exec.state.ttl` or a `STATE_TTL` hint on
/// their input); OVER partitions, MATCH_RECOGNIZE without WITHIN and a
/// versioned table's keys whatever the TTL. Windows, interval and window
/// joins and window Top-N are freed by the watermark; a Top-N without
/// PARTITION BY over appends keeps only its N rows.
#[tokio::test]
async fn unbounded_state_is_marked() {
    const TTL: &str = "SET 'table.exec.state.ttl' = '1 h'";
    let tumble = "TABLE(TUMBLE(TABLE a, DESCRIPTOR(ts), INTERVAL '10' SECOND))";
    let top3 =
        "SELECT k, v FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v DESC) AS rn FROM a) WHERE rn <= 3";
    let join = "SELECT a.k, b.v FROM a JOIN b ON a.k = b.k";
    // (settings, statement, operator kind, whether it is marked, a line it must show)
    let cases: Vec<(&[&str], String, &str, bool, Option<&str>)> = vec![
        (&[], "INSERT INTO changes SELECT k, count(*) FROM a GROUP BY k".into(), "GroupAggregate", true, None),
        (&[], "INSERT INTO changes SELECT DISTINCT k, v FROM a".into(), "GroupAggregate", true, None),
        (&[TTL], "INSERT INTO changes SELECT k, count(*) FROM a GROUP BY k".into(), "GroupAggregate", false, Some("state TTL: 1 h idle")),
        (
            &[],
            "INSERT INTO changes SELECT /*+ STATE_TTL('a' = '1 d') */ k, count(*) FROM a GROUP BY k".into(),
            "GroupAggregate",
            false,
            Some("state TTL: 1 d idle"),
        ),
        (
            &[],
            format!("INSERT INTO kwv SELECT k, window_start, count(*) FROM {tumble} GROUP BY k, window_start, window_end"),
            "WindowAggregate",
            false,
            None,
        ),
        (
            &[],
            "INSERT INTO kwv SELECT k, window_start, count(*) FROM TABLE(SESSION(TABLE a PARTITION BY k, DESCRIPTOR(ts), INTERVAL '5' SECOND)) GROUP BY k, window_start, window_end".into(),
            "SessionAggregate",
            false,
            None,
        ),
        (&[], format!("INSERT INTO changes {join}"), "RegularJoin", true, None),
        (&[TTL], format!("INSERT INTO changes {join}"), "RegularJoin", false, Some("left state TTL")),
        // A hint on one side leaves the other's rows kept for good.
        (&[], format!("INSERT INTO changes {}", join.replace("SELECT", "SELECT /*+ STATE_TTL('a' = '1 d') */")), "RegularJoin", true, None),
        (
            &[],
            format!("INSERT INTO changes {}", join.replace("SELECT", "SELECT /*+ STATE_TTL('a' = '1 d', 'b' = '2 h') */")),
            "RegularJoin",
            false,
            Some("right state TTL: a row expires 2 h after it came (processing time)"),
        ),
        (
            &[],
            format!("INSERT INTO kv {join} AND b.ts BETWEEN a.ts - INTERVAL '1' SECOND AND a.ts + INTERVAL '1' SECOND"),
            "IntervalJoin",
            false,
            None,
        ),
        (
            &[],
            format!(
                "INSERT INTO kv SELECT l.k, l.n + r.n FROM (SELECT k, window_start, window_end, count(*) AS n FROM {tumble} GROUP BY k, window_start, window_end) l \
                 JOIN (SELECT k, window_start, window_end, count(*) AS n FROM {} GROUP BY k, window_start, window_end) r \
                 ON l.k = r.k AND l.window_start = r.window_start AND l.window_end = r.window_end",
                tumble.replace("TABLE a", "TABLE b")
            ),
            "WindowJoin",
            false,
            None,
        ),
        (&[], format!("INSERT INTO changes {top3}"), "TopN", true, None),
        (&[TTL], format!("INSERT INTO changes {top3}"), "TopN", false, Some("state TTL: 1 h idle")),
        (&[], format!("INSERT INTO changes {}", top3.replace("PARTITION BY k ", "")), "TopN", false, None),
        (
            &[],
            "INSERT INTO appendonly SELECT k, v FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts) AS rn FROM a) WHERE rn = 1".into(),
            "Deduplicate",
            true,
            None,
        ),
        (
            &[],
            "INSERT INTO changes SELECT k, v FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts DESC) AS rn FROM a) WHERE rn = 1".into(),
            "Deduplicate",
            true,
            None,
        ),
        (
            &[],
            format!("INSERT INTO appendonly SELECT k, rn FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY v DESC) AS rn FROM {tumble}) WHERE rn <= 2"),
            "WindowTopN",
            false,
            None,
        ),
        (
            &[TTL],
            "INSERT INTO kv SELECT k, sum(v) OVER (PARTITION BY k ORDER BY ts ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) FROM a".into(),
            "OverAggregate",
            true,
            None,
        ),
        (&[], "INSERT INTO kv SELECT k, count(*) OVER (ORDER BY ts) FROM a".into(), "OverAggregate", false, None),
        (
            &[],
            "INSERT INTO kv SELECT k, n FROM a MATCH_RECOGNIZE (PARTITION BY k ORDER BY ts MEASURES LAST(B.v) AS n PATTERN (A B) DEFINE B AS B.v > A.v)".into(),
            "MatchRecognize",
            true,
            None,
        ),
        (
            &[],
            "INSERT INTO kv SELECT k, n FROM a MATCH_RECOGNIZE (PARTITION BY k ORDER BY ts MEASURES LAST(B.v) AS n PATTERN (A B) WITHIN INTERVAL '10' SECOND DEFINE B AS B.v > A.v)".into(),
            "MatchRecognize",
            false,
            None,
        ),
        (
            &["CREATE TABLE rates (k BIGINT, rate BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND, PRIMARY KEY (k) NOT ENFORCED) WITH ('connector' = 'datagen')", TTL],
            "INSERT INTO kv SELECT a.k, r.rate FROM a JOIN rates FOR SYSTEM_TIME AS OF a.ts AS r ON a.k = r.k".into(),
            "TemporalJoin",
            true,
            None,
        ),
    ];
    let tables = Path::new(ROOT).join("sql/tests/plans/tables.sql");
    for (settings, sql, kind, marked, shown) in cases {
        let mut session = Session::new();
        prepare(&mut session, &tables).await;
        let explain = format!("EXPLAIN {sql}");
        for s in settings.iter().copied().chain([explain.as_str()]) {
            let statement = parse_script(s).unwrap_or_else(|e| panic!("{s}: {e}")).remove(0);
            let outcome = session.execute(&statement).await.unwrap_or_else(|e| panic!("{s}: {e}"));
            let Outcome::Explain(plan) = outcome else { continue };
            let ops = operators(&plan);
            let stateful: Vec<&(String, Vec<String>)> = ops.iter().filter(|(k, _)| k == kind).collect();
            assert_eq!(stateful.len(), 1, "one {kind} in\n{plan}");
            let details = &stateful[0].1;
            let warning = details.iter().find(|d| d.starts_with("warning: unbounded state"));
            assert_eq!(warning.is_some(), marked, "{kind} marked {marked} in {settings:?} {sql}:\n{plan}");
            if let Some(line) = shown {
                assert!(details.iter().any(|d| d.starts_with(line)), "{kind} shows {line:?}:\n{plan}");
            }
            // What would bound it is named.
            let remedy = match kind {
                "MatchRecognize" => "WITHIN",
                "OverAggregate" | "TemporalJoin" => "no state TTL applies",
                _ => "'table.exec.state.ttl'",
            };
            assert!(warning.is_none_or(|w| w.contains(remedy)), "{kind}: {warning:?}");
            // Operators nothing marks as unbounded in this plan keep no
            // state or are bounded: no other line than the one checked.
            let others =
                ops.iter().filter(|(k, d)| k != kind && d.iter().any(|l| l.starts_with("warning: unbounded"))).count();
            assert_eq!(others, 0, "{sql}:\n{plan}");
        }
    }
}
