//! Flink's nested column types — `ROW<…>` (and `ROW(…)`), `ARRAY<…>`,
//! `MAP<…, …>` — declared in `CREATE TABLE`, read from JSON files and
//! Kafka, used in expressions (`r.field`, `t.r.field`, `arr[1]`,
//! `m['key']`, `CARDINALITY`), carried through filters, window TVF rows
//! and window aggregations grouped by a nested field, and written back as
//! JSON objects and arrays. Every result is checked against an oracle
//! computed here from the generated input records; bad input (a ROW field
//! of the wrong type, a nested column in a CSV table, an unknown field,
//! a malformed type) must give a clear error, never a panic.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;

use common::kafka::Broker;
use common::*;
use serde_json::{Value, json};

/// The value of a record's `r ROW<…>` column.
#[derive(Debug, Clone)]
struct Inner {
    id: i64,
    name: Option<String>,
    /// `dateTime`, epoch milliseconds.
    dt: i64,
    tags: Vec<String>,
}

/// One input record.
#[derive(Debug, Clone)]
struct Rec {
    k: i64,
    r: Option<Inner>,
    arr: Option<Vec<Option<i32>>>,
    /// Keys in the order written (each once).
    m: Option<Vec<(String, Option<i64>)>>,
    ts: i64,
}

/// The source table's nested columns, as the sinks declare them too.
const R_TYPE: &str = "ROW<id BIGINT, name STRING, `dateTime` TIMESTAMP(3), tags ARRAY<STRING>>";
/// The same type in Flink's other spelling.
const R_TYPE_PARENS: &str = "ROW(id BIGINT, name STRING, `dateTime` TIMESTAMP(3), tags ARRAY<STRING>)";
/// How DESCRIBE shows [`R_TYPE`].
const R_DESCRIBED: &str = "ROW<id BIGINT, name STRING, dateTime TIMESTAMP(3), tags ARRAY<STRING>>";

/// Records with event time advancing (never late), nested values NULL,
/// empty or partly NULL now and then.
fn records(seed: u64, n: usize) -> Vec<Rec> {
    let mut g = Lcg(seed);
    let mut ts = T0;
    let mut out = Vec::with_capacity(n);
    for k in 0..n as i64 {
        ts += g.below(40) as i64;
        let r = (g.below(10) != 0).then(|| inner(&mut g));
        let arr = (g.below(8) != 0).then(|| (0..g.below(5)).map(|_| (g.below(6) != 0).then(|| g.below(20) as i32)).collect());
        let m = (g.below(8) != 0).then(|| map_value(&mut g));
        out.push(Rec { k, r, arr, m, ts });
    }
    out
}

fn inner(g: &mut Lcg) -> Inner {
    let id = g.below(6) as i64;
    let name = (g.below(4) != 0).then(|| format!("n{}", g.below(50)));
    let dt = T0 + g.below(86_400_000) as i64;
    let tags = (0..g.below(4)).map(|_| format!("t{}", g.below(9))).collect();
    Inner { id, name, dt, tags }
}

fn map_value(g: &mut Lcg) -> Vec<(String, Option<i64>)> {
    let mut m = Vec::new();
    for key in ["c", "a", "b"] {
        if g.below(2) == 0 {
            m.push((key.to_string(), (g.below(5) != 0).then(|| g.below(1000) as i64)));
        }
    }
    m
}

/// A record as one JSON line; the nested `dateTime` cycles through the
/// forms a TIMESTAMP(3) accepts (SQL, ISO-8601, epoch ms), and ROW values
/// sometimes carry a field the table does not declare (ignored, as Flink
/// ignores it).
fn json_line(i: usize, rec: &Rec) -> String {
    let r = rec.r.as_ref().map(|r| {
        let dt = match i % 3 {
            0 => json!(sql_timestamp(r.dt)),
            1 => json!(format!("{}Z", sql_timestamp(r.dt).replace(' ', "T"))),
            _ => json!(r.dt),
        };
        let mut v = json!({"id": r.id, "name": r.name, "dateTime": dt, "tags": r.tags});
        if i.is_multiple_of(7) {
            v["undeclared"] = json!({"x": [1, 2]});
        }
        v
    });
    json!({"k": rec.k, "r": r, "arr": rec.arr, "m": rec.m.as_deref().map(map_json), "ts": sql_timestamp(rec.ts)}).to_string()
}

fn map_json(m: &[(String, Option<i64>)]) -> Value {
    Value::Object(m.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
}

/// The JSON object a sink writes for `r`, its `dateTime` as epoch ms (as
/// [`normalized`] makes the sink's text).
fn r_json(r: &Option<Inner>) -> Value {
    match r {
        None => Value::Null,
        Some(r) => json!({"id": r.id, "name": r.name, "dateTime": r.dt, "tags": r.tags}),
    }
}

fn write_input(dir: &Path, recs: &[Rec]) {
    std::fs::create_dir_all(dir.join("in")).unwrap();
    let text: String = recs.iter().enumerate().map(|(i, r)| json_line(i, r) + "\n").collect();
    std::fs::write(dir.join("in/part-0.json"), text).unwrap();
}

/// The source table over `dir/in`.
fn source(dir: &Path, extra_options: &str) -> String {
    format!(
        "CREATE TABLE t (k BIGINT, r {R_TYPE}, arr ARRAY<INT>, m MAP<STRING, BIGINT>, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json',
        'scan.watermark.emit.strategy' = 'on-event'{extra_options});\n",
        dir.join("in").display()
    )
}

/// A filesystem JSON sink `name` with `columns`, writing to `dir/name`.
fn sink(dir: &Path, name: &str, columns: &str) -> String {
    format!(
        "CREATE TABLE {name} ({columns}) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');\n",
        dir.join(name).display()
    )
}

/// A sink row with every TIMESTAMP text (the `timestamps` columns, and
/// `dateTime` inside a ROW column `r`) as epoch ms, as one sortable line.
fn normalized(mut row: Value, timestamps: &[&str]) -> String {
    for c in timestamps {
        if let Some(Value::String(s)) = row.get(*c) {
            row[*c] = json!(parse_timestamp(s));
        }
    }
    if let Some(Value::String(s)) = row.get("r").and_then(|r| r.get("dateTime")) {
        row["r"]["dateTime"] = json!(parse_timestamp(s));
    }
    row.to_string()
}

fn sink_rows(dir: &Path, timestamps: &[&str]) -> Vec<String> {
    let mut rows: Vec<String> = read_sink(dir).into_iter().map(|r| normalized(r, timestamps)).collect();
    rows.sort();
    rows
}

fn sorted(rows: impl IntoIterator<Item = Value>) -> Vec<String> {
    let mut rows: Vec<String> = rows.into_iter().map(|r| r.to_string()).collect();
    rows.sort();
    rows
}

/// SQL's three-valued OR of two comparisons (`None` is NULL).
fn or(a: Option<bool>, b: Option<bool>) -> bool {
    a == Some(true) || b == Some(true)
}

/// `arr[i]` as Flink reads it: 1-based, NULL out of bounds.
fn element<T: Clone>(arr: Option<&[Option<T>]>, i: usize) -> Option<T> {
    arr.and_then(|a| a.get(i - 1).cloned().flatten())
}

/// `m[key]`: NULL when the map or the key is absent.
fn lookup(m: Option<&[(String, Option<i64>)]>, key: &str) -> Option<i64> {
    m.and_then(|m| m.iter().find(|(k, _)| k == key).and_then(|(_, v)| *v))
}

/// The oracle of [`projections_and_filters_on_nested_fields_match_the_oracle`].
fn expected_projection(recs: &[Rec]) -> Vec<String> {
    let kept = recs.iter().filter(|rec| {
        let id_not_2 = rec.r.as_ref().map(|r| r.id != 2);
        let first_big = element(rec.arr.as_deref(), 1).map(|a| a > 10);
        or(id_not_2, first_big)
    });
    sorted(kept.map(|rec| {
        let r = rec.r.as_ref();
        json!({
            "k": rec.k,
            "r": r_json(&rec.r),
            "id": r.map(|r| r.id),
            "dt": r.map(|r| r.dt),
            "tag2": r.and_then(|r| r.tags.get(1)),
            "ntags": r.map(|r| r.tags.len()),
            "a1": element(rec.arr.as_deref(), 1),
            "a3": element(rec.arr.as_deref(), 3),
            "ma": lookup(rec.m.as_deref(), "a"),
            "na": rec.arr.as_ref().map(Vec::len),
            "nm": rec.m.as_ref().map(Vec::len),
            "arr": rec.arr,
            "m": rec.m.as_deref().map(map_json),
        })
    }))
}

#[test]
fn projections_and_filters_on_nested_fields_match_the_oracle() {
    let dir = scratch();
    let recs = records(7, 3_000);
    write_input(dir.path(), &recs);
    let columns = format!(
        "k BIGINT, r {R_TYPE_PARENS}, id BIGINT, dt TIMESTAMP(3), tag2 STRING, ntags INT, a1 INT, a3 INT,
         ma BIGINT, na INT, nm INT, arr ARRAY<INT>, m MAP<STRING, BIGINT>"
    );
    let sql = format!(
        "{}{}DESCRIBE t;\nDESCRIBE out;\n
INSERT INTO out
SELECT k, r, r.id, t.r.`dateTime`, r.tags[2], CARDINALITY(r.tags), arr[1], arr[3], m['a'],
       CARDINALITY(arr), CARDINALITY(m), arr, m
FROM t WHERE r.id <> 2 OR arr[1] > 10;",
        source(dir.path(), ""),
        sink(dir.path(), "out", &columns)
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    // Both spellings of the ROW type, described as Flink names it.
    assert_eq!(run.stdout.matches(R_DESCRIBED).count(), 2, "{}", run.stdout);
    assert!(run.stdout.contains("ARRAY<INT>") && run.stdout.contains("MAP<STRING, BIGINT>"), "{}", run.stdout);
    assert_rows_eq(&sink_rows(&dir.path().join("out"), &["dt"]), &expected_projection(&recs), "projection");
}

/// One window aggregation's results: `GROUP BY r.id` per 1 s window.
fn expected_windows(recs: &[Rec]) -> Vec<String> {
    #[derive(Default)]
    struct Acc {
        count: u64,
        sum: Option<u64>,
        max_b: Option<i64>,
        min_dt: Option<i64>,
    }
    let mut groups: BTreeMap<(i64, Option<i64>), Acc> = BTreeMap::new();
    for rec in recs {
        let acc = groups.entry((rec.ts - rec.ts.rem_euclid(1000), rec.r.as_ref().map(|r| r.id))).or_default();
        acc.count += 1;
        if let Some(a) = &rec.arr {
            acc.sum = Some(acc.sum.unwrap_or(0) + a.len() as u64);
        }
        if let Some(b) = lookup(rec.m.as_deref(), "b") {
            acc.max_b = Some(acc.max_b.map_or(b, |m| m.max(b)));
        }
        if let Some(r) = &rec.r {
            acc.min_dt = Some(acc.min_dt.map_or(r.dt, |m| m.min(r.dt)));
        }
    }
    sorted(groups.into_iter().map(|((ws, id), a)| {
        json!({"id": id, "ws": ws, "we": ws + 1000, "c": a.count, "s": a.sum, "mb": a.max_b, "mindt": a.min_dt})
    }))
}

/// Window TVF rows that keep their nested columns: only records with a
/// map of more than one entry.
fn expected_window_rows(recs: &[Rec]) -> Vec<String> {
    let kept = recs.iter().filter(|rec| rec.m.as_ref().is_some_and(|m| m.len() > 1));
    sorted(kept.map(|rec| {
        let r = rec.r.as_ref();
        json!({
            "k": rec.k,
            "name": r.and_then(|r| r.name.clone()),
            "r": r_json(&rec.r),
            "arr": rec.arr,
            "ws": rec.ts - rec.ts.rem_euclid(1000),
            "x": {"c0": rec.k, "c1": r.map(|r| r.id)},
        })
    }))
}

#[test]
fn window_tvfs_carry_and_group_by_nested_fields() {
    let dir = scratch();
    let recs = records(21, 4_000);
    write_input(dir.path(), &recs);
    let sql = format!(
        "{}{}{}
INSERT INTO agg
SELECT r.id, window_start, window_end, count(*), sum(CARDINALITY(arr)), max(m['b']), min(r.`dateTime`)
FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' SECOND))
GROUP BY r.id, window_start, window_end;
INSERT INTO wrows
SELECT k, r.name, r, arr, window_start, ROW(k, r.id)
FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' SECOND)) WHERE CARDINALITY(m) > 1;",
        source(dir.path(), ""),
        sink(
            dir.path(),
            "agg",
            "id BIGINT, ws TIMESTAMP(3), we TIMESTAMP(3), c BIGINT, s BIGINT, mb BIGINT, mindt TIMESTAMP(3)"
        ),
        // `ROW(k, r.id)` is the row constructor (not a type): its fields
        // are named as DataFusion names them.
        sink(
            dir.path(),
            "wrows",
            &format!("k BIGINT, name STRING, r {R_TYPE}, arr ARRAY<INT>, ws TIMESTAMP(3), x ROW<c0 BIGINT, c1 BIGINT>")
        ),
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    assert_rows_eq(&sink_rows(&dir.path().join("agg"), &["ws", "we", "mindt"]), &expected_windows(&recs), "windows");
    assert_rows_eq(&sink_rows(&dir.path().join("wrows"), &["ws"]), &expected_window_rows(&recs), "window rows");
}

/// A line whose ROW field has the wrong type, whose nested TIMESTAMP is
/// not one, or whose ARRAY or MAP is not one.
const BAD_LINES: [&str; 4] = [
    r#"{"k": -1, "r": {"id": "ten", "name": "x", "dateTime": 0, "tags": []}, "ts": "2026-01-01 00:00:00"}"#,
    r#"{"k": -2, "r": {"id": 1, "name": "x", "dateTime": "yesterday", "tags": []}, "ts": "2026-01-01 00:00:00"}"#,
    r#"{"k": -3, "r": 5, "arr": {"a": 1}, "ts": "2026-01-01 00:00:00"}"#,
    r#"{"k": -4, "m": [1, 2], "ts": "2026-01-01 00:00:00"}"#,
];

/// `recs` as lines with [`BAD_LINES`] at lines 3, 6, 9 and 12.
fn input_with_bad_lines(dir: &Path, recs: &[Rec]) {
    std::fs::create_dir_all(dir.join("in")).unwrap();
    let mut text = String::new();
    let mut bad = BAD_LINES.iter();
    for (i, rec) in recs.iter().enumerate() {
        if i.is_multiple_of(2)
            && i > 0
            && let Some(line) = bad.next()
        {
            text.push_str(line);
            text.push('\n');
        }
        text.push_str(&json_line(i, rec));
        text.push('\n');
    }
    std::fs::write(dir.join("in/part-0.json"), text).unwrap();
}

#[test]
fn records_with_badly_typed_nested_values_are_bad_records() {
    let recs = records(3, 200);
    let query = "INSERT INTO out SELECT k, r.id, r.`dateTime` FROM t;";
    let columns = "k BIGINT, id BIGINT, dt TIMESTAMP(3)";

    // Without 'json.ignore-parse-errors': the first bad line fails the job,
    // named with its file, line and field.
    let dir = scratch();
    input_with_bad_lines(dir.path(), &recs);
    let sql = format!("{}{}{query}", source(dir.path(), ""), sink(dir.path(), "out", columns));
    let run = weir_run(dir.path(), &sql);
    assert!(!run.ok, "a bad record must fail the job");
    assert!(run.stderr.contains("part-0.json:3: cannot decode record"), "{}", run.stderr);
    assert!(run.stderr.contains("'id'") && run.stderr.contains("\"ten\""), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);

    // With it: the bad lines are skipped and counted, the rest is read.
    let dir = scratch();
    input_with_bad_lines(dir.path(), &recs);
    let sql = format!(
        "{}{}{query}",
        source(dir.path(), ", 'json.ignore-parse-errors' = 'true'"),
        sink(dir.path(), "out", columns)
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(run.counted("records that could not be decoded"), BAD_LINES.len() as u64, "{}", run.stderr);
    assert!(run.stderr.contains("invalid TIMESTAMP 'yesterday' for column 'r.dateTime'"), "{}", run.stderr);
    let want = sorted(recs.iter().map(|rec| {
        json!({"k": rec.k, "id": rec.r.as_ref().map(|r| r.id), "dt": rec.r.as_ref().map(|r| r.dt)})
    }));
    assert_rows_eq(&sink_rows(&dir.path().join("out"), &["dt"]), &want, "good records");
}

/// Runs `sql` (expected to fail) and returns its stderr, checked for a
/// panic.
fn fails(sql: &str) -> String {
    let dir = scratch();
    let run = weir_run(dir.path(), sql);
    assert!(!run.ok, "expected an error: {sql}\n{}", run.stdout);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run.stderr
}

#[test]
fn nested_types_that_cannot_be_used_are_clear_errors() {
    let table = |columns: &str, format: &str| {
        format!("CREATE TABLE t ({columns}) WITH ('connector' = 'filesystem', 'path' = 'in', 'format' = '{format}');\n")
    };
    // CSV has no nested values: the column is named.
    let e = fails(&table("k BIGINT, r ROW<id BIGINT>", "csv"));
    assert!(e.contains("column 'r' has type ROW<id BIGINT>") && e.contains("'csv' format cannot hold"), "{e}");
    // JSON object keys are text.
    let e = fails(&table("m MAP<INT, BIGINT>", "json"));
    assert!(e.contains("column 'm'") && e.contains("MAP keys must be STRING"), "{e}");
    // Malformed types: syntax errors with line and column.
    for (columns, want) in [
        ("a ARRAY<>", "job.sql:2:11: error: syntax error"),
        ("a ARRAY<INT", "job.sql:2:14: error: syntax error"),
        ("m MAP<STRING>", "job.sql:2:15: error: syntax error"),
        ("r ROW<INT>", "job.sql:2:3: error: ROW field of type INT needs a name"),
        ("r ROW<a INT, a BIGINT>", "ROW field 'a' is declared twice"),
    ] {
        let e = fails(&table(&format!("k INT,\n  {columns}"), "json"));
        assert!(e.contains(want), "{columns}: {e}");
    }
    // A field the ROW does not have, placed at its query.
    let e = fails(&format!("{}SELECT k,\n  r.nope FROM t;", table("k INT, r ROW<id BIGINT>", "json")));
    assert!(e.contains("job.sql:2:1: error:") && e.contains("nope"), "{e}");
}

#[test]
fn nested_columns_through_kafka_round_trip() {
    let broker = Broker::start();
    let recs = records(5, 1_500);
    broker.create_topic("nested-in", 1);
    let lines: Vec<(Option<Vec<u8>>, Vec<u8>)> =
        recs.iter().enumerate().map(|(i, r)| (None, json_line(i, r).into_bytes())).collect();
    broker.produce("nested-in", 0, &lines);
    let servers = broker.bootstrap();
    let kafka = |topic: &str, extra: &str| {
        format!(
            "'connector' = 'kafka', 'topic' = '{topic}', 'properties.bootstrap.servers' = '{servers}',
             'format' = 'json'{extra}"
        )
    };
    let tables = format!(
        "CREATE TABLE src (k BIGINT, r {R_TYPE}, arr ARRAY<INT>, m MAP<STRING, BIGINT>, ts TIMESTAMP(3)) WITH ({});
CREATE TABLE dst (k BIGINT, r {R_TYPE}, arr ARRAY<INT>, m MAP<STRING, BIGINT>) WITH ({});\n",
        kafka("nested-in", ", 'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset'"),
        kafka("nested-out", ", 'key.fields' = 'r'"),
    );
    let dir = scratch();
    let run = weir_run(dir.path(), &format!("{tables}INSERT INTO dst SELECT k, r, arr, m FROM src WHERE k % 2 = 0;"));
    assert!(run.ok, "{}", run.stderr);
    let mut got = Vec::new();
    for record in broker.read_committed("nested-out") {
        let value: Value = serde_json::from_slice(record.value.as_deref().expect("a value")).unwrap();
        let key: Value = serde_json::from_slice(record.key.as_deref().expect("a key")).unwrap();
        // The key is the ROW column, as a JSON object.
        assert_eq!(key, json!({"r": value["r"]}));
        got.push(normalized(value, &[]));
    }
    got.sort();
    let want = sorted(
        recs.iter()
            .filter(|rec| rec.k % 2 == 0)
            .map(|rec| json!({"k": rec.k, "r": r_json(&rec.r), "arr": rec.arr, "m": rec.m.as_deref().map(map_json)})),
    );
    assert_rows_eq(&got, &want, "kafka");

    // A CSV key cannot hold the ROW.
    let e = fails(&format!(
        "CREATE TABLE dst (k BIGINT, r {R_TYPE}) WITH ({});",
        kafka("nested-out", ", 'key.fields' = 'r', 'key.format' = 'csv'")
    ));
    assert!(e.contains("column 'r'") && e.contains("'csv' format cannot hold"), "{e}");
}

/// A ROW written into a ROW column takes its fields by position, as in
/// Flink's INSERT (`ROW(k, 'x')` has fields `c0`, `c1`), also inside an
/// ARRAY; a ROW of another number of fields is refused before the job
/// starts, naming both.
#[test]
fn rows_are_written_into_row_columns_by_position() {
    let dir = scratch();
    let input = dir.path().join("in.json");
    std::fs::write(&input, (1..=30).map(|k| format!("{{\"k\": {k}}}\n")).collect::<String>()).unwrap();
    let out = dir.path().join("out");
    let sql = format!(
        "CREATE TABLE t (k INT) WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'json');
CREATE TABLE r (id INT, p ROW<a BIGINT, b STRING>, ps ARRAY<ROW<n INT, half DOUBLE>>)
  WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'json');
INSERT INTO r SELECT k, ROW(k * 10, CONCAT('v', CAST(k AS STRING))), ARRAY[ROW(k, k / 2.0), ROW(-k, 0.5)] FROM t;",
        input = input.display(),
        out = out.display()
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    let mut got: Vec<String> = read_sink(&out).iter().map(normalize_json).collect();
    got.sort();
    let mut want: Vec<String> = (1..=30)
        .map(|k| {
            normalize_json(&serde_json::json!({
                "id": k,
                "p": {"a": k * 10, "b": format!("v{k}")},
                "ps": [{"n": k, "half": k as f64 / 2.0}, {"n": -k, "half": 0.5}],
            }))
        })
        .collect();
    want.sort();
    assert_rows_eq(&got, &want, "ROWs by position");

    let bad = sql.replace("ROW(k * 10, CONCAT('v', CAST(k AS STRING)))", "ROW(k, 'x', 'y')");
    let run = weir_run(dir.path(), &bad);
    assert!(!run.ok);
    assert!(
        run.stderr.contains("column 2 ('p')")
            && run.stderr.contains("a ROW of 3 fields (c0, c1, c2) cannot be written as one of 2 (a, b)"),
        "{}",
        run.stderr
    );
}

/// Flink's map constructor `MAP[k1, v1, k2, v2]` in a streaming query,
/// written into a MAP column: each row's map holds its pairs.
#[test]
fn map_constructors_make_the_maps_they_list() {
    let dir = scratch();
    let input = dir.path().join("in.json");
    std::fs::write(&input, (1..=20).map(|k| format!("{{\"k\": {k}}}\n")).collect::<String>()).unwrap();
    let out = dir.path().join("out");
    let sql = format!(
        "CREATE TABLE t (k INT) WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'json');
CREATE TABLE m (k INT, tags MAP<STRING, INT>, third INT) WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'json');
INSERT INTO m SELECT k, MAP['double', k * 2, 'square', k * k], MAP['a', k, 'b', 3][ 'b'] FROM t;",
        input = input.display(),
        out = out.display()
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    let mut got: Vec<String> = read_sink(&out).iter().map(normalize_json).collect();
    got.sort();
    let mut want: Vec<String> = (1..=20)
        .map(|k| normalize_json(&serde_json::json!({"k": k, "tags": {"double": k * 2, "square": k * k}, "third": 3})))
        .collect();
    want.sort();
    assert_rows_eq(&got, &want, "MAP[…]");
}
