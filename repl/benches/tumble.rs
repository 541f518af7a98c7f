//! Window benchmark: `count(*)` and `max` per key over 10 s tumbling (or
//! hopping) windows, 10 000 keys, `datagen` → `blackhole`, at several input
//! sizes; and the same tumbling aggregation as a DataFusion batch query over
//! the same rows held in memory — the bar the streaming path is measured
//! against.
//!
//! `cargo bench --bench tumble [-- --events 1000000,10000000 --parallelism 1
//! --keys 10000 --checkpoint none,1s --window 10 --shape tumble,hop --slide 2
//! --batch yes]`
//!
//! Events are 1 ms apart in event time, so a window of `--window` seconds
//! holds up to 1000 × that many distinct keys of state. `--shape hop` runs
//! HOP windows of `--window` seconds sliding by `--slide`.
//!
//! Event `seq`'s key is `seq × 2654435761 mod keys`: spread like random keys,
//! yet any run of `n` consecutive events holds exactly `min(n, keys)`
//! distinct keys, so the number of rows each case must write is known
//! without running it, and every case checks it wrote exactly those.
//!
//! With `--checkpoint 1s` the streaming job checkpoints every second (state
//! in a temporary `state.dir`); the table then also shows how many
//! checkpoints completed, their mean duration and mean size, and the
//! longest pause of a task's loop at a barrier (its operators' snapshots),
//! in ms.
//!
//! Each case runs in a fresh child process so that its peak memory (VmHWM)
//! is its own. Throughput is reported per core used (the parallelism).

mod support;

use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use support::{child_result, flag, numbers, run_jobs};
use weir_engine::peak_memory::peak_rss_kib;

/// One event every 1 ms of event time.
const STEP_MS: i64 = 1;
/// Event 0's time: 2026-01-01 00:00:00 UTC, in ms.
const BASE_MS: i64 = 1_767_225_600_000;
/// Event `seq`'s key is `seq × KEY_FACTOR mod keys`: a prime, so coprime
/// with any key count it does not divide.
const KEY_FACTOR: i64 = 2_654_435_761;

/// One case's windows.
#[derive(Clone, Copy)]
struct Windows {
    hop: bool,
    size_s: i64,
    slide_s: i64,
}

impl Windows {
    /// The window table function over `ev`.
    fn sql(self) -> String {
        let size = format!("INTERVAL '{}' SECOND", self.size_s);
        if self.hop {
            format!("HOP(TABLE ev, DESCRIPTOR(ts), INTERVAL '{}' SECOND, {size})", self.slide_s)
        } else {
            format!("TUMBLE(TABLE ev, DESCRIPTOR(ts), {size})")
        }
    }

    /// Rows the query writes over `events` events and `keys` keys: one per
    /// window and key it holds, and a window over `n` consecutive events
    /// holds `min(n, keys)` keys.
    fn expected_rows(self, events: i64, keys: i64) -> u64 {
        let (size, slide) = (self.size_s * 1000, self.slide_s * 1000);
        let (first, end) = (BASE_MS, BASE_MS + events * STEP_MS);
        // The first window start whose window holds `first`.
        let mut start = (first - size).div_euclid(slide) * slide + slide;
        let mut rows = 0;
        while start < end {
            let span = (start + size).min(end) - start.max(first);
            let held = (span + STEP_MS - 1) / STEP_MS;
            rows += held.min(keys) as u64;
            start += slide;
        }
        rows
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let mode = args[i + 1].as_str();
        let events: i64 = args[i + 2].parse().expect("events");
        let parallelism: usize = args[i + 3].parse().expect("parallelism");
        let keys: i64 = args[i + 4].parse().expect("keys");
        let checkpoint = args[i + 5].clone();
        let windows = Windows {
            hop: args[i + 6] == "hop",
            size_s: args[i + 7].parse().expect("window seconds"),
            slide_s: args[i + 8].parse().expect("slide seconds"),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(parallelism.max(1))
            .enable_all()
            .build()
            .expect("runtime");
        let (secs, rows, cps) = runtime.block_on(async {
            match mode {
                "stream" => stream(events, parallelism, keys, &checkpoint, windows).await,
                _ => {
                    let (secs, rows) = batch(events, parallelism, keys, windows.size_s).await;
                    (secs, rows, String::from("-"))
                }
            }
        });
        println!("RESULT {secs} {} {rows} {cps}", peak_rss_kib());
        return;
    }
    let sizes: Vec<i64> = numbers("--events", "1000000,10000000,100000000");
    let parallelism: Vec<usize> = numbers("--parallelism", "1");
    let keys: Vec<i64> = numbers("--keys", "10000");
    let checkpoints: Vec<String> = flag("--checkpoint", "none").split(',').map(str::to_string).collect();
    let shapes: Vec<String> = flag("--shape", "tumble").split(',').map(str::to_string).collect();
    let window = flag("--window", "10");
    let slide = flag("--slide", "2");
    // `--batch no` leaves the DataFusion batch cases out (checkpoint runs
    // at millions of keys compare streaming with itself).
    let with_batch = flag("--batch", "yes") != "no";
    println!(
        "{:<8} {:>6} {:>4} {:>9} {:>6} {:>12} {:>9} {:>14} {:>16} {:>12}  checkpoints (n / mean ms / mean bytes / longest pause ms)",
        "path", "shape", "par", "keys", "ckpt", "events", "seconds", "events/s", "events/s/core", "peak RSS MiB"
    );
    let mut cases = Vec::new();
    for &p in &parallelism {
        for &k in &keys {
            for &n in &sizes {
                for shape in &shapes {
                    for c in &checkpoints {
                        cases.push(("stream", shape.as_str(), p, k, n, c.clone()));
                    }
                }
                if with_batch {
                    cases.push(("batch", "tumble", p, k, n, "-".to_string()));
                }
            }
        }
    }
    for (mode, shape, p, k, n, c) in cases {
        let hop = shape == "hop";
        let windows = Windows {
            hop,
            size_s: window.parse().expect("--window takes seconds"),
            slide_s: if hop {
                slide.parse().expect("--slide takes seconds")
            } else {
                window.parse().expect("--window")
            },
        };
        assert_eq!(gcd(KEY_FACTOR, k), 1, "--keys {k} shares a factor with {KEY_FACTOR}");
        let args = [mode, &n.to_string(), &p.to_string(), &k.to_string(), &c, shape]
            .map(str::to_string)
            .into_iter()
            .chain([windows.size_s.to_string(), windows.slide_s.to_string()]);
        let Some(f) = child_result(&args.collect::<Vec<_>>()) else {
            continue;
        };
        let secs: f64 = f[0].parse().expect("seconds");
        let rss: f64 = f[1].parse().expect("peak RSS");
        let rows: u64 = f[2].parse().expect("rows");
        let expected = windows.expected_rows(n, k);
        assert_eq!(rows, expected, "{mode} {shape} over {n} events and {k} keys: rows written");
        let rate = n as f64 / secs;
        println!(
            "{:<8} {:>6} {:>4} {:>9} {:>6} {:>12} {:>9.3} {:>14.0} {:>16.0} {:>12.1}  {}",
            mode,
            shape,
            p,
            k,
            c,
            n,
            secs,
            rate,
            rate / p as f64,
            rss / 1024.0,
            f.get(3).map_or("-", String::as_str)
        );
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Generator → window → blackhole, timed end to end; returns the seconds,
/// the rows written and a summary of the checkpoints taken.
async fn stream(events: i64, parallelism: usize, keys: i64, checkpoint: &str, windows: Windows) -> (f64, u64, String) {
    let state = std::env::temp_dir().join(format!("weir-bench-state-{}", std::process::id()));
    let interval = if checkpoint == "none" { "0" } else { checkpoint };
    let sql = format!(
        "SET 'parallelism.default' = '{parallelism}';
SET 'execution.checkpointing.interval' = '{interval}';
SET 'state.dir' = '{state}';
CREATE TABLE ev (
  seq BIGINT,
  v BIGINT,
  k AS seq * {KEY_FACTOR} % {keys},
  ts AS TO_TIMESTAMP_LTZ({BASE_MS} + seq * {STEP_MS}, 3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH (
  'connector' = 'datagen', 'rows-per-second' = '1000000000',
  'fields.seq.kind' = 'sequence', 'fields.seq.start' = '0', 'fields.seq.end' = '{last}',
  'fields.v.min' = '0', 'fields.v.max' = '1000000'
);
CREATE TABLE out (ws TIMESTAMP(3), we TIMESTAMP(3), k BIGINT, c BIGINT, m BIGINT)
  WITH ('connector' = 'blackhole');
INSERT INTO out
SELECT window_start, window_end, k, count(*), max(v)
FROM TABLE({windows})
GROUP BY window_start, window_end, k;",
        state = state.display(),
        last = events - 1,
        windows = windows.sql(),
    );
    let start = Instant::now();
    let mut summary = String::from("-");
    let mut rows = 0;
    run_jobs(&sql, |job| {
        let totals = job.metrics.totals();
        assert_eq!(totals.rows_from_sources, events as u64, "the job read every event");
        rows += totals.rows_to_sinks;
        let cps = job.metrics.checkpoints();
        if !cps.is_empty() {
            let n = cps.len() as u64;
            // The longest time any task's loop stood still at a barrier
            // while its operators took their snapshots.
            let pause_ns = job
                .metrics
                .tasks()
                .iter()
                .map(|t| t.snapshot_pause_max_ns.load(std::sync::atomic::Ordering::Relaxed))
                .max()
                .unwrap_or(0);
            summary = format!(
                "{n}/{}/{}/{:.1}",
                cps.iter().map(|c| c.duration_ms).sum::<u64>() / n,
                cps.iter().map(|c| c.bytes).sum::<u64>() / n,
                pause_ns as f64 / 1e6
            );
        }
    })
    .await;
    let secs = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&state);
    (secs, rows, summary)
}

/// The same rows as a DataFusion table in memory; only the query is timed.
/// Returns the seconds and the rows of the result.
async fn batch(events: i64, parallelism: usize, keys: i64, window: i64) -> (f64, u64) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("ts", DataType::Int64, false),
        Field::new("k", DataType::Int64, false),
        Field::new("v", DataType::Int64, false),
    ]));
    let mut partitions = vec![Vec::new(); parallelism];
    let mut rng = 0x2545F4914F6CDD1Du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let chunk = 8192;
    let mut seq = 0i64;
    let mut i = 0;
    while seq < events {
        let n = chunk.min(events - seq);
        let ts = Int64Array::from_iter_values((seq..seq + n).map(|s| BASE_MS + s * STEP_MS));
        let k = Int64Array::from_iter_values((seq..seq + n).map(|s| s * KEY_FACTOR % keys));
        let v = Int64Array::from_iter_values((0..n).map(|_| (next() % 1_000_001) as i64));
        let batch =
            RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(ts), Arc::new(k), Arc::new(v)]).expect("batch");
        partitions[i % parallelism].push(batch);
        i += 1;
        seq += n;
    }
    let config = datafusion::prelude::SessionConfig::new().with_target_partitions(parallelism);
    let ctx = SessionContext::new_with_config(config);
    ctx.register_table("ev", Arc::new(MemTable::try_new(schema, partitions).expect("table"))).expect("register");
    let start = Instant::now();
    let result = ctx
        .sql(&format!(
            "SELECT ts - ts % {ms} AS ws, k, count(*), max(v) FROM ev GROUP BY ts - ts % {ms}, k",
            ms = window * 1000
        ))
        .await
        .expect("plan")
        .collect()
        .await
        .expect("run");
    let secs = start.elapsed().as_secs_f64();
    (secs, result.iter().map(|b| b.num_rows() as u64).sum())
}
