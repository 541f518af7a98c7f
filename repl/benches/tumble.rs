//! Tumbling-window benchmark: `count(*)` and `max` per key over 10 s
//! windows, 10 000 keys, `datagen` → `blackhole`, at several input sizes; and
//! the same aggregation as a DataFusion batch query over the same rows held
//! in memory — the bar the streaming path is measured against.
//!
//! `cargo bench --bench tumble [-- --events 1000000,10000000 --parallelism 1
//! --keys 10000 --checkpoint none,1s --window 10 --batch yes]`
//!
//! Events are 1 ms apart in event time, so a window of `--window` seconds
//! holds up to 1000 × that many distinct keys of state.
//!
//! With `--checkpoint 1s` the streaming job checkpoints every second (state
//! in a temporary `state.dir`); the table then also shows how many
//! checkpoints completed, their mean duration and mean size, and the
//! longest pause of a task's loop at a barrier (its operators' snapshots),
//! in ms.
//!
//! Each case runs in a fresh child process so that its peak memory (VmHWM)
//! is its own. Throughput is reported per core used (the parallelism).

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use weir_sql::{Outcome, Session, parse_script};

/// One event every 1 ms of event time.
const STEP_MS: i64 = 1;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let mode = args[i + 1].as_str();
        let events: i64 = args[i + 2].parse().expect("events");
        let parallelism: usize = args[i + 3].parse().expect("parallelism");
        let keys: i64 = args[i + 4].parse().expect("keys");
        let checkpoint = args[i + 5].clone();
        let window: i64 = args[i + 6].parse().expect("window seconds");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(parallelism.max(1))
            .enable_all()
            .build()
            .expect("runtime");
        let (secs, cps) = runtime.block_on(async {
            match mode {
                "stream" => stream(events, parallelism, keys, &checkpoint, window).await,
                _ => (batch(events, parallelism, keys, window).await, String::from("-")),
            }
        });
        println!("RESULT {secs} {} {cps}", peak_rss_kib());
        return;
    }
    let flag = |name: &str, default: &str| -> String {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
            .unwrap_or_else(|| default.to_string())
    };
    let sizes: Vec<i64> = flag("--events", "1000000,10000000,100000000")
        .split(',')
        .map(|s| s.parse().expect("--events takes numbers"))
        .collect();
    let parallelism: Vec<usize> =
        flag("--parallelism", "1").split(',').map(|s| s.parse().expect("--parallelism takes numbers")).collect();
    let keys: Vec<i64> = flag("--keys", "10000").split(',').map(|s| s.parse().expect("--keys takes numbers")).collect();
    let checkpoints: Vec<String> = flag("--checkpoint", "none").split(',').map(str::to_string).collect();
    let window = flag("--window", "10");
    // `--batch no` leaves the DataFusion batch cases out (checkpoint runs
    // at millions of keys compare streaming with itself).
    let with_batch = flag("--batch", "yes") != "no";
    println!(
        "{:<8} {:>4} {:>9} {:>6} {:>12} {:>9} {:>14} {:>16} {:>12}  checkpoints (n / mean ms / mean bytes / longest pause ms)",
        "path", "par", "keys", "ckpt", "events", "seconds", "events/s", "events/s/core", "peak RSS MiB"
    );
    let mut cases = Vec::new();
    for &p in &parallelism {
        for &k in &keys {
            for &n in &sizes {
                for c in &checkpoints {
                    cases.push(("stream", p, k, n, c.clone()));
                }
                if with_batch {
                    cases.push(("batch", p, k, n, "-".to_string()));
                }
            }
        }
    }
    for (mode, p, k, n, c) in cases {
        {
            {
                let exe = std::env::current_exe().expect("bench binary");
                let out = Command::new(exe)
                    .args(["--child", mode, &n.to_string(), &p.to_string(), &k.to_string(), &c, &window])
                    .output()
                    .expect("run child");
                let stdout = String::from_utf8_lossy(&out.stdout);
                let Some(line) = stdout.lines().find(|l| l.starts_with("RESULT ")) else {
                    eprintln!("{mode} {n}: failed\n{}", String::from_utf8_lossy(&out.stderr));
                    continue;
                };
                let mut f = line.split_whitespace().skip(1);
                let secs: f64 = f.next().unwrap().parse().unwrap();
                let rss: f64 = f.next().unwrap().parse().unwrap();
                let cps = f.next().unwrap_or("-");
                let rate = n as f64 / secs;
                println!(
                    "{:<8} {:>4} {:>9} {:>6} {:>12} {:>9.3} {:>14.0} {:>16.0} {:>12.1}  {}",
                    mode,
                    p,
                    k,
                    c,
                    n,
                    secs,
                    rate,
                    rate / p as f64,
                    rss / 1024.0,
                    cps
                );
            }
        }
    }
}

/// Generator → tumbling window → blackhole, timed end to end; returns the
/// seconds and a summary of the checkpoints taken.
async fn stream(events: i64, parallelism: usize, keys: i64, checkpoint: &str, window: i64) -> (f64, String) {
    let state = std::env::temp_dir().join(format!("weir-bench-state-{}", std::process::id()));
    let interval = if checkpoint == "none" { "0" } else { checkpoint };
    let sql = format!(
        "SET 'parallelism.default' = '{parallelism}';
SET 'execution.checkpointing.interval' = '{interval}';
SET 'state.dir' = '{state}';
CREATE TABLE ev (
  seq BIGINT,
  k BIGINT,
  v BIGINT,
  ts AS TO_TIMESTAMP_LTZ(1767225600000 + seq * {STEP_MS}, 3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH (
  'connector' = 'datagen', 'rows-per-second' = '1000000000',
  'fields.seq.kind' = 'sequence', 'fields.seq.start' = '0', 'fields.seq.end' = '{last}',
  'fields.k.min' = '0', 'fields.k.max' = '{maxk}',
  'fields.v.min' = '0', 'fields.v.max' = '1000000'
);
CREATE TABLE out (ws TIMESTAMP(3), we TIMESTAMP(3), k BIGINT, c BIGINT, m BIGINT)
  WITH ('connector' = 'blackhole');
INSERT INTO out
SELECT window_start, window_end, k, count(*), max(v)
FROM TABLE(TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '{window}' SECOND))
GROUP BY window_start, window_end, k;",
        state = state.display(),
        last = events - 1,
        maxk = keys - 1
    );
    let mut session = Session::new();
    let start = Instant::now();
    let mut summary = String::from("-");
    for s in parse_script(&sql).expect("bench SQL parses") {
        if let Outcome::JobStarted(job) = session.execute(&s).await.expect("bench SQL runs") {
            let status = job.wait().await;
            assert_eq!(status, weir_engine::runtime::job::JobStatus::Finished, "{status:?}");
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
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&state);
    (secs, summary)
}

/// The same rows as a DataFusion table in memory; only the query is timed.
async fn batch(events: i64, parallelism: usize, keys: i64, window: i64) -> f64 {
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
        let ts = Int64Array::from_iter_values((seq..seq + n).map(|s| 1_767_225_600_000 + s * STEP_MS));
        let k = Int64Array::from_iter_values((0..n).map(|_| (next() % keys as u64) as i64));
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
    let rows = ctx
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
    assert!(!rows.is_empty());
    secs
}

/// Peak resident set of this process, in KiB (Linux).
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}
