//! Windows over a `PROCTIME()` column (Flink's processing-time windows):
//! they fire by the wall clock while the job runs, every row lands in
//! exactly one tumbling window, and the windows are whole seconds of the
//! clock the rows were read by; also over a view's `PROCTIME()` column.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;

const ROWS: u64 = 250;

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// One `+I[start, end, count, sum]` line of the print sink.
fn window(line: &str) -> (i64, i64, u64, u64) {
    let inner = line
        .trim()
        .strip_prefix("+I[")
        .and_then(|l| l.strip_suffix(']'))
        .unwrap_or_else(|| panic!("{line}"));
    let f: Vec<&str> = inner.split(", ").collect();
    (
        parse_timestamp(f[0]),
        parse_timestamp(f[1]),
        f[2].parse().unwrap(),
        f[3].parse().unwrap(),
    )
}

#[test]
fn processing_time_windows_fire_by_the_clock_and_count_every_row_once() {
    fire_by_the_clock(&format!(
        "CREATE TABLE g (n BIGINT, pt AS PROCTIME()) WITH ('connector' = 'datagen', 'rows-per-second' = '100',
  'number-of-rows' = '{ROWS}', 'fields.n.kind' = 'sequence', 'fields.n.start' = '1', 'fields.n.end' = '{ROWS}');
CREATE TABLE o (ws TIMESTAMP(3), we TIMESTAMP(3), c BIGINT, s BIGINT) WITH ('connector' = 'print');
INSERT INTO o SELECT window_start, window_end, count(*), sum(n)
  FROM TABLE(TUMBLE(TABLE g, DESCRIPTOR(pt), INTERVAL '1' SECOND)) GROUP BY window_start, window_end;"
    ));
}

/// Nexmark q12's form: `PROCTIME()` selected in a view over a table with
/// an event-time watermark (random times here, which would fire windows
/// at random) is a processing-time attribute: windows over it fire by the
/// clock.
#[test]
fn a_views_proctime_column_is_a_processing_time_attribute() {
    fire_by_the_clock(&format!(
        "CREATE TABLE g (n BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen',
  'rows-per-second' = '100', 'number-of-rows' = '{ROWS}', 'fields.n.kind' = 'sequence', 'fields.n.start' = '1',
  'fields.n.end' = '{ROWS}');
CREATE VIEW v AS SELECT *, PROCTIME() AS p_time FROM g WHERE n > 0;
CREATE TABLE o (ws TIMESTAMP(3), we TIMESTAMP(3), c BIGINT, s BIGINT) WITH ('connector' = 'print');
INSERT INTO o SELECT window_start, window_end, count(*), sum(n)
  FROM TABLE(TUMBLE(TABLE v, DESCRIPTOR(p_time), INTERVAL '1' SECOND)) GROUP BY window_start, window_end;"
    ));
}

/// Runs `sql`, whose print sink writes `+I[start, end, count, sum]` of 1 s
/// processing-time windows over rows 1..=ROWS read at 100 a second, and
/// checks that the windows fire by the clock and count every row once.
fn fire_by_the_clock(sql: &str) {
    let dir = scratch();
    let file = dir.path().join("job.sql");
    std::fs::write(&file, sql).unwrap();
    let started = now_ms();
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("run")
        .arg(&file)
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let clock = Instant::now();
    let mut lines = Vec::new();
    let mut first_at = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.starts_with("+I[") {
            first_at.get_or_insert(clock.elapsed());
            lines.push(window(&line));
        }
    }
    assert!(child.wait().unwrap().success());
    let ended = clock.elapsed();
    let first_at = first_at.expect("no window fired");
    // 250 rows at 100 a second take 2.5 s: the first window fires by the
    // clock while rows still come, not at the end of the input.
    assert!(
        ended - first_at > Duration::from_millis(700),
        "first window at {first_at:?}, end at {ended:?}"
    );
    let (count, sum): (u64, u64) = lines.iter().fold((0, 0), |(c, s), w| (c + w.2, s + w.3));
    assert_eq!(
        (count, sum),
        (ROWS, ROWS * (ROWS + 1) / 2),
        "every row in exactly one window: {lines:?}"
    );
    for (start, end, _, _) in &lines {
        assert_eq!((end - start, start % 1000), (1000, 0), "a whole second: {lines:?}");
        assert!(
            *start >= started - 1000 && *end <= now_ms() + 1000,
            "windows of the run's clock: {lines:?}"
        );
    }
    let mut starts: Vec<i64> = lines.iter().map(|w| w.0).collect();
    starts.dedup();
    assert_eq!(starts.len(), lines.len(), "each window fires once: {lines:?}");
}

/// A view whose results depend on event time cannot be windowed by its
/// `PROCTIME()` column: its sources' watermark would have to be both.
#[test]
fn a_proctime_window_over_an_aggregating_view_is_refused() {
    let dir = scratch();
    let run = weir_run(
        dir.path(),
        "CREATE TABLE g (n BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen');
CREATE VIEW v AS SELECT n, count(*) AS c, PROCTIME() AS p FROM g GROUP BY n;
SELECT window_start, count(*) FROM TABLE(TUMBLE(TABLE v, DESCRIPTOR(p), INTERVAL '1' SECOND)) GROUP BY window_start, window_end;",
    );
    assert!(!run.ok);
    assert!(
        run.stderr.contains("3:")
            && run
                .stderr
                .contains("a window over the PROCTIME() column 'p' of view 'v', which has an aggregation"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_descriptor_that_is_no_time_attribute_says_which_are() {
    let dir = scratch();
    let run = weir_run(
        dir.path(),
        "CREATE TABLE g (n BIGINT, ts TIMESTAMP(3), pt AS PROCTIME(), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen');
SELECT window_start, count(*) FROM TABLE(TUMBLE(TABLE g, DESCRIPTOR(n), INTERVAL '1' SECOND)) GROUP BY window_start, window_end;",
    );
    assert!(!run.ok);
    assert!(run.stderr.contains("2:58"), "{}", run.stderr);
    assert!(
        run.stderr.contains("rowtime column 'ts' or its PROCTIME() column 'pt'"),
        "{}",
        run.stderr
    );
}
