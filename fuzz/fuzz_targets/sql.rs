//! Arbitrary text as a SQL script, parsed and planned in a session that
//! has a few tables: parsing and planning must answer with an error, never
//! panic. Jobs are never started: a statement that would start one
//! (`INSERT`, a streaming `SELECT`, `CREATE MATERIALIZED VIEW`) is planned
//! as its `EXPLAIN`, and a query DataFusion would run at once is planned by
//! DataFusion without running it.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tokio::runtime::Runtime;
use weir_sql::{ParsedStatement, Session, WeirStatement, parse_script};

/// Tables of every connector the fuzzed statements can read or write
/// without a service (no Kafka broker, no PostgreSQL server): a generator,
/// JSON and CSV files (never read: planning only), and sinks.
const TABLES: &str = "
CREATE TABLE orders (
  order_id BIGINT, channel VARCHAR, amount BIGINT, price DECIMAL(10, 2), ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH ('connector' = 'datagen', 'number-of-rows' = '100');
CREATE TABLE bids (
  auction BIGINT, bidder BIGINT, price BIGINT, url VARCHAR, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '/nonexistent/bids.json', 'format' = 'json');
CREATE TABLE readings (
  sensor VARCHAR, reading DOUBLE, day DATE, ok BOOLEAN, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts
) WITH ('connector' = 'filesystem', 'path' = '/nonexistent/readings.csv', 'format' = 'csv');
CREATE TABLE report (window_start TIMESTAMP(3), window_end TIMESTAMP(3), k BIGINT, n BIGINT, total BIGINT)
  WITH ('connector' = 'print');
CREATE TABLE out_json (k VARCHAR, n BIGINT, v DOUBLE)
  WITH ('connector' = 'filesystem', 'path' = '/nonexistent/out', 'format' = 'json');
CREATE TABLE sink (a BIGINT, b BIGINT) WITH ('connector' = 'blackhole');
";

/// One runtime for the process: planning is async but never waits on I/O.
fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime for the fuzz target")
    })
}

/// The statement, made to plan without starting a job.
fn planning_only(s: ParsedStatement) -> ParsedStatement {
    let statement = match s.statement {
        insert @ WeirStatement::Insert { .. } => WeirStatement::Explain(Box::new(insert)),
        query @ WeirStatement::Query { .. } => WeirStatement::Explain(Box::new(query)),
        WeirStatement::CreateMaterializedView { query, clauses, .. } => {
            WeirStatement::Explain(Box::new(WeirStatement::Query { query, clauses }))
        }
        // CREATE TABLE … AS would start its job: its query is planned.
        WeirStatement::CreateTableAs { query, .. } => {
            WeirStatement::Explain(Box::new(WeirStatement::Query { query, clauses: Default::default() }))
        }
        // A statement set would start its job: its first INSERT is planned.
        WeirStatement::StatementSet(inserts) => match inserts.into_iter().next() {
            Some(insert) => WeirStatement::Explain(Box::new(insert)),
            None => WeirStatement::Show(weir_sql::statement::Show::Tables { from: None, like: None }),
        },
        other => other,
    };
    ParsedStatement { statement, ..s }
}

async fn plan(statements: Vec<ParsedStatement>) {
    let mut session = Session::new();
    for table in parse_script(TABLES).expect("the fuzz target's tables parse") {
        session.execute(&table).await.expect("the fuzz target's tables are valid");
    }
    for s in statements {
        // A query over memory tables or none at all, which Weir hands to
        // DataFusion (as `weir serve` does): planned by DataFusion, not run.
        if matches!(s.statement, WeirStatement::Query { .. }) {
            let state = session.context().state();
            if let Ok(logical) = state.create_logical_plan(&s.text).await {
                let _ = state.create_physical_plan(&logical).await;
            }
        }
        // Errors are the expected answer to bad SQL.
        let _ = session.execute(&planning_only(s)).await;
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(statements) = parse_script(text) else { return };
    runtime().block_on(plan(statements));
});
