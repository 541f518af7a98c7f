//! `ORDER BY` on a stream, as Flink runs it: rows leave sorted by the
//! rowtime (then the other keys) as the watermark passes them, rows that
//! were already behind the watermark are dropped as late, and the output
//! is the same after a kill and restore (`common::restored`). Checked
//! against an oracle that applies the on-event watermark rule row by row
//! and sorts what it keeps.

use crate::common;

use common::*;

const DELAY: i64 = 1_000;

/// Rows out of order by up to 1.5 s: some fall behind a 1 s watermark.
fn rows() -> Vec<(i64, i64, i64)> {
    let mut g = Lcg(77);
    let mut t = T0;
    (0..4000)
        .map(|id| {
            t += g.below(40) as i64;
            (id, t - g.below(1_500) as i64, g.below(5) as i64)
        })
        .collect()
}

#[test]
fn rows_leave_in_time_order_and_late_ones_are_dropped() {
    let rows = rows();
    // The oracle: a row is late when the watermark before it (the greatest
    // time so far minus the delay) has reached it.
    let mut max = i64::MIN;
    let mut kept = Vec::new();
    let mut late = 0;
    for &(id, ts, v) in &rows {
        if max != i64::MIN && ts <= max - DELAY {
            late += 1;
        } else {
            kept.push((ts, -v, id));
        }
        max = max.max(ts);
    }
    kept.sort();
    assert!(late > 50 && kept.len() > 3000, "late {late}, kept {}", kept.len());
    let want: Vec<String> = kept
        .iter()
        .map(|(ts, v, id)| format!("{id}|{}|{}", sql_timestamp(*ts), -v))
        .collect();

    let dir = scratch();
    let input = dir.path().join("in.json");
    let lines: String = rows
        .iter()
        .map(|(id, ts, v)| format!("{{\"id\": {id}, \"ts\": {ts}, \"v\": {v}}}\n"))
        .collect();
    std::fs::write(&input, lines).unwrap();
    let out = dir.path().join("out");
    let sql = format!(
        "SET 'parallelism.default' = '2';
CREATE TABLE s (id BIGINT, ts TIMESTAMP(3), v BIGINT, WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
  WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'json', 'scan.watermark.emit.strategy' = 'on-event');
CREATE TABLE o (id BIGINT, ts TIMESTAMP(3), v BIGINT) WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'json');
INSERT INTO o SELECT id, ts, v FROM s ORDER BY ts, v DESC, id;",
        input = input.display(),
        out = out.display()
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    // In the order written: part files in name order, lines in file order.
    let got: Vec<String> = read_sink(&out)
        .iter()
        .map(|r| {
            let ts = sql_timestamp(parse_timestamp(r["ts"].as_str().unwrap()));
            format!("{}|{ts}|{}", r["id"], r["v"])
        })
        .collect();
    assert_eq!(got.len(), want.len(), "rows kept");
    if let Some(i) = got.iter().zip(&want).position(|(a, b)| a != b) {
        panic!(
            "not in order at row {i}: got {:?}, want {:?}",
            &got[i.saturating_sub(2)..(i + 3).min(got.len())],
            &want[i.saturating_sub(2)..(i + 3).min(want.len())]
        );
    }
    assert_eq!(run.counted("late rows"), late as u64);
}

#[test]
fn an_order_not_led_by_the_time_attribute_is_refused() {
    let dir = scratch();
    for order in ["v", "ts DESC", "v, ts"] {
        let run = weir_run(
            dir.path(),
            &format!(
                "CREATE TABLE s (id BIGINT, ts TIMESTAMP(3), v BIGINT, WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen');
SELECT id, ts, v FROM s ORDER BY {order};"
            ),
        );
        assert!(!run.ok, "ORDER BY {order} ran");
        assert!(
            run.stderr.contains("does not start with its time attribute ascending")
                && run.stderr.contains("rowtime ('ts')"),
            "ORDER BY {order}: {}",
            run.stderr
        );
    }
}
