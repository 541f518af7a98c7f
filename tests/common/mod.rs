//! Shared helpers of the integration tests: run the real `weir` binary on
//! SQL files, read what its sinks wrote, and compute expected results
//! independently with DataFusion batch queries.

#![allow(dead_code)]

pub mod history;
pub mod kafka;
pub mod postgres;
pub mod repl_session;
pub mod restored;
pub mod s3;
pub mod tmpfs;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

/// A scratch directory removed at the end of the test.
pub fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// The result of one `weir run`.
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The count in the end-of-job line, e.g. `late rows`.
    pub fn counted(&self, what: &str) -> u64 {
        let line = self
            .stderr
            .lines()
            .find(|l| l.contains("finished:"))
            .unwrap_or_else(|| panic!("no job summary in stderr:\n{}", self.stderr));
        for part in line.split(", ") {
            let part = part.split(": ").last().unwrap_or(part);
            if let Some(n) = part.strip_suffix(what) {
                return n.trim().parse().expect("a count");
            }
        }
        panic!("no '{what}' in '{line}'")
    }
}

/// Runs `weir run` on `sql`, written to a file in `dir`. A job whose
/// output does not depend on timing also runs a second time, killed
/// midway and restored from its checkpoint, and must commit the same
/// output ([`restored`]).
pub fn weir_run(dir: &Path, sql: &str) -> Run {
    let twin = restored::deterministic(dir, sql).map(|paths| {
        let copy = scratch();
        restored::copy_tree(dir, copy.path());
        (copy, paths)
    });
    let run = run_once(dir, sql);
    if let Some((copy, paths)) = twin
        && run.ok
    {
        restored::assert_same_after_kill(dir, copy.path(), sql, &paths, &run);
    }
    run
}

/// Runs `weir run FILE` in `dir` and kills it with SIGKILL after `after`,
/// calling `meanwhile` every few milliseconds (to feed a live input);
/// false if it finished first (successfully: a failure fails the test).
/// Its log goes to `dir/run-<n>.log`.
pub fn killed_after(dir: &Path, file: &Path, after: std::time::Duration, meanwhile: &mut dyn FnMut()) -> bool {
    killed_after_with(dir, file, after, &[], meanwhile)
}

/// [`killed_after`] with `env` set for the run (an object store's
/// endpoint and keys).
pub fn killed_after_with(
    dir: &Path,
    file: &Path,
    after: std::time::Duration,
    env: &[(String, String)],
    meanwhile: &mut dyn FnMut(),
) -> bool {
    killed_when(dir, file, after, env, &mut || {
        meanwhile();
        false
    })
}

/// [`killed_after_with`] that kills the run once `ready` says so (it is
/// asked every few milliseconds), or after `deadline`: kills that follow
/// the run's progress, whatever the speed of the machine.
pub fn killed_when(
    dir: &Path,
    file: &Path,
    deadline: std::time::Duration,
    env: &[(String, String)],
    ready: &mut dyn FnMut() -> bool,
) -> bool {
    let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    let log_path = dir.join(format!("run-{n}.log"));
    let log = std::fs::File::create(&log_path).expect("run log");
    let started = std::time::SystemTime::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("run")
        .arg(file)
        .current_dir(dir)
        .env("WEIR_LOG", "warn,weir_engine=info")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start weir");
    let until = std::time::Instant::now() + deadline;
    while std::time::Instant::now() < until {
        if let Some(status) = child.try_wait().expect("wait for weir") {
            assert!(status.success(), "a run failed: {}", std::fs::read_to_string(&log_path).unwrap_or_default());
            return false;
        }
        if ready() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().expect("kill weir"); // SIGKILL
    let status = child.wait().expect("reap weir");
    // The run may have ended on its own just before the kill (it was not
    // killed), or finished its job and been killed on its way out: either
    // way it left its job's `finished` record (or `finishing`, which the
    // next run completes), and running it again would be a new run whose
    // output joins this one's.
    let ended = std::os::unix::process::ExitStatusExt::signal(&status).is_none();
    if ended || finished_since(dir, started, 4) {
        assert!(!ended || status.success(), "a run failed: {}", std::fs::read_to_string(&log_path).unwrap_or_default());
        return false;
    }
    true
}

/// Whether a job under `dir` (its state directory, up to `depth` levels
/// down) recorded since `since` that it finished or is finishing.
fn finished_since(dir: &Path, since: std::time::SystemTime, depth: usize) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let path = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => depth > 0 && finished_since(&path, since, depth - 1),
            Ok(_) => {
                ["finished", "finishing"].contains(&e.file_name().to_string_lossy().as_ref())
                    && e.metadata().and_then(|m| m.modified()).is_ok_and(|m| m >= since)
            }
            Err(_) => false,
        }
    })
}

/// Runs `sql` with `weir run` in `dir` once, without the kill-and-restore
/// twin [`weir_run`] adds.
pub fn run_once(dir: &Path, sql: &str) -> Run {
    run_once_with(dir, sql, &[])
}

/// [`run_once`] with `env` set for the run.
pub fn run_once_with(dir: &Path, sql: &str, env: &[(String, String)]) -> Run {
    let file = dir.join("job.sql");
    std::fs::write(&file, sql).expect("write sql");
    let out: Output = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("run")
        .arg(&file)
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("start weir");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// One input row of the window tests.
#[derive(Debug, Clone)]
pub struct Row {
    pub k: Option<String>,
    pub v: Option<i64>,
    pub ts: Option<i64>,
}

/// A small deterministic generator, so failures reproduce.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `n` rows over `keys` keys; `v` unique (a permutation of `0..n`), `ts`
/// `T0 + 10 ms * i` shuffled within each run of 100 rows (a file of them
/// is disordered by under a second, and no two rows share a time).
pub fn disordered_rows(seed: u64, n: i64, keys: u64) -> Vec<Row> {
    let mut g = Lcg(seed);
    let mut rows: Vec<Row> = (0..n)
        .map(|i| Row { k: Some(format!("k{}", g.below(keys))), v: Some((i * 7919) % n), ts: Some(T0 + i * 10) })
        .collect();
    for chunk in rows.chunks_mut(100) {
        for i in (1..chunk.len()).rev() {
            let j = g.below(i as u64 + 1) as usize;
            let (a, b) = (chunk[i].ts, chunk[j].ts);
            chunk[i].ts = b;
            chunk[j].ts = a;
        }
    }
    rows
}

/// Writes `rows` under `dir/in` as JSON files of 100 rows each.
pub fn write_input_files(dir: &Path, rows: &[Row]) {
    std::fs::create_dir_all(dir.join("in")).expect("input dir");
    for (i, chunk) in rows.chunks(100).enumerate() {
        write_json(&dir.join("in").join(format!("part-{i:03}.json")), chunk);
    }
}

/// The files of the sink at `dir/out` as sorted `a|b|…` lines of
/// `columns`, timestamps as epoch milliseconds.
pub fn committed_lines(dir: &Path, columns: &[&str]) -> Vec<String> {
    let mut lines: Vec<String> = read_sink(&dir.join("out"))
        .iter()
        .map(|r| {
            columns
                .iter()
                .map(|c| match &r[*c] {
                    serde_json::Value::Null => "null".to_string(),
                    serde_json::Value::String(s) if s.starts_with("20") => parse_timestamp(s).to_string(),
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect();
    lines.sort();
    lines
}

/// A job of `query` from table `t` (`k`, `v`, `ts`: JSON files under
/// `dir/in`, a watermark 2 s behind, per row) into `out` of columns `sink`:
/// `print` (a changelog) or files under `dir/out`.
pub fn kvt_job(dir: &Path, parallelism: usize, sink: &str, connector: &str, query: &str) -> String {
    let with = match connector {
        "print" => "'connector' = 'print'".to_string(),
        _ => format!("'connector' = 'filesystem', 'path' = '{}', 'format' = 'json'", dir.join("out").display()),
    };
    format!(
        "SET 'parallelism.default' = '{parallelism}';
CREATE TABLE t (k VARCHAR, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json', 'scan.watermark.emit.strategy' = 'on-event');
CREATE TABLE out ({sink}) WITH ({with});
INSERT INTO out {query};
",
        dir.join("in").display()
    )
}

/// Runs [`kvt_job`] over `rows` (with the kill-and-restore twin) in a new
/// directory, which it returns with the run.
pub fn run_kvt(rows: &[Row], parallelism: usize, sink: &str, connector: &str, query: &str) -> (tempfile::TempDir, Run) {
    let dir = scratch();
    write_input_files(dir.path(), rows);
    let run = weir_run(dir.path(), &kvt_job(dir.path(), parallelism, sink, connector, query));
    assert!(run.ok, "weir failed:\n{}", run.stderr);
    (dir, run)
}

/// DataFusion's answer to `query` over table `t` of `rows`, sorted lines.
pub async fn oracle_lines(rows: &[Row], query: &str) -> Vec<String> {
    let ctx = rows_table("t", rows);
    let mut lines = normalize_batches(&ctx.sql(query).await.unwrap().collect().await.unwrap());
    lines.sort();
    lines
}

/// The error output of [`kvt_job`] over the first rows of `rows` when it
/// must fail (`query` into a print table `k VARCHAR, v BIGINT`).
pub fn kvt_failing(rows: &[Row], query: &str) -> String {
    let dir = scratch();
    write_input_files(dir.path(), &rows[..rows.len().min(10)]);
    let run = run_once(dir.path(), &kvt_job(dir.path(), 1, "k VARCHAR, v BIGINT", "print", query));
    assert!(!run.ok, "{query} ran");
    run.stderr
}

/// 2026-01-01T00:00:00Z in milliseconds.
pub const T0: i64 = 1_767_225_600_000;

/// Writes rows as JSON lines, cycling through the three timestamp forms a
/// TIMESTAMP(3) field accepts: Flink's SQL format, ISO-8601 and epoch ms.
pub fn write_json(path: &Path, rows: &[Row]) {
    let mut s = String::new();
    for (i, r) in rows.iter().enumerate() {
        let ts = match r.ts {
            None => "null".to_string(),
            Some(t) => match i % 3 {
                0 => format!("\"{}\"", sql_timestamp(t)),
                1 => format!("\"{}Z\"", sql_timestamp(t).replace(' ', "T")),
                _ => t.to_string(),
            },
        };
        let k = r.k.as_ref().map(|k| format!("\"{k}\"")).unwrap_or("null".into());
        let v = r.v.map(|v| v.to_string()).unwrap_or("null".into());
        s.push_str(&format!("{{\"k\": {k}, \"v\": {v}, \"ts\": {ts}}}\n"));
    }
    std::fs::write(path, s).expect("write input");
}

/// `yyyy-MM-dd HH:mm:ss.SSS` of epoch milliseconds (UTC).
pub fn sql_timestamp(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// Epoch milliseconds of `yyyy-MM-dd HH:mm:ss[.SSS]` or the ISO form.
pub fn parse_timestamp(s: &str) -> i64 {
    let s = s.trim_end_matches('Z').replace('T', " ");
    let (date, time) = s.split_once(' ').expect("date and time");
    let mut d = date.split('-').map(|x| x.parse::<i64>().expect("date"));
    let (y, m, dd) = (d.next().unwrap(), d.next().unwrap(), d.next().unwrap());
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|x| x.parse::<i64>().expect("time"));
    let (h, mi, sec) = (t.next().unwrap(), t.next().unwrap(), t.next().unwrap_or(0));
    let frac = format!("{frac:0<3}");
    let ms: i64 = frac[..3].parse().expect("millis");
    days_from_civil(y, m, dd) * 86_400_000 + h * 3_600_000 + mi * 60_000 + sec * 1000 + ms
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Every JSON object in the visible part files of a sink directory.
pub fn read_sink(dir: &Path) -> Vec<serde_json::Value> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    files.sort();
    let mut rows = Vec::new();
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        for line in std::fs::read_to_string(&f).expect("read part").lines() {
            if !line.trim().is_empty() {
                rows.push(serde_json::from_str(line).expect("a JSON row"));
            }
        }
    }
    rows
}

/// Hidden (in-progress) files left in a sink directory.
pub fn hidden_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

/// The output columns of the window tests, in order.
pub const AGG_COLUMNS: [&str; 9] = ["window_start", "window_end", "k", "c", "d", "s", "mn", "mx", "a"];

/// A sink row as one comparable line: timestamps as epoch ms, averages
/// rounded to 6 decimals.
pub fn normalize_json(row: &serde_json::Value) -> String {
    AGG_COLUMNS
        .iter()
        .map(|c| {
            let v = row.get(*c).unwrap_or(&serde_json::Value::Null);
            match (*c, v) {
                (_, serde_json::Value::Null) => "null".to_string(),
                ("window_start" | "window_end", serde_json::Value::String(s)) => parse_timestamp(s).to_string(),
                ("a", serde_json::Value::Number(n)) => format!("{:.6}", n.as_f64().unwrap()),
                (_, serde_json::Value::String(s)) => s.clone(),
                (_, other) => other.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("|")
}

/// Batch rows as comparable lines (same form as [`normalize_json`]).
pub fn normalize_batches(batches: &[RecordBatch]) -> Vec<String> {
    let opts = FormatOptions::default().with_null("null");
    let mut out = Vec::new();
    for b in batches {
        let fmts: Vec<ArrayFormatter> =
            b.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).expect("formatter")).collect();
        for r in 0..b.num_rows() {
            let cells: Vec<String> = fmts
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let s = f.value(r).to_string();
                    if b.schema().field(i).name() == "a" && s != "null" {
                        format!("{:.6}", s.parse::<f64>().expect("avg"))
                    } else {
                        s
                    }
                })
                .collect();
            out.push(cells.join("|"));
        }
    }
    out.sort();
    out
}

/// Window shapes of the oracle.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    Tumble {
        size: i64,
        offset: i64,
    },
    Hop {
        slide: i64,
        size: i64,
    },
    Cumulate {
        step: i64,
        max: i64,
    },
    /// Only for [`aggregate`]: sessions come from [`decide_sessions`].
    Session,
}

impl Shape {
    fn windows_of(&self, ts: i64) -> Vec<(i64, i64)> {
        match *self {
            Shape::Tumble { size, offset } => {
                let s = ts - (ts - offset).rem_euclid(size);
                vec![(s, s + size)]
            }
            Shape::Hop { slide, size } => {
                // Every start on the slide grid with start <= ts < start + size.
                let mut v = Vec::new();
                let last = ts - ts.rem_euclid(slide);
                let mut s = last;
                while s > ts - size {
                    v.push((s, s + size));
                    s -= slide;
                }
                v.reverse();
                v
            }
            Shape::Session => unreachable!("sessions are assigned by decide_sessions"),
            Shape::Cumulate { step, max } => {
                // [cycle start, e) for every step end e from ts's step to the cycle's end.
                let start = ts - ts.rem_euclid(max);
                let mut e = ts - ts.rem_euclid(step) + step;
                let mut v = Vec::new();
                while e <= start + max {
                    v.push((start, e));
                    e += step;
                }
                v
            }
        }
    }
}

/// What the row-by-row oracle decided for every input row.
pub struct Decisions {
    /// (window start, window end, row) for every window a row counts toward.
    pub assigned: Vec<(i64, i64, Row)>,
    /// Late rows with the watermark in force when they arrived.
    pub late: Vec<(Row, i64)>,
    /// Rows with a NULL or out-of-range event time, with the watermark.
    pub invalid: Vec<(Row, i64)>,
}

/// Flink's on-event lateness, written out row by row: the watermark before
/// a row is the maximum valid event time of the rows before it minus the
/// delay; a row counts toward each of its windows whose `end - 1 +
/// lateness` is past that watermark, and is late when none is. Rows whose
/// event time is NULL or outside `valid` count nowhere and hold nothing.
pub fn decide(rows: &[Row], shape: Shape, delay: i64, lateness: i64, valid: (i64, i64)) -> Decisions {
    let mut wm = i64::MIN;
    let mut d = Decisions { assigned: Vec::new(), late: Vec::new(), invalid: Vec::new() };
    for r in rows {
        let ts = match r.ts {
            Some(ts) if ts >= valid.0 && ts <= valid.1 => ts,
            _ => {
                d.invalid.push((r.clone(), wm));
                continue;
            }
        };
        let mut counted = false;
        for (s, e) in shape.windows_of(ts) {
            if wm == i64::MIN || e - 1 + lateness > wm {
                d.assigned.push((s, e, r.clone()));
                counted = true;
            }
        }
        if !counted {
            d.late.push((r.clone(), wm));
        }
        wm = wm.max(ts - delay);
    }
    d
}

/// The oracle's windows (no lateness, every time valid) and its late count.
pub fn oracle_assign(rows: &[Row], shape: Shape, delay: i64) -> (Vec<(i64, i64, Row)>, u64) {
    let d = decide(rows, shape, delay, 0, (i64::MIN, i64::MAX));
    (d.assigned, d.late.len() as u64)
}

/// The expected aggregation, computed by DataFusion as a batch query over
/// the rows the oracle assigned to windows. For tumbling windows the window
/// is recomputed in SQL with `date_bin` from the row's time.
pub async fn oracle_results(rows: &[Row], shape: Shape, delay: i64) -> (Vec<String>, u64) {
    let (assigned, late) = oracle_assign(rows, shape, delay);
    (aggregate(&assigned, shape).await, late)
}

/// A DataFusion context holding `rows` as table `name` (`k`, `v`, `ts`),
/// for an oracle's batch query over the rows a job read.
pub fn rows_table(name: &str, rows: &[Row]) -> SessionContext {
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Utf8, true),
        Field::new("v", DataType::Int64, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(rows.iter().map(|r| r.k.clone()).collect::<Vec<_>>())),
        Arc::new(Int64Array::from(rows.iter().map(|r| r.v).collect::<Vec<_>>())),
        Arc::new(TimestampMillisecondArray::from(rows.iter().map(|r| r.ts).collect::<Vec<_>>())),
    ];
    let ctx = SessionContext::new();
    ctx.register_batch(name, RecordBatch::try_new(schema, columns).expect("rows batch")).expect("register");
    ctx
}

/// DataFusion's batch aggregation of (window, row) pairs.
pub async fn aggregate(assigned: &[(i64, i64, Row)], shape: Shape) -> Vec<String> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("ws", DataType::Int64, false),
        Field::new("we", DataType::Int64, false),
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), false),
        Field::new("k", DataType::Utf8, true),
        Field::new("v", DataType::Int64, true),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(assigned.iter().map(|a| a.0))),
        Arc::new(Int64Array::from_iter_values(assigned.iter().map(|a| a.1))),
        Arc::new(TimestampMillisecondArray::from_iter_values(assigned.iter().map(|a| a.2.ts.unwrap()))),
        Arc::new(StringArray::from_iter(assigned.iter().map(|a| a.2.k.clone()))),
        Arc::new(Int64Array::from_iter(assigned.iter().map(|a| a.2.v))),
    ];
    let batch = RecordBatch::try_new(Arc::clone(&schema), cols).expect("oracle batch");
    let ctx = SessionContext::new();
    ctx.register_table("t", Arc::new(MemTable::try_new(schema, vec![vec![batch]]).expect("mem table")))
        .expect("register");
    // Flink's AVG of a BIGINT: the sum divided by the count, truncated.
    let aggs = "count(*) AS c, count(DISTINCT v) AS d, sum(v) AS s, min(v) AS mn, max(v) AS mx, \
                CAST(sum(v) / NULLIF(count(v), 0) AS DOUBLE) AS a";
    let sql = match shape {
        Shape::Tumble { size, offset } => format!(
            "SELECT CAST(arrow_cast(date_bin(INTERVAL '{size} milliseconds', ts, to_timestamp_millis({offset})), 'Timestamp(Millisecond, None)') AS BIGINT) AS window_start,
                    CAST(arrow_cast(date_bin(INTERVAL '{size} milliseconds', ts, to_timestamp_millis({offset})), 'Timestamp(Millisecond, None)') AS BIGINT) + {size} AS window_end,
                    k, {aggs} FROM t GROUP BY 1, 2, k"
        ),
        Shape::Hop { .. } | Shape::Cumulate { .. } | Shape::Session => format!("SELECT ws AS window_start, we AS window_end, k, {aggs} FROM t GROUP BY ws, we, k"),
    };
    let batches = ctx.sql(&sql).await.expect("plan").collect().await.expect("run");
    normalize_batches(&batches)
}

/// Asserts two sorted row lists are equal, showing only the differences.
#[track_caller]
pub fn assert_rows_eq(got: &[String], expected: &[String], what: &str) {
    if got == expected {
        return;
    }
    let missing: Vec<&String> = expected.iter().filter(|r| !got.contains(r)).take(5).collect();
    let extra: Vec<&String> = got.iter().filter(|r| !expected.contains(r)).take(5).collect();
    panic!(
        "{what}: {} rows, expected {}\nmissing (first 5): {missing:#?}\nunexpected (first 5): {extra:#?}",
        got.len(),
        expected.len()
    );
}

/// Session windows per key, row by row as Flink's merging windows work
/// without allowed lateness: before each row, sessions whose `end - 1` the
/// watermark has reached fire and are gone; the row's `[ts, ts + gap)`
/// merges with the open sessions of its key it overlaps; the row is late if
/// the merged session has already ended. Returns (session, row) pairs and
/// the late count.
pub fn decide_sessions(rows: &[Row], gap: i64, delay: i64) -> (Vec<(i64, i64, Row)>, u64) {
    use std::collections::HashMap;
    let mut wm = i64::MIN;
    type Sessions = Vec<(i64, i64, Vec<Row>)>;
    let mut open: HashMap<Option<String>, Sessions> = HashMap::new();
    let mut done: Vec<(i64, i64, Row)> = Vec::new();
    let mut late = 0;
    for r in rows {
        for sessions in open.values_mut() {
            let (fired, kept): (Vec<_>, Vec<_>) =
                std::mem::take(sessions).into_iter().partition(|s| wm != i64::MIN && s.1 - 1 <= wm);
            for (s, e, rs) in fired {
                done.extend(rs.into_iter().map(|r| (s, e, r)));
            }
            *sessions = kept;
        }
        let Some(ts) = r.ts else { continue };
        let sessions = open.entry(r.k.clone()).or_default();
        let (mut start, mut end) = (ts, ts + gap);
        let (touching, rest): (Vec<_>, Vec<_>) =
            std::mem::take(sessions).into_iter().partition(|s| s.0 <= end && s.1 >= start);
        for s in &touching {
            start = start.min(s.0);
            end = end.max(s.1);
        }
        if wm != i64::MIN && end - 1 <= wm {
            late += 1;
            *sessions = rest;
            sessions.extend(touching);
            continue;
        }
        let mut members: Vec<Row> = touching.into_iter().flat_map(|s| s.2).collect();
        members.push(r.clone());
        *sessions = rest;
        sessions.push((start, end, members));
        wm = wm.max(ts - delay);
    }
    for sessions in open.into_values() {
        for (s, e, rs) in sessions {
            done.extend(rs.into_iter().map(|r| (s, e, r)));
        }
    }
    (done, late)
}

/// Applies the changes the `print` connector wrote to standard output
/// (`+I[…]`, `-U[…]`, …, after a `n> ` subtask prefix) in order, checking
/// each against the rows so far;
/// a row is identified by its first `key_len` values. Returns the final
/// rows (`a|b|…`, sorted) and how many of each kind there were.
pub fn apply_changelog(stdout: &str, key_len: usize) -> (Vec<String>, std::collections::BTreeMap<String, usize>) {
    let mut rows: std::collections::BTreeMap<Vec<String>, Vec<String>> = std::collections::BTreeMap::new();
    let mut kinds = std::collections::BTreeMap::new();
    for line in stdout.lines() {
        // `2> +U[k1, 3]`: the subtask prefix, the kind, the values.
        let line = line.split_once("> ").map_or(line, |(_, rest)| rest);
        let (kind, values) = line.split_at(2);
        let values: Vec<String> =
            values.trim_start_matches('[').trim_end_matches(']').split(", ").map(String::from).collect();
        *kinds.entry(kind.to_string()).or_insert(0) += 1;
        let key = values[..key_len].to_vec();
        match kind {
            "+I" | "+U" => {
                let before = rows.insert(key, values.clone());
                assert!(before.is_none(), "{line}: the key already has row {before:?}");
            }
            "-U" | "-D" => {
                let current = rows.remove(&key);
                assert_eq!(current.as_ref(), Some(&values), "{line} withdraws a row that is not the key's current one");
            }
            other => panic!("not a change: {other} in {line}"),
        }
    }
    let mut out: Vec<String> = rows.into_values().map(|v| v.join("|")).collect();
    out.sort();
    (out, kinds)
}

/// Applies the changes the `print` connector wrote (`+I[…]`, `-U[…]`, …,
/// after a `n> ` subtask prefix) in order to a multiset of rows, for a
/// changelog without a key (rows may repeat): an insert adds one copy, a
/// retraction takes away one copy, which must be there. Returns the rows
/// left (`a|b|…`, sorted, each as many times as it is there) and how many
/// changes of each kind there were.
pub fn apply_multiset_changelog(stdout: &str) -> (Vec<String>, std::collections::BTreeMap<String, usize>) {
    let mut rows: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    let mut kinds = std::collections::BTreeMap::new();
    for line in stdout.lines() {
        let change = match line.split_once("> ") {
            Some((subtask, rest)) if !subtask.is_empty() && subtask.chars().all(|c| c.is_ascii_digit()) => rest,
            _ => line,
        };
        let (kind, values) = change.split_at(2);
        let row = values.trim_start_matches('[').trim_end_matches(']').replace(", ", "|");
        *kinds.entry(kind.to_string()).or_insert(0) += 1;
        match kind {
            "+I" | "+U" => *rows.entry(row).or_insert(0) += 1,
            "-U" | "-D" => match rows.get_mut(&row) {
                Some(n) if *n > 1 => *n -= 1,
                Some(_) => {
                    rows.remove(&row);
                }
                None => panic!("{line} withdraws a row that is not there"),
            },
            other => panic!("not a change: {other} in {line}"),
        }
    }
    let out = rows.into_iter().flat_map(|(row, n)| std::iter::repeat_n(row, n)).collect();
    (out, kinds)
}

/// Runs `query` over `rows` (as [`run_kvt`]) into a print table of columns
/// `sink` at each parallelism and applies the changes it prints — rows
/// told apart by their first `key_len` values, or a multiset with 0 —
/// checking they end in DataFusion's answer to `oracle`; returns the kinds
/// of change of each run.
pub async fn changes_end_in(
    rows: &[Row],
    oracle: &str,
    sink: &str,
    query: &str,
    key_len: usize,
    parallelism: &[usize],
) -> Vec<std::collections::BTreeMap<String, usize>> {
    let expected = oracle_lines(rows, oracle).await;
    assert!(!expected.is_empty(), "no rows to compare: {oracle}");
    let mut kinds = Vec::new();
    for p in parallelism {
        let (_dir, run) = run_kvt(rows, *p, sink, "print", query);
        let (mut got, k) = match key_len {
            0 => apply_multiset_changelog(&run.stdout),
            n => apply_changelog(&run.stdout, n),
        };
        got.sort();
        assert_rows_eq(&got, &expected, &format!("{query} at parallelism {p}"));
        kinds.push(k);
    }
    kinds
}
