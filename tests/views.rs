//! Flink SQL that Weir writes out before planning, checked against the
//! query written out: views (`CREATE [TEMPORARY] VIEW`, expanded into each
//! statement that reads them — window TVFs inside a view, views over
//! views, a view's column list, joins of views), and Flink's legacy group
//! windows (`GROUP BY TUMBLE(ts, …)` with `TUMBLE_START(…)`), which write
//! what the window TVFs write. Window TVFs over views (Nexmark's `bid` is a
//! view) are also checked against a small oracle over the input rows.

use crate::common;

use std::path::Path;

use common::*;

fn tables(dir: &Path, sink: &str) -> String {
    format!(
        "CREATE TABLE src (k VARCHAR, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
  WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'json', 'scan.watermark.emit.strategy' = 'on-event');
CREATE TABLE out ({sink}) WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'json');
",
        input = dir.join("in").display(),
        out = dir.join("out").display()
    )
}

/// Rows in event-time order within the watermark delay: none is late.
fn rows() -> Vec<Row> {
    let mut g = Lcg(11);
    (0..4_000)
        .map(|i| Row {
            k: Some(format!("k{}", g.below(7))),
            v: Some(g.below(100) as i64),
            ts: Some(T0 + i * 7),
        })
        .collect()
}

fn input(dir: &Path) {
    std::fs::create_dir_all(dir.join("in")).unwrap();
    write_json(&dir.join("in/part-0.json"), &rows());
}

fn committed(dir: &Path) -> Vec<String> {
    // Whole rows (serde_json orders an object's keys).
    let mut rows: Vec<String> = read_sink(&dir.join("out")).iter().map(|r| r.to_string()).collect();
    rows.sort();
    rows
}

/// Runs `statements` after the tables, in a fresh directory.
fn run(sink: &str, statements: &str) -> Vec<String> {
    let dir = scratch();
    input(dir.path());
    let run = weir_run(dir.path(), &format!("{}{statements}", tables(dir.path(), sink)));
    assert!(run.ok, "{}", run.stderr);
    committed(dir.path())
}

#[test]
fn jobs_over_views_write_what_the_query_written_out_writes() {
    let cases = [
        (
            "ws TIMESTAMP(3), k VARCHAR, n BIGINT, top BIGINT",
            "CREATE TEMPORARY VIEW big AS SELECT k, v, ts FROM src WHERE v > 20;
             CREATE VIEW counts (ws, k, n, top) AS
               SELECT window_start, k, count(*), max(v)
               FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '2' SECOND)) GROUP BY window_start, window_end, k;
             CREATE VIEW busy AS SELECT * FROM counts WHERE n > 30;
             INSERT INTO out SELECT ws, k, n, top FROM busy;",
            "INSERT INTO out SELECT ws, k, n, top FROM (
               SELECT window_start AS ws, k, count(*) AS n, max(v) AS top
               FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '2' SECOND)) GROUP BY window_start, window_end, k
             ) WHERE n > 30;",
        ),
        (
            "k VARCHAR, a BIGINT, b BIGINT",
            "CREATE VIEW low AS SELECT k, v, ts FROM src WHERE v < 10;
             CREATE VIEW high AS SELECT k, v, ts FROM src WHERE v > 90;
             INSERT INTO out SELECT l.k, l.v, h.v FROM low l JOIN high h
               ON l.k = h.k AND h.ts BETWEEN l.ts AND l.ts + INTERVAL '1' SECOND;",
            "INSERT INTO out SELECT l.k, l.v, h.v FROM src l JOIN src h
               ON l.k = h.k AND h.ts BETWEEN l.ts AND l.ts + INTERVAL '1' SECOND WHERE l.v < 10 AND h.v > 90;",
        ),
    ];
    for (sink, through_views, written_out) in cases {
        let got = run(sink, through_views);
        let want = run(sink, written_out);
        assert!(want.len() > 20, "too few rows to be a test: {}", want.len());
        assert_rows_eq(&got, &want, through_views);
    }
}

/// SHOW VIEWS, DROP VIEW and what is refused, each at its place.
#[test]
fn view_statements_and_their_errors() {
    let dir = scratch();
    input(dir.path());
    let base = format!(
        "{}CREATE VIEW a AS SELECT k, v, ts FROM src;\nCREATE VIEW b AS SELECT k FROM a;\n",
        tables(dir.path(), "k VARCHAR")
    );
    let shown = weir_run(
        dir.path(),
        &format!("{base}SHOW VIEWS;\nDROP VIEW b;\nDROP VIEW IF EXISTS b;\nSHOW VIEWS;\n"),
    );
    assert!(shown.ok, "{}", shown.stderr);
    assert!(
        shown.stdout.contains("| a ") && shown.stdout.contains("| b "),
        "{}",
        shown.stdout
    );
    // Messages go to stderr, results to stdout.
    let said = &shown.stderr;
    assert!(
        said.contains("View 'b' dropped.") && said.contains("View 'b' does not exist."),
        "{said}"
    );
    assert_eq!(
        shown.stdout.matches("| b ").count(),
        1,
        "b is dropped: {}",
        shown.stdout
    );
    // The statement is line 6 of job.sql.
    let refusals = [
        ("CREATE VIEW a AS SELECT 1;", "view 'a' already exists", "6:"),
        ("CREATE VIEW src AS SELECT 1;", "a table named 'src' already exists", "6:"),
        ("CREATE VIEW c AS SELECT * FROM nope;", "table 'nope' not found", "6:"),
        ("DROP VIEW nope;", "view 'nope' not found", "6:"),
        (
            "CREATE VIEW late AS SELECT k, ts + INTERVAL '1' SECOND AS t2 FROM src;
             INSERT INTO out SELECT k FROM TABLE(TUMBLE(TABLE late, DESCRIPTOR(t2), INTERVAL '1' SECOND)) GROUP BY k, window_start, window_end;",
            "DESCRIPTOR(t2): column 't2' of view 'late' is not a time attribute",
            "7:",
        ),
        (
            "INSERT INTO out SELECT k FROM TABLE(TUMBLE(TABLE a, DESCRIPTOR(nope), INTERVAL '1' SECOND));",
            "DESCRIPTOR(nope): view 'a' has no such column",
            "6:",
        ),
        ("INSERT INTO a SELECT k, v, ts FROM src;", "'a' is a view: INSERT INTO a table", "6:13"),
        ("INSERT INTO out SELECT nosuchfn(k) FROM a;", "Invalid function 'nosuchfn'", "6:24"),
        // A view read by a view cannot be made to read it back: the
        // expansion finds no view of that name while it is being created.
        ("DROP VIEW a;\nCREATE VIEW a AS SELECT k FROM b;", "table 'a' not found", "7:"),
    ];
    for (statement, why, at) in refusals {
        let run = weir_run(dir.path(), &format!("{base}{statement}\n"));
        assert!(!run.ok, "{statement} succeeded");
        assert!(
            run.stderr.contains(why) && run.stderr.contains(&format!("job.sql:{at}")),
            "{statement}: {}",
            run.stderr
        );
    }
}

#[test]
fn legacy_group_windows_write_what_window_tvfs_write() {
    let cases = [
        (
            "ws TIMESTAMP(3), we TIMESTAMP(3), k VARCHAR, n BIGINT",
            "INSERT INTO out SELECT TUMBLE_START(ts, INTERVAL '2' SECOND), TUMBLE_END(ts, INTERVAL '2' SECOND), k, count(*)
             FROM src WHERE v > 10 GROUP BY TUMBLE(ts, INTERVAL '2' SECOND), k;",
            "INSERT INTO out SELECT window_start, window_end, k, count(*)
             FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '2' SECOND)) WHERE v > 10 GROUP BY window_start, window_end, k;",
        ),
        (
            "wt TIMESTAMP(3), s BIGINT",
            "INSERT INTO out SELECT HOP_ROWTIME(s.ts, INTERVAL '1' SECOND, INTERVAL '3' SECOND), sum(s.v)
             FROM src s GROUP BY HOP(s.ts, INTERVAL '1' SECOND, INTERVAL '3' SECOND);",
            "INSERT INTO out SELECT window_time, sum(v)
             FROM TABLE(HOP(TABLE src, DESCRIPTOR(ts), INTERVAL '1' SECOND, INTERVAL '3' SECOND)) GROUP BY window_start, window_end, window_time;",
        ),
    ];
    for (sink, legacy, tvf) in cases {
        let got = run(sink, legacy);
        let want = run(sink, tvf);
        assert!(want.len() > 5, "too few rows to be a test: {}", want.len());
        assert_rows_eq(&got, &want, legacy);
    }
}

/// Chained legacy group windows (the cookbook's chained-windows recipe): a
/// view of 1 s windows whose `TUMBLE_START` / `TUMBLE_ROWTIME` are named
/// `window_start` / `window_end`, and 4 s windows over that view's
/// `window_end`, which a group window hides behind its own. Per-window sums
/// and counts against an oracle over the input rows, at parallelism 1 and 2.
#[test]
fn legacy_group_windows_chain_over_a_windowed_view() {
    let mut want: std::collections::BTreeMap<i64, (i64, i64)> = Default::default();
    for r in rows() {
        let (v, ts) = (r.v.unwrap(), r.ts.unwrap());
        let e = want.entry(ts - ts.rem_euclid(4_000)).or_default();
        e.0 += v;
        e.1 += 1;
    }
    let want: Vec<String> = want
        .into_iter()
        .map(|(ws, (total, n))| format!("{ws}|{}|{total}|{n}", ws + 3_999))
        .collect();
    for parallelism in [1, 2] {
        let statements = format!(
            "SET 'parallelism.default' = '{parallelism}';
             CREATE TEMPORARY VIEW per_second AS
             SELECT TUMBLE_START(ts, INTERVAL '1' SECOND) AS window_start,
                    TUMBLE_ROWTIME(ts, INTERVAL '1' SECOND) AS window_end,
                    SUM(v) AS total, COUNT(*) AS n
             FROM src GROUP BY TUMBLE(ts, INTERVAL '1' SECOND);
             CREATE TEMPORARY VIEW per_4s AS
             SELECT TUMBLE_START(window_end, INTERVAL '4' SECOND) AS window_start,
                    TUMBLE_ROWTIME(window_end, INTERVAL '4' SECOND) AS window_end,
                    SUM(total) AS total, SUM(n) AS n
             FROM per_second GROUP BY TUMBLE(window_end, INTERVAL '4' SECOND);
             INSERT INTO out SELECT window_start, window_end, total, n FROM per_4s;"
        );
        let dir = scratch();
        input(dir.path());
        let sink = "ws TIMESTAMP(3), we TIMESTAMP(3), total BIGINT, n BIGINT";
        let run = weir_run(dir.path(), &format!("{}{statements}", tables(dir.path(), sink)));
        assert!(run.ok, "{}", run.stderr);
        let time = |r: &serde_json::Value, c: &str| parse_timestamp(r[c].as_str().unwrap_or_default());
        let mut got: Vec<String> = read_sink(&dir.path().join("out"))
            .iter()
            .map(|r| format!("{}|{}|{}|{}", time(r, "ws"), time(r, "we"), r["total"], r["n"]))
            .collect();
        got.sort();
        assert!(want.len() > 5, "too few rows to be a test: {}", want.len());
        assert_rows_eq(&got, &want, &statements);
    }
}

/// A window TVF over a view windows the view's rows (Nexmark's `bid`:
/// a filtered, renamed projection of the table), through a view over the
/// view too, and at parallelism 2: per-window counts and sums against an
/// oracle over the input rows.
#[test]
fn window_tvfs_over_views_window_the_views_rows() {
    let mut want: std::collections::BTreeMap<(i64, String), (i64, i64)> = Default::default();
    for r in rows() {
        let (k, v, ts) = (r.k.unwrap(), r.v.unwrap(), r.ts.unwrap());
        if v > 20 {
            let e = want.entry((ts - ts.rem_euclid(2_000), k)).or_default();
            e.0 += 1;
            e.1 += v;
        }
    }
    let want: Vec<String> = want
        .into_iter()
        .map(|((ws, k), (n, total))| format!("{ws}|{k}|{n}|{total}"))
        .collect();
    let views = "CREATE VIEW big (key, amount, `dateTime`) AS SELECT k, v, ts FROM src WHERE v > 20;
                 CREATE VIEW big2 AS SELECT * FROM big;";
    for (parallelism, table) in [(1, "big"), (2, "big"), (1, "big2")] {
        let statements = format!(
            "SET 'parallelism.default' = '{parallelism}';
             {views}
             INSERT INTO out SELECT window_start, key, count(*), sum(amount)
             FROM TABLE(TUMBLE(TABLE {table}, DESCRIPTOR(`dateTime`), INTERVAL '2' SECOND))
             GROUP BY window_start, window_end, key;"
        );
        let dir = scratch();
        input(dir.path());
        let sink = "ws TIMESTAMP(3), key VARCHAR, n BIGINT, total BIGINT";
        let run = weir_run(dir.path(), &format!("{}{statements}", tables(dir.path(), sink)));
        assert!(run.ok, "{}", run.stderr);
        let mut got: Vec<String> = read_sink(&dir.path().join("out"))
            .iter()
            .map(|r| {
                format!(
                    "{}|{}|{}|{}",
                    parse_timestamp(r["ws"].as_str().unwrap_or_default()),
                    r["key"].as_str().unwrap_or_default(),
                    r["n"],
                    r["total"]
                )
            })
            .collect();
        got.sort();
        let mut want = want.clone();
        want.sort();
        assert!(want.len() > 20, "too few rows to be a test: {}", want.len());
        assert_rows_eq(&got, &want, &statements);
    }
}

/// Flink's `CREATE TABLE … LIKE`: a table declared as `src` plus a
/// computed column reads `src`'s rows with its watermark (the same window
/// results as the column computed in the query), DESCRIBE shows the merged
/// columns, and a clash is refused at its statement.
#[test]
fn tables_declared_like_another() {
    let sink = "ws TIMESTAMP(3), k VARCHAR, n BIGINT, total BIGINT";
    let window = |table: &str, total: &str| {
        format!(
            "INSERT INTO out SELECT window_start, k, count(*), sum({total})
             FROM TABLE(TUMBLE(TABLE {table}, DESCRIPTOR(ts), INTERVAL '2' SECOND)) GROUP BY window_start, window_end, k;"
        )
    };
    let like = "CREATE TABLE src2 (big AS v * 10) WITH ('json.ignore-parse-errors' = 'true') LIKE src;\n";
    let got = run(sink, &format!("{like}{}", window("src2", "big")));
    let want = run(sink, &window("src", "v * 10"));
    assert!(want.len() > 20, "too few rows to be a test: {}", want.len());
    assert_rows_eq(&got, &want, "LIKE src");
    let dir = scratch();
    input(dir.path());
    let described = weir_run(dir.path(), &format!("{}{like}DESCRIBE src2;", tables(dir.path(), sink)));
    assert!(described.ok, "{}", described.stderr);
    for column in ["| k ", "| v ", "| ts ", "| big "] {
        assert!(described.stdout.contains(column), "{column}: {}", described.stdout);
    }
    assert!(described.stdout.contains("WATERMARK AS"), "{}", described.stdout);
    let clash = weir_run(
        dir.path(),
        &format!(
            "{}CREATE TABLE src3 (WATERMARK FOR ts AS ts) WITH () LIKE src;",
            tables(dir.path(), sink)
        ),
    );
    assert!(
        !clash.ok && clash.stderr.contains("job.sql:4:") && clash.stderr.contains("OVERWRITING WATERMARKS"),
        "{}",
        clash.stderr
    );
}
