//! Bad input gets a clear error that says what and where, and a non-zero
//! exit: bad SQL, unsupported SQL, bad options, unreadable files, bad
//! records.

use crate::common;

use common::*;

const SOURCE: &str = "CREATE TABLE src (
  k VARCHAR,
  v BIGINT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE sink (k VARCHAR, c BIGINT) WITH ('connector' = 'blackhole');
";

fn fails_with(sql: &str, needles: &[&str]) -> Run {
    let dir = scratch();
    let run = weir_run(dir.path(), sql);
    assert!(!run.ok, "expected failure, got success:\n{}", run.stderr);
    for n in needles {
        assert!(run.stderr.contains(n), "stderr lacks {n:?}:\n{}", run.stderr);
    }
    run
}

#[test]
fn syntax_error_has_file_line_column_and_caret() {
    let run = fails_with("SELECT 1;\nSELEC k FROM src;", &["job.sql:2:1: error: syntax error"]);
    assert!(run.stderr.contains("  SELEC k FROM src;\n  ^"), "{}", run.stderr);
}

/// Errors that concern a whole statement (a refused setting, an unknown
/// job) point at that statement.
#[test]
fn statement_errors_point_at_their_statement() {
    fails_with(
        "SELECT 1;\n  SET 'execution.checkpointing.interval' = '1 ms';",
        &["job.sql:2:3: error: invalid value '1 ms' for 'execution.checkpointing.interval'"],
    );
    fails_with(
        "SELECT 1;\nSTOP JOB 'nope';",
        &["job.sql:2:1: error: no job with id 'nope'"],
    );
}

#[test]
fn unsupported_constructs_are_named_with_their_place() {
    let sql = format!("{SOURCE}INSERT INTO sink\nSELECT k, v FROM src ORDER BY v;");
    fails_with(
        &sql,
        &[
            "job.sql:9:",
            "ORDER BY on a stream that does not start with its time attribute ascending is not supported",
        ],
    );
    let sql = format!("{SOURCE}INSERT INTO sink\nSELECT k, v FROM src WHERE k IN (SELECT k FROM src);");
    fails_with(
        &sql,
        &[
            "job.sql:9:",
            "an IN / EXISTS subquery over streams outside a window is not supported",
        ],
    );
    let sql = format!(
        "{SOURCE}INSERT INTO sink SELECT k, median(n) FROM (SELECT k, count(*) AS n FROM src GROUP BY k) GROUP BY k;"
    );
    fails_with(
        &sql,
        &[
            "job.sql:8:",
            "over the results of a GROUP BY without a window is not supported",
            "only COUNT, SUM, AVG, COLLECT, MIN and MAX",
        ],
    );
    let sql = format!(
        "{SOURCE}INSERT INTO sink SELECT k, count(*) FROM TABLE(\n  SESSION(TABLE src, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) GROUP BY k, window_start, window_end;"
    );
    fails_with(
        &sql,
        &[
            "job.sql:8:",
            "SESSION window aggregation must group by window_start, window_end and exactly its PARTITION BY columns",
        ],
    );
    // DataFusion's own errors that name no place are placed at the query.
    let sql = format!("{SOURCE}INSERT INTO sink SELECT a.k, b.nope FROM src a JOIN src b ON a.k = b.k;");
    fails_with(&sql, &["job.sql:8:", "No field named b.nope"]);
    let sql = format!(
        "{SOURCE}INSERT INTO sink SELECT k, count(*) FROM TABLE(\n  TUMBLE(TABLE src PARTITION BY k, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) GROUP BY k, window_start, window_end;"
    );
    fails_with(
        &sql,
        &["job.sql:9:16", "PARTITION BY is for SESSION windows, not TUMBLE"],
    );
    let sql = format!(
        "{SOURCE}INSERT INTO sink SELECT k, count(*) FROM TABLE(\n  CUMULATE(TABLE src, DESCRIPTOR(ts), INTERVAL '7' SECOND, INTERVAL '1' MINUTE)) GROUP BY k, window_start, window_end;"
    );
    fails_with(&sql, &["job.sql:9:3", "max size a multiple of the step"]);
    // Subqueries in expressions are named, not planner internals.
    let sql =
        format!("{SOURCE}INSERT INTO sink SELECT k, v FROM src WHERE k NOT IN (SELECT max(k) FROM src WHERE v > 3);");
    let run = fails_with(
        &sql,
        &[
            "job.sql:8:",
            "NOT IN (subquery) over streams is not supported: write NOT EXISTS",
        ],
    );
    assert!(!run.stderr.contains("InSubquery"), "{}", run.stderr);
    let sql = format!("{SOURCE}INSERT INTO sink SELECT k, v FROM src WHERE k NOT IN (SELECT k FROM src) OR v > 100;");
    let run = fails_with(
        &sql,
        &[
            "job.sql:8:",
            "an IN / EXISTS subquery inside OR or NOT over streams is not supported",
        ],
    );
    assert!(!run.stderr.contains("LEFTMARK"), "{}", run.stderr);
    let sql = format!("{SOURCE}INSERT INTO sink SELECT k, v FROM src WHERE k NOT IN (SELECT k FROM src WHERE v > 3);");
    fails_with(
        &sql,
        &[
            "job.sql:8:",
            "an IN / EXISTS subquery over streams outside a window is not supported",
        ],
    );
    let sql =
        format!("{SOURCE}INSERT INTO sink SELECT k, v FROM src s WHERE EXISTS (SELECT 1 FROM src t WHERE t.k = s.k);");
    fails_with(
        &sql,
        &[
            "job.sql:8:",
            "an IN / EXISTS subquery over streams outside a window is not supported",
        ],
    );
}

#[test]
fn bad_options_are_named() {
    fails_with(
        "CREATE TABLE t (a BIGINT) WITH ('connector' = 'datagen', 'rows-per-secnd' = '5');",
        &["rows-per-secnd"],
    );
    fails_with(
        "CREATE TABLE t (a BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = 'fast');",
        &["rows-per-second", "fast"],
    );
    fails_with("CREATE TABLE t (a BIGINT) WITH ('connector' = 'kafak');", &["kafak"]);
    fails_with(
        "CREATE TABLE t (a BIGINT) WITH ('connector' = 'filesystem', 'format' = 'json');",
        &["path"],
    );
    fails_with(
        "CREATE TABLE t (a BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen', 'scan.watermark.emit.strategy' = 'sometimes');",
        &["scan.watermark.emit.strategy", "sometimes"],
    );
    fails_with(
        "CREATE TABLE t (a BIGINT, o BIGINT METADATA FROM 'offset') WITH ('connector' = 'filesystem', 'path' = 'x', 'format' = 'json');",
        &["connector 'filesystem': no METADATA columns (column 'o' asks for 'offset')"],
    );
    fails_with(
        "CREATE TABLE t (a BIGINT, o BIGINT METADATA FROM 'headerz') WITH ('connector' = 'kafka', 'topic' = 't', 'properties.bootstrap.servers' = 'localhost:1', 'format' = 'json');",
        &["column 'o': no METADATA 'headerz' (known: 'topic', 'partition', 'offset', 'timestamp', 'key')"],
    );
    fails_with(
        "CREATE TABLE t (a BIGINT) WITH ('connector' = 'kafka', 'topic' = 't', 'properties.bootstrap.servers' = 'localhost:1', 'format' = 'json', 'sink.delivery-guarantee' = 'twice');",
        &["sink.delivery-guarantee", "twice"],
    );
    fails_with("SET 'parallelism.default' = 'lots';", &["parallelism.default", "lots"]);
    fails_with("SET 'no.such.key' = '1';", &["unknown setting 'no.such.key'"]);
}

#[test]
fn planning_errors_name_the_problem() {
    fails_with(
        &format!("{SOURCE}INSERT INTO nowhere SELECT k, v FROM src;"),
        &["table 'nowhere' not found"],
    );
    fails_with(
        &format!("{SOURCE}INSERT INTO sink SELECT k, v, 1 FROM src;"),
        &["query produces 3 columns but the table has 2"],
    );
    fails_with(
        "CREATE TABLE t (a BIGINT, ts TIMESTAMP(3)) WITH ('connector' = 'datagen', 'number-of-rows' = '1');
         CREATE TABLE s (a BIGINT) WITH ('connector' = 'blackhole');
         INSERT INTO s SELECT count(*) FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY window_start, window_end;",
        &["has no time attribute", "WATERMARK FOR ts"],
    );
}

#[test]
fn unreadable_input_fails_the_job() {
    let sql = "CREATE TABLE src (a BIGINT) WITH ('connector' = 'filesystem', 'path' = '/nonexistent/weir/input', 'format' = 'json');
CREATE TABLE s (a BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO s SELECT a FROM src;";
    fails_with(sql, &["/nonexistent/weir/input"]);
}

#[test]
fn a_bad_record_fails_the_job_with_its_file_and_line() {
    let dir = scratch();
    let input = dir.path().join("in.json");
    std::fs::write(&input, "{\"a\": 1}\n{\"a\": 2}\n{\"a\": \"two\"}\n{\"a\": 4}\n").unwrap();
    let sql = format!(
        "CREATE TABLE src (a BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
CREATE TABLE s (a BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO s SELECT a FROM src;",
        input.display()
    );
    let run = weir_run(dir.path(), &sql);
    assert!(!run.ok);
    assert!(run.stderr.contains("in.json:3"), "{}", run.stderr);
    assert!(run.stderr.contains("\"two\""), "{}", run.stderr);
}

#[test]
fn a_missing_script_is_an_error() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["run", "/nonexistent/script.sql"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/script.sql"));
}
