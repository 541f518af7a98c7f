//! The REPL. Piped in (a script): statements end with `;` and may span
//! lines, results print as plain tables, errors do not end the session.
//! On a terminal (a pseudo-terminal driven with expectrl, as a person
//! types): continuation prompts, tab completion, live results that Ctrl-C
//! stops, carets under errors, history, and the backslash commands.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use expectrl::{Expect, Regex, Session};

fn repl(input: &str) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start weir");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn statements_span_lines_and_results_are_tables() {
    let (ok, out, err) = repl(
        "CREATE TABLE t (\n  a BIGINT,\n  ts TIMESTAMP(3),\n  WATERMARK FOR ts AS ts\n) WITH ('connector' = 'datagen', 'number-of-rows' = '3');\nSHOW TABLES;\nDESCRIBE t;\nSELECT 1 + 1 AS two;\n",
    );
    assert!(ok, "{err}");
    assert!(out.contains("Table 't' created."), "{out}");
    assert!(out.contains("| table name |") && out.contains("| t          |"), "{out}");
    assert!(out.contains("| ts   | TIMESTAMP(3) |"), "{out}");
    assert!(out.contains("| two |") && out.contains("| 2   |"), "{out}");
    // A script's output is for programs: no prompt, no colour, no redraw.
    assert!(!out.contains('\x1b') && !err.contains('\x1b'), "{out}{err}");
    assert!(!out.contains("weir>"), "{out}");
}

/// A statement nested far too deep, or a panic while planning one, is an
/// error for that statement: the session goes on.
#[test]
fn a_statement_nested_too_deep_is_an_error_and_the_session_goes_on() {
    let deep = vec!["1"; 2_000].join("+");
    let (ok, out, err) = repl(&format!("SELECT {deep} AS s;\nSELECT {}1{} AS p;\nSELECT 6 * 7 AS answer;\n", "(".repeat(10_000), ")".repeat(10_000)));
    assert!(ok, "{err}");
    assert!(err.contains("nests more than 1000 levels deep"), "{err}");
    assert!(err.contains("nested too deeply"), "{err}");
    assert!(out.contains("| answer |") && out.contains("| 42     |"), "{out}");
}

#[test]
fn a_bounded_query_prints_its_windows_and_errors_do_not_end_the_session() {
    let (ok, out, err) = repl(
        "CREATE TABLE t (n BIGINT, ts AS TO_TIMESTAMP_LTZ(1767225600000 + n * 1000, 3), WATERMARK FOR ts AS ts)
  WITH ('connector' = 'datagen', 'fields.n.kind' = 'sequence', 'fields.n.start' = '0', 'fields.n.end' = '29');
SELEC 1;
SELECT window_start, count(*) AS c FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end;
\\d t
",
    );
    assert!(ok, "{err}");
    assert!(err.contains("syntax error"), "{err}");
    for start in ["2026-01-01T00:00:00", "2026-01-01T00:00:10", "2026-01-01T00:00:20"] {
        assert!(out.contains(&format!("| {start} | 10 |")), "{out}");
    }
    assert!(out.contains("| ts   | TIMESTAMP_LTZ(3) |"), "{out}");
}

/// `weir` in a pseudo-terminal, in its own directory and with its own
/// history file.
struct Term {
    p: expectrl::session::OsSession,
    dir: tempfile::TempDir,
}

impl Term {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
        cmd.current_dir(dir.path())
            .env("TERM", "xterm-256color")
            .env("WEIR_HISTORY", dir.path().join("history"));
        let mut p = Session::spawn(cmd).expect("spawn weir in a pty");
        p.get_process_mut().set_window_size(120, 40).expect("window size");
        p.set_expect_timeout(Some(Duration::from_secs(120)));
        let mut t = Self { p, dir };
        t.until("weir> ");
        t
    }

    /// Types `keys` (`\r` is Enter, `\t` Tab, `\x03` Ctrl-C).
    fn keys(&mut self, keys: &str) {
        self.p.send(keys).expect("type");
    }

    /// Waits for `text`; what came before it, without colours.
    fn until(&mut self, text: &str) -> String {
        let found = self
            .p
            .expect(text)
            .unwrap_or_else(|e| panic!("waiting for {text:?}: {e}"));
        console::strip_ansi_codes(&String::from_utf8_lossy(found.before())).replace('\r', "")
    }

    /// Types a line, waits for `marker` in what it prints (the editor
    /// redraws the prompt as keys arrive, so the prompt alone tells
    /// nothing), then for the next prompt; returns all it printed.
    fn run(&mut self, line: &str, marker: &str) -> String {
        self.keys(&format!("{line}\r"));
        let before = self.until(marker);
        let after = self.until("weir> ");
        format!("{before}{marker}{after}")
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
}

const BIDS: &str = "CREATE TABLE bids (auction BIGINT, price BIGINT, ts AS TO_TIMESTAMP_LTZ(1767225600000 + auction * 1000, 3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen', 'fields.auction.kind' = 'sequence', 'fields.auction.start' = '0', 'fields.auction.end' = '4');";

#[test]
fn typing_completing_and_history_on_a_terminal() {
    let mut t = Term::start();
    // A statement over two lines: the second prompt says it goes on.
    t.keys("CREATE TABLE bids (auction BIGINT, price BIGINT,\r");
    t.until("   -> ");
    let created = t.run("  ts AS TO_TIMESTAMP_LTZ(1767225600000 + auction * 1000, 3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen', 'fields.auction.kind' = 'sequence', 'fields.auction.start' = '0', 'fields.auction.end' = '4');", "created.");
    assert!(created.contains("Table 'bids' created."), "{created}");

    // Completion: a column of the session's table, then the table after
    // FROM. Had either not completed, the query would fail.
    t.keys("SELECT auc\t");
    t.until("auction");
    t.keys(" FROM bi\t");
    t.until("bids");
    let rows = t.run(";", "(5 rows)");
    assert!(rows.contains("(5 rows)"), "{rows}");
    assert!(rows.lines().any(|l| l == "│ auction │"), "{rows}");
    for n in 0..5 {
        assert!(rows.lines().any(|l| l.starts_with(&format!("│ {n} "))), "{rows}");
    }

    // Ctrl-C drops what was typed, not the shell: the next statement runs
    // alone (joined to `SELECT 1` it would be a syntax error).
    t.keys("SELECT 1\r");
    t.until("   -> ");
    t.keys("\x03");
    t.until("weir> ");
    let three = t.run("SELECT 3 AS x;", "(1 row)");
    assert!(three.contains("(1 row)") && !three.contains("error"), "{three}");

    t.keys("\\q\r");
    t.p.expect(expectrl::Eof).expect("weir ends at \\q");
    let history = std::fs::read_to_string(t.path("history")).expect("history file");
    assert!(history.contains("SELECT auction FROM bids;"), "{history}");
    assert!(history.contains("CREATE TABLE bids (auction BIGINT, price BIGINT,"), "{history}");
    assert!(history.contains("SELECT 3 AS x;") && !history.contains("SELECT 1\n"), "{history}");
}

#[test]
fn ctrl_c_stops_a_live_query_and_the_session_goes_on() {
    let mut t = Term::start();
    t.run("CREATE TABLE u (n BIGINT, ts AS TO_TIMESTAMP_LTZ(1767225600000 + n * 1000, 3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen', 'fields.n.kind' = 'sequence', 'fields.n.start' = '0', 'fields.n.end' = '1000000000', 'rows-per-second' = '20');", "created.");
    t.keys("SELECT window_start, count(*) AS c FROM TABLE(TUMBLE(TABLE u, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY window_start, window_end;\r");
    // Windows appear while the query runs, counted on the status line.
    t.p.expect(Regex(r"\((2|3|4|5|6|7|8|9)\d* rows\)")).expect("live rows");
    t.until("Ctrl-C stops the query");
    t.keys("\x03");
    let shown = t.until("Query cancelled.");
    assert!(shown.contains("│ 2026-01-01T00:00:00 ┆ 1 │"), "{shown}");
    assert!(shown.contains("│ 2026-01-01T00:00:01 ┆ 1 │"), "{shown}");
    t.until("weir> ");
    let jobs = t.run("\\x on", "is on.");
    assert!(jobs.contains("Expanded display is on."), "{jobs}");
    let jobs = t.run("\\jobs", "(1 row)");
    assert!(jobs.contains("status        | Cancelled"), "{jobs}");
    let rows_in: u64 = jobs
        .lines()
        .find_map(|l| l.strip_prefix("rows in       | "))
        .and_then(|n| n.trim().parse().ok())
        .expect("rows in");
    assert!(rows_in >= 2, "{jobs}");
    assert!(jobs.contains("watermark     | 2026-01-01T00:00:"), "{jobs}");
    let two = t.run("SELECT 1 + 1 AS two;", "(1 row)");
    assert!(two.contains("two | 2"), "{two}");
}

/// The line after `origin:line:col: error:` repeats the statement's line;
/// the next has a caret under column `col`.
fn assert_caret(text: &str, origin: &str, source_line: &str) {
    let lines: Vec<&str> = text.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.starts_with(&format!("{origin}:")) && l.contains(": error: "))
        .unwrap_or_else(|| panic!("no error from {origin} in {text}"));
    let column: usize = lines[i][origin.len() + 1..]
        .split(':')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a column");
    assert_eq!(lines[i + 1], format!("  {source_line}"), "{text}");
    assert_eq!(lines[i + 2], format!("  {}^", " ".repeat(column - 1)), "{text}");
}

#[test]
fn errors_show_a_caret_under_the_offending_token() {
    let mut t = Term::start();
    let syntax = t.run("SELECT 1 +;", "^");
    assert_caret(&syntax, "input", "SELECT 1 +;");
    assert!(syntax.contains("input:1:11: error: syntax error"), "{syntax}");
    let plan = t.run("INSERT INTO nowhere SELECT 1;", "^");
    assert_caret(&plan, "input", "INSERT INTO nowhere SELECT 1;");
    assert!(plan.contains("input:1:13: error: table 'nowhere' not found"), "{plan}");
    std::fs::write(
        t.path("bad.sql"),
        "CREATE TABLE a (x BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '1');\nDESCRIBE missing;\n",
    )
    .expect("write bad.sql");
    let file = t.run("\\i bad.sql", "^");
    assert!(file.contains("Table 'a' created."), "{file}");
    assert_caret(&file, "bad.sql", "DESCRIBE missing;");
    assert!(file.contains("bad.sql:2:10: error: table 'missing' not found"), "{file}");
    let unknown = t.run("\\nope", "lists them)");
    assert!(unknown.contains("unknown command '\\nope'"), "{unknown}");
}

#[test]
fn backslash_commands() {
    let mut t = Term::start();
    std::fs::write(t.path("bids.sql"), BIDS).expect("write bids.sql");
    assert!(t.run("\\i bids.sql", "created.").contains("Table 'bids' created."));
    let tables = t.run("\\d", "(1 row)");
    assert!(tables.contains("│ bids "), "{tables}");
    let schema = t.run("\\d bids", "(3 rows)");
    assert!(schema.lines().any(|l| l.starts_with("│ auction ") && l.contains("BIGINT")), "{schema}");
    assert!(schema.contains("WATERMARK AS ts"), "{schema}");

    assert!(t.run("\\x", "display is").contains("Expanded display is on."));
    let expanded = t.run("\\d bids", "(3 rows)");
    assert!(expanded.contains("-[ RECORD 1 ]-") && expanded.contains("name   | auction"), "{expanded}");
    assert!(t.run("\\x", "display is").contains("Expanded display is off."));

    assert!(t.run("\\timing", "Timing is").contains("Timing is on."));
    let timed = t.run("SELECT 1 AS one;", "(1 row)");
    assert!(timed.lines().any(|l| l.starts_with("Time: ") && l.ends_with(" ms")), "{timed}");
    assert!(t.run("\\o out.txt", "back here).").contains("Results go to out.txt"));
    let quiet = t.run("SELECT 42 AS answer;", "Time: ");
    assert!(!quiet.contains("│ 42"), "{quiet}");
    let streamed = t.run("SELECT auction FROM bids;", "Time: ");
    assert!(!streamed.contains("auction │"), "{streamed}");
    assert!(t.run("\\o", "terminal again").contains("Results go to the terminal again"));
    assert!(t.run("\\timing off", "is off.").contains("Timing is off."));
    let back = t.run("SELECT 43 AS answer;", "(1 row)");
    assert!(back.contains("43") && !back.contains("Time: "), "{back}");
    let file = std::fs::read_to_string(t.path("out.txt")).expect("out.txt");
    assert!(file.contains("| answer |\n+--------+\n| 42     |"), "{file}");
    for n in 0..5 {
        assert!(file.contains(&format!("| {n}       |")), "{file}");
    }
    assert!(!file.contains("43") && !file.contains('\x1b'), "{file}");

    let help = t.run("\\?", "(or Ctrl-D)");
    assert!(help.contains("\\timing") && help.contains("\\o"), "{help}");
}

/// `weir run` shows each job's rows read out of its bounded input on a
/// terminal, and nothing of it when standard error is a pipe.
#[test]
fn weir_run_shows_progress_on_a_terminal_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let job = dir.path().join("job.sql");
    std::fs::write(
        &job,
        "CREATE TABLE g (n BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '60', 'rows-per-second' = '20');
CREATE TABLE out (n BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO out SELECT n FROM g;",
    )
    .expect("write job.sql");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.arg("run").arg(&job).current_dir(dir.path()).env("TERM", "xterm-256color");
    let mut p = Session::spawn(cmd).expect("spawn weir run in a pty");
    p.get_process_mut().set_window_size(150, 20).expect("window size");
    p.set_expect_timeout(Some(Duration::from_secs(120)));
    let bar = p.expect(Regex(r"(\d+)/60 rows \(\d+ rows/s")).expect("a progress bar");
    let read: u64 = std::str::from_utf8(&bar[1]).ok().and_then(|n| n.parse().ok()).expect("rows read");
    assert!(read < 60, "{read}");
    p.expect("60 rows written").expect("the summary");

    let piped = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("run")
        .arg(&job)
        .current_dir(dir.path())
        .output()
        .expect("weir run");
    let err = String::from_utf8_lossy(&piped.stderr);
    assert!(piped.status.success(), "{err}");
    assert!(err.contains("60 rows written") && !err.contains("/60 rows") && !err.contains('\x1b'), "{err}");
}
