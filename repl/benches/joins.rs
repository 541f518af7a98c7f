//! Interval join benchmark: bids ⋈ asks on their auction, each ask within
//! `--bound` seconds of its bid either way (Flink's interval join, `a.ts
//! BETWEEN b.ts - INTERVAL … AND b.ts + INTERVAL …`), two `datagen` tables
//! of `--events` rows each → `blackhole`.
//!
//! `cargo bench --bench joins [-- --events 1000000,5000000 --keys 10000,100000
//! --bound 1,60 --parallelism 1]`
//!
//! Both sides have one row per ms of event time. Bid `i`'s auction is `i ×
//! BID_FACTOR mod keys`, ask `j`'s `j × ASK_FACTOR mod keys`, so the asks
//! that meet bid `i` are those `j ≡ i × BID_FACTOR × ASK_FACTOR⁻¹ (mod
//! keys)` within the bound: the bench counts them for every bid without
//! running the join, and each case checks the job wrote exactly that many
//! rows and read every event. Events/s counts the rows of both sides.
//!
//! Each case runs in a fresh child process so that its peak memory (VmHWM)
//! is its own.

mod support;

use std::time::Instant;

use support::{child_result, numbers, run_jobs};
use weir_engine::peak_memory::peak_rss_kib;

/// Event 0's time: 2026-01-01 00:00:00 UTC, in ms; one row per ms a side.
const BASE_MS: i64 = 1_767_225_600_000;
/// Primes, so coprime with any key count they do not divide.
const BID_FACTOR: i64 = 2_654_435_761;
const ASK_FACTOR: i64 = 1_000_003;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let arg = |n: usize| -> i64 { args[i + n].parse().expect("a number") };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(arg(4) as usize)
            .enable_all()
            .build()
            .expect("runtime");
        let (secs, rows) = runtime.block_on(join(arg(1), arg(2), arg(3), arg(4) as usize));
        println!("RESULT {secs} {} {rows}", peak_rss_kib());
        return;
    }
    let sizes: Vec<i64> = numbers("--events", "1000000,5000000");
    let keys: Vec<i64> = numbers("--keys", "10000,100000");
    let bounds: Vec<i64> = numbers("--bound", "1,60");
    let parallelism: Vec<usize> = numbers("--parallelism", "1");
    println!("| events a side | keys | bound s | par | rows out | seconds | events/s | events/s/core | peak RSS MiB |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for &p in &parallelism {
        for &k in &keys {
            for &bound in &bounds {
                for &n in &sizes {
                    let expected = matches(n, k, bound * 1000);
                    let Some(fields) = child_result(&[n, k, bound, p as i64].map(|v| v.to_string())) else {
                        continue;
                    };
                    let f: Vec<f64> = fields.iter().map(|v| v.parse().expect("a number")).collect();
                    let (secs, rss_kib, rows) = (f[0], f[1], f[2] as u64);
                    assert_eq!(rows, expected, "{n} events a side, {k} keys, ±{bound} s: rows joined");
                    let rate = 2.0 * n as f64 / secs;
                    println!(
                        "| {n} | {k} | {bound} | {p} | {rows} | {secs:.2} | {rate:.0} | {:.0} | {:.1} |",
                        rate / p as f64,
                        rss_kib / 1024.0
                    );
                }
            }
        }
    }
}

/// Pairs of bid `i` and ask `j` (both below `events`) with the same auction
/// and `|i - j| <= bound_ms`.
fn matches(events: i64, keys: i64, bound_ms: i64) -> u64 {
    let inverse = inverse(ASK_FACTOR % keys, keys);
    (0..events)
        .map(|i| {
            // Asks j ≡ r (mod keys) have bid i's auction.
            let r = (i * BID_FACTOR % keys) as i128 * inverse as i128 % keys as i128;
            let r = r as i64;
            let (lo, hi) = ((i - bound_ms).max(0), (i + bound_ms).min(events - 1));
            ((hi - r).div_euclid(keys) - (lo - 1 - r).div_euclid(keys)) as u64
        })
        .sum()
}

/// `a⁻¹ mod m`, for `a` coprime with `m` (extended Euclid).
fn inverse(a: i64, m: i64) -> i64 {
    let (mut r0, mut r1, mut s0, mut s1) = (a, m, 1i64, 0i64);
    while r1 != 0 {
        let q = r0 / r1;
        (r0, r1) = (r1, r0 - q * r1);
        (s0, s1) = (s1, s0 - q * s1);
    }
    assert_eq!(r0, 1, "{a} and {m} share a factor: choose another key count");
    s0.rem_euclid(m)
}

/// The join over `events` rows a side, timed end to end: seconds and rows
/// written.
async fn join(events: i64, keys: i64, bound_s: i64, parallelism: usize) -> (f64, u64) {
    let table = |name: &str, factor: i64| {
        format!(
            "CREATE TABLE {name} (
  seq BIGINT,
  price BIGINT,
  auction AS seq * {factor} % {keys},
  ts AS TO_TIMESTAMP_LTZ({BASE_MS} + seq, 3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH (
  'connector' = 'datagen', 'rows-per-second' = '1000000000',
  'fields.seq.kind' = 'sequence', 'fields.seq.start' = '0', 'fields.seq.end' = '{last}',
  'fields.price.min' = '1', 'fields.price.max' = '1000000'
);",
            last = events - 1
        )
    };
    let sql = format!(
        "SET 'parallelism.default' = '{parallelism}';
{bids}
{asks}
CREATE TABLE out (auction BIGINT, bid BIGINT, ask BIGINT, spread BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO out
SELECT b.auction, b.seq, a.seq, a.price - b.price
FROM bids b, asks a
WHERE b.auction = a.auction
  AND a.ts BETWEEN b.ts - INTERVAL '{bound_s}' SECOND AND b.ts + INTERVAL '{bound_s}' SECOND;",
        bids = table("bids", BID_FACTOR),
        asks = table("asks", ASK_FACTOR),
    );
    let start = Instant::now();
    let mut rows = 0;
    run_jobs(&sql, |job| {
        let totals = job.metrics.totals();
        assert_eq!(totals.rows_from_sources, 2 * events as u64, "the job read every row of both sides");
        assert_eq!(totals.late_rows, 0, "no row is late");
        rows += totals.rows_to_sinks;
    })
    .await;
    (start.elapsed().as_secs_f64(), rows)
}
