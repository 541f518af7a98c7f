//! Event-time temporal joins (`JOIN rates FOR SYSTEM_TIME AS OF o.ts`)
//! end to end through the `weir` binary: disordered orders (within the
//! watermark delay) against a versioned table whose rows change hundreds
//! of times per key, at parallelism 1 and 4, INNER and LEFT, compared with
//! an oracle written here: each order with its key's latest version at or
//! before its time. The results go to files, so the jobs also run killed
//! and restored from their checkpoint. Then a late order, counted and
//! dropped, and the joins Weir refuses.

use crate::common;

use std::collections::HashMap;
use std::path::Path;

use common::*;

/// 2 000 orders over 12 keys (`k10` and `k11` have no versions), times
/// `T0 + 10 ms * i` disordered by under a second.
fn orders() -> Vec<Row> {
    disordered_rows(17, 2000, 12)
}

/// 1 500 versions over 10 keys, over the same span of time as the orders
/// (times `T0 + 10 ms * i + 5`, and some exactly at an order's time),
/// disordered by under a second.
fn rates() -> Vec<Row> {
    let mut rows = disordered_rows(29, 1500, 10);
    for (i, r) in rows.iter_mut().enumerate() {
        r.ts = r.ts.map(|t| T0 + (t - T0) * 4 / 3 + if i % 4 == 0 { 0 } else { 5 });
        r.v = r.v.map(|v| v + 100_000);
    }
    rows
}

/// Each order with its key's latest version at or before its time (none:
/// dropped, or with NULL when `outer`), as `k|v|ts|rate` lines.
fn oracle(orders: &[Row], rates: &[Row], outer: bool) -> Vec<String> {
    let mut versions: HashMap<&str, Vec<(i64, i64)>> = HashMap::new();
    for r in rates {
        versions
            .entry(r.k.as_deref().unwrap())
            .or_default()
            .push((r.ts.unwrap(), r.v.unwrap()));
    }
    let mut lines: Vec<String> = orders
        .iter()
        .filter_map(|o| {
            let (k, v, t) = (o.k.as_deref().unwrap(), o.v.unwrap(), o.ts.unwrap());
            let version = versions
                .get(k)
                .and_then(|vs| vs.iter().filter(|(vt, _)| *vt <= t).max_by_key(|(vt, _)| *vt));
            match version {
                Some((_, rate)) => Some(format!("{k}|{v}|{t}|{rate}")),
                None if outer => Some(format!("{k}|{v}|{t}|null")),
                None => None,
            }
        })
        .collect();
    lines.sort();
    lines
}

/// Writes `rows` under `dir/name` as JSON files of 500 rows each.
fn write_table(dir: &Path, name: &str, rows: &[Row]) {
    std::fs::create_dir_all(dir.join(name)).expect("input dir");
    for (i, chunk) in rows.chunks(500).enumerate() {
        write_json(&dir.join(name).join(format!("part-{i:03}.json")), chunk);
    }
}

/// The tables of the jobs: `orders` and the versioned `rates`, JSON files
/// under `dir` with watermarks 2 s behind per row.
fn tables(dir: &Path, parallelism: usize) -> String {
    format!(
        "SET 'parallelism.default' = '{parallelism}';
CREATE TABLE orders (k VARCHAR, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
  WITH ('connector' = 'filesystem', 'path' = '{o}', 'format' = 'json', 'scan.watermark.emit.strategy' = 'on-event');
CREATE TABLE rates (k VARCHAR, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND, PRIMARY KEY (k) NOT ENFORCED)
  WITH ('connector' = 'filesystem', 'path' = '{r}', 'format' = 'json', 'scan.watermark.emit.strategy' = 'on-event');
",
        o = dir.join("orders").display(),
        r = dir.join("rates").display(),
    )
}

fn joined(outer: bool, parallelism: usize) -> Vec<String> {
    let dir = scratch();
    write_table(dir.path(), "orders", &orders());
    write_table(dir.path(), "rates", &rates());
    let join = if outer { "LEFT JOIN" } else { "JOIN" };
    let sql = format!(
        "{}CREATE TABLE out (k VARCHAR, v BIGINT, ts TIMESTAMP(3), rate BIGINT)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
INSERT INTO out SELECT o.k, o.v, o.ts, r.v AS rate FROM orders AS o {join} rates FOR SYSTEM_TIME AS OF o.ts AS r ON o.k = r.k;
",
        tables(dir.path(), parallelism),
        dir.path().join("out").display()
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "weir failed:\n{}", run.stderr);
    assert_eq!(run.counted("late rows"), 0, "no order is behind the watermark");
    committed_lines(dir.path(), &["k", "v", "ts", "rate"])
}

#[test]
fn an_inner_temporal_join_joins_each_order_with_the_rate_of_its_time() {
    let expected = oracle(&orders(), &rates(), false);
    assert!(
        expected.len() > 1000 && expected.len() < 2000,
        "some orders have no rate: {}",
        expected.len()
    );
    for parallelism in [1, 4] {
        assert_rows_eq(
            &joined(false, parallelism),
            &expected,
            &format!("inner at parallelism {parallelism}"),
        );
    }
}

#[test]
fn a_left_temporal_join_keeps_orders_without_a_rate() {
    let expected = oracle(&orders(), &rates(), true);
    assert_eq!(expected.len(), 2000);
    for parallelism in [1, 4] {
        assert_rows_eq(
            &joined(true, parallelism),
            &expected,
            &format!("left at parallelism {parallelism}"),
        );
    }
}

#[test]
fn a_view_of_the_orders_joins_as_of_its_rowtime() {
    let dir = scratch();
    write_table(dir.path(), "orders", &orders());
    write_table(dir.path(), "rates", &rates());
    let sql = format!(
        "{}CREATE VIEW doubled AS SELECT k, v * 2 AS v2, ts AS t FROM orders;
CREATE TABLE out (k VARCHAR, v BIGINT, ts TIMESTAMP(3), rate BIGINT)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
INSERT INTO out SELECT d.k, d.v2 / 2, d.t, r.v FROM doubled AS d LEFT JOIN rates FOR SYSTEM_TIME AS OF d.t AS r ON r.k = d.k;
",
        tables(dir.path(), 2),
        dir.path().join("out").display()
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "weir failed:\n{}", run.stderr);
    let expected = oracle(&orders(), &rates(), true);
    assert_rows_eq(
        &committed_lines(dir.path(), &["k", "v", "ts", "rate"]),
        &expected,
        "through a view",
    );
}

#[test]
fn an_order_behind_the_watermark_is_counted_late_and_dropped() {
    let dir = scratch();
    // The late order comes last, 10 s behind the others (the watermark
    // is 2 s behind); the versions' watermark is an hour ahead.
    let mut orders = disordered_rows(5, 3000, 3);
    orders.push(Row {
        k: Some("k0".into()),
        v: Some(-1),
        ts: Some(T0 + 20_000),
    });
    let mut rates: Vec<Row> = (0..3)
        .map(|i| Row {
            k: Some(format!("k{i}")),
            v: Some(i),
            ts: Some(T0),
        })
        .collect();
    rates.push(Row {
        k: Some("k9".into()),
        v: Some(9),
        ts: Some(T0 + 3_600_000),
    });
    // One file each: one partition, whose watermark is the source's.
    for (name, rows) in [("orders", &orders), ("rates", &rates)] {
        std::fs::create_dir_all(dir.path().join(name)).expect("input dir");
        write_json(&dir.path().join(name).join("part-000.json"), rows);
    }
    let sql = format!(
        "{}CREATE TABLE out (k VARCHAR, v BIGINT, rate BIGINT) WITH ('connector' = 'print');
INSERT INTO out SELECT o.k, o.v, r.v FROM orders AS o JOIN rates FOR SYSTEM_TIME AS OF o.ts AS r ON o.k = r.k;
",
        tables(dir.path(), 1)
    );
    let run = run_once(dir.path(), &sql);
    assert!(run.ok, "weir failed:\n{}", run.stderr);
    assert_eq!(run.counted("late rows"), 1, "{}", run.stderr);
    assert_eq!(run.counted("rows written"), 3000);
    assert!(!run.stdout.contains(", -1, "), "the late order is not joined");
}

#[test]
fn temporal_joins_weir_cannot_run_are_refused_with_why() {
    let dir = scratch();
    write_table(dir.path(), "orders", &orders()[..10]);
    write_table(dir.path(), "rates", &rates()[..10]);
    let prelude = format!(
        "{}CREATE TABLE plain (k VARCHAR, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
  WITH ('connector' = 'filesystem', 'path' = '{r}', 'format' = 'json');
CREATE TABLE nowm (k VARCHAR, v BIGINT, ts TIMESTAMP(3), PRIMARY KEY (k) NOT ENFORCED)
  WITH ('connector' = 'filesystem', 'path' = '{r}', 'format' = 'json');
CREATE TABLE out (k VARCHAR, v BIGINT) WITH ('connector' = 'print');
",
        tables(dir.path(), 1),
        r = dir.path().join("rates").display()
    );
    let cases = [
        (
            "SELECT o.k, p.v FROM orders AS o JOIN plain FOR SYSTEM_TIME AS OF o.ts AS p ON o.k = p.k",
            "needs a versioned table: declare PRIMARY KEY (…) NOT ENFORCED and a WATERMARK on 'plain' (it has no PRIMARY KEY)",
        ),
        (
            "SELECT o.k, n.v FROM orders AS o JOIN nowm FOR SYSTEM_TIME AS OF o.ts AS n ON o.k = n.k",
            "declare PRIMARY KEY (k) NOT ENFORCED and a WATERMARK on 'nowm' (it has no WATERMARK)",
        ),
        (
            "SELECT o.k, r.v FROM orders AS o JOIN rates FOR SYSTEM_TIME AS OF o.ts AS r ON o.v = r.v",
            "ON must equate the whole primary key of versioned table 'rates' (PRIMARY KEY (k))",
        ),
        (
            "SELECT o.k, r.v FROM orders AS o JOIN rates FOR SYSTEM_TIME AS OF o.v AS r ON o.k = r.k",
            "an event-time temporal join needs the rowtime (WATERMARK column) of the table joined on the left",
        ),
        (
            "SELECT o.k, r.v FROM orders AS o RIGHT JOIN rates FOR SYSTEM_TIME AS OF o.ts AS r ON o.k = r.k",
            "a RIGHT temporal join (FOR SYSTEM_TIME AS OF o.ts) is not supported",
        ),
        (
            "SELECT o.k, r.v FROM orders AS o FULL JOIN rates FOR SYSTEM_TIME AS OF o.ts AS r ON o.k = r.k",
            "a FULL temporal join (FOR SYSTEM_TIME AS OF o.ts) is not supported",
        ),
    ];
    for (query, message) in cases {
        let run = run_once(dir.path(), &format!("{prelude}INSERT INTO out {query};\n"));
        assert!(!run.ok, "{query} ran");
        assert!(
            run.stderr.contains(message),
            "{query}:\n{}\nwithout: {message}",
            run.stderr
        );
    }
}
