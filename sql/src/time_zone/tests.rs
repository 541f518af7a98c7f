//! The zone's semantics end to end through a session, against values
//! worked out by hand from Flink's "Time Zone" documentation page.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::script::parse_script;
use crate::session::{Outcome, Session};

async fn run(session: &mut Session, sql: &str) -> Vec<RecordBatch> {
    let mut last = Vec::new();
    for s in parse_script(sql).unwrap() {
        match session.execute(&s).await.unwrap_or_else(|e| panic!("{sql}: {e}")) {
            Outcome::Table(b) => last = b,
            _ => last = Vec::new(),
        }
    }
    last
}

/// The first row of the last statement's result, each value as text.
async fn row(session: &mut Session, sql: &str) -> Vec<String> {
    let batches = run(session, sql).await;
    let b = &batches[0];
    let options = FormatOptions::default();
    (0..b.num_columns())
        .map(|i| {
            ArrayFormatter::try_new(b.column(i).as_ref(), &options)
                .unwrap()
                .value(0)
                .to_string()
        })
        .collect()
}

#[tokio::test]
async fn instants_are_read_in_the_session_zone() {
    let mut s = Session::new();
    let q = "SELECT TO_TIMESTAMP_LTZ(0, 3) AS a, CAST(TO_TIMESTAMP_LTZ(0, 3) AS TIMESTAMP(3)) AS b, \
             CAST(TO_TIMESTAMP_LTZ(0, 3) AS STRING) AS c, HOUR(TO_TIMESTAMP_LTZ(0, 3)) AS d, \
             DATE_FORMAT(TO_TIMESTAMP_LTZ(0, 3), 'yyyy-MM-dd HH:mm') AS e, CAST(TO_TIMESTAMP_LTZ(0, 3) AS DATE) AS f";
    assert_eq!(
        row(&mut s, q).await,
        [
            "1970-01-01T00:00:00",
            "1970-01-01T00:00:00",
            "1970-01-01 00:00:00.000",
            "0",
            "1970-01-01 00:00",
            "1970-01-01"
        ]
    );
    run(&mut s, "SET 'table.local-time-zone' = 'America/Los_Angeles'").await;
    assert_eq!(
        row(&mut s, q).await,
        [
            "1969-12-31T16:00:00",
            "1969-12-31T16:00:00",
            "1969-12-31 16:00:00.000",
            "16",
            "1969-12-31 16:00",
            "1969-12-31"
        ]
    );
}

#[tokio::test]
async fn wall_clock_times_become_instants_in_the_session_zone() {
    let mut s = Session::new();
    run(&mut s, "SET 'table.local-time-zone' = 'Asia/Shanghai'").await;
    let q = "SELECT CAST(CAST('1970-01-01 08:00:00' AS TIMESTAMP_LTZ(3)) AS BIGINT), \
             CAST(TIMESTAMP '1970-01-01 08:00:00' AS TIMESTAMP_LTZ(3)) = TO_TIMESTAMP_LTZ(0, 3), \
             TO_TIMESTAMP_LTZ(0, 3) = TIMESTAMP '1970-01-01 08:00:00', \
             TO_TIMESTAMP_LTZ(0, 3) < TIMESTAMP '1970-01-01 07:59:59'";
    assert_eq!(row(&mut s, q).await, ["0", "true", "true", "false"]);
}

#[tokio::test]
async fn the_clock_reads_local_time() {
    let mut s = Session::new();
    run(&mut s, "SET 'table.local-time-zone' = 'GMT+08:00'").await;
    let q = "SELECT CAST(LOCALTIMESTAMP AS BIGINT) - CAST(CURRENT_TIMESTAMP AS BIGINT), \
             arrow_typeof(CURRENT_TIMESTAMP), arrow_typeof(LOCALTIMESTAMP)";
    let r = row(&mut s, q).await;
    let diff: i64 = r[0].parse().unwrap();
    assert!(
        (8 * 3600 * 1000 - diff).abs() < 60_000,
        "LOCALTIMESTAMP is {diff} ms after CURRENT_TIMESTAMP"
    );
    assert_eq!(r[1..], ["Timestamp(ms, \"UTC\")", "Timestamp(ms)"]);
}

/// Flink's docs: in `Asia/Shanghai`, `UNIX_TIMESTAMP('1970-01-01
/// 08:00:01.001', 'yyyy-MM-dd HH:mm:ss.SSS')` is 1 and `FROM_UNIXTIME(0)`
/// is `1970-01-01 08:00:00`; an offset in the text wins over the zone.
#[tokio::test]
async fn unix_time_functions_read_and_write_the_session_zone() {
    let mut s = Session::new();
    run(&mut s, "SET 'table.local-time-zone' = 'Asia/Shanghai'").await;
    let q = "SELECT UNIX_TIMESTAMP('1970-01-01 08:00:01.001', 'yyyy-MM-dd HH:mm:ss.SSS') AS a, FROM_UNIXTIME(0) AS b, \
             UNIX_TIMESTAMP('1970-01-01 00:00:05 +0000', 'yyyy-MM-dd HH:mm:ss Z') AS c";
    assert_eq!(row(&mut s, q).await, ["1", "1970-01-01 08:00:00", "5"]);
    run(&mut s, "RESET 'table.local-time-zone'").await;
    assert_eq!(row(&mut s, q).await, ["28801", "1970-01-01 00:00:00", "5"]);
}
