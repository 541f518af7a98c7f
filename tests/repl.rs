//! The minimal REPL: statements end with `;` (and may span lines); results
//! print as tables; errors do not end the session.

use std::io::Write;
use std::process::{Command, Stdio};

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
}

#[test]
fn a_bounded_query_prints_its_windows_and_errors_do_not_end_the_session() {
    let (ok, out, err) = repl(
        "CREATE TABLE t (n BIGINT, ts AS TO_TIMESTAMP_LTZ(1767225600000 + n * 1000, 3), WATERMARK FOR ts AS ts)
  WITH ('connector' = 'datagen', 'fields.n.kind' = 'sequence', 'fields.n.start' = '0', 'fields.n.end' = '29');
SELEC 1;
SELECT window_start, count(*) AS c FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end;
",
    );
    assert!(ok, "{err}");
    assert!(err.contains("syntax error"), "{err}");
    for start in ["2026-01-01T00:00:00", "2026-01-01T00:00:10", "2026-01-01T00:00:20"] {
        assert!(out.contains(&format!("| {start} | 10 |")), "{out}");
    }
}
