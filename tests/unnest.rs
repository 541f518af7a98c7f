//! Flink's `UNNEST` on streams: `CROSS JOIN UNNEST(o.tags) AS t(tag)`,
//! `FROM o, UNNEST(…)`, `LEFT JOIN UNNEST(…) ON TRUE`, an ARRAY of ROWs
//! expanded into the ROW's fields, a MAP into key and value, `WITH
//! ORDINALITY`, and a window aggregation over unnested rows (through a view
//! and directly over a window TVF). Expansions are checked against an
//! oracle written here from the generated records; the windows against
//! DataFusion's batch `unnest` and aggregation over the same rows. Bad
//! UNNESTs must be clear errors with their line and column.

use crate::common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use datafusion::arrow::array::{ArrayRef, Int32Builder, Int64Array, ListBuilder, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::SessionContext;
use serde_json::{Value, json};

/// An element of the `items` ARRAY of ROWs.
#[derive(Debug, Clone)]
struct Item {
    sku: Option<String>,
    qty: Option<i32>,
}

/// One input record.
#[derive(Debug, Clone)]
struct Rec {
    id: i64,
    tags: Option<Vec<Option<i32>>>,
    /// A NULL element is a NULL ROW.
    items: Option<Vec<Option<Item>>>,
    /// Keys in the order written (each once).
    attrs: Option<Vec<(String, Option<i64>)>>,
    ts: i64,
}

const TABLE_COLUMNS: &str = "id BIGINT, tags ARRAY<INT>, items ARRAY<ROW<sku STRING, qty INT>>, \
                             attrs MAP<STRING, BIGINT>, ts TIMESTAMP(3)";

/// Records in event-time order (none late); arrays and maps NULL, empty,
/// or holding NULLs now and then.
fn records(seed: u64, n: usize) -> Vec<Rec> {
    let mut g = Lcg(seed);
    let mut ts = T0;
    let mut out = Vec::with_capacity(n);
    for id in 0..n as i64 {
        ts += g.below(30) as i64;
        let tags = (g.below(7) != 0).then(|| {
            (0..g.below(5))
                .map(|_| (g.below(8) != 0).then(|| g.below(30) as i32))
                .collect()
        });
        let items = (g.below(6) != 0).then(|| {
            (0..g.below(4))
                .map(|_| (g.below(7) != 0).then(|| item(&mut g)))
                .collect()
        });
        let attrs = (g.below(5) != 0).then(|| {
            let mut m = Vec::new();
            for k in ["x", "a", "m"] {
                if g.below(2) == 0 {
                    m.push((k.to_string(), (g.below(4) != 0).then(|| g.below(100) as i64)));
                }
            }
            m
        });
        out.push(Rec {
            id,
            tags,
            items,
            attrs,
            ts,
        });
    }
    out
}

fn item(g: &mut Lcg) -> Item {
    Item {
        sku: (g.below(5) != 0).then(|| format!("s{}", g.below(20))),
        qty: (g.below(5) != 0).then(|| g.below(9) as i32),
    }
}

fn json_line(rec: &Rec) -> String {
    let items = rec.items.as_ref().map(|items| {
        items
            .iter()
            .map(|i| i.as_ref().map_or(Value::Null, |i| json!({"sku": i.sku, "qty": i.qty})))
            .collect::<Vec<_>>()
    });
    let attrs = rec
        .attrs
        .as_ref()
        .map(|m| Value::Object(m.iter().map(|(k, v)| (k.clone(), json!(v))).collect()));
    json!({"id": rec.id, "tags": rec.tags, "items": items, "attrs": attrs, "ts": sql_timestamp(rec.ts)}).to_string()
}

fn write_input(dir: &Path, recs: &[Rec]) {
    std::fs::create_dir_all(dir.join("in")).unwrap();
    let text: String = recs.iter().map(|r| json_line(r) + "\n").collect();
    std::fs::write(dir.join("in/part-0.json"), text).unwrap();
}

/// The source table over `dir/in`, with per-row (on-event) watermarks, so
/// that the unnest carries each row's watermark to its elements.
fn source(dir: &Path) -> String {
    format!(
        "CREATE TABLE orders ({TABLE_COLUMNS},
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json',
        'scan.watermark.emit.strategy' = 'on-event');\n",
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

/// The sink's rows as `a|b|…` lines of `columns` (JSON values, a missing
/// one `null`; timestamps in `times` as epoch ms), sorted.
fn sink_rows(dir: &Path, columns: &[&str], times: &[&str]) -> Vec<String> {
    let mut rows: Vec<String> = read_sink(dir)
        .iter()
        .map(|row| {
            let cells: Vec<String> = columns
                .iter()
                .map(|c| match row.get(*c) {
                    Some(Value::String(s)) if times.contains(c) => parse_timestamp(s).to_string(),
                    Some(v) => v.to_string(),
                    None => "null".into(),
                })
                .collect();
            cells.join("|")
        })
        .collect();
    rows.sort();
    rows
}

/// `values` as a sorted list of `a|b|…` lines.
fn lines(values: impl IntoIterator<Item = Vec<Value>>) -> Vec<String> {
    let mut rows: Vec<String> = values
        .into_iter()
        .map(|cells| cells.iter().map(Value::to_string).collect::<Vec<_>>().join("|"))
        .collect();
    rows.sort();
    rows
}

/// Every (record, tag) pair Flink's CROSS JOIN UNNEST gives: a NULL or
/// empty array gives none, a NULL element a row.
fn tag_pairs(recs: &[Rec]) -> impl Iterator<Item = (&Rec, Option<i32>)> {
    recs.iter().flat_map(|r| r.tags.iter().flatten().map(move |t| (r, *t)))
}

#[test]
fn unnest_of_an_array_expands_each_row_as_the_oracle_does() {
    let dir = scratch();
    let recs = records(11, 3_000);
    write_input(dir.path(), &recs);
    let columns = "id BIGINT, tag INT";
    let sql = format!(
        "{}{}{}{}
INSERT INTO crossed SELECT o.id, t.tag FROM orders o CROSS JOIN UNNEST(o.tags) AS t(tag);
INSERT INTO comma SELECT o.id, t.tag FROM orders AS o, UNNEST(o.tags) AS t(tag) WHERE t.tag > 10 AND o.id % 2 = 0;
INSERT INTO lefty SELECT o.id, t.tag FROM orders o LEFT JOIN UNNEST(o.tags) AS t(tag) ON TRUE;",
        source(dir.path()),
        sink(dir.path(), "crossed", columns),
        sink(dir.path(), "comma", columns),
        sink(dir.path(), "lefty", columns),
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    let got = |name: &str| sink_rows(&dir.path().join(name), &["id", "tag"], &[]);

    let crossed = lines(tag_pairs(&recs).map(|(r, t)| vec![json!(r.id), json!(t)]));
    assert_rows_eq(&got("crossed"), &crossed, "CROSS JOIN UNNEST");

    let comma = lines(
        tag_pairs(&recs)
            .filter(|(r, t)| t.is_some_and(|t| t > 10) && r.id % 2 == 0)
            .map(|(r, t)| vec![json!(r.id), json!(t)]),
    );
    assert_rows_eq(&got("comma"), &comma, "FROM o, UNNEST(…) WHERE");

    // A row without elements stays once, with a NULL tag.
    let lefty = lines(recs.iter().flat_map(|r| match r.tags.as_deref() {
        None | Some([]) => vec![vec![json!(r.id), Value::Null]],
        Some(tags) => tags.iter().map(|t| vec![json!(r.id), json!(t)]).collect(),
    }));
    assert_rows_eq(&got("lefty"), &lefty, "LEFT JOIN UNNEST … ON TRUE");
}

/// DataFusion holding the records' `id`, `tags` and `ts` (epoch ms) as
/// table `t`.
fn tags_table(recs: &[Rec]) -> SessionContext {
    let mut tags = ListBuilder::new(Int32Builder::new());
    for r in recs {
        match &r.tags {
            None => tags.append_null(),
            Some(v) => tags.append_value(v.iter().copied()),
        }
    }
    let tags: ArrayRef = Arc::new(tags.finish());
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("tags", tags.data_type().clone(), true),
        Field::new("ts", DataType::Int64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(recs.iter().map(|r| r.id))),
        tags,
        Arc::new(Int64Array::from_iter_values(recs.iter().map(|r| r.ts))),
    ];
    let ctx = SessionContext::new();
    ctx.register_batch("t", RecordBatch::try_new(schema, columns).expect("records batch"))
        .expect("register");
    ctx
}

/// DataFusion's batch answer to `sql` over [`tags_table`], as sorted lines.
async fn batch_answer(recs: &[Rec], sql: &str) -> Vec<String> {
    let batches = tags_table(recs)
        .sql(sql)
        .await
        .expect("plan")
        .collect()
        .await
        .expect("run");
    normalize_batches(&batches)
}

#[tokio::test(flavor = "multi_thread")]
async fn window_aggregations_over_unnested_rows_match_datafusion_batch() {
    let dir = scratch();
    let recs = records(23, 4_000);
    write_input(dir.path(), &recs);
    let sql = format!(
        "SET 'parallelism.default' = '2';
{}{}{}
CREATE VIEW tagged AS SELECT o.id, t.tag, o.ts FROM orders o CROSS JOIN UNNEST(o.tags) AS t(tag);
INSERT INTO by_group
SELECT window_start, tag % 3, count(*), sum(tag), max(id)
FROM TABLE(TUMBLE(TABLE tagged, DESCRIPTOR(ts), INTERVAL '1' SECOND))
GROUP BY window_start, window_end, tag % 3;
INSERT INTO per_window
SELECT window_start, count(*), count(t.tag), sum(t.tag)
FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '1' SECOND)) CROSS JOIN UNNEST(tags) AS t(tag)
GROUP BY window_start, window_end;",
        source(dir.path()),
        sink(
            dir.path(),
            "by_group",
            "ws TIMESTAMP(3), g INT, c BIGINT, s BIGINT, mx BIGINT"
        ),
        sink(
            dir.path(),
            "per_window",
            "ws TIMESTAMP(3), c BIGINT, n BIGINT, s BIGINT"
        ),
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(run.counted("late rows"), 0, "{}", run.stderr);

    let unnested = "SELECT id, unnest(tags) AS tag, ts - ts % 1000 AS ws FROM t";
    let by_group = batch_answer(
        &recs,
        &format!("SELECT ws, tag % 3, count(*), sum(tag), max(id) FROM ({unnested}) GROUP BY ws, tag % 3"),
    )
    .await;
    let got = sink_rows(&dir.path().join("by_group"), &["ws", "g", "c", "s", "mx"], &["ws"]);
    assert_rows_eq(&got, &by_group, "TUMBLE over a view that unnests");

    let per_window = batch_answer(
        &recs,
        &format!("SELECT ws, count(*), count(tag), sum(tag) FROM ({unnested}) GROUP BY ws"),
    )
    .await;
    let got = sink_rows(&dir.path().join("per_window"), &["ws", "c", "n", "s"], &["ws"]);
    assert_rows_eq(&got, &per_window, "TUMBLE(…) CROSS JOIN UNNEST");
}

/// `UNNEST(items)` over an ARRAY of ROWs gives the ROW's fields, a MAP its
/// key and value, `WITH ORDINALITY` the 1-based position after them.
#[test]
fn unnest_of_rows_and_maps_gives_their_fields() {
    let dir = scratch();
    let recs = records(5, 2_500);
    write_input(dir.path(), &recs);
    let sql = format!(
        "{}{}{}{}{}
INSERT INTO skus SELECT o.id, t.sku, t.qty FROM orders o CROSS JOIN UNNEST(o.items) AS t(sku, qty);
INSERT INTO kv SELECT o.id, t.k, t.v FROM orders o CROSS JOIN UNNEST(o.attrs) AS t(k, v) WHERE t.v IS NOT NULL;
INSERT INTO positions SELECT o.id, t.tag, t.pos FROM orders o, UNNEST(o.tags) WITH ORDINALITY AS t(tag, pos);
INSERT INTO left_items SELECT o.id, t.sku, t.qty FROM orders o LEFT JOIN UNNEST(o.items) AS t(sku, qty) ON TRUE;",
        source(dir.path()),
        sink(dir.path(), "skus", "id BIGINT, sku STRING, qty INT"),
        sink(dir.path(), "kv", "id BIGINT, k STRING, v BIGINT"),
        sink(dir.path(), "positions", "id BIGINT, tag INT, pos INT"),
        sink(dir.path(), "left_items", "id BIGINT, sku STRING, qty INT"),
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);

    let item_cells = |id: i64, i: &Option<Item>| match i {
        Some(i) => vec![json!(id), json!(i.sku), json!(i.qty)],
        None => vec![json!(id), Value::Null, Value::Null],
    };
    let skus = lines(
        recs.iter()
            .flat_map(|r| r.items.iter().flatten().map(|i| item_cells(r.id, i))),
    );
    assert_rows_eq(
        &sink_rows(&dir.path().join("skus"), &["id", "sku", "qty"], &[]),
        &skus,
        "ARRAY of ROWs",
    );

    let kv = lines(recs.iter().flat_map(|r| {
        r.attrs
            .iter()
            .flatten()
            .filter(|(_, v)| v.is_some())
            .map(|(k, v)| vec![json!(r.id), json!(k), json!(v)])
    }));
    assert_rows_eq(&sink_rows(&dir.path().join("kv"), &["id", "k", "v"], &[]), &kv, "MAP");

    let positions = lines(recs.iter().flat_map(|r| {
        r.tags
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, t)| vec![json!(r.id), json!(t), json!(i + 1)])
    }));
    let got = sink_rows(&dir.path().join("positions"), &["id", "tag", "pos"], &[]);
    assert_rows_eq(&got, &positions, "WITH ORDINALITY");

    let left_items = lines(recs.iter().flat_map(|r| match r.items.as_deref() {
        None | Some([]) => vec![vec![json!(r.id), Value::Null, Value::Null]],
        Some(items) => items.iter().map(|i| item_cells(r.id, i)).collect(),
    }));
    let got = sink_rows(&dir.path().join("left_items"), &["id", "sku", "qty"], &[]);
    assert_rows_eq(&got, &left_items, "LEFT JOIN UNNEST of ROWs");
}

/// Runs `sql` after the source table (expected to fail) and returns its
/// stderr, checked for a panic.
fn fails(query: &str) -> String {
    let dir = scratch();
    write_input(dir.path(), &records(1, 10));
    let sql = format!(
        "{}{}{query}",
        source(dir.path()),
        sink(dir.path(), "out", "id BIGINT, x INT")
    );
    let run = weir_run(dir.path(), &sql);
    assert!(!run.ok, "expected an error: {query}\n{}", run.stdout);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run.stderr
}

/// The line of the query in [`fails`]'s script (after the two CREATE
/// TABLEs, the source's over four lines).
const QUERY_LINE: usize = 6;

#[test]
fn unnests_that_cannot_run_are_clear_errors() {
    // Only ON TRUE keeps a LEFT JOIN's meaning for rows without elements.
    let e = fails("INSERT INTO out SELECT o.id, t.x FROM orders o LEFT JOIN UNNEST(o.tags) AS t(x) ON t.x > 1;");
    assert!(
        e.contains(&format!("job.sql:{QUERY_LINE}:")) && e.contains("takes ON TRUE only"),
        "{e}"
    );
    // An UNNEST in SELECT is not Flink's.
    let e = fails("INSERT INTO out SELECT id, unnest(tags) FROM orders;");
    assert!(
        e.contains(&format!("job.sql:{QUERY_LINE}:")) && e.contains("CROSS JOIN UNNEST"),
        "{e}"
    );
    // The results of a GROUP BY without a window change as rows arrive:
    // unnested, they are changes still, which a file cannot take.
    let e = fails(
        "INSERT INTO out SELECT c, t.x FROM (SELECT id, count(*) AS c, max(tags) AS tags FROM orders GROUP BY id)\n\
         CROSS JOIN UNNEST(tags) AS t(x);",
    );
    assert!(
        e.contains(&format!("job.sql:{QUERY_LINE}:")) && e.contains("the query's results change as rows arrive"),
        "{e}"
    );
}

#[test]
fn bad_unnest_arguments_and_aliases_are_placed() {
    // Not an ARRAY or a MAP: the argument is named and placed.
    let e = fails("INSERT INTO out SELECT o.id, 1 FROM orders o CROSS JOIN\n  UNNEST(o.id) AS t(x);");
    assert!(
        e.contains(&format!(
            "job.sql:{}:10: error: UNNEST(o.id): the argument is BIGINT, but UNNEST expands an ARRAY or a MAP",
            QUERY_LINE + 1
        )),
        "{e}"
    );
    // One name per column: an ARRAY of ROWs gives its fields.
    let e = fails("INSERT INTO out SELECT o.id, t.a FROM orders o CROSS JOIN UNNEST(o.items) AS t(a, b, c);");
    assert!(
        e.contains(&format!("job.sql:{QUERY_LINE}:")) && e.contains("gives 2 columns (sku, qty) but 3 names are given"),
        "{e}"
    );
    let e = fails("INSERT INTO out SELECT o.id, t.a FROM orders o CROSS JOIN UNNEST(o.tags) AS t(a, b);");
    assert!(e.contains("gives 1 column (EXPR$0) but 2 names are given"), "{e}");
    let e = fails("INSERT INTO out SELECT o.id, t.k FROM orders o CROSS JOIN UNNEST(o.attrs) AS t(k);");
    assert!(e.contains("gives 2 columns (KEY, VALUE) but 1 name is given"), "{e}");
}
