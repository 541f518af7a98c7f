//! Event-time windows end to end: the `weir` binary reads JSON files,
//! aggregates TUMBLE/HOP windows and writes JSON part files; the results
//! must equal an independent DataFusion batch computation over the same
//! rows, with late rows decided by a row-by-row oracle of Flink's
//! on-event watermark rule.

use crate::common;

use common::*;

const DELAY: i64 = 2_000;

fn rows_in_order(n: usize, keys: u64, seed: u64) -> Vec<Row> {
    let mut g = Lcg(seed);
    let mut ts = T0;
    (0..n)
        .map(|_| {
            ts += g.below(400) as i64;
            Row {
                k: Some(format!("k{}", g.below(keys))),
                v: Some(g.below(50) as i64),
                ts: Some(ts),
            }
        })
        .collect()
}

/// Moves rows backwards by less than the watermark delay: reorders the
/// stream without making any row late.
fn disorder_within_delay(rows: &[Row], seed: u64) -> Vec<Row> {
    let mut g = Lcg(seed);
    let mut keyed: Vec<(i64, Row)> = rows
        .iter()
        .map(|r| (r.ts.unwrap() + g.below((DELAY / 2) as u64) as i64, r.clone()))
        .collect();
    keyed.sort_by_key(|(k, _)| *k);
    keyed.into_iter().map(|(_, r)| r).collect()
}

pub(crate) fn window_sql(dir: &std::path::Path, window: &str, extra_settings: &str) -> String {
    let input = dir.join("in");
    let out = dir.join("out");
    format!(
        "{extra_settings}
CREATE TABLE src (
  k VARCHAR,
  v BIGINT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'json',
        'scan.watermark.emit.strategy' = 'on-event');
CREATE TABLE out (
  window_start TIMESTAMP(3), window_end TIMESTAMP(3), k VARCHAR,
  c BIGINT, d BIGINT, s BIGINT, mn BIGINT, mx BIGINT, a DOUBLE
) WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'json');
INSERT INTO out
SELECT window_start, window_end, k, count(*) AS c, count(DISTINCT v) AS d,
       sum(v) AS s, min(v) AS mn, max(v) AS mx, avg(v) AS a
FROM TABLE({window})
GROUP BY window_start, window_end, k;
",
        input = input.display(),
        out = out.display()
    )
}

/// Writes `files` as the input directory, runs the window query, and
/// returns the normalised output rows and the run.
pub(crate) fn run_windows(files: &[Vec<Row>], window: &str, settings: &str) -> (Vec<String>, Run) {
    let dir = scratch();
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    for (i, rows) in files.iter().enumerate() {
        write_json(&dir.path().join(format!("in/part-{i:02}.json")), rows);
    }
    let run = weir_run(dir.path(), &window_sql(dir.path(), window, settings));
    assert!(run.ok, "weir failed:\n{}", run.stderr);
    let mut got: Vec<String> = read_sink(&dir.path().join("out")).iter().map(normalize_json).collect();
    got.sort();
    assert!(hidden_files(&dir.path().join("out")).is_empty(), "in-progress files left behind");
    (got, run)
}

const TUMBLE_10S: &str = "TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '10' SECOND)";
const HOP_5S_15S: &str = "HOP(TABLE src, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '15' SECOND)";

#[tokio::test]
async fn tumble_in_order_equals_batch_oracle() {
    let rows = rows_in_order(3000, 7, 1);
    let (expected, late) = oracle_results(&rows, Shape::Tumble { size: 10_000, offset: 0 }, DELAY).await;
    assert_eq!(late, 0);
    let (got, run) = run_windows(&[rows], TUMBLE_10S, "");
    assert!(expected.len() > 100, "too few windows to be a test: {}", expected.len());
    assert_rows_eq(&got, &expected, "got");
    assert_eq!(run.counted("late rows"), 0);
}

#[tokio::test]
async fn hop_in_order_equals_batch_oracle() {
    let rows = rows_in_order(2000, 5, 2);
    let (expected, late) = oracle_results(&rows, Shape::Hop { slide: 5_000, size: 15_000 }, DELAY).await;
    assert_eq!(late, 0);
    let (got, _) = run_windows(&[rows], HOP_5S_15S, "");
    assert!(expected.len() > 100);
    assert_rows_eq(&got, &expected, "got");
}

#[tokio::test]
async fn cumulate_in_order_and_with_late_rows_equals_the_oracle() {
    let mut rows = rows_in_order(2000, 4, 31);
    let mut g = Lcg(32);
    for i in (60..rows.len()).step_by(41) {
        rows[i].ts = rows[i].ts.map(|t| t - 2_500 - g.below(30_000) as i64);
    }
    let shape = Shape::Cumulate { step: 5_000, max: 20_000 };
    let (expected, late) = oracle_results(&rows, shape, DELAY).await;
    assert!(late > 3);
    let (got, run) = run_windows(
        &[rows],
        "CUMULATE(TABLE src, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '20' SECOND)",
        "",
    );
    assert!(expected.len() > 100);
    assert_rows_eq(&got, &expected, "cumulate");
    assert_eq!(run.counted("late rows"), late);
}

/// SESSION windows per key, with disorder and late rows, against a
/// row-by-row oracle of merging windows; parallelism 3 agrees.
#[tokio::test]
async fn sessions_equal_the_merging_oracle() {
    let mut g = Lcg(41);
    let mut ts = T0;
    let mut rows: Vec<Row> = (0..1500)
        .map(|_| {
            // Bursts with pauses: gaps above and below the 3 s session gap.
            ts += if g.below(10) == 0 { 2_000 + g.below(6_000) as i64 } else { g.below(300) as i64 };
            Row { k: Some(format!("k{}", g.below(5))), v: Some(g.below(40) as i64), ts: Some(ts) }
        })
        .collect();
    for i in (30..rows.len()).step_by(29) {
        rows[i].ts = rows[i].ts.map(|t| t - g.below(9_000) as i64);
    }
    let (assigned, late) = decide_sessions(&rows, 3_000, DELAY);
    let expected = aggregate(&assigned, Shape::Session).await;
    assert!(late > 3 && expected.len() > 50, "late {late}, sessions {}", expected.len());
    let window = "SESSION(TABLE src PARTITION BY k, DESCRIPTOR(ts), INTERVAL '3' SECOND)";
    let (got, run) = run_windows(std::slice::from_ref(&rows), window, "");
    assert_rows_eq(&got, &expected, "sessions");
    assert_eq!(run.counted("late rows"), late);
    let (p3, _) = run_windows(&[rows], window, "SET 'parallelism.default' = '3';");
    assert_rows_eq(&p3, &expected, "sessions at parallelism 3");
}

#[tokio::test]
async fn disorder_within_the_delay_changes_nothing() {
    let rows = rows_in_order(2000, 5, 3);
    let shuffled = disorder_within_delay(&rows, 4);
    assert_ne!(
        rows.iter().map(|r| r.ts).collect::<Vec<_>>(),
        shuffled.iter().map(|r| r.ts).collect::<Vec<_>>(),
        "the input must actually be out of order"
    );
    for (window, shape) in [
        (TUMBLE_10S, Shape::Tumble { size: 10_000, offset: 0 }),
        (HOP_5S_15S, Shape::Hop { slide: 5_000, size: 15_000 }),
    ] {
        let (in_order, _) = run_windows(std::slice::from_ref(&rows), window, "");
        let (disordered, run) = run_windows(std::slice::from_ref(&shuffled), window, "");
        assert_rows_eq(&disordered, &in_order, window);
        let (expected, late) = oracle_results(&shuffled, shape, DELAY).await;
        assert_eq!(late, 0);
        assert_rows_eq(&disordered, &expected, window);
        assert_eq!(run.counted("late rows"), 0);
    }
}

/// Rows far behind the watermark are dropped and counted: exactly the rows
/// the on-event oracle calls late, for both window kinds (for HOP, rows
/// that missed only some of their windows count toward the others).
#[tokio::test]
async fn late_rows_are_dropped_and_counted_exactly() {
    let mut rows = rows_in_order(2000, 4, 5);
    let mut g = Lcg(6);
    for i in (50..rows.len()).step_by(37) {
        // Up to 20 s back: beyond the 2 s delay, sometimes within a window that is still open.
        let back = 2_500 + g.below(17_500) as i64;
        rows[i].ts = rows[i].ts.map(|t| t - back);
    }
    for (window, shape) in [
        (TUMBLE_10S, Shape::Tumble { size: 10_000, offset: 0 }),
        (HOP_5S_15S, Shape::Hop { slide: 5_000, size: 15_000 }),
    ] {
        let (expected, late) = oracle_results(&rows, shape, DELAY).await;
        assert!(late > 5, "the input must contain late rows ({late})");
        let (got, run) = run_windows(std::slice::from_ref(&rows), window, "");
        assert_rows_eq(&got, &expected, window);
        assert_eq!(run.counted("late rows"), late, "{window}");
    }
}

/// One-day windows of UTC+8 (offset -8 h) start at 16:00 UTC.
#[tokio::test]
async fn day_windows_with_an_offset() {
    let mut g = Lcg(7);
    let mut ts = T0 - 3 * 86_400_000;
    let rows: Vec<Row> = (0..600)
        .map(|_| {
            ts += g.below(1_500_000) as i64;
            Row { k: Some(format!("k{}", g.below(3))), v: Some(g.below(9) as i64), ts: Some(ts) }
        })
        .collect();
    let shape = Shape::Tumble { size: 86_400_000, offset: -8 * 3_600_000 };
    let (expected, late) = oracle_results(&rows, shape, DELAY).await;
    assert_eq!(late, 0);
    let (got, _) = run_windows(
        &[rows],
        "TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' DAY, INTERVAL '-8' HOUR)",
        "",
    );
    assert_rows_eq(&got, &expected, "got");
    // Every window starts at 16:00 UTC.
    for line in &got {
        let start: i64 = line.split('|').next().unwrap().parse().unwrap();
        assert_eq!(start.rem_euclid(86_400_000), 16 * 3_600_000, "{line}");
    }
}

/// Flink's named TVF arguments, in any order, mean what their positions
/// mean: TUMBLE with an OFFSET, HOP and CUMULATE against the oracle.
#[tokio::test]
async fn named_tvf_arguments_equal_the_oracle() {
    let rows = rows_in_order(1500, 5, 17);
    let cases = [
        (
            "TUMBLE(DATA => TABLE src, SIZE => INTERVAL '10' SECOND, TIMECOL => DESCRIPTOR(ts), OFFSET => INTERVAL '3' SECOND)",
            Shape::Tumble { size: 10_000, offset: 3_000 },
        ),
        (
            "HOP(TIMECOL => DESCRIPTOR(ts), DATA => TABLE src, SLIDE => INTERVAL '5' SECOND, SIZE => INTERVAL '15' SECOND)",
            Shape::Hop { slide: 5_000, size: 15_000 },
        ),
        (
            "CUMULATE(DATA => TABLE src, TIMECOL => DESCRIPTOR(ts), STEP => INTERVAL '5' SECOND, SIZE => INTERVAL '20' SECOND)",
            Shape::Cumulate { step: 5_000, max: 20_000 },
        ),
    ];
    for (window, shape) in cases {
        let (expected, late) = oracle_results(&rows, shape, DELAY).await;
        assert_eq!(late, 0);
        let (got, _) = run_windows(&[rows.clone()], window, "");
        assert!(expected.len() > 50, "too few windows: {}", expected.len());
        assert_rows_eq(&got, &expected, window);
    }
    let refused = [
        ("TUMBLE(DATA => TABLE src, TIMECOL => DESCRIPTOR(ts))", "TUMBLE: parameter SIZE is missing"),
        ("TUMBLE(DATA => TABLE src, TIMECOL => DESCRIPTOR(ts), WIDTH => INTERVAL '1' SECOND)", "TUMBLE has no parameter WIDTH"),
        ("TUMBLE(TABLE src, TIMECOL => DESCRIPTOR(ts), SIZE => INTERVAL '1' SECOND)", "pass every argument by name or none"),
    ];
    for (window, why) in refused {
        let dir = scratch();
        let run = weir_run(dir.path(), &window_sql(dir.path(), window, ""));
        assert!(!run.ok && run.stderr.contains(why), "{window}: {}", run.stderr);
    }
}

/// Parallelism 4 (hash-partitioned window aggregate, four source subtasks
/// over four files) gives the same results as parallelism 1.
#[tokio::test]
async fn parallelism_four_equals_one() {
    // Files interleave in time; each is in order, and the delay covers the
    // skew between them, so no row is late whatever the interleaving.
    let files: Vec<Vec<Row>> = (0..4).map(|i| rows_in_order(800, 9, 10 + i)).collect();
    let all: Vec<Row> = files.iter().flatten().cloned().collect();
    let window = "TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '60' SECOND)";
    let big_delay = |sql: String| sql.replace("INTERVAL '2' SECOND", "INTERVAL '1' HOUR");
    let run = |settings: &str| {
        let dir = scratch();
        std::fs::create_dir_all(dir.path().join("in")).unwrap();
        for (i, rows) in files.iter().enumerate() {
            write_json(&dir.path().join(format!("in/part-{i:02}.json")), rows);
        }
        let r = weir_run(dir.path(), &big_delay(window_sql(dir.path(), window, settings)));
        assert!(r.ok, "{}", r.stderr);
        let mut got: Vec<String> = read_sink(&dir.path().join("out")).iter().map(normalize_json).collect();
        got.sort();
        (got, r)
    };
    let (p1, _) = run("");
    let (p4, r4) = run("SET 'parallelism.default' = '4';");
    assert_rows_eq(&p4, &p1, "p4");
    assert_eq!(r4.counted("late rows"), 0);
    let mut sorted = all.clone();
    sorted.sort_by_key(|r| r.ts);
    let (expected, _) = oracle_results(&sorted, Shape::Tumble { size: 60_000, offset: 0 }, 3_600_000).await;
    assert_rows_eq(&p1, &expected, "p1");
}

#[tokio::test]
async fn empty_input_gives_no_rows_and_succeeds() {
    let (got, run) = run_windows(&[vec![]], TUMBLE_10S, "");
    assert!(got.is_empty());
    assert_eq!(run.counted("rows written"), 0);
}

#[tokio::test]
async fn a_single_row_fires_its_window_at_end_of_input() {
    let rows = vec![Row { k: Some("a".into()), v: Some(5), ts: Some(T0 + 12_345) }];
    let (got, _) = run_windows(&[rows], TUMBLE_10S, "");
    assert_eq!(got, vec![format!("{}|{}|a|1|1|5|5|5|5.000000", T0 + 10_000, T0 + 20_000)]);
}

/// Windows without rows produce nothing (no zero-count rows in the gaps).
#[tokio::test]
async fn empty_windows_emit_nothing() {
    let rows = vec![
        Row { k: Some("a".into()), v: Some(1), ts: Some(T0 + 1_000) },
        Row { k: Some("a".into()), v: Some(2), ts: Some(T0 + 95_000) },
    ];
    let (got, _) = run_windows(std::slice::from_ref(&rows), TUMBLE_10S, "");
    let (expected, _) = oracle_results(&rows, Shape::Tumble { size: 10_000, offset: 0 }, DELAY).await;
    assert_eq!(got.len(), 2);
    assert_rows_eq(&got, &expected, "got");
}

/// NULL keys form their own group; NULL values are ignored by count(v),
/// sum, min, max and avg but counted by count(*); NULL event times belong
/// to no window and are counted apart.
#[tokio::test]
async fn null_keys_values_and_event_times() {
    let mut rows = rows_in_order(300, 3, 8);
    for (i, r) in rows.iter_mut().enumerate() {
        if i % 5 == 0 {
            r.k = None;
        }
        if i % 7 == 0 {
            r.v = None;
        }
    }
    let mut with_null_ts = rows.clone();
    for i in [10, 100, 200] {
        with_null_ts.insert(i, Row { k: Some("k1".into()), v: Some(1), ts: None });
    }
    let (expected, _) = oracle_results(&rows, Shape::Tumble { size: 10_000, offset: 0 }, DELAY).await;
    assert!(expected.iter().any(|l| l.split('|').nth(2) == Some("null")), "a NULL key group exists");
    let (got, run) = run_windows(&[with_null_ts], TUMBLE_10S, "");
    assert_rows_eq(&got, &expected, "got");
    assert_eq!(run.counted("rows with an invalid event time"), 3);
}

/// A window TVF used without aggregation adds the window columns to each
/// row, one row per window: three for a 15 s HOP sliding by 5 s.
#[tokio::test]
async fn hop_rows_without_aggregation_are_repeated_per_window() {
    let rows = rows_in_order(200, 3, 9);
    let dir = scratch();
    write_json(&dir.path().join("in.json"), &rows);
    let sql = format!(
        "CREATE TABLE src (k VARCHAR, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
         CREATE TABLE out (k VARCHAR, v BIGINT, window_start TIMESTAMP(3), window_end TIMESTAMP(3))
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
         INSERT INTO out SELECT k, v, window_start, window_end FROM TABLE({HOP_5S_15S});",
        dir.path().join("in.json").display(),
        dir.path().join("out").display()
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    let mut got: Vec<String> = read_sink(&dir.path().join("out"))
        .iter()
        .map(|r| {
            format!(
                "{}|{}|{}|{}",
                r["k"].as_str().unwrap(),
                r["v"],
                parse_timestamp(r["window_start"].as_str().unwrap()),
                parse_timestamp(r["window_end"].as_str().unwrap())
            )
        })
        .collect();
    got.sort();
    let mut expected: Vec<String> = rows
        .iter()
        .flat_map(|r| {
            let ts = r.ts.unwrap();
            let last = ts - ts.rem_euclid(5_000);
            [last - 10_000, last - 5_000, last]
                .into_iter()
                .map(move |s| format!("{}|{}|{}|{}", r.k.as_ref().unwrap(), r.v.unwrap(), s, s + 15_000))
        })
        .collect();
    expected.sort();
    assert_eq!(got.len(), rows.len() * 3);
    assert_rows_eq(&got, &expected, "hop rows");
}

/// EXPLAIN shows the streaming plan: stages, parallelism, the key exchange,
/// the window and the watermark.
#[test]
fn explain_shows_the_streaming_plan() {
    let dir = scratch();
    let sql = format!(
        "SET 'parallelism.default' = '3';\n{}",
        window_sql(dir.path(), TUMBLE_10S, "").replace("INSERT INTO out", "EXPLAIN INSERT INTO out")
    );
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    for needle in [
        "Stage 0 (parallelism 3)",
        "Source: src [filesystem",
        "watermark: ts AS ts - INTERVAL '2' SECOND (per partition, on-event)",
        "Stage 1 (parallelism 3)",
        "Exchange: hash [k@0] from stage 0",
        "WindowAggregate: TUMBLE(size 10 s)",
        "Sink: out [filesystem",
    ] {
        assert!(run.stdout.contains(needle), "no {needle:?} in:\n{}", run.stdout);
    }
    assert!(!dir.path().join("out").exists(), "EXPLAIN must not run the job");
}

/// `INSERT INTO` matches columns by position, as Flink does: the table's
/// names, not the query's, are what a JSON sink writes.
#[test]
fn insert_takes_the_tables_column_names() {
    let dir = scratch();
    let rows = rows_in_order(10, 2, 3);
    write_json(&dir.path().join("in.json"), &rows);
    let sql = format!(
        "CREATE TABLE src (k VARCHAR, v BIGINT, ts TIMESTAMP(3)) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
CREATE TABLE out (key VARCHAR, doubled BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
INSERT INTO out SELECT k, v * 2 FROM src;",
        dir.path().join("in.json").display(),
        dir.path().join("out").display()
    );
    let run = weir_run(dir.path(), &sql);
    assert!(run.ok, "{}", run.stderr);
    let mut got: Vec<String> = read_sink(&dir.path().join("out")).iter().map(normalize_json).collect();
    got.sort();
    let mut expected: Vec<String> = rows
        .iter()
        .map(|r| normalize_json(&serde_json::json!({"key": r.k, "doubled": r.v.map(|v| v * 2)})))
        .collect();
    expected.sort();
    assert_eq!(got, expected);
}

/// `GROUPING SETS`, `ROLLUP` and `CUBE` in a window aggregation (Flink's
/// Window Aggregation page): every set's groups of every window equal
/// DataFusion's batch answer over the same rows, windows by `date_bin`,
/// with `GROUPING(k)`; at parallelism 1 and 3.
#[tokio::test]
async fn grouping_sets_in_windows_equal_the_batch_answer() {
    let rows: Vec<Row> = rows_in_order(1500, 4, 41)
        .into_iter()
        .enumerate()
        .map(|(i, r)| Row { k: (i % 9 != 0).then_some(r.k.unwrap()), ..r })
        .collect();
    let ctx = rows_table("src", &rows);
    for (grouping, parallelism) in [("CUBE (k)", 1), ("ROLLUP (k)", 3), ("GROUPING SETS ((k), ())", 2)] {
        let bin = "date_bin(INTERVAL '10 seconds', ts, TIMESTAMP '1970-01-01 00:00:00')";
        let query = format!(
            "SELECT CAST({bin} AS BIGINT) AS ws, k, count(*) AS c, sum(v) AS s, GROUPING(k) AS g FROM src GROUP BY {bin}, {grouping}"
        );
        let batches = ctx.sql(&query).await.unwrap().collect().await.unwrap();
        let mut want = normalize_batches(&batches);
        want.sort();
        let dir = scratch();
        std::fs::create_dir_all(dir.path().join("in")).unwrap();
        write_json(&dir.path().join("in/part-00.json"), &rows);
        let sql = format!(
            "SET 'parallelism.default' = '{parallelism}';
CREATE TABLE src (k VARCHAR, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
  WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'json', 'scan.watermark.emit.strategy' = 'on-event');
CREATE TABLE out (ws TIMESTAMP(3), k VARCHAR, c BIGINT, s BIGINT, g INT)
  WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'json');
INSERT INTO out SELECT window_start, k, count(*), sum(v), GROUPING(k)
FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end, {grouping};",
            input = dir.path().join("in").display(),
            out = dir.path().join("out").display()
        );
        let run = weir_run(dir.path(), &sql);
        assert!(run.ok, "{grouping}: {}", run.stderr);
        let mut got: Vec<String> = read_sink(&dir.path().join("out"))
            .iter()
            .map(|r| {
                let k = r["k"].as_str().map_or("null".to_string(), str::to_string);
                format!("{}|{k}|{}|{}|{}", parse_timestamp(r["ws"].as_str().unwrap()), r["c"], r["s"], r["g"])
            })
            .collect();
        got.sort();
        assert!(want.len() > 100, "{grouping}: too few groups");
        assert_rows_eq(&got, &want, grouping);
    }
}

/// The rows of a SESSION TVF used without an aggregation (Flink's
/// `SELECT * FROM TABLE(SESSION(…))`): each row is emitted once, when its
/// session closes, with the session's bounds — the on-event oracle's
/// sessions, late rows left out — at parallelism 1 and 3.
#[test]
fn session_rows_carry_their_sessions_bounds() {
    let mut g = Lcg(12);
    let mut ts = T0;
    let mut rows: Vec<Row> = (0..1500)
        .map(|_| {
            ts += if g.below(10) == 0 { 2_000 + g.below(6_000) as i64 } else { g.below(300) as i64 };
            Row { k: Some(format!("k{}", g.below(5))), v: Some(g.below(40) as i64), ts: Some(ts) }
        })
        .collect();
    for i in (30..rows.len()).step_by(29) {
        rows[i].ts = rows[i].ts.map(|t| t - g.below(9_000) as i64);
    }
    let (assigned, late) = decide_sessions(&rows, 3_000, DELAY);
    let mut want: Vec<String> = assigned
        .iter()
        .map(|(s, e, r)| format!("{}|{}|{}|{s}|{e}|{}", r.k.as_ref().unwrap(), r.v.unwrap(), r.ts.unwrap(), e - 1))
        .collect();
    want.sort();
    assert!(late > 3 && want.len() > 1000, "late {late}, rows {}", want.len());
    for parallelism in [1, 3] {
        let dir = scratch();
        std::fs::create_dir_all(dir.path().join("in")).unwrap();
        write_json(&dir.path().join("in/part-00.json"), &rows);
        let sql = format!(
            "SET 'parallelism.default' = '{parallelism}';
CREATE TABLE src (k VARCHAR, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
  WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'json', 'scan.watermark.emit.strategy' = 'on-event');
CREATE TABLE out (k VARCHAR, v BIGINT, ts TIMESTAMP(3), ws TIMESTAMP(3), we TIMESTAMP(3), wt TIMESTAMP(3))
  WITH ('connector' = 'filesystem', 'path' = '{out}', 'format' = 'json');
INSERT INTO out SELECT * FROM TABLE(SESSION(TABLE src PARTITION BY k, DESCRIPTOR(ts), INTERVAL '3' SECOND));",
            input = dir.path().join("in").display(),
            out = dir.path().join("out").display()
        );
        let run = weir_run(dir.path(), &sql);
        assert!(run.ok, "{}", run.stderr);
        let t = |r: &serde_json::Value, c: &str| parse_timestamp(r[c].as_str().unwrap());
        let mut got: Vec<String> = read_sink(&dir.path().join("out"))
            .iter()
            .map(|r| {
                let k = r["k"].as_str().unwrap();
                format!("{k}|{}|{}|{}|{}|{}", r["v"], t(r, "ts"), t(r, "ws"), t(r, "we"), t(r, "wt"))
            })
            .collect();
        got.sort();
        assert_rows_eq(&got, &want, &format!("session rows at parallelism {parallelism}"));
        assert_eq!(run.counted("late rows"), late);
    }
}
