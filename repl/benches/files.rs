//! File sources: a filter and projection over files of integers and
//! timestamps, as CSV and as JSON lines, `filesystem` → `blackhole`, through
//! the real `weir run`; and DataFusion reading the same files with the same
//! query, the bar for decoding.
//!
//! `cargo bench --bench files [-- --rows 1000000,10000000 --format csv,json
//! --files 1,2 --parallelism 1,2 --datafusion yes]`
//!
//! Each case writes `--rows` rows over `--files` files (`id`, `k`, `v`
//! BIGINT and `ts` TIMESTAMP(3), about 50 bytes a CSV line and 80 a JSON
//! one), then runs `SELECT … WHERE v % 4 <> 0`. It reports wall time, the
//! process's CPU time and peak RSS (from `wait4`), rows/s and rows per CPU
//! second, and checks that every row decoded and that exactly the rows the
//! generator knows pass the filter: a run that drops rows reports no speed.
//! The table sets `'source.split-size'` to 32 MiB, so one big file is read
//! in splits by every subtask, as two files are.

mod support;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::prelude::{CsvReadOptions, JsonReadOptions, SessionConfig, SessionContext};
use futures::StreamExt;
use support::{Usage, WeirRun, child_result, flag, numbers};
use weir_engine::peak_memory::peak_rss_kib;

/// Row `i`'s event time is `i` ms after 2026-01-01 00:00:00.
const BASE_MS: i64 = 1_767_225_600_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let (format, dir, parallelism) = (&args[i + 1], &args[i + 2], args[i + 3].parse().expect("parallelism"));
        let (secs, rows) = datafusion_run(format, Path::new(dir), parallelism);
        println!("RESULT {secs} {rows} {}", peak_rss_kib());
        return;
    }
    let sizes: Vec<usize> = numbers("--rows", "1000000,10000000");
    let formats: Vec<String> = flag("--format", "csv,json").split(',').map(str::to_string).collect();
    let file_counts: Vec<usize> = numbers("--files", "1,2");
    let parallelism: Vec<usize> = numbers("--parallelism", "1,2");
    let with_datafusion = flag("--datafusion", "yes") != "no";
    println!("| engine | format | rows | files | par | wall s | rows/s | CPU s | rows/s/core | peak RSS MiB |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for format in &formats {
        for &rows in &sizes {
            for &files in &file_counts {
                let dir = tempfile::tempdir().expect("input directory");
                let passing = write_input(dir.path(), format, rows, files);
                for &p in &parallelism {
                    let sql = job_sql(dir.path(), format, p);
                    let (usage, written) = WeirRun::to_end(&sql);
                    assert_eq!(written.bad_records, 0, "{format}: every generated record decodes");
                    assert_eq!(written.rows, passing, "{format}: the rows the filter keeps");
                    report("weir", format, rows, files, p, usage);
                    if with_datafusion {
                        let usage = datafusion_child(format, dir.path(), p, passing);
                        report("datafusion", format, rows, files, p, usage);
                    }
                }
            }
        }
    }
}

fn report(engine: &str, format: &str, rows: usize, files: usize, p: usize, u: Usage) {
    println!(
        "| {engine} | {format} | {rows} | {files} | {p} | {:.2} | {:.0} | {:.2} | {:.0} | {:.1} |",
        u.wall,
        rows as f64 / u.wall,
        u.cpu,
        rows as f64 / u.cpu,
        u.peak_rss_mib
    );
}

/// Writes `rows` rows over `files` files of `dir` (`part-N.csv` or `.json`)
/// and returns how many pass the query's filter.
fn write_input(dir: &Path, format: &str, rows: usize, files: usize) -> u64 {
    let mut state: u64 = 2026;
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        state >> 33
    };
    let per_file = rows.div_ceil(files);
    let mut passing = 0;
    for f in 0..files {
        let path = dir.join(format!("part-{f}.{format}"));
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).expect("create input file"));
        let mut line = String::new();
        for id in (f * per_file)..((f + 1) * per_file).min(rows) {
            let (k, v) = (next() % 10_000, next() % 1_000_000);
            passing += u64::from(v % 4 != 0);
            let ts = timestamp(BASE_MS + id as i64);
            line.clear();
            let _ = match format {
                "csv" => writeln!(line, "{id},{k},{v},{ts}"),
                _ => writeln!(line, r#"{{"id":{id},"k":{k},"v":{v},"ts":"{ts}"}}"#),
            };
            out.write_all(line.as_bytes()).expect("write input");
        }
        out.flush().expect("write input");
    }
    passing
}

/// `ms` since the epoch as Flink's SQL timestamp text, `2026-01-01
/// 00:00:00.123` (UTC).
fn timestamp(ms: i64) -> String {
    let t = datafusion::arrow::temporal_conversions::timestamp_ms_to_datetime(ms).expect("a valid time");
    t.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

fn job_sql(dir: &Path, format: &str, parallelism: usize) -> String {
    format!(
        "SET 'parallelism.default' = '{parallelism}';
CREATE TABLE ev (id BIGINT, k BIGINT, v BIGINT, ts TIMESTAMP(3))
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = '{format}', 'source.split-size' = '32 mb');
CREATE TABLE out (id BIGINT, k BIGINT, v BIGINT, ts TIMESTAMP(3)) WITH ('connector' = 'blackhole');
INSERT INTO out SELECT id, k, v, ts FROM ev WHERE v % 4 <> 0;",
        dir.display()
    )
}

/// DataFusion over the same files in a child process (so that its peak
/// memory is its own); checks it kept `passing` rows.
fn datafusion_child(format: &str, dir: &Path, parallelism: usize, passing: u64) -> Usage {
    let started = Instant::now();
    let args = [format.to_string(), dir.display().to_string(), parallelism.to_string()];
    let fields = child_result(&args).expect("datafusion over the files");
    let wall = started.elapsed().as_secs_f64();
    let f: Vec<f64> = fields.iter().map(|v| v.parse().expect("a number")).collect();
    assert_eq!(f[1] as u64, passing, "datafusion keeps the same rows");
    // The child's CPU time is not measured; its query ran on `parallelism`
    // threads for `f[0]` seconds.
    Usage { wall, cpu: f[0] * parallelism as f64, peak_rss_mib: f[2] / 1024.0 }
}

/// The query as a DataFusion batch over the files: seconds and rows kept.
fn datafusion_run(format: &str, dir: &Path, parallelism: usize) -> (f64, u64) {
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("k", DataType::Int64, false),
        Field::new("v", DataType::Int64, false),
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), false),
    ]);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(parallelism).enable_all().build().expect("runtime");
    runtime.block_on(async {
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(parallelism));
        let path = dir.display().to_string();
        let started = Instant::now();
        let ev = match format {
            "csv" => {
                let options = CsvReadOptions::new().schema(&schema).has_header(false).file_extension(".csv");
                ctx.read_csv(path, options).await
            }
            _ => {
                let options = JsonReadOptions::default().schema(&schema).file_extension(".json");
                ctx.read_json(path, options).await
            }
        };
        ctx.register_table("ev", ev.expect("read files").into_view()).expect("register");
        let query = ctx.sql("SELECT id, k, v, ts FROM ev WHERE v % 4 <> 0").await.expect("plan");
        // Streamed, as weir's sink takes them: the rows are not all held.
        let mut batches = query.execute_stream().await.expect("run");
        let mut rows = 0;
        while let Some(batch) = batches.next().await {
            rows += batch.expect("a batch").num_rows() as u64;
        }
        (started.elapsed().as_secs_f64(), rows)
    })
}
