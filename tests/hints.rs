//! Flink's dynamic table options, `/*+ OPTIONS('k' = 'v') */` after a
//! table's name: they override the table's `WITH` for one statement, for a
//! source and for the table written to, and are checked as `WITH` is.

use crate::common;

use common::*;

/// `n` JSON rows `{"k": i * step}`.
fn numbers(path: &std::path::Path, n: i64, step: i64) -> Vec<i64> {
    let ks: Vec<i64> = (1..=n).map(|i| i * step).collect();
    std::fs::write(path, ks.iter().map(|k| format!("{{\"k\": {k}}}\n")).collect::<String>()).unwrap();
    ks
}

fn ks(dir: &std::path::Path) -> Vec<i64> {
    let mut ks: Vec<i64> = read_sink(dir).iter().map(|r| r["k"].as_i64().unwrap()).collect();
    ks.sort();
    ks
}

#[test]
fn a_hint_reads_and_writes_with_its_options_for_that_statement_only() {
    let dir = scratch();
    let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    let small = numbers(&a, 50, 1);
    let big = numbers(&b, 3000, 7);
    let (out, out2) = (dir.path().join("out"), dir.path().join("out2"));
    let sql = format!(
        "CREATE TABLE t (k BIGINT) WITH ('connector' = 'filesystem', 'path' = '{a}', 'format' = 'json');
CREATE TABLE o (k BIGINT) WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'json');
CREATE TABLE o2 (k BIGINT) WITH ('connector' = 'filesystem', 'path' = '{out2}', 'format' = 'json');
INSERT INTO o /*+ OPTIONS('format' = 'csv') */
SELECT k FROM t /*+ OPTIONS('path' = '{b}') */ WHERE k % 2 = 0;
INSERT INTO o2 SELECT k FROM t;",
        a = a.display(),
        b = b.display(),
        out = out.display(),
        out2 = out2.display()
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    let want: Vec<i64> = big.iter().copied().filter(|k| k % 2 == 0).collect();
    // The sink wrote CSV, as its hint said, not its declared JSON.
    let mut got: Vec<i64> = Vec::new();
    for part in std::fs::read_dir(&out).unwrap() {
        let text = std::fs::read_to_string(part.unwrap().path()).unwrap();
        got.extend(
            text.lines()
                .map(|l| l.parse::<i64>().unwrap_or_else(|_| panic!("not CSV: {l}"))),
        );
    }
    got.sort();
    assert_eq!(got, want, "the hinted source's rows");
    // The table itself is unchanged by the hint.
    assert_eq!(ks(&out2), small);
}

#[test]
fn hints_in_a_statement_set_and_a_self_join() {
    let dir = scratch();
    let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    numbers(&a, 40, 1);
    numbers(&b, 40, 10);
    let out = dir.path().join("out");
    let sql = format!(
        "CREATE TABLE t (k BIGINT) WITH ('connector' = 'filesystem', 'path' = '{a}', 'format' = 'json');
CREATE TABLE o (k BIGINT) WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'json');
EXECUTE STATEMENT SET BEGIN
INSERT INTO o SELECT x.k FROM t AS x JOIN t /*+ OPTIONS('path' = '{b}') */ AS y ON y.k = x.k * 10;
END;",
        a = a.display(),
        b = b.display(),
        out = out.display()
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(ks(&out), (1..=40).collect::<Vec<i64>>());
}

#[test]
fn bad_hints_are_errors_at_the_hint() {
    let dir = scratch();
    let a = dir.path().join("a.json");
    numbers(&a, 3, 1);
    let ddl = format!(
        "CREATE TABLE t (k BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');\nCREATE VIEW v AS SELECT k FROM t;\n",
        a.display()
    );
    for (statement, message) in [
        (
            "SELECT k FROM t /*+ OPTIONS('pth' = 'x') */;",
            "3:17: error: OPTIONS of table 't': unknown option 'pth'",
        ),
        (
            "SELECT k FROM v /*+ OPTIONS('path' = 'x') */;",
            "3:17: error: OPTIONS hints are for tables; 'v' is a view",
        ),
        (
            "SELECT k FROM t /*+ OPTIONS('path') */;",
            "3:17: error: syntax error: hint /*+ OPTIONS('path') */: no '=' after 'path'",
        ),
        (
            "SELECT /*+ OPTIONS('path' = 'x') */ k FROM t;",
            "3:8: error: syntax error: an OPTIONS hint must follow the name of a table",
        ),
    ] {
        let run = weir_run(dir.path(), &format!("{ddl}{statement}"));
        assert!(!run.ok, "{statement} ran");
        assert!(run.stderr.contains(message), "{statement}: {}", run.stderr);
    }
}
