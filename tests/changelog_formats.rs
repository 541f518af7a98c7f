//! The changelog formats (`debezium-json`, `canal-json`, `maxwell-json`)
//! over the filesystem connector, through the real binary: a random
//! history of a `products` table (a snapshot, then inserts, updates and
//! deletes) written as each tool writes it — Canal's transactions of
//! several rows, its DDL events and other databases' records, malformed
//! records — and read by queries whose results must end in what the
//! test's own replay of the history says: the final table, a GROUP BY
//! over it and a Top-N.

use crate::common;
use crate::common::history;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use history::{Change, Product, debezium, final_rows, history, per_category, row};
use serde_json::{Value, json};

/// Canal and Maxwell write MySQL values as text (Canal) or JSON values.
fn text_row(p: &Product) -> Value {
    json!({"id": p.id.to_string(), "name": p.name, "category": p.category, "weight": p.weight.to_string(),
           "updated": sql_timestamp(p.updated)})
}

/// The columns `after` changed, with their values in `before` (Canal's and
/// Maxwell's `old`).
fn old(before: &Value, after: &Value) -> Value {
    let (Value::Object(b), Value::Object(a)) = (before, after) else {
        unreachable!()
    };
    Value::Object(
        b.iter()
            .filter(|(k, v)| a.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

/// Canal's records: consecutive changes of one kind in one record (a
/// transaction's rows), DDL events and another database's records between
/// them, and two records Weir cannot take.
fn canal(changes: &[Change]) -> String {
    let mut out = String::new();
    let mut i = 0;
    let mut id = 1;
    let mut g = Lcg(7);
    while i < changes.len() {
        let kind = |c: &Change| match c {
            Change::Snapshot(_) | Change::Insert(_) => "INSERT",
            Change::Update(..) => "UPDATE",
            Change::Delete(_) => "DELETE",
        };
        let t = kind(&changes[i]);
        let take = (1 + g.below(3) as usize).min(changes.len() - i);
        let group: Vec<&Change> = changes[i..i + take].iter().take_while(|c| kind(c) == t).collect();
        i += group.len();
        let mut data = Vec::new();
        let mut olds = Vec::new();
        for c in &group {
            match c {
                Change::Snapshot(p) | Change::Insert(p) | Change::Delete(p) => data.push(text_row(p)),
                Change::Update(b, a) => {
                    data.push(text_row(a));
                    olds.push(old(&text_row(b), &text_row(a)));
                }
            }
        }
        let record = json!({
            "data": data, "database": "inventory", "es": T0 + id, "id": id, "isDdl": false,
            "mysqlType": {"id": "INTEGER", "name": "VARCHAR(255)", "category": "VARCHAR(32)", "weight": "INTEGER",
                          "updated": "DATETIME(3)"},
            "old": if olds.is_empty() { Value::Null } else { Value::Array(olds) },
            "pkNames": ["id"], "sql": "", "sqlType": {"id": 4, "name": 12, "category": 12, "weight": 4, "updated": 93},
            "table": "products", "ts": T0 + 1000 + id, "type": t
        });
        out.push_str(&record.to_string());
        out.push('\n');
        id += 1;
        if id % 7 == 0 {
            let ddl = json!({"data": null, "database": "inventory", "es": T0 + id, "id": id, "isDdl": true,
                             "mysqlType": null, "old": null, "pkNames": null,
                             "sql": "ALTER TABLE products ADD COLUMN note VARCHAR(20)", "sqlType": null,
                             "table": "products", "ts": T0 + 1000 + id, "type": "ALTER"});
            let other = json!({"data": [{"id": "1", "name": "x", "category": "c0", "weight": "5", "updated": null}],
                               "database": "archive", "es": T0, "id": id, "isDdl": false, "old": null,
                               "pkNames": ["id"], "table": "products", "ts": T0, "type": "INSERT"});
            out.push_str(&format!("{ddl}\n{other}\n"));
        }
        if id == 10 {
            out.push_str("{\"data\": [{\"id\": \"1\"\n");
            out.push_str(
                &json!({"data": [], "database": "inventory", "isDdl": false, "table": "products",
                                 "type": "TRUNCATE"})
                .to_string(),
            );
            out.push('\n');
        }
    }
    out
}

/// Maxwell's records, one per change; `ts` in seconds.
fn maxwell(changes: &[Change]) -> String {
    let mut out = String::new();
    for (i, c) in changes.iter().enumerate() {
        let mut record = json!({"database": "inventory", "table": "products", "ts": 1_767_225_600 + i as i64,
                                "xid": 1000 + i, "commit": true});
        match c {
            Change::Snapshot(p) | Change::Insert(p) => {
                record["type"] = json!("insert");
                record["data"] = row(p);
            }
            Change::Update(b, a) => {
                record["type"] = json!("update");
                record["data"] = row(a);
                record["old"] = old(&row(b), &row(a));
            }
            Change::Delete(p) => {
                record["type"] = json!("delete");
                record["data"] = row(p);
            }
        }
        out.push_str(&record.to_string());
        out.push('\n');
    }
    out
}

/// The products table over `path` in `format`.
fn products_table(path: &Path, format: &str, extra: &str) -> String {
    format!(
        "CREATE TABLE products (id BIGINT, name VARCHAR, category VARCHAR, weight BIGINT, updated TIMESTAMP(3),
           PRIMARY KEY (id) NOT ENFORCED, WATERMARK FOR updated AS updated - INTERVAL '1' SECOND)
         WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = '{format}'{extra});",
        path.display()
    )
}

/// Runs `query` into a print table of columns `sink` over the history in
/// `format`, and applies the printed changes (rows told apart by their
/// first `key_len` values).
///
/// At parallelism 1 the records are split into files of 25 lines, read in
/// order one after another, so that changes reach the query in several
/// batches; at parallelism 2 they stay in one file (one partition: two
/// readers would reorder a key's changes), and the query's keyed
/// operators run on two subtasks.
fn run_query(
    input: &str,
    format: &str,
    extra: &str,
    sink: &str,
    query: &str,
    key_len: usize,
    parallelism: usize,
) -> (Vec<String>, BTreeMap<String, usize>, Run) {
    let dir = scratch();
    let path = dir.path().join("cdc");
    std::fs::create_dir_all(&path).unwrap();
    let lines: Vec<&str> = input.lines().collect();
    let per_file = if parallelism == 1 { 25 } else { lines.len() };
    for (i, chunk) in lines.chunks(per_file).enumerate() {
        std::fs::write(path.join(format!("part-{i:03}.json")), chunk.join("\n") + "\n").unwrap();
    }
    let sql = format!(
        "SET 'parallelism.default' = '{parallelism}';
{}
CREATE TABLE out ({sink}) WITH ('connector' = 'print');
INSERT INTO out {query};",
        products_table(&path, format, extra)
    );
    let run = run_once(dir.path(), &sql);
    assert!(run.ok, "weir failed:\n{}", run.stderr);
    let (rows, kinds) = apply_changelog(&run.stdout, key_len);
    (rows, kinds, run)
}

/// The two heaviest products of each category (ties by id).
fn top2(table: &BTreeMap<i64, Product>) -> Vec<String> {
    let mut by: BTreeMap<&str, Vec<&Product>> = BTreeMap::new();
    for p in table.values() {
        by.entry(&p.category).or_default().push(p);
    }
    let mut rows = Vec::new();
    for (c, mut ps) in by {
        ps.sort_by_key(|p| (-p.weight, p.id));
        for (i, p) in ps.iter().take(2).enumerate() {
            rows.push(format!("{c}|{}|{}|{}", i + 1, p.id, p.weight));
        }
    }
    rows.sort();
    rows
}

const TABLE_QUERY: (&str, &str) = (
    "id BIGINT, name VARCHAR, category VARCHAR, weight BIGINT",
    "SELECT id, name, category, weight FROM products",
);
const GROUP_QUERY: (&str, &str) = (
    "category VARCHAR, n BIGINT, w BIGINT",
    "SELECT category, COUNT(*) AS n, SUM(weight) AS w FROM products GROUP BY category",
);
const TOP_QUERY: (&str, &str) = (
    "category VARCHAR, rn BIGINT, id BIGINT, weight BIGINT",
    "SELECT category, rn, id, weight FROM (
       SELECT *, ROW_NUMBER() OVER (PARTITION BY category ORDER BY weight DESC, id) AS rn FROM products)
     WHERE rn <= 2",
);

/// Every format's records of one history, each read by the three queries
/// at parallelism 1 and 2.
#[test]
fn each_format_ends_in_the_replayed_table() {
    let (changes, table) = history(21, 400);
    let inputs = [
        ("debezium-json", debezium(&changes), ""),
        (
            "canal-json",
            canal(&changes),
            ", 'canal-json.database.include' = 'inventory', 'canal-json.ignore-parse-errors' = 'true'",
        ),
        ("maxwell-json", maxwell(&changes), ""),
    ];
    for (format, input, extra) in &inputs {
        for parallelism in [1, 2] {
            let (rows, kinds, _) = run_query(input, format, extra, TABLE_QUERY.0, TABLE_QUERY.1, 1, parallelism);
            assert_eq!(rows, final_rows(&table), "{format}: the table");
            // The source's own changes reach the sink as they are.
            let updates = changes.iter().filter(|c| matches!(c, Change::Update(..))).count();
            let deletes = changes.iter().filter(|c| matches!(c, Change::Delete(..))).count();
            assert_eq!(
                (kinds.get("-U"), kinds.get("-D")),
                (Some(&updates), Some(&deletes)),
                "{format}"
            );
            let (groups, kinds, _) = run_query(input, format, extra, GROUP_QUERY.0, GROUP_QUERY.1, 1, parallelism);
            assert_eq!(groups, per_category(&table), "{format}: per category");
            if parallelism == 1 {
                assert!(
                    kinds.get("-U").is_some_and(|n| *n > 10),
                    "{format}: the groups change: {kinds:?}"
                );
            }
            let (top, _, _) = run_query(input, format, extra, TOP_QUERY.0, TOP_QUERY.1, 2, parallelism);
            assert_eq!(top, top2(&table), "{format}: top 2");
        }
    }
}

/// Canal's malformed records: counted when ignored, else the job fails
/// naming the line.
#[test]
fn malformed_records_are_counted_or_fail_naming_their_line() {
    let (changes, table) = history(5, 100);
    let input = canal(&changes);
    let (rows, _, run) = run_query(
        &input,
        "canal-json",
        ", 'canal-json.database.include' = 'inventory', 'canal-json.ignore-parse-errors' = 'true'",
        TABLE_QUERY.0,
        TABLE_QUERY.1,
        1,
        1,
    );
    assert_eq!(rows, final_rows(&table));
    assert_eq!(run.counted("records that could not be decoded"), 2, "{}", run.stderr);
    let bad = input.lines().position(|l| l.contains("TRUNCATE")).unwrap() + 1;
    let dir = scratch();
    let path = dir.path().join("cdc.json");
    std::fs::write(&path, &input).unwrap();
    let run = run_once(
        dir.path(),
        &format!(
            "{}\nCREATE TABLE out ({}) WITH ('connector' = 'print');\nINSERT INTO out {};",
            products_table(&path, "canal-json", ""),
            TABLE_QUERY.0,
            TABLE_QUERY.1
        ),
    );
    assert!(!run.ok);
    let first_bad = bad - 1;
    assert!(run.stderr.contains(&format!("cdc.json:{first_bad}")), "{}", run.stderr);
}

/// Debezium with Kafka Connect's schemas: the payload is read with
/// 'debezium-json.schema-include', and refused without it.
#[test]
fn debezium_schema_included_envelopes() {
    let (changes, table) = history(9, 60);
    let wrapped: String = debezium(&changes)
        .lines()
        .map(|l| format!("{{\"schema\": {{\"type\": \"struct\", \"optional\": false, \"name\": \"dbserver1.inventory.products.Envelope\"}}, \"payload\": {l}}}\n"))
        .collect();
    let (rows, _, _) = run_query(
        &wrapped,
        "debezium-json",
        ", 'debezium-json.schema-include' = 'true'",
        TABLE_QUERY.0,
        TABLE_QUERY.1,
        1,
        1,
    );
    assert_eq!(rows, final_rows(&table));
    let dir = scratch();
    let path = dir.path().join("cdc.json");
    std::fs::write(&path, &wrapped).unwrap();
    let run = run_once(
        dir.path(),
        &format!(
            "{}\nCREATE TABLE out ({}) WITH ('connector' = 'print');\nINSERT INTO out {};",
            products_table(&path, "debezium-json", ""),
            TABLE_QUERY.0,
            TABLE_QUERY.1
        ),
    );
    assert!(
        !run.ok && run.stderr.contains("cdc.json:1") && run.stderr.contains("schema-include"),
        "{}",
        run.stderr
    );
}

/// A regular join of the changelog with an append-only table of
/// category labels ends in the join of the replayed table, and a
/// materializing `SELECT` (a GROUP BY over the join) too.
#[test]
fn a_join_with_the_changelog_ends_in_the_join_of_the_replayed_table() {
    let (changes, table) = history(13, 300);
    let dir = scratch();
    let path = dir.path().join("cdc.json");
    std::fs::write(&path, debezium(&changes)).unwrap();
    let labels = dir.path().join("labels.json");
    std::fs::write(
        &labels,
        (0..4)
            .map(|c| format!("{{\"category\": \"c{c}\", \"label\": \"L{c}\"}}\n"))
            .collect::<String>(),
    )
    .unwrap();
    let run = run_once(
        dir.path(),
        &format!(
            "SET 'parallelism.default' = '2';
{}
CREATE TABLE labels (category VARCHAR, label VARCHAR) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
CREATE TABLE out (label VARCHAR, n BIGINT, w BIGINT) WITH ('connector' = 'print');
INSERT INTO out SELECT l.label, COUNT(*), SUM(p.weight) FROM products p JOIN labels l ON p.category = l.category GROUP BY l.label;",
            products_table(&path, "debezium-json", ""),
            labels.display()
        ),
    );
    assert!(run.ok, "{}", run.stderr);
    let (got, _) = apply_changelog(&run.stdout, 1);
    // c4 has no label: the inner join leaves it out.
    let want: Vec<String> = per_category(&table)
        .into_iter()
        .filter(|l| !l.starts_with("c4|"))
        .map(|l| format!("L{}", &l[1..]))
        .collect();
    assert_eq!(got, want);
}

/// What cannot take a changelog says so when the query is planned.
#[test]
fn operators_that_need_final_rows_refuse_a_changelog_source() {
    let dir = scratch();
    let path = dir.path().join("cdc.json");
    std::fs::write(&path, debezium(&history(1, 5).0)).unwrap();
    let table = products_table(&path, "debezium-json", "");
    for (sink, query, says) in [
        (
            "ws TIMESTAMP(3), n BIGINT",
            "SELECT window_start, COUNT(*) FROM TABLE(TUMBLE(TABLE products, DESCRIPTOR(updated), INTERVAL '1' MINUTE)) GROUP BY window_start, window_end",
            "changelog",
        ),
        (
            "id BIGINT, n BIGINT",
            "SELECT id, COUNT(*) OVER (PARTITION BY category ORDER BY updated) FROM products",
            "OVER window",
        ),
    ] {
        let run = run_once(
            dir.path(),
            &format!("{table}\nCREATE TABLE out ({sink}) WITH ('connector' = 'print');\nINSERT INTO out {query};"),
        );
        assert!(!run.ok && run.stderr.contains(says), "{query}: {}", run.stderr);
    }
    let out = dir.path().join("out");
    let run = run_once(
        dir.path(),
        &format!(
            "{table}\nCREATE TABLE out ({}) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');\nINSERT INTO out {};",
            TABLE_QUERY.0,
            out.display(),
            TABLE_QUERY.1
        ),
    );
    assert!(!run.ok && run.stderr.contains("can only append"), "{}", run.stderr);
}
