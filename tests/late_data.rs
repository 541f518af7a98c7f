//! Late and bad event times end to end (SQL.md, "Late data"): ALLOWED
//! LATENESS re-fires windows with corrected rows; rows past it, and rows
//! with invalid event times, land in the LATE DATA INTO table with their
//! reason and watermark — exactly the rows a row-by-row oracle of Flink's
//! on-event rule picks.

use crate::common;

use common::*;

const DELAY: i64 = 2_000;
const LATENESS: i64 = 10_000;
const TUMBLE_10S: &str = "TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '10' SECOND)";
const HOP_5S_15S: &str = "HOP(TABLE src, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '15' SECOND)";
/// 2000-01-01, the default earliest valid event time.
const MIN_VALID: i64 = 946_684_800_000;

/// In-order rows with some sent back in time: some within the allowed
/// lateness (they correct fired windows), some beyond it (late).
fn rows_with_stragglers(seed: u64) -> Vec<Row> {
    let mut g = Lcg(seed);
    let mut ts = T0;
    let mut rows: Vec<Row> = (0..1500)
        .map(|_| {
            ts += g.below(400) as i64;
            Row { k: Some(format!("k{}", g.below(4))), v: Some(g.below(50) as i64), ts: Some(ts) }
        })
        .collect();
    for i in (40..rows.len()).step_by(23) {
        let back = 2_500 + g.below(25_000) as i64;
        rows[i].ts = rows[i].ts.map(|t| t - back);
    }
    rows
}

fn sql(dir: &std::path::Path, window: &str, late_table_ddl: &str, clauses: &str) -> String {
    format!(
        "CREATE TABLE src (k VARCHAR, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
  WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'json',
        'scan.watermark.emit.strategy' = 'on-event');
CREATE TABLE out (window_start TIMESTAMP(3), window_end TIMESTAMP(3), k VARCHAR,
  c BIGINT, d BIGINT, s BIGINT, mn BIGINT, mx BIGINT, a DOUBLE)
  WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'json');
{late_table_ddl}
INSERT INTO out
SELECT window_start, window_end, k, count(*) AS c, count(DISTINCT v) AS d,
       sum(v) AS s, min(v) AS mn, max(v) AS mx, avg(v) AS a
FROM TABLE({window})
GROUP BY window_start, window_end, k
{clauses};",
        input = dir.join("in.json").display(),
        out = dir.join("out").display(),
    )
}

fn late_sink_ddl(dir: &std::path::Path) -> String {
    format!(
        "CREATE TABLE late_rows (ts TIMESTAMP(3), reason VARCHAR, k VARCHAR, v BIGINT, watermark TIMESTAMP(3))
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');",
        dir.join("late").display()
    )
}

/// The last row written for each window and key: what an upsert sink keeps.
fn latest_per_key(rows: &[serde_json::Value]) -> Vec<String> {
    let mut latest = std::collections::BTreeMap::new();
    for r in rows {
        let line = normalize_json(r);
        let key: Vec<&str> = line.splitn(4, '|').take(3).collect();
        latest.insert(key.join("|"), line.clone());
    }
    latest.into_values().collect()
}

fn side_rows(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = read_sink(&dir.join("late"))
        .iter()
        .map(|r| {
            let wm = r["watermark"].as_str().map(parse_timestamp).map(|w| w.to_string()).unwrap_or("null".into());
            let ts = r["ts"].as_str().map(parse_timestamp).map(|t| t.to_string()).unwrap_or("null".into());
            format!("{}|{}|{}|{}|{}", r["reason"].as_str().unwrap(), r["k"], r["v"], ts, wm)
        })
        .collect();
    v.sort();
    v
}

fn expected_side(list: &[(Row, i64)], reason: &str) -> Vec<String> {
    list.iter()
        .map(|(r, wm)| {
            let k = r.k.as_ref().map(|k| format!("\"{k}\"")).unwrap_or("null".into());
            let v = r.v.map(|v| v.to_string()).unwrap_or("null".into());
            let ts = r.ts.map(|t| t.to_string()).unwrap_or("null".into());
            let wm = if *wm == i64::MIN { "null".to_string() } else { wm.to_string() };
            format!("{reason}|{k}|{v}|{ts}|{wm}")
        })
        .collect()
}

#[tokio::test]
async fn allowed_lateness_refires_windows_and_routes_the_rest() {
    for (window, shape) in [
        (TUMBLE_10S, Shape::Tumble { size: 10_000, offset: 0 }),
        (HOP_5S_15S, Shape::Hop { slide: 5_000, size: 15_000 }),
    ] {
        let rows = rows_with_stragglers(21);
        let d = decide(&rows, shape, DELAY, LATENESS, (MIN_VALID, i64::MAX));
        let without_lateness = decide(&rows, shape, DELAY, 0, (MIN_VALID, i64::MAX));
        assert!(d.late.len() > 3, "some rows must be beyond the lateness");
        assert!(without_lateness.late.len() > d.late.len(), "some rows must be saved by the lateness");

        let dir = scratch();
        write_json(&dir.path().join("in.json"), &rows);
        let run = weir_run(
            dir.path(),
            &sql(dir.path(), window, &late_sink_ddl(dir.path()), "ALLOWED LATENESS INTERVAL '10' SECOND LATE DATA INTO late_rows"),
        );
        assert!(run.ok, "{}", run.stderr);
        let written = read_sink(&dir.path().join("out"));
        let expected = aggregate(&d.assigned, shape).await;
        // An append sink gets every firing; the last row of each window
        // and key is the corrected result.
        assert_rows_eq(&latest_per_key(&written), &expected, window);
        assert!(written.len() > expected.len(), "{window}: no window was re-fired");
        assert_eq!(run.counted("late rows"), d.late.len() as u64, "{window}");
        let mut want = expected_side(&d.late, "late");
        want.sort();
        assert_rows_eq(&side_rows(dir.path()), &want, window);
    }
}

/// Without ALLOWED LATENESS, late rows go to the side table with the
/// watermark they missed, and windows fire once.
#[tokio::test]
async fn late_rows_go_to_the_declared_side_table() {
    let rows = rows_with_stragglers(22);
    let shape = Shape::Tumble { size: 10_000, offset: 0 };
    let d = decide(&rows, shape, DELAY, 0, (MIN_VALID, i64::MAX));
    let dir = scratch();
    write_json(&dir.path().join("in.json"), &rows);
    let run = weir_run(dir.path(), &sql(dir.path(), TUMBLE_10S, &late_sink_ddl(dir.path()), "LATE DATA INTO late_rows"));
    assert!(run.ok, "{}", run.stderr);
    let mut got: Vec<String> = read_sink(&dir.path().join("out")).iter().map(normalize_json).collect();
    got.sort();
    assert_rows_eq(&got, &aggregate(&d.assigned, shape).await, "windows");
    let mut want = expected_side(&d.late, "late");
    want.sort();
    assert_rows_eq(&side_rows(dir.path()), &want, "side table");
    assert_eq!(run.counted("rows to the late-data table"), d.late.len() as u64);
}

/// NULL, 1970 and far-future event times neither stall nor poison the
/// windows; they reach the side table as invalid_event_time.
#[tokio::test]
async fn invalid_event_times_are_routed_and_do_not_move_the_watermark() {
    let mut rows = rows_with_stragglers(23);
    let far_future = 4_102_444_800_000; // 2100-01-01
    for (i, ts) in [(30, None), (300, Some(0)), (600, Some(far_future)), (900, Some(1_000)), (1200, Some(far_future))] {
        rows.insert(i, Row { k: Some("bad".into()), v: Some(i as i64), ts });
    }
    let shape = Shape::Tumble { size: 10_000, offset: 0 };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let d = decide(&rows, shape, DELAY, 0, (MIN_VALID, now + 3_600_000));
    assert_eq!(d.invalid.len(), 5);
    let dir = scratch();
    write_json(&dir.path().join("in.json"), &rows);
    let run = weir_run(dir.path(), &sql(dir.path(), TUMBLE_10S, &late_sink_ddl(dir.path()), "LATE DATA INTO late_rows"));
    assert!(run.ok, "{}", run.stderr);
    let mut got: Vec<String> = read_sink(&dir.path().join("out")).iter().map(normalize_json).collect();
    got.sort();
    assert_rows_eq(&got, &aggregate(&d.assigned, shape).await, "windows");
    let mut want = expected_side(&d.late, "late");
    want.extend(expected_side(&d.invalid, "invalid_event_time"));
    want.sort();
    assert_rows_eq(&side_rows(dir.path()), &want, "side table");
    assert_eq!(run.counted("rows with an invalid event time"), 5);
}

/// `'watermark.min-valid-time'` and `'watermark.max-future'` move the bounds.
#[tokio::test]
async fn the_valid_range_is_configurable() {
    let rows: Vec<Row> = [T0 + 1_000, T0 + 2_000, T0 + 86_400_000 * 400, T0 + 3_000]
        .iter()
        .map(|t| Row { k: Some("a".into()), v: Some(1), ts: Some(*t) })
        .collect();
    let dir = scratch();
    write_json(&dir.path().join("in.json"), &rows);
    let text = sql(dir.path(), TUMBLE_10S, &late_sink_ddl(dir.path()), "LATE DATA INTO late_rows").replace(
        "'scan.watermark.emit.strategy' = 'on-event'",
        "'scan.watermark.emit.strategy' = 'on-event', 'watermark.min-valid-time' = '2026-01-01 00:00:01.500', 'watermark.max-future' = '0 s'",
    );
    let run = weir_run(dir.path(), &text);
    assert!(run.ok, "{}", run.stderr);
    // T0+1000 is before the minimum; T0+400 days is in the future; two rows count.
    let got: Vec<String> = read_sink(&dir.path().join("out")).iter().map(normalize_json).collect();
    assert_eq!(got.len(), 1);
    assert!(got[0].contains("|a|2|"), "{got:?}");
    assert_eq!(run.counted("rows with an invalid event time"), 2);
}

/// An undeclared LATE DATA INTO table becomes a memory table with every
/// column, readable with a plain SELECT.
#[tokio::test]
async fn an_undeclared_side_table_is_a_memory_table() {
    let rows = rows_with_stragglers(24);
    let shape = Shape::Tumble { size: 10_000, offset: 0 };
    let d = decide(&rows, shape, DELAY, 0, (MIN_VALID, i64::MAX));
    let dir = scratch();
    write_json(&dir.path().join("in.json"), &rows);
    let text = format!(
        "SET 'table.dml-sync' = 'true';\n{}\nSELECT reason, count(*) AS n FROM late_bids GROUP BY reason;\nDESCRIBE late_bids;",
        sql(dir.path(), TUMBLE_10S, "", "LATE DATA INTO late_bids")
    );
    let run = weir_run(dir.path(), &text);
    assert!(run.ok, "{}", run.stderr);
    let counted = run
        .stdout
        .lines()
        .find(|l| l.starts_with("| late "))
        .and_then(|l| l.split('|').nth(2))
        .map(|n| n.trim().parse::<usize>().unwrap());
    assert_eq!(counted, Some(d.late.len()), "{}", run.stdout);
    for column in ["| k ", "| v ", "| ts ", "| reason ", "| watermark ", "| arrived_at "] {
        assert!(run.stdout.contains(column), "no column {column} in:\n{}", run.stdout);
    }
}

#[test]
fn late_data_clauses_are_checked() {
    let dir = scratch();
    let bad_column = sql(
        dir.path(),
        TUMBLE_10S,
        "CREATE TABLE late_rows (nope BIGINT) WITH ('connector' = 'blackhole');",
        "LATE DATA INTO late_rows",
    );
    std::fs::write(dir.path().join("in.json"), "").unwrap();
    let run = weir_run(dir.path(), &bad_column);
    assert!(!run.ok);
    assert!(run.stderr.contains("column 'nope' is none of the row's columns"), "{}", run.stderr);

    let no_window = "CREATE TABLE t (a BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '1');
CREATE TABLE s (a BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO s SELECT a FROM t
ALLOWED LATENESS INTERVAL '1' MINUTE;";
    let run = weir_run(dir.path(), no_window);
    assert!(!run.ok);
    assert!(run.stderr.contains("job.sql:4:1: error: EMIT EARLY, ALLOWED LATENESS and LATE DATA INTO need a windowed GROUP BY"), "{}", run.stderr);
}

/// A late but allowed row that bridges two fired sessions merges them: the
/// merged session fires again (an append sink sees it after the old ones).
#[test]
fn a_late_row_bridging_two_sessions_merges_and_refires_them() {
    let dir = scratch();
    let at = |s: f64, v: i64| format!("{{\"k\": \"a\", \"v\": {v}, \"ts\": {}}}\n", T0 + (s * 1000.0) as i64);
    let input = [at(1.0, 1), at(10.0, 2), at(30.0, 4), at(5.5, 8)].concat();
    std::fs::write(dir.path().join("in.json"), input).unwrap();
    let text = format!(
        "CREATE TABLE src (k VARCHAR, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json', 'scan.watermark.emit.strategy' = 'on-event');
CREATE TABLE out (ws TIMESTAMP(3), we TIMESTAMP(3), k VARCHAR, c BIGINT, s BIGINT) WITH ('connector' = 'print');
INSERT INTO out SELECT window_start, window_end, k, count(*), sum(v)
FROM TABLE(SESSION(TABLE src PARTITION BY k, DESCRIPTOR(ts), INTERVAL '5' SECOND))
GROUP BY window_start, window_end, k
ALLOWED LATENESS INTERVAL '30' SECOND;",
        dir.path().join("in.json").display()
    );
    let run = weir_run(dir.path(), &text);
    assert!(run.ok, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with("+I[")).collect();
    assert_eq!(
        lines,
        vec![
            "+I[2026-01-01T00:00:01, 2026-01-01T00:00:06, a, 1, 1]",
            "+I[2026-01-01T00:00:10, 2026-01-01T00:00:15, a, 1, 2]",
            "+I[2026-01-01T00:00:01, 2026-01-01T00:00:15, a, 3, 11]",
            "+I[2026-01-01T00:00:30, 2026-01-01T00:00:35, a, 1, 4]",
        ]
    );
    assert_eq!(run.counted("late rows"), 0);
}

/// A record that cannot be decoded never stops a job with a side table: it
/// reaches the table with reason decode_error; with
/// `'json.ignore-parse-errors'` and no side table it is skipped and counted.
#[test]
fn undecodable_records_are_routed_or_skipped_never_lost_silently() {
    let dir = scratch();
    let good = |s: i64, v: i64| format!("{{\"k\": \"a\", \"v\": {v}, \"ts\": {}}}\n", T0 + s * 1000);
    let input = [good(1, 1), "{\"k\": \"a\", \"v\": \"one\"}\n".into(), good(2, 2), "not json\n".into(), good(30, 3)].concat();
    std::fs::write(dir.path().join("in.json"), input).unwrap();
    let run = weir_run(
        dir.path(),
        &sql(dir.path(), TUMBLE_10S, &late_sink_ddl(dir.path()), "LATE DATA INTO late_rows"),
    );
    assert!(run.ok, "{}", run.stderr);
    let side = side_rows(dir.path());
    assert_eq!(side.len(), 2, "{side:?}");
    assert!(side.iter().all(|r| r.starts_with("decode_error|null|null|null|")), "{side:?}");
    assert_eq!(run.counted("records that could not be decoded"), 2);
    let windows: Vec<String> = read_sink(&dir.path().join("out")).iter().map(normalize_json).collect();
    assert_eq!(windows.len(), 2, "{windows:?}");

    // SQL.md's generic name; Flink's 'json.ignore-parse-errors' works too.
    let skip = sql(dir.path(), TUMBLE_10S, "", "")
        .replace("'format' = 'json',\n        'scan", "'format' = 'json', 'format.ignore-parse-errors' = 'true',\n        'scan")
        .replace(&dir.path().join("out").display().to_string(), &dir.path().join("out2").display().to_string());
    let run = weir_run(dir.path(), &skip);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(run.counted("records that could not be decoded"), 2);
    assert_eq!(read_sink(&dir.path().join("out2")).len(), 2);

    let fail = sql(dir.path(), TUMBLE_10S, "", "")
        .replace(&dir.path().join("out").display().to_string(), &dir.path().join("out3").display().to_string());
    let run = weir_run(dir.path(), &fail);
    assert!(!run.ok);
    assert!(run.stderr.contains("in.json:2"), "{}", run.stderr);
}

/// EMIT EARLY EVERY: an open window emits its running result while rows
/// arrive (upserts: the latest row is the current value), then its final
/// result when it closes.
#[test]
fn emit_early_shows_running_results_of_open_windows() {
    let dir = scratch();
    let text = "CREATE TABLE src (n BIGINT, ts AS TO_TIMESTAMP_LTZ(1767225600000 + n, 3), WATERMARK FOR ts AS ts)
  WITH ('connector' = 'datagen', 'rows-per-second' = '200',
        'fields.n.kind' = 'sequence', 'fields.n.start' = '1', 'fields.n.end' = '300');
CREATE TABLE out (ws TIMESTAMP(3), c BIGINT, s BIGINT) WITH ('connector' = 'print');
INSERT INTO out SELECT window_start, count(*), sum(n)
FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' HOUR))
GROUP BY window_start, window_end
EMIT EARLY EVERY INTERVAL '0.2' SECOND;";
    let run = weir_run(dir.path(), text);
    assert!(run.ok, "{}", run.stderr);
    let counts: Vec<i64> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("+I["))
        .map(|l| l.split(", ").nth(1).unwrap().parse().unwrap())
        .collect();
    assert!(counts.len() >= 3, "expected early rows before the final one: {counts:?}");
    assert!(counts.windows(2).all(|w| w[0] < w[1]), "running counts grow: {counts:?}");
    assert_eq!(counts.last(), Some(&300));
    assert!(run.stdout.lines().last().unwrap().contains(", 300, 45150]"), "{}", run.stdout);
}

/// A memory table is an upsert sink: a re-fired window replaces its row,
/// so the table holds exactly the corrected results.
#[tokio::test]
async fn a_memory_sink_keeps_the_latest_row_of_a_refired_window() {
    let rows = rows_with_stragglers(25);
    let shape = Shape::Tumble { size: 10_000, offset: 0 };
    let d = decide(&rows, shape, DELAY, LATENESS, (MIN_VALID, i64::MAX));
    let expected = aggregate(&d.assigned, shape).await;
    let total: i64 = expected.iter().map(|l| l.split('|').nth(3).unwrap().parse::<i64>().unwrap()).sum();
    let dir = scratch();
    write_json(&dir.path().join("in.json"), &rows);
    let text = sql(dir.path(), TUMBLE_10S, "", "ALLOWED LATENESS INTERVAL '10' SECOND")
        .replace(
            &format!("WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');\n", dir.path().join("out").display()),
            "WITH ('connector' = 'memory');\n",
        );
    assert!(text.contains("'memory'"));
    let text = format!("SET 'table.dml-sync' = 'true';\n{text}\nSELECT count(*) AS n, sum(c) AS total FROM out;");
    let run = weir_run(dir.path(), &text);
    assert!(run.ok, "{}", run.stderr);
    assert!(run.counted("rows written") > expected.len() as u64, "windows must have re-fired");
    let line = run.stdout.lines().find(|l| l.starts_with("| ") && !l.contains(" n ")).expect("a result row");
    let cells: Vec<i64> = line.split('|').filter_map(|c| c.trim().parse().ok()).collect();
    assert_eq!(cells, vec![expected.len() as i64, total], "{}", run.stdout);
}

/// A partition with no rows for `'source.idle-timeout'` stops holding the
/// watermark back: here a named pipe nobody writes to sits beside a file
/// in the source directory, read by its own subtask; the file's windows
/// still fire. Closing the pipe ends the job.
#[test]
fn an_idle_partition_does_not_stall_windows() {
    idle_partition_does_not_stall("", ", 'source.idle-timeout' = '300 ms'");
}

/// The same with Flink's session-wide `table.exec.source.idle-timeout`.
#[test]
fn the_sessions_idle_timeout_is_every_sources() {
    idle_partition_does_not_stall("SET 'table.exec.source.idle-timeout' = '300 ms';", "");
}

/// Runs the idle-partition job with `set` before it and `option` among the
/// source's options.
fn idle_partition_does_not_stall(set: &str, option: &str) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = scratch();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    let rows: Vec<Row> = (0..50).map(|i| Row { k: Some("a".into()), v: Some(1), ts: Some(T0 + i * 1_000) }).collect();
    write_json(&input.join("a.json"), &rows);
    let fifo = input.join("b.pipe");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let text = format!(
        "SET 'parallelism.default' = '2';{set}
CREATE TABLE src (k VARCHAR, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json'{option});
CREATE TABLE out (ws TIMESTAMP(3), c BIGINT) WITH ('connector' = 'print');
INSERT INTO out SELECT window_start, count(*) FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end;",
        input.display()
    );
    std::fs::write(dir.path().join("job.sql"), text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("run")
        .arg(dir.path().join("job.sql"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut windows = Vec::new();
    while windows.len() < 5 {
        match rx.recv_timeout(std::time::Duration::from_secs(20)) {
            Ok(l) if l.contains("+I[") => windows.push(l),
            Ok(_) => {}
            Err(_) => {
                let _ = child.kill();
                panic!("windows stalled behind the idle partition; got {windows:?}");
            }
        }
    }
    assert!(windows.iter().all(|w| w.ends_with(", 10]")), "{windows:?}");
    // The job still runs: the pipe is open. Closing it ends the input.
    drop(std::fs::OpenOptions::new().write(true).open(&fifo).unwrap());
    let status = child.wait().unwrap();
    assert!(status.success());
}

/// Flink's `CURRENT_WATERMARK(ts)`, as its docs use it to keep late rows
/// apart: each row sees the watermark in force before it (on-event), so
/// `ts > CURRENT_WATERMARK(ts)` keeps exactly the rows an oracle of the
/// watermark rule keeps, and the rest are exactly its late ones; NULL
/// before the first watermark.
#[test]
fn current_watermark_splits_rows_as_the_watermark_rule_does() {
    let mut g = Lcg(91);
    let mut t = T0;
    let rows: Vec<(i64, i64)> = (0..3000)
        .map(|id| {
            t += g.below(40) as i64;
            (id, t - g.below(1_500) as i64)
        })
        .collect();
    let (mut on_time, mut late) = (Vec::new(), Vec::new());
    let mut max = i64::MIN;
    for &(id, ts) in &rows {
        if max != i64::MIN && ts <= max - 1_000 { late.push(id) } else { on_time.push(id) }
        max = max.max(ts);
    }
    assert!(late.len() > 50 && on_time.len() > 2000, "late {}", late.len());
    let dir = scratch();
    let input = dir.path().join("in.json");
    std::fs::write(&input, rows.iter().map(|(id, ts)| format!("{{\"id\": {id}, \"ts\": {ts}}}\n")).collect::<String>()).unwrap();
    let (ok_dir, late_dir) = (dir.path().join("on_time"), dir.path().join("late"));
    let sql = format!(
        "CREATE TABLE s (id BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
  WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'json', 'scan.watermark.emit.strategy' = 'on-event');
CREATE TABLE on_time (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '{ok}', 'format' = 'json');
CREATE TABLE late (id BIGINT, wm TIMESTAMP(3)) WITH ('connector' = 'filesystem', 'path' = '{late}', 'format' = 'json');
INSERT INTO on_time SELECT id FROM s WHERE CURRENT_WATERMARK(ts) IS NULL OR ts > CURRENT_WATERMARK(ts);
INSERT INTO late SELECT id, CURRENT_WATERMARK(ts) FROM s WHERE ts <= CURRENT_WATERMARK(ts);",
        input = input.display(),
        ok = ok_dir.display(),
        late = late_dir.display()
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    let ids = |d: &std::path::Path| {
        let mut v: Vec<i64> = read_sink(d).iter().map(|r| r["id"].as_i64().unwrap()).collect();
        v.sort();
        v
    };
    assert_eq!(ids(&ok_dir), on_time);
    assert_eq!(ids(&late_dir), late);
}
