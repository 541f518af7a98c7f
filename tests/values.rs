//! `VALUES` in a streaming query, as Flink reads it: a bounded,
//! insert-only stream of its rows — the input of most examples in Flink's
//! documentation. Results are checked against a small oracle over the same
//! rows.

use crate::common;

use std::collections::BTreeMap;

use common::*;

/// Generated rows `(k, v)`, some `v` NULL, and their VALUES list.
fn rows() -> (Vec<(String, Option<i64>)>, String) {
    let mut g = Lcg(5);
    let rows: Vec<(String, Option<i64>)> = (0..300)
        .map(|i| (format!("k{}", g.below(9)), (i % 17 != 0).then(|| g.below(1000) as i64)))
        .collect();
    let list = rows
        .iter()
        .map(|(k, v)| {
            format!(
                "('{k}', {})",
                v.map_or("CAST(NULL AS BIGINT)".to_string(), |v| v.to_string())
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    (rows, list)
}

/// A GROUP BY over VALUES is an updating result whose last rows are the
/// per-key counts and sums; at parallelism 1 and 3.
#[test]
fn a_group_by_over_values_ends_in_the_oracle() {
    let (rows, list) = rows();
    let mut want: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (k, v) in &rows {
        let e = want.entry(k.clone()).or_default();
        e.0 += 1;
        e.1 += v.unwrap_or(0);
    }
    let want: Vec<String> = want.into_iter().map(|(k, (n, s))| format!("{k}|{n}|{s}")).collect();
    for parallelism in [1, 3] {
        let dir = scratch();
        let sql = format!(
            "SET 'parallelism.default' = '{parallelism}';
CREATE TABLE totals (k VARCHAR, n BIGINT, total BIGINT) WITH ('connector' = 'print');
INSERT INTO totals SELECT k, count(*), sum(v) FROM (VALUES {list}) AS t(k, v) GROUP BY k;"
        );
        let run = weir_run(dir.path(), &sql);
        assert!(run.ok, "{}", run.stderr);
        let (got, _) = apply_changelog(&run.stdout, 1);
        assert_rows_eq(&got, &want, "group by over VALUES");
    }
}

/// `INSERT INTO t VALUES …` and a filter over VALUES write exactly those
/// rows, once.
#[test]
fn values_rows_are_written_once() {
    let (rows, list) = rows();
    let dir = scratch();
    let sql = format!(
        "CREATE TABLE out (k VARCHAR, v BIGINT) WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'json');
CREATE TABLE big (k VARCHAR, v BIGINT) WITH ('connector' = 'filesystem', 'path' = '{big}', 'format' = 'json');
INSERT INTO out VALUES {list};
INSERT INTO big SELECT k, v FROM (VALUES {list}) AS t(k, v) WHERE v > 500;",
        out = dir.path().join("out").display(),
        big = dir.path().join("big").display()
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    let line = |k: &str, v: Option<i64>| format!("{k}|{}", v.map_or("null".into(), |v| v.to_string()));
    let read = |name: &str| {
        let mut got: Vec<String> = read_sink(&dir.path().join(name))
            .iter()
            .map(|r| line(r["k"].as_str().unwrap_or_default(), r["v"].as_i64()))
            .collect();
        got.sort();
        got
    };
    let mut all: Vec<String> = rows.iter().map(|(k, v)| line(k, *v)).collect();
    all.sort();
    let mut big: Vec<String> = rows
        .iter()
        .filter(|(_, v)| v.is_some_and(|v| v > 500))
        .map(|(k, v)| line(k, *v))
        .collect();
    big.sort();
    assert!(big.len() > 50, "too few rows to be a test: {}", big.len());
    assert_eq!(read("out"), all);
    assert_eq!(read("big"), big);
}

/// `INSERT INTO t (c, …)`, as in Flink: the query's columns go to the
/// listed columns in the list's order, the others are NULL; from a table
/// and from VALUES. A list naming an unknown column, one twice, or more
/// or fewer columns than the query's is an error at its place.
#[test]
fn an_insert_column_list_places_the_query_and_nulls_the_rest() {
    let (rows, list) = rows();
    let dir = scratch();
    let sql = format!(
        "SET 'table.dml-sync' = 'true';
CREATE TABLE src (k VARCHAR, v BIGINT) WITH ('connector' = 'filesystem', 'path' = '{src}', 'format' = 'json');
CREATE TABLE out (v BIGINT, note VARCHAR, k VARCHAR) WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'json');
CREATE TABLE notes (v BIGINT, note VARCHAR, k VARCHAR) WITH ('connector' = 'filesystem', 'path' = '{notes}', 'format' = 'json');
INSERT INTO src VALUES {list};
INSERT INTO out (k, v) SELECT k, v * 2 FROM src;
INSERT INTO notes (note) VALUES ('x'), ('y');",
        src = dir.path().join("src").display(),
        out = dir.path().join("out").display(),
        notes = dir.path().join("notes").display(),
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    let line = |r: &serde_json::Value| format!("{}|{}|{}", r["k"], r["v"], r["note"]);
    let read = |name: &str| {
        let mut got: Vec<String> = read_sink(&dir.path().join(name)).iter().map(line).collect();
        got.sort();
        got
    };
    let mut want: Vec<String> = rows
        .iter()
        .map(|(k, v)| format!("\"{k}\"|{}|null", v.map_or("null".into(), |v| (v * 2).to_string())))
        .collect();
    want.sort();
    assert_eq!(read("out"), want);
    assert_eq!(read("notes"), vec!["null|null|\"x\"", "null|null|\"y\""]);

    let table = "CREATE TABLE t (a BIGINT, b VARCHAR) WITH ('connector' = 'print');\n";
    for (insert, says) in [
        (
            "INSERT INTO t (a, c) VALUES (1, 'x');",
            "2:19: error: INSERT INTO t: no column 'c' (its columns: a, b)",
        ),
        (
            "INSERT INTO t (a, a) VALUES (1, 2);",
            "2:19: error: INSERT INTO t: column 'a' is listed twice",
        ),
        (
            "INSERT INTO t (a, b) SELECT 1;",
            "2:22: error: INSERT INTO t: the query produces 1 columns but 2 are listed (a, b)",
        ),
    ] {
        let run = weir_run(dir.path(), &format!("{table}{insert}"));
        assert!(!run.ok, "{insert}");
        assert!(run.stderr.contains(says), "{insert}: {}", run.stderr);
    }
}

/// `INSERT INTO t PARTITION (col = value, …) SELECT …` (Flink's static
/// partition): the clause's columns take its values, the query gives the
/// others in the table's order (all, or those of a column list).
#[test]
fn a_static_partition_gives_its_columns() {
    let (rows, list) = rows();
    let dir = scratch();
    let sql = format!(
        "CREATE TABLE out (k VARCHAR, `date` VARCHAR, v BIGINT, country VARCHAR)
  WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'json');
INSERT INTO out PARTITION (`date` = '2019-08-30', country = 'China') SELECT k, v FROM (VALUES {list}) AS t(k, v);",
        out = dir.path().join("out").display(),
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    let mut got: Vec<String> = read_sink(&dir.path().join("out"))
        .iter()
        .map(|r| format!("{}|{}|{}|{}", r["k"], r["v"], r["date"], r["country"]))
        .collect();
    got.sort();
    let mut want: Vec<String> = rows
        .iter()
        .map(|(k, v)| format!("\"{k}\"|{}|\"2019-08-30\"|\"China\"", v.map_or("null".into(), |v| v.to_string())))
        .collect();
    want.sort();
    assert_eq!(got, want);
    let table = "CREATE TABLE t (a BIGINT, b VARCHAR) WITH ('connector' = 'print');\n";
    for (insert, says) in [
        ("INSERT INTO t PARTITION (b = 'x') (b) SELECT 'y';", "column 'b' is both listed and given by PARTITION"),
        ("INSERT INTO t PARTITION (c = 'x') SELECT 1;", "INSERT INTO t: no column 'c'"),
        ("INSERT INTO t PARTITION (b = 'x') SELECT 1, 2;", "the query produces 2 columns but 1 are listed (a)"),
    ] {
        let run = weir_run(dir.path(), &format!("{table}{insert}"));
        assert!(!run.ok && run.stderr.contains(says), "{insert}: {}", run.stderr);
    }
}

/// Flink's CTAS, `CREATE TABLE t WITH (…) AS SELECT …`: the table takes the
/// query's column names and types (DESCRIBE shows them) and the job writes
/// the query's rows into it; `CREATE OR REPLACE TABLE … AS` replaces a
/// table of that name. Refused: a name taken (without OR REPLACE), columns
/// declared beside AS, OR REPLACE without AS.
#[test]
fn create_table_as_select_declares_the_querys_columns_and_writes_its_rows() {
    let (rows, list) = rows();
    let dir = scratch();
    let sql = format!(
        "SET 'table.dml-sync' = 'true';
CREATE TABLE src (k VARCHAR, v BIGINT) WITH ('connector' = 'filesystem', 'path' = '{src}', 'format' = 'json');
INSERT INTO src VALUES {list};
CREATE TABLE big WITH ('connector' = 'filesystem', 'path' = '{big}', 'format' = 'json')
  AS SELECT upper(k) AS key, v * 3 AS tripled FROM src WHERE v > 500;
DESCRIBE big;
CREATE OR REPLACE TABLE big WITH ('connector' = 'filesystem', 'path' = '{small}', 'format' = 'json')
  AS SELECT k, v FROM src WHERE v < 100;
DESCRIBE big;",
        src = dir.path().join("src").display(),
        big = dir.path().join("big").display(),
        small = dir.path().join("small").display(),
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    let described: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with("| ") && !l.contains(" name ")).collect();
    let columns: Vec<String> =
        described.iter().map(|l| l.split('|').map(str::trim).filter(|c| !c.is_empty()).take(2).collect::<Vec<_>>().join(" ")).collect();
    assert_eq!(columns, ["key VARCHAR", "tripled BIGINT", "k VARCHAR", "v BIGINT"], "{}", run.stdout);
    let read = |name: &str, a: &str, b: &str| {
        let mut got: Vec<String> =
            read_sink(&dir.path().join(name)).iter().map(|r| format!("{}|{}", r[a].as_str().unwrap_or_default(), r[b])).collect();
        got.sort();
        got
    };
    let mut big: Vec<String> = rows
        .iter()
        .filter_map(|(k, v)| v.filter(|v| *v > 500).map(|v| format!("{}|{}", k.to_uppercase(), v * 3)))
        .collect();
    big.sort();
    let mut small: Vec<String> =
        rows.iter().filter_map(|(k, v)| v.filter(|v| *v < 100).map(|v| format!("{k}|{v}"))).collect();
    small.sort();
    assert!(big.len() > 50 && small.len() > 10, "too few rows to be a test");
    assert_eq!(read("big", "key", "tripled"), big);
    assert_eq!(read("small", "k", "v"), small);

    let table = "CREATE TABLE t (a BIGINT) WITH ('connector' = 'print');\n";
    for (statement, says) in [
        ("CREATE TABLE t WITH ('connector' = 'print') AS SELECT 1 AS a;", "2:14: error: table 't' already exists"),
        (
            "CREATE TABLE u (a BIGINT) WITH ('connector' = 'print') AS SELECT 1 AS a;",
            "2:14: error: columns, a WATERMARK, a PRIMARY KEY or LIKE in CREATE TABLE … AS SELECT",
        ),
        ("CREATE OR REPLACE TABLE u (a BIGINT) WITH ('connector' = 'print');", "2:8: error: CREATE OR REPLACE TABLE needs AS SELECT"),
    ] {
        let run = weir_run(dir.path(), &format!("{table}{statement}"));
        assert!(!run.ok, "{statement}");
        assert!(run.stderr.contains(says), "{statement}: {}", run.stderr);
    }
}

/// `GROUPING SETS`, `ROLLUP` and `CUBE` in a GROUP BY without a window
/// (the examples of Flink's Group Aggregation page take this form): the
/// changelog ends in DataFusion's batch answer over the same VALUES, with
/// `GROUPING(c)`, at parallelism 1 and 2.
#[tokio::test]
async fn grouping_sets_end_in_the_batch_answer() {
    let mut g = Lcg(8);
    let list = (0..200)
        .map(|_| format!("('k{}', 'c{}', {})", g.below(4), g.below(3), g.below(100)))
        .collect::<Vec<_>>()
        .join(", ");
    for grouping in ["GROUPING SETS ((k, c), (k), ())", "ROLLUP (k, c)", "CUBE (k, c)"] {
        let query = format!(
            "SELECT k, c, count(*) AS n, sum(v) AS total, GROUPING(c) AS gc FROM (VALUES {list}) AS t(k, c, v) GROUP BY {grouping}"
        );
        let ctx = datafusion::prelude::SessionContext::new();
        let batches = ctx.sql(&query).await.expect("plans").collect().await.expect("runs");
        let opts = datafusion::arrow::util::display::FormatOptions::default().with_null("null");
        let mut want = Vec::new();
        for b in &batches {
            let fmts: Vec<_> = b
                .columns()
                .iter()
                .map(|c| datafusion::arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &opts).expect("formats"))
                .collect();
            for r in 0..b.num_rows() {
                want.push(
                    fmts.iter()
                        .map(|f| f.value(r).to_string())
                        .collect::<Vec<_>>()
                        .join("|"),
                );
            }
        }
        want.sort();
        assert!(want.len() > 10, "{grouping}: too few groups");
        for parallelism in [1, 2] {
            let dir = scratch();
            let sql = format!(
                "SET 'parallelism.default' = '{parallelism}';
CREATE TABLE totals (k VARCHAR, c VARCHAR, n BIGINT, total BIGINT, gc INT) WITH ('connector' = 'print');
INSERT INTO totals {query};"
            );
            let run = weir_run(dir.path(), &sql);
            assert!(run.ok, "{}", run.stderr);
            let (got, _) = apply_changelog(&run.stdout, 2);
            assert_rows_eq(&got, &want, grouping);
        }
    }
}
