//! Nexmark queries end to end: the `weir` binary runs a query over the
//! `nexmark` connector's bids and writes JSON part files; the result must
//! equal DataFusion running the same query as a batch over the same bids,
//! generated here through the connector's public API.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::{parse_timestamp, read_sink, scratch, weir_run};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, TimeUnit, TimestampMillisecondType};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use weir_engine::source::{Assignment, Positions, SourceEvent};

const EVENTS: u64 = 60_000;

/// The bid table's WITH options: 60 000 events, 5 000 a second of event
/// time (12 s), as fast as they can be made.
fn options() -> Vec<(&'static str, String)> {
    vec![
        ("connector", "nexmark".into()),
        ("nexmark.table", "bid".into()),
        ("events-per-second", "5000".into()),
        ("number-of-events", EVENTS.to_string()),
        ("rate-limited", "false".into()),
        ("first-event-time", "2026-01-01 00:00:00".into()),
        ("seed", "42".into()),
    ]
}

fn bid_sql(parallelism: usize) -> String {
    let with: Vec<String> = options().iter().map(|(k, v)| format!("'{k}' = '{v}'")).collect();
    format!(
        "SET 'parallelism.default' = '{parallelism}';
CREATE TABLE bid (
  auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR,
  dateTime TIMESTAMP(3), extra VARCHAR,
  WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND
) WITH ({}, 'scan.watermark.emit.strategy' = 'on-event');
",
        with.join(", ")
    )
}

fn bid_schema() -> Arc<Schema> {
    let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
    Arc::new(Schema::new(vec![
        Field::new("auction", DataType::Int64, true),
        Field::new("bidder", DataType::Int64, true),
        Field::new("price", DataType::Int64, true),
        Field::new("channel", DataType::Utf8, true),
        Field::new("url", DataType::Utf8, true),
        Field::new("dateTime", ts, true),
        Field::new("extra", DataType::Utf8, true),
    ]))
}

fn auction_schema() -> Arc<Schema> {
    let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("itemName", DataType::Utf8, true),
        Field::new("description", DataType::Utf8, true),
        Field::new("initialBid", DataType::Int64, true),
        Field::new("reserve", DataType::Int64, true),
        Field::new("dateTime", ts.clone(), true),
        Field::new("expires", ts, true),
        Field::new("seller", DataType::Int64, true),
        Field::new("category", DataType::Int64, true),
        Field::new("extra", DataType::Utf8, true),
    ]))
}

/// Every bid, read through the connector as one subtask.
fn generated_bids() -> RecordBatch {
    generated("bid", bid_schema(), options())
}

/// Every row of one Nexmark table with these WITH options, read through
/// the connector as one subtask.
fn generated(name: &str, schema: Arc<Schema>, options: Vec<(&'static str, String)>) -> RecordBatch {
    let mut with: BTreeMap<String, String> = options.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    with.insert("nexmark.table".into(), name.into());
    let table = weir_connectors::create_table(name, &with, schema.clone(), &[]).expect("nexmark table");
    let source = table.source.expect("a source");
    let assignment = Assignment {
        subtask: 0,
        parallelism: 1,
        total: 1,
        partitions: vec![0],
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let batches = runtime.block_on(async {
        let mut reader = source.open(assignment, false, &Positions::new()).expect("reader");
        let mut batches = Vec::new();
        while let Some(event) = reader.next().await.expect("read") {
            if let SourceEvent::Batch { batch, .. } = event {
                batches.push(batch);
            }
        }
        batches
    });
    datafusion::arrow::compute::concat_batches(&schema, &batches).expect("one batch")
}

/// `query` as a DataFusion batch over the generated bids, each row as the
/// values of `columns` joined by `|` (timestamps as epoch ms), sorted.
fn batch_rows(query: &str, columns: &[&str]) -> Vec<String> {
    let bids = generated_bids();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let batches = runtime.block_on(async {
        let ctx = SessionContext::new();
        let table = MemTable::try_new(bids.schema(), vec![vec![bids]]).expect("mem table");
        ctx.register_table("bid", Arc::new(table)).expect("register");
        ctx.sql(query).await.expect("plan").collect().await.expect("run")
    });
    lines_of(&batches, columns)
}

/// Rows of `batches` as `|`-joined values of `columns` (timestamps as
/// epoch ms), sorted.
fn lines_of(batches: &[RecordBatch], columns: &[&str]) -> Vec<String> {
    let mut rows = Vec::new();
    for b in batches {
        for r in 0..b.num_rows() {
            let cells: Vec<String> = columns
                .iter()
                .map(|c| {
                    let col = b.column_by_name(c).unwrap_or_else(|| panic!("column {c}"));
                    match col.data_type() {
                        DataType::Int64 => col.as_primitive::<Int64Type>().value(r).to_string(),
                        DataType::Timestamp(..) => col.as_primitive::<TimestampMillisecondType>().value(r).to_string(),
                        other => panic!("{other}"),
                    }
                })
                .collect();
            rows.push(cells.join("|"));
        }
    }
    rows.sort();
    rows
}

/// The sink's rows in the same form as [`batch_rows`].
fn sink_rows(dir: &std::path::Path, columns: &[&str]) -> Vec<String> {
    let mut rows: Vec<String> = read_sink(dir)
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|c| match &row[*c] {
                    serde_json::Value::String(s) => parse_timestamp(s).to_string(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect();
    rows.sort();
    rows
}

/// Query 2 (selection), at parallelism 1 and 2.
#[test]
fn q2_selects_the_bids_datafusion_selects() {
    let expected = batch_rows("SELECT auction, price FROM bid WHERE auction % 123 = 0", &["auction", "price"]);
    assert!(expected.len() > 100, "too few bids selected: {}", expected.len());
    for parallelism in [1, 2] {
        let dir = scratch();
        let out = dir.path().join("out");
        let sql = format!(
            "{}CREATE TABLE q2 (auction BIGINT, price BIGINT)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
INSERT INTO q2 SELECT auction, price FROM bid WHERE auction % 123 = 0;",
            bid_sql(parallelism),
            out.display()
        );
        let run = weir_run(dir.path(), &sql);
        assert!(run.ok, "{}", run.stderr);
        assert_eq!(sink_rows(&out, &["auction", "price"]), expected, "parallelism {parallelism}");
    }
}

/// Bids per auction in 10-second tumbling windows (the aggregation of
/// Nexmark's q5 and q7, without their joins), against DataFusion's
/// `date_bin` over the same bids. The aggregation reads four of the seven
/// columns, so only those cross the exchange: the plan says so, and the
/// FILTER, the arguments and the rowtime must still find their columns.
#[test]
fn windowed_bid_counts_match_datafusion() {
    let columns = ["window_start", "auction", "bids", "top", "google"];
    let expected = batch_rows(
        "SELECT date_bin(INTERVAL '10 seconds', \"dateTime\", TIMESTAMP '1970-01-01 00:00:00') AS window_start,
                auction, count(*) AS bids, max(price) AS top, count(*) FILTER (WHERE channel = 'Google') AS google
         FROM bid GROUP BY 1, 2",
        &columns,
    );
    let dir = scratch();
    let out = dir.path().join("out");
    let sql = format!(
        "{}CREATE TABLE counts (window_start TIMESTAMP(3), auction BIGINT, bids BIGINT, top BIGINT, google BIGINT)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
INSERT INTO counts
SELECT window_start, auction, count(*) AS bids, max(price) AS top, count(*) FILTER (WHERE channel = 'Google') AS google
FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, auction;",
        bid_sql(2),
        out.display()
    );
    let explain = weir_run(dir.path(), &sql.replace("INSERT INTO", "EXPLAIN INSERT INTO"));
    assert!(explain.ok, "{}", explain.stderr);
    let project = "Project: auction@0, price@2, channel@3, dateTime@5\nStage 1 (parallelism 2)\n  Exchange: hash [auction@0]";
    assert!(explain.stdout.contains(project), "no {project:?} in:\n{}", explain.stdout);
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(sink_rows(&out, &columns), expected);
}

/// Query 4 (the average winning bid per category: an aggregate of a
/// regular join's aggregate, both without a window) at parallelism 2, as
/// the query file has it but printed: the changelog, applied, ends in
/// DataFusion's batch answer over the same auctions and bids.
#[test]
fn q4_ends_in_the_batch_average_of_winning_bids() {
    let events = 60_000;
    let with = || -> Vec<(&'static str, String)> {
        vec![
            ("connector", "nexmark".into()),
            ("events-per-second", "10000000".into()),
            ("number-of-events", events.to_string()),
            ("rate-limited", "false".into()),
            ("first-event-time", "2026-01-01 00:00:00".into()),
        ]
    };
    let (auctions, bids) = (generated("auction", auction_schema(), with()), generated("bid", bid_schema(), with()));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let batches = runtime.block_on(async {
        let ctx = SessionContext::new();
        for (name, batch) in [("auction", auctions), ("bid", bids)] {
            let table = MemTable::try_new(batch.schema(), vec![vec![batch]]).expect("mem table");
            ctx.register_table(name, Arc::new(table)).expect("register");
        }
        let q4 = r#"SELECT Q.category, CAST(AVG(Q.final) AS BIGINT) AS final FROM (
            SELECT MAX(B.price) AS final, A.category FROM auction A, bid B
            WHERE A.id = B.auction AND B."dateTime" BETWEEN A."dateTime" AND A.expires
            GROUP BY A.id, A.category) Q GROUP BY Q.category"#;
        ctx.sql(q4).await.expect("plan").collect().await.expect("run")
    });
    let expected = lines_of(&batches, &["category", "final"]);
    assert!(expected.len() >= 5, "too few categories: {expected:?}");
    let file = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../queries/nexmark/q4.sql")).expect("q4.sql");
    let sql = format!(
        "SET 'parallelism.default' = '2';\n{}",
        file.replace("'number-of-events' = '100000'", &format!("'number-of-events' = '{events}'"))
            .replace("'connector' = 'blackhole'", "'connector' = 'print'")
    );
    let dir = scratch();
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    let (got, kinds) = common::apply_changelog(&run.stdout, 1);
    assert_eq!(got.into_iter().map(|l| l.replace(", ", "|")).collect::<Vec<_>>(), expected, "{kinds:?}");
    assert!(kinds.get("-U").is_some_and(|n| *n > 0), "the averages changed as bids came: {kinds:?}");
}

/// Flink nexmark's table of every event and its three views, as its
/// `ddl_gen.sql` and `ddl_views.sql` declare them (WITH values filled in,
/// plus Weir's `first-event-time` and `seed`): the same events as
/// [`options`] make.
fn flink_ddl() -> String {
    format!(
        "CREATE TABLE datagen (
    event_type int,
    person ROW<
        id  BIGINT,
        name  VARCHAR,
        emailAddress  VARCHAR,
        creditCard  VARCHAR,
        city  VARCHAR,
        state  VARCHAR,
        `dateTime` TIMESTAMP(3),
        extra  VARCHAR>,
    auction ROW<
        id  BIGINT,
        itemName  VARCHAR,
        description  VARCHAR,
        initialBid  BIGINT,
        reserve  BIGINT,
        `dateTime`  TIMESTAMP(3),
        expires  TIMESTAMP(3),
        seller  BIGINT,
        category  BIGINT,
        extra  VARCHAR>,
    bid ROW<
        auction  BIGINT,
        bidder  BIGINT,
        price  BIGINT,
        channel  VARCHAR,
        url  VARCHAR,
        `dateTime`  TIMESTAMP(3),
        extra  VARCHAR>,
    `dateTime` AS
        CASE
            WHEN event_type = 0 THEN person.`dateTime`
            WHEN event_type = 1 THEN auction.`dateTime`
            ELSE bid.`dateTime`
        END,
    WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND
) WITH (
    'connector' = 'nexmark',
    'first-event.rate' = '5000',
    'next-event.rate' = '5000',
    'events.num' = '{EVENTS}',
    'person.proportion' = '1',
    'auction.proportion' = '3',
    'bid.proportion' = '46',
    'first-event-time' = '2026-01-01 00:00:00',
    'seed' = '42'
);
CREATE VIEW person AS
SELECT
    person.id,
    person.name,
    person.emailAddress,
    person.creditCard,
    person.city,
    person.state,
    `dateTime`,
    person.extra
FROM datagen WHERE event_type = 0;
CREATE VIEW auction AS
SELECT
    auction.id,
    auction.itemName,
    auction.description,
    auction.initialBid,
    auction.reserve,
    `dateTime`,
    auction.expires,
    auction.seller,
    auction.category,
    auction.extra
FROM datagen WHERE event_type = 1;
CREATE VIEW bid AS
SELECT
    bid.auction,
    bid.bidder,
    bid.price,
    bid.channel,
    bid.url,
    `dateTime`,
    bid.extra
FROM datagen WHERE event_type = 2;
"
    )
}

/// Flink nexmark's `ddl_gen.sql` and `ddl_views.sql` as written (one table
/// of every event with `person`, `auction` and `bid` ROWs, a computed
/// rowtime, and three views over it; only the WITH values filled in, plus
/// Weir's `first-event-time` and `seed` so that the oracle makes the same
/// events), then windowed bid counts over the `bid` view — a window TVF
/// over a view — at parallelism 1 and 2, against DataFusion over the bids
/// the per-kind table makes from the same events.
#[test]
fn flink_nexmark_ddl_and_views_run_as_written() {
    let ddl = flink_ddl();
    let columns = ["window_start", "auction", "bids", "top"];
    let expected = batch_rows(
        "SELECT date_bin(INTERVAL '10 seconds', \"dateTime\", TIMESTAMP '1970-01-01 00:00:00') AS window_start,
                auction, count(*) AS bids, max(price) AS top
         FROM bid GROUP BY 1, 2",
        &columns,
    );
    assert!(expected.len() > 100, "too few windows: {}", expected.len());
    for parallelism in [1, 2] {
        let dir = scratch();
        let out = dir.path().join("out");
        let sql = format!(
            "SET 'parallelism.default' = '{parallelism}';
{ddl}CREATE TABLE counts (window_start TIMESTAMP(3), auction BIGINT, bids BIGINT, top BIGINT)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
INSERT INTO counts
SELECT window_start, auction, count(*) AS bids, max(price) AS top
FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, auction;",
            out.display()
        );
        let run = weir_run(dir.path(), &sql);
        assert!(run.ok, "{}", run.stderr);
        assert_eq!(sink_rows(&out, &columns), expected, "parallelism {parallelism}");
    }
}

/// Nexmark q11 as Flink nexmark writes it — a legacy SESSION group window
/// over the `bid` view, with a table alias — writes what the window TVF
/// form over the per-kind bid table writes (`queries/nexmark/q11.sql`).
#[test]
fn legacy_session_windows_over_the_bid_view_match_the_session_tvf() {
    let columns = ["bidder", "bid_count", "starttime", "endtime"];
    let sink = |dir: &std::path::Path| {
        format!(
            "CREATE TABLE q11 (bidder BIGINT, bid_count BIGINT, starttime TIMESTAMP(3), endtime TIMESTAMP(3))
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');\n",
            dir.join("out").display()
        )
    };
    let legacy = scratch();
    let run = weir_run(
        legacy.path(),
        &format!(
            "SET 'parallelism.default' = '2';\n{}{}INSERT INTO q11
SELECT B.bidder, count(*) as bid_count,
    SESSION_START(B.`dateTime`, INTERVAL '10' SECOND) as starttime,
    SESSION_END(B.`dateTime`, INTERVAL '10' SECOND) as endtime
FROM bid B
GROUP BY B.bidder, SESSION(B.`dateTime`, INTERVAL '10' SECOND);",
            flink_ddl(),
            sink(legacy.path())
        ),
    );
    assert!(run.ok, "{}", run.stderr);
    let tvf = scratch();
    let run = weir_run(
        tvf.path(),
        &format!(
            "{}{}INSERT INTO q11
SELECT bidder, count(*), window_start, window_end
FROM TABLE(SESSION(TABLE bid PARTITION BY bidder, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
GROUP BY bidder, window_start, window_end;",
            bid_sql(1),
            sink(tvf.path())
        ),
    );
    assert!(run.ok, "{}", run.stderr);
    let want = sink_rows(&tvf.path().join("out"), &columns);
    assert!(want.len() > 100, "too few sessions: {}", want.len());
    assert_eq!(sink_rows(&legacy.path().join("out"), &columns), want);
}

/// A query of one kind of event from Flink nexmark's table of every event
/// (its `bid` view: `WHERE event_type = 2`) makes only those events at the
/// source (EXPLAIN says `only=bid events`), and writes exactly what the
/// same filter written so that it cannot be pushed down writes, at
/// parallelism 1 and 3.
#[test]
fn a_query_of_one_kind_makes_only_that_kind() {
    let columns = ["auction", "bidder", "price", "dt"];
    let run = |filter: &str, parallelism: usize| {
        let dir = scratch();
        let out = dir.path().join("out");
        let sql = format!(
            "SET 'parallelism.default' = '{parallelism}';
{}CREATE TABLE o (auction BIGINT, bidder BIGINT, price BIGINT, dt TIMESTAMP(3))
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
EXPLAIN INSERT INTO o SELECT bid.auction, bid.bidder, bid.price, `dateTime` FROM datagen WHERE {filter};
INSERT INTO o SELECT bid.auction, bid.bidder, bid.price, `dateTime` FROM datagen WHERE {filter};",
            flink_ddl(),
            out.display()
        );
        let run = weir_run(dir.path(), &sql);
        assert!(run.ok, "{}", run.stderr);
        (sink_rows(&out, &columns), run.stdout.contains("only=bid events"))
    };
    let (all_made, pushed) = run("event_type + 0 = 2", 1);
    assert!(!pushed, "an expression is not pushed to the source");
    assert!(all_made.len() > 10_000, "too few bids: {}", all_made.len());
    for parallelism in [1, 3] {
        let (bids_only, pushed) = run("event_type = 2", parallelism);
        assert!(pushed, "event_type = 2 is made at the source");
        assert_eq!(bids_only, all_made, "parallelism {parallelism}");
    }
}
