//! Flink's catalog and inspection statements, run by the real `weir`
//! binary: SHOW of the one catalog and database, of the tables, views and
//! columns a script declared (checked against the declarations, filtered
//! here independently), SHOW CREATE, USE and CREATE DATABASE of the one
//! database, DESCRIBE of views, Flink's EXPLAIN forms, and ALTER TABLE /
//! ALTER VIEW, whose effects are read back through later jobs. Refusals
//! and mistakes are errors at their place.

use crate::common;

use std::path::Path;

use common::*;

/// One result table as `weir run` prints it.
#[derive(Debug, PartialEq)]
struct Shown {
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
}

/// The result tables of a run's stdout, in order.
fn shown(stdout: &str) -> Vec<Shown> {
    let cells = |l: &str| -> Vec<String> {
        let inner = l.trim().trim_start_matches('|').trim_end_matches('|');
        inner.split('|').map(|c| c.trim().to_string()).collect()
    };
    let mut tables = Vec::new();
    let mut lines = stdout.lines().peekable();
    while let Some(line) = lines.next() {
        if !line.starts_with('+') {
            continue;
        }
        let Some(header) = lines.next() else { break };
        let columns = cells(header);
        lines.next(); // the rule under the header
        let mut rows = Vec::new();
        while let Some(l) = lines.peek() {
            if l.starts_with('+') {
                lines.next();
                break;
            }
            rows.push(cells(l));
            lines.next();
        }
        tables.push(Shown { columns, rows });
    }
    tables
}

/// Rows of one column.
fn column(t: &Shown) -> Vec<String> {
    t.rows.iter().map(|r| r[0].clone()).collect()
}

fn run_ok(dir: &Path, sql: &str) -> Run {
    let run = weir_run(dir, sql);
    assert!(run.ok, "{}\n{}", run.stderr, run.stdout);
    run
}

/// SQL's LIKE, written independently of Weir's: `%` and `_` by recursion.
fn like(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('%', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some((c, rest)) => n.split_first().is_some_and(|(m, more)| (*c == '_' || c == m) && go(rest, more)),
        }
    }
    go(&pattern.chars().collect::<Vec<_>>(), &name.chars().collect::<Vec<_>>())
}

const TABLES: [&str; 5] = ["bids", "bobs", "orders", "b_x", "Bids2"];
const VIEWS: [&str; 3] = ["big_bids", "order_view", "vb"];

#[test]
fn show_lists_what_the_script_declared() {
    let dir = scratch();
    let mut sql = String::new();
    let mut ddl = Vec::new();
    for t in TABLES {
        let d = format!("CREATE TABLE `{t}` (id BIGINT, price DOUBLE, name STRING, ts TIMESTAMP(3)) WITH ('connector' = 'datagen', 'number-of-rows' = '1')");
        sql.push_str(&format!("{d};\n"));
        ddl.push(d);
    }
    let view_ddl: Vec<String> = VIEWS
        .iter()
        .map(|v| format!("CREATE VIEW {v} (k, p) COMMENT 'a view' AS SELECT id, price FROM bids WHERE price > 1"))
        .collect();
    for v in &view_ddl {
        sql.push_str(&format!("{v};\n"));
    }
    let patterns = ["b%", "b_bs", "%s", "B%", "%_%"];
    sql.push_str("USE CATALOG default_catalog;\nUSE default_catalog.default_database;\nUSE default_database;\nUSE MODULES core;\n");
    sql.push_str("CREATE DATABASE IF NOT EXISTS default_database;\n");
    sql.push_str("SHOW CATALOGS;\nSHOW CURRENT CATALOG;\nSHOW DATABASES;\nSHOW CURRENT DATABASE;\nSHOW TABLES;\nSHOW VIEWS;\n");
    for p in patterns {
        sql.push_str(&format!(
            "SHOW TABLES LIKE '{p}';\nSHOW TABLES FROM default_catalog.default_database NOT LIKE '{p}';\nSHOW VIEWS IN default_database LIKE '{p}';\n"
        ));
    }
    sql.push_str("SHOW COLUMNS FROM bids LIKE '%e';\nSHOW COLUMNS IN default_catalog.default_database.orders NOT LIKE '%e';\n");
    sql.push_str("SHOW CREATE TABLE bids;\nSHOW CREATE VIEW vb;\n");
    sql.push_str("SHOW MODULES;\nSHOW FULL MODULES;\nSHOW JARS;\nSHOW USER FUNCTIONS;\nSHOW FUNCTIONS;\nSHOW FUNCTIONS LIKE 'json%';\n");
    let run = run_ok(dir.path(), &sql);
    let t = shown(&run.stdout);
    let mut i = 0;
    let mut next = || {
        i += 1;
        &t[i - 1]
    };
    let one = |name: &str, values: &[&str]| Shown {
        columns: vec![name.to_string()],
        rows: values.iter().map(|v| vec![v.to_string()]).collect(),
    };
    assert_eq!(next(), &one("catalog name", &["default_catalog"]));
    assert_eq!(next(), &one("current catalog name", &["default_catalog"]));
    assert_eq!(next(), &one("database name", &["default_database"]));
    assert_eq!(next(), &one("current database name", &["default_database"]));
    let sorted = |names: &mut dyn Iterator<Item = &str>| {
        let mut v: Vec<String> = names.map(String::from).collect();
        v.sort();
        v
    };
    let shown_tables = next();
    assert_eq!(shown_tables.columns, ["table name"]);
    assert_eq!(column(shown_tables), sorted(&mut TABLES.into_iter()));
    let shown_views = next();
    assert_eq!(shown_views.columns, ["view name"]);
    assert_eq!(column(shown_views), sorted(&mut VIEWS.into_iter()));
    for p in patterns {
        assert_eq!(column(next()), sorted(&mut TABLES.into_iter().filter(|t| like(p, t))), "LIKE '{p}'");
        assert_eq!(column(next()), sorted(&mut TABLES.into_iter().filter(|t| !like(p, t))), "NOT LIKE '{p}'");
        assert_eq!(column(next()), sorted(&mut VIEWS.into_iter().filter(|v| like(p, v))), "views LIKE '{p}'");
    }
    let columns = ["id", "price", "name", "ts"];
    let c = next();
    assert_eq!(c.columns, ["name", "type", "null", "extras"]);
    assert_eq!(column(c), columns.iter().filter(|c| like("%e", c)).map(|c| c.to_string()).collect::<Vec<_>>());
    assert_eq!(c.rows[0][1], "DOUBLE");
    assert_eq!(column(next()), columns.iter().filter(|c| !like("%e", c)).map(|c| c.to_string()).collect::<Vec<_>>());
    assert_eq!(next(), &one("result", &[&ddl[0]]));
    assert_eq!(next(), &one("result", &[&view_ddl[2]]));
    assert_eq!(next(), &one("module name", &["core"]));
    let full = next();
    assert_eq!(full.columns, ["module name", "used"]);
    assert_eq!(full.rows, [["core", "true"]]);
    assert_eq!(next(), &one("jars", &[]));
    assert_eq!(next(), &one("function name", &[]));
    let functions = column(next());
    for f in ["upper", "count", "json_value", "abs", "sum"] {
        assert!(functions.iter().any(|g| g == f), "SHOW FUNCTIONS lacks {f}: {functions:?}");
    }
    let json: Vec<String> = functions.iter().filter(|f| like("json%", f)).cloned().collect();
    assert!(!json.is_empty());
    assert_eq!(column(next()), json);
    assert_eq!(i, t.len(), "{}", run.stdout);
    for message in ["Catalog 'default_catalog' in use.", "Module 'core' in use.", "Database 'default_database' already exists."] {
        assert!(run.stderr.contains(message), "{}", run.stderr);
    }
}

/// A view's DESCRIBE is its query's columns: names (its column list or
/// the query's), and the types the expressions have.
#[test]
fn describe_of_a_view_gives_its_query_columns() {
    let dir = scratch();
    let sql = "CREATE TABLE src (id BIGINT, price DOUBLE, name STRING, ts TIMESTAMP(3), WATERMARK FOR ts AS ts)
  WITH ('connector' = 'datagen', 'number-of-rows' = '1');
CREATE VIEW priced AS SELECT id, price * 2 AS twice, UPPER(name) AS shout, CAST(id AS INT) AS small, ts FROM src;
CREATE VIEW renamed (a, b) AS SELECT id, name FROM src;
CREATE VIEW counts AS SELECT window_start, count(*) AS n
  FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY window_start, window_end;
DESCRIBE priced;
DESC EXTENDED renamed;
DESCRIBE counts;
SHOW COLUMNS FROM priced LIKE 's%';
CREATE TABLE k (v BIGINT, o BIGINT METADATA FROM 'offset' VIRTUAL, `partition` INT METADATA VIRTUAL,
  t TIMESTAMP(3) METADATA FROM 'timestamp', PRIMARY KEY (v) NOT ENFORCED)
  WITH ('connector' = 'kafka', 'topic' = 't', 'properties.bootstrap.servers' = 'localhost:1', 'format' = 'json');
DESCRIBE k;
";
    let run = run_ok(dir.path(), sql);
    let t = shown(&run.stdout);
    let name_type = |s: &Shown| s.rows.iter().map(|r| (r[0].clone(), r[1].clone())).collect::<Vec<_>>();
    let expect = |pairs: &[(&str, &str)]| pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
    assert_eq!(
        name_type(&t[0]),
        expect(&[("id", "BIGINT"), ("twice", "DOUBLE"), ("shout", "VARCHAR"), ("small", "INT"), ("ts", "TIMESTAMP(3)")])
    );
    assert_eq!(name_type(&t[1]), expect(&[("a", "BIGINT"), ("b", "VARCHAR")]));
    assert_eq!(name_type(&t[2]), expect(&[("window_start", "TIMESTAMP(3)"), ("n", "BIGINT")]));
    assert_eq!(name_type(&t[3]), expect(&[("shout", "VARCHAR"), ("small", "INT")]));
    // Flink's extras: how each column is made.
    let extras: Vec<(String, String)> = t[4].rows.iter().map(|r| (r[0].clone(), r[3].clone())).collect();
    assert_eq!(
        extras,
        expect(&[
            ("v", "PRIMARY KEY"),
            ("o", "METADATA FROM 'offset' VIRTUAL"),
            ("partition", "METADATA VIRTUAL"),
            ("t", "METADATA FROM 'timestamp'"),
        ])
    );
}

/// Flink's EXPLAIN forms all show Weir's plan of the statement.
#[test]
fn explain_forms_show_the_same_plan() {
    let dir = scratch();
    let tables = "CREATE TABLE src (id BIGINT, price DOUBLE) WITH ('connector' = 'datagen', 'number-of-rows' = '1');
CREATE TABLE out (id BIGINT) WITH ('connector' = 'blackhole');
CREATE TABLE out2 (id BIGINT) WITH ('connector' = 'blackhole');
";
    let plan = |explain: &str| {
        let run = run_ok(dir.path(), &format!("{tables}{explain};"));
        assert!(!run.stdout.trim().is_empty(), "{explain}");
        run.stdout
    };
    let select = plan("EXPLAIN SELECT id FROM src WHERE price > 1");
    for form in ["EXPLAIN PLAN FOR", "EXPLAIN ESTIMATED_COST, CHANGELOG_MODE, PLAN_ADVICE, JSON_EXECUTION_PLAN", "EXPLAIN CHANGELOG_MODE"] {
        assert_eq!(plan(&format!("{form} SELECT id FROM src WHERE price > 1")), select, "{form}");
    }
    let set = plan("EXPLAIN EXECUTE STATEMENT SET BEGIN INSERT INTO out SELECT id FROM src; INSERT INTO out2 SELECT id FROM src; END");
    assert!(set.contains("out2"), "{set}");
    assert_eq!(plan("EXPLAIN STATEMENT SET BEGIN INSERT INTO out SELECT id FROM src; INSERT INTO out2 SELECT id FROM src; END"), set);
    assert_eq!(plan("EXPLAIN PLAN FOR STATEMENT SET BEGIN INSERT INTO out SELECT id FROM src; INSERT INTO out2 SELECT id FROM src; END"), set);
}

/// `EXPLAIN` marks the operator whose state nothing frees — a GROUP BY
/// without a window or state TTL keeps every key it sees — with what would
/// bound it, and only that one: the same aggregation under
/// `table.exec.state.ttl` shows its TTL instead, a window aggregation and a
/// stateless query are not marked.
#[test]
fn explain_marks_unbounded_state() {
    let dir = scratch();
    let tables = "CREATE TABLE src (k BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen', 'number-of-rows' = '1');
CREATE TABLE out (k BIGINT, n BIGINT) WITH ('connector' = 'print');
";
    let marker = "warning: unbounded state: it keeps every key seen, as nothing frees it (set 'table.exec.state.ttl'";
    // The lines under the operator of kind `kind` in the plan of `script`.
    let under = |script: &str, kind: &str| -> Vec<String> {
        let plan = run_ok(dir.path(), &format!("{tables}{script};")).stdout;
        let mut lines = plan.lines().skip_while(|l| !l.starts_with(&format!("  {kind}:")));
        assert!(lines.next().is_some(), "no {kind} in\n{plan}");
        let details: Vec<String> = lines.take_while(|l| l.starts_with("    ")).map(|l| l.trim().to_string()).collect();
        assert_eq!(
            plan.matches("warning: unbounded state").count(),
            details.iter().filter(|l| l.starts_with("warning")).count(),
            "{plan}"
        );
        details
    };
    let group_by = "EXPLAIN INSERT INTO out SELECT k, count(*) FROM src GROUP BY k";
    let unbounded = under(group_by, "GroupAggregate");
    assert!(unbounded.iter().any(|l| l.starts_with(marker)), "{unbounded:?}");
    let ttl = under(&format!("SET 'table.exec.state.ttl' = '1 d';\n{group_by}"), "GroupAggregate");
    assert!(ttl.iter().all(|l| !l.starts_with("warning")), "{ttl:?}");
    assert!(ttl.contains(&"state TTL: 1 d idle (processing time)".to_string()), "{ttl:?}");
    let hinted = under(&group_by.replace("SELECT", "SELECT /*+ STATE_TTL('src' = '2 h') */"), "GroupAggregate");
    assert!(hinted.contains(&"state TTL: 2 h idle (processing time)".to_string()), "{hinted:?}");
    assert!(hinted.iter().all(|l| !l.starts_with("warning")), "{hinted:?}");
    let window = "EXPLAIN INSERT INTO out SELECT k, count(*) FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) GROUP BY k, window_start, window_end";
    assert!(under(window, "WindowAggregate").iter().all(|l| !l.starts_with("warning")));
    let stateless = run_ok(dir.path(), &format!("{tables}EXPLAIN SELECT k FROM src WHERE k > 1;")).stdout;
    assert!(!stateless.contains("unbounded"), "{stateless}");
}

fn json_lines(path: &Path, rows: &[(i64, &str)]) {
    std::fs::create_dir_all(path).unwrap();
    let text: String = rows.iter().map(|(a, b)| format!("{{\"a\": {a}, \"b\": \"{b}\"}}\n")).collect();
    std::fs::write(path.join("part-0.json"), text).unwrap();
}

fn sorted_rows(dir: &Path) -> Vec<String> {
    let mut rows: Vec<String> = read_sink(dir).iter().map(|r| r.to_string()).collect();
    rows.sort();
    rows
}

/// ALTER TABLE changes what later jobs read and write: a renamed table
/// under its new name, SET 'path' another directory, added computed
/// columns, modified types, dropped columns; ALTER VIEW renames and
/// replaces a view's query.
#[test]
fn alter_table_changes_what_later_jobs_read() {
    let dir = scratch();
    let d = dir.path();
    let first = [(1, "x"), (2, "y")];
    let second = [(10, "p"), (20, "q"), (30, "r")];
    json_lines(&d.join("in1"), &first);
    json_lines(&d.join("in2"), &second);
    let sql = format!(
        "SET 'table.dml-sync' = 'true';
CREATE TABLE src (a BIGINT, b STRING) WITH ('connector' = 'filesystem', 'path' = '{in1}', 'format' = 'json');
CREATE TABLE sink (a BIGINT, b STRING) WITH ('connector' = 'filesystem', 'path' = '{o1}', 'format' = 'json');
ALTER TABLE sink RENAME TO out1;
INSERT INTO out1 SELECT a, b FROM src;
ALTER TABLE src SET ('path' = '{in2}');
CREATE TABLE out2 (a BIGINT, b STRING) WITH ('connector' = 'filesystem', 'path' = '{o2}', 'format' = 'json');
INSERT INTO out2 SELECT a, b FROM src;
ALTER TABLE src ADD (c AS a * 3 AFTER a, d AS UPPER(b));
ALTER TABLE default_catalog.default_database.src MODIFY a INT;
CREATE TABLE out3 (a INT, c INT, d STRING) WITH ('connector' = 'filesystem', 'path' = '{o3}', 'format' = 'json');
INSERT INTO out3 SELECT a, c, d FROM src;
ALTER TABLE out3 DROP d;
ALTER TABLE out3 SET ('path' = '{o4}');
CREATE VIEW v AS SELECT a FROM src;
ALTER VIEW v RENAME TO w;
ALTER VIEW w AS SELECT a, b FROM src WHERE a > 10;
INSERT INTO out3 SELECT a, a FROM w;
SHOW CREATE TABLE out3;
DESCRIBE src;
SHOW TABLES;
SHOW VIEWS;
",
        in1 = d.join("in1").display(),
        in2 = d.join("in2").display(),
        o1 = d.join("o1").display(),
        o2 = d.join("o2").display(),
        o3 = d.join("o3").display(),
        o4 = d.join("o4").display(),
    );
    let run = run_ok(d, &sql);
    let rows = |pairs: &[(i64, &str)]| {
        let mut v: Vec<String> = pairs.iter().map(|(a, b)| serde_json::json!({"a": a, "b": b}).to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(sorted_rows(&d.join("o1")), rows(&first));
    assert_eq!(sorted_rows(&d.join("o2")), rows(&second));
    let mut with_computed: Vec<String> = second
        .iter()
        .map(|(a, b)| serde_json::json!({"a": a, "c": a * 3, "d": b.to_uppercase()}).to_string())
        .collect();
    with_computed.sort();
    assert_eq!(sorted_rows(&d.join("o3")), with_computed);
    let mut through_view: Vec<String> =
        second.iter().filter(|(a, _)| *a > 10).map(|(a, _)| serde_json::json!({"a": a, "c": a}).to_string()).collect();
    through_view.sort();
    assert_eq!(sorted_rows(&d.join("o4")), through_view);
    let t = shown(&run.stdout);
    let ddl = &t[0].rows.iter().map(|r| r[0].clone()).collect::<Vec<_>>().join("\n");
    assert!(ddl.contains("CREATE TABLE out3") && ddl.contains("c INT") && !ddl.contains("d STRING") && ddl.contains("o4"), "{ddl}");
    let described: Vec<(String, String, String)> = t[1].rows.iter().map(|r| (r[0].clone(), r[1].clone(), r[3].clone())).collect();
    assert_eq!(
        described,
        [
            ("a".to_string(), "INT".to_string(), String::new()),
            ("c".into(), "BIGINT".into(), "AS a * 3".into()),
            ("b".into(), "VARCHAR".into(), String::new()),
            ("d".into(), "VARCHAR".into(), "AS UPPER(b)".into()),
        ]
    );
    assert_eq!(column(&t[2]), ["out1", "out2", "out3", "src"]);
    assert_eq!(column(&t[3]), ["w"]);
}

/// Refusals and mistakes: each an error at its line and column.
#[test]
fn mistakes_are_errors_at_their_place() {
    let table = "CREATE TABLE src (a BIGINT, b STRING, ts TIMESTAMP(3), c AS a + 1, WATERMARK FOR ts AS ts)
  WITH ('connector' = 'datagen', 'number-of-rows' = '1');
CREATE VIEW v AS SELECT a FROM src;
";
    for (statement, needle) in [
        ("USE CATALOG hive", "job.sql:4:13: error: catalog 'hive' does not exist: Weir has one catalog, default_catalog"),
        ("USE other_db", "job.sql:4:5: error: database 'other_db' does not exist"),
        ("CREATE DATABASE db1", "job.sql:4:17: error: CREATE DATABASE is not supported: Weir has one catalog and database (default_catalog.default_database)"),
        ("CREATE DATABASE default_database", "job.sql:4:17: error: database 'default_database' already exists"),
        ("CREATE CATALOG c WITH ('type' = 'hive')", "job.sql:4:8: error: CREATE CATALOG is not supported"),
        ("DROP DATABASE IF EXISTS db1", "job.sql:4:6: error: DROP DATABASE is not supported"),
        ("DROP CATALOG c", "job.sql:4:6: error: DROP CATALOG is not supported"),
        ("LOAD MODULE hive", "job.sql:4:1: error: LOAD MODULE is not supported"),
        ("UNLOAD MODULE core", "job.sql:4:1: error: UNLOAD MODULE is not supported"),
        ("USE MODULES hive", "job.sql:4:13: error: module 'hive' is not loaded"),
        ("SHOW TABLES FROM db1", "job.sql:4:18: error: database 'db1' does not exist"),
        ("SHOW COLUMNS FROM nope", "job.sql:4:19: error: table 'nope' not found"),
        ("SHOW CREATE TABLE v", "job.sql:4:19: error: 'v' is a view: SHOW CREATE VIEW v"),
        ("SHOW CREATE VIEW nope", "job.sql:4:18: error: view 'nope' not found"),
        ("DESCRIBE other_db.src", "job.sql:4:10: error: database 'other_db' does not exist"),
        ("DROP TABLE hive.default_database.src", "job.sql:4:12: error: catalog 'hive' does not exist"),
        ("ALTER TABLE nope RENAME TO x", "job.sql:4:13: error: table 'nope' not found"),
        ("ALTER TABLE src RENAME TO v", "job.sql:4:27: error: a table or view named 'v' already exists"),
        ("ALTER TABLE src ADD b INT", "job.sql:4:21: error: column 'b' already exists in table 'src'"),
        ("ALTER TABLE src DROP ts", "job.sql:4:22: error: column 'ts' cannot be dropped: the WATERMARK reads it"),
        ("ALTER TABLE src DROP a", "job.sql:4:22: error: column 'a' cannot be dropped: computed column 'c' reads it"),
        ("ALTER TABLE src RENAME nope TO x", "job.sql:4:24: error: column 'nope' not found in table 'src'"),
        ("ALTER TABLE src MODIFY WATERMARK FOR b AS b", "job.sql:4:24: error: WATERMARK FOR 'b'"),
        ("ALTER TABLE src SET ('number-of-rows' = 'many')", "job.sql:4:17: error: table 'src'"),
        ("ALTER TABLE src RESET ('connector')", "job.sql:4:24: error: 'connector' cannot be RESET"),
        ("ALTER TABLE v RENAME TO w", "job.sql:4:13: error: 'v' is a view: ALTER VIEW v"),
        ("ALTER VIEW nope RENAME TO w", "job.sql:4:12: error: view 'nope' not found"),
        ("ALTER VIEW v AS SELECT x FROM nope", "job.sql:4:17: error: table 'nope' not found"),
        ("CREATE TABLE other_db.t (a INT) WITH ('connector' = 'blackhole')", "job.sql:4:14: error: database 'other_db' does not exist"),
        ("INSERT INTO other_db.src SELECT * FROM src", "job.sql:4:13: error: database 'other_db' does not exist"),
        ("CREATE VIEW hive.default_database.w AS SELECT 1", "job.sql:4:13: error: catalog 'hive' does not exist"),
        ("EXPLAIN CHANGELOG_MODE, SELECT 1", "job.sql:4:25: error: syntax error: expected an EXPLAIN detail"),
        ("SHOW TABLES NOT 'x'", "job.sql:4:17: error: syntax error: expected LIKE or ILIKE"),
    ] {
        let dir = scratch();
        let run = weir_run(dir.path(), &format!("{table}{statement};\n"));
        assert!(!run.ok, "{statement}: expected an error");
        assert!(run.stderr.contains(needle), "{statement}: stderr lacks {needle:?}:\n{}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
}

/// Names qualified with Flink's default catalog and database are the
/// tables of Weir's one database, in DDL, INSERT and queries.
#[test]
fn qualified_names_are_the_one_database() {
    let dir = scratch();
    let d = dir.path();
    let rows = [(1, "x"), (2, "y"), (3, "z")];
    json_lines(&d.join("in"), &rows);
    let sql = format!(
        "SET 'table.dml-sync' = 'true';
CREATE TABLE default_catalog.default_database.src (a BIGINT, b STRING) WITH ('connector' = 'filesystem', 'path' = '{i}', 'format' = 'json');
CREATE TABLE default_database.out (a BIGINT, b STRING) WITH ('connector' = 'filesystem', 'path' = '{o}', 'format' = 'json');
INSERT INTO default_catalog.default_database.out SELECT a, b FROM default_database.src WHERE a > 1;
SELECT count(*) AS n FROM default_catalog.default_database.src;
CREATE VIEW default_database.big AS SELECT a FROM default_catalog.default_database.src WHERE a > 2;
SELECT a FROM default_database.big;
",
        i = d.join("in").display(),
        o = d.join("out").display(),
    );
    let run = run_ok(d, &sql);
    let mut expected: Vec<String> =
        rows.iter().filter(|(a, _)| *a > 1).map(|(a, b)| serde_json::json!({"a": a, "b": b}).to_string()).collect();
    expected.sort();
    assert_eq!(sorted_rows(&d.join("out")), expected);
    assert_eq!(shown(&run.stdout)[0].rows, [["3"]]);
    assert_eq!(shown(&run.stdout)[1].rows, [["3"]]);
}

/// `ALTER TABLE IF EXISTS` of no table alters nothing, quietly.
#[test]
fn alter_if_exists_of_no_table_is_a_notice() {
    let dir = scratch();
    let run = run_ok(dir.path(), "ALTER TABLE IF EXISTS nope SET ('a' = 'b');\n");
    assert!(run.stderr.contains("Table 'nope' does not exist."), "{}", run.stderr);
}
