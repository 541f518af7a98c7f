//! `table.local-time-zone` with Flink's TIMESTAMP_LTZ semantics: windows
//! over an instant rowtime align to the zone's days, their bounds are the
//! zone's wall-clock times, and an instant written to a TIMESTAMP column
//! becomes the zone's time. Results are checked against a small oracle
//! that shifts each row's instant by the zone's offset; the jobs also run
//! killed and restored from their checkpoints (`common::restored`).

use crate::common;

use std::collections::BTreeMap;

use common::*;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// Rows `(k, epoch ms)` in time order over about ten days, minutes to
/// hours apart, starting at 2026-01-01T00:00Z.
fn rows() -> Vec<(u64, i64)> {
    let mut g = Lcg(11);
    let mut t = T0;
    (0..600)
        .map(|_| {
            t += g.below(40 * 60_000) as i64;
            (g.below(3), t)
        })
        .collect()
}

fn write_rows(path: &std::path::Path, rows: &[(u64, i64)]) {
    let lines: String = rows
        .iter()
        .map(|(k, ms)| format!("{{\"k\": {k}, \"ms\": {ms}}}\n"))
        .collect();
    std::fs::write(path, lines).unwrap();
}

/// Per window (`window_start` as the zone's wall clock) and key: the count,
/// the window's end on the wall clock, and its time as a UTC instant.
fn oracle(rows: &[(u64, i64)], offset: i64, size: i64, slide: i64) -> Vec<String> {
    let mut windows: BTreeMap<(i64, u64), i64> = BTreeMap::new();
    for &(k, ms) in rows {
        let local = ms + offset;
        let last_start = local - local.rem_euclid(slide);
        let mut start = last_start;
        while start > local - size {
            *windows.entry((start, k)).or_default() += 1;
            start -= slide;
        }
    }
    // The end of the file fires every window, as in Flink.
    windows
        .into_iter()
        .map(|((start, k), c)| {
            let end = start + size;
            format!(
                "{}|{}|{}|{k}|{c}",
                sql_timestamp(start),
                sql_timestamp(end),
                sql_timestamp(end - offset - 1)
            )
        })
        .collect()
}

fn run_zone(zone: &str, window: &str) -> Vec<String> {
    let dir = scratch();
    let input = dir.path().join("in.json");
    let out = dir.path().join("out");
    write_rows(&input, &rows());
    let sql = format!(
        "SET 'table.local-time-zone' = '{zone}';
CREATE TABLE ev (k INT, ms BIGINT, ts AS TO_TIMESTAMP_LTZ(ms, 3), WATERMARK FOR ts AS ts)
  WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'json', 'scan.watermark.emit.strategy' = 'on-event');
CREATE TABLE o (ws TIMESTAMP(3), we TIMESTAMP(3), wt TIMESTAMP_LTZ(3), k INT, c BIGINT)
  WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'json');
INSERT INTO o SELECT window_start, window_end, window_time, k, count(*)
  FROM TABLE({window}) GROUP BY window_start, window_end, window_time, k;",
        input = input.display(),
        out = out.display()
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    let mut got: Vec<String> = read_sink(&out)
        .iter()
        .map(|r| {
            let t = |c: &str| sql_timestamp(parse_timestamp(r[c].as_str().unwrap()));
            format!("{}|{}|{}|{}|{}", t("ws"), t("we"), t("wt"), r["k"], r["c"])
        })
        .collect();
    got.sort();
    got
}

#[test]
fn daily_windows_align_to_the_session_zone() {
    let tumble = "TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '1' DAY)";
    for (zone, offset) in [
        ("UTC", 0),
        ("Asia/Shanghai", 8 * HOUR),
        ("GMT-05:00", -5 * HOUR),
        ("UTC+05:30", 11 * HOUR / 2),
    ] {
        let want = oracle(&rows(), offset, DAY, DAY);
        assert!(want.len() > 20, "too few windows to be a test");
        assert_rows_eq(&run_zone(zone, tumble), &want, zone);
    }
}

#[test]
fn hopping_windows_align_to_the_session_zone() {
    let hop = "HOP(TABLE ev, DESCRIPTOR(ts), INTERVAL '6' HOUR, INTERVAL '1' DAY)";
    let want = oracle(&rows(), 8 * HOUR, DAY, 6 * HOUR);
    assert_rows_eq(&run_zone("Asia/Shanghai", hop), &want, "HOP in Asia/Shanghai");
}

/// An instant written into a TIMESTAMP(3) column is the zone's wall-clock
/// time; into a TIMESTAMP_LTZ(3) column, the instant (written in UTC).
#[test]
fn instants_written_as_wall_clock_times_are_the_zones() {
    let dir = scratch();
    let input = dir.path().join("in.json");
    let out = dir.path().join("out");
    let rows = rows();
    write_rows(&input, &rows);
    let sql = format!(
        "SET 'table.local-time-zone' = 'Asia/Shanghai';
CREATE TABLE ev (k INT, ms BIGINT, ts AS TO_TIMESTAMP_LTZ(ms, 3), WATERMARK FOR ts AS ts)
  WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'json', 'scan.watermark.emit.strategy' = 'on-event');
CREATE TABLE o (ms BIGINT, instant TIMESTAMP_LTZ(3), wall TIMESTAMP(3), hour_of_day BIGINT, day STRING)
  WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'json');
INSERT INTO o SELECT ms, ts, ts, HOUR(ts), DATE_FORMAT(ts, 'yyyy-MM-dd') FROM ev;",
        input = input.display(),
        out = out.display()
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    let mut got: Vec<String> = read_sink(&out)
        .iter()
        .map(|r| {
            let t = |c: &str| parse_timestamp(r[c].as_str().unwrap());
            format!(
                "{}|{}|{}|{}|{}",
                r["ms"],
                t("instant"),
                t("wall"),
                r["hour_of_day"],
                r["day"].as_str().unwrap()
            )
        })
        .collect();
    got.sort();
    let mut want: Vec<String> = rows
        .iter()
        .map(|(_, ms)| {
            let local = ms + 8 * HOUR;
            format!(
                "{ms}|{ms}|{local}|{}|{}",
                local.rem_euclid(DAY) / HOUR,
                &sql_timestamp(local)[..10]
            )
        })
        .collect();
    want.sort();
    assert_rows_eq(&got, &want, "instants as wall-clock times");
}

/// A zone with daylight saving time has days of 23 and 25 hours, which
/// windows do not follow yet: refused with the way out, not wrong.
#[test]
fn windows_in_a_zone_with_daylight_saving_time_are_refused_clearly() {
    let dir = scratch();
    let input = dir.path().join("in.json");
    write_rows(&input, &rows());
    let sql = format!(
        "SET 'table.local-time-zone' = 'America/New_York';
CREATE TABLE ev (k INT, ms BIGINT, ts AS TO_TIMESTAMP_LTZ(ms, 3), WATERMARK FOR ts AS ts)
  WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'json');
SELECT window_start, count(*) FROM TABLE(TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '1' DAY)) GROUP BY window_start, window_end;",
        input = input.display()
    );
    let run = weir_run(dir.path(), &sql);
    assert!(!run.ok);
    assert!(run.stderr.contains("4:"), "no position: {}", run.stderr);
    assert!(
        run.stderr.contains("'America/New_York'") && run.stderr.contains("GMT-08:00"),
        "{}",
        run.stderr
    );
    let bad = weir_run(dir.path(), "SET 'table.local-time-zone' = 'PST';");
    assert!(
        !bad.ok && bad.stderr.contains("unknown time zone 'PST'"),
        "{}",
        bad.stderr
    );
}
