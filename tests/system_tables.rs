//! The `weir.*` system tables and the Prometheus endpoint, each checked
//! against a job whose behaviour the test knows independently: a key the
//! input gives half the rows shows on top of `weir.hot_keys`; the late rows
//! the row-by-row oracle finds are `weir.late_events`' count; a print sink
//! whose stdout nobody reads backpressures the tasks before it and its
//! checkpoints time out (the same job with a drained stdout neither
//! backpressures nor fails a checkpoint); a Kafka partition nothing is
//! written to is idle in `weir.watermarks`, and `weir.kafka_lag` agrees
//! with the offsets produced; a scrape of `/metrics`, parsed by Prometheus's
//! own Python parser, agrees with the tables. Tables are read with psql
//! over pgwire (`weir serve`) and from a `weir run` file.

use crate::common;
use crate::grafana;

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::kafka::Broker;
use common::*;

const DELAY: i64 = 2_000;
const TUMBLE: Shape = Shape::Tumble { size: 1_000, offset: 0 };

/// A port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// A running `weir serve --metrics-port`; killed when dropped.
struct Server {
    child: Child,
    pg: u16,
    metrics: u16,
    log: PathBuf,
}

impl Server {
    /// Starts `weir serve FILE` in `dir`, its stdout going to `stdout`, and
    /// waits until both ports answer.
    fn start(dir: &Path, file: &Path, stdout: Stdio) -> Server {
        let (pg, metrics) = (free_port(), free_port());
        let log = dir.join(format!("serve-{pg}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["serve", "--pg-port", &pg.to_string(), "--metrics-port", &metrics.to_string()])
            .arg(file)
            .env_remove("WEIR_PG_PASSWORD")
            .current_dir(dir)
            .stdout(stdout)
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start weir serve");
        let mut s = Server { child, pg, metrics, log };
        let until = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", pg)).is_err() || TcpStream::connect(("127.0.0.1", metrics)).is_err() {
            if let Some(status) = s.child.try_wait().expect("wait") {
                panic!("weir serve exited ({status}):\n{}", s.log());
            }
            assert!(Instant::now() < until, "weir serve does not listen:\n{}", s.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// psql's rows (unaligned, `|`-separated, NULL as `null`) of a query
    /// that must succeed.
    #[track_caller]
    fn psql(&self, sql: &str) -> Vec<Vec<String>> {
        let out = Command::new("psql")
            .args(["-X", "-w", "-h", "127.0.0.1", "-p", &self.pg.to_string(), "-U", "weir", "-d", "weir"])
            .args(["-A", "-t", "-F", "|", "-P", "null=null", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .env("PGCONNECT_TIMEOUT", "20")
            .env_remove("PGPASSWORD")
            .output()
            .expect("run psql (Debian's postgresql-client; scripts/test.sh installs it)");
        assert!(out.status.success(), "psql -c {sql:?}: {}\n{}", String::from_utf8_lossy(&out.stderr), self.log());
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| l.split('|').map(str::to_string).collect())
            .collect()
    }

    /// Polls `sql` until `done` holds for its rows; the rows.
    #[track_caller]
    fn poll(&self, sql: &str, what: &str, done: impl Fn(&[Vec<String>]) -> bool) -> Vec<Vec<String>> {
        let until = Instant::now() + Duration::from_secs(90);
        loop {
            let rows = self.psql(sql);
            if done(&rows) {
                return rows;
            }
            assert!(Instant::now() < until, "{what}: last rows of {sql:?}: {rows:?}\n{}", self.log());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A scrape of `/metrics`, parsed by Prometheus's Python client.
    fn scrape(&self) -> Vec<Sample> {
        scrape(&format!("http://127.0.0.1:{}/metrics", self.metrics))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One sample of a scrape.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A venv with Prometheus's Python client (its text-format parser), made
/// once under the target directory and kept.
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let target = Path::new(env!("CARGO_BIN_EXE_weir")).ancestors().nth(2).expect("target dir").to_path_buf();
        let venv = target.join("metrics-venv");
        let python = venv.join("bin/python");
        let ready =
            |p: &Path| Command::new(p).args(["-c", "import prometheus_client"]).status().is_ok_and(|s| s.success());
        if !ready(&python) {
            let made = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().expect("python3");
            assert!(made.success(), "python3 -m venv failed (Debian: python3-venv)");
            let pip =
                Command::new(venv.join("bin/pip")).args(["install", "-q", "prometheus_client"]).status().expect("pip");
            assert!(pip.success(), "pip install prometheus_client failed");
        }
        python
    })
}

/// GETs `url` (Python's urllib) and parses the Prometheus text with
/// `prometheus_client.parser`: every sample as (name, labels, value).
fn scrape(url: &str) -> Vec<Sample> {
    const SCRIPT: &str = "import sys, json, urllib.request
from prometheus_client.parser import text_string_to_metric_families
with urllib.request.urlopen(sys.argv[1], timeout=60) as r:
    assert r.status == 200 and r.headers['Content-Type'].startswith('text/plain'), (r.status, r.headers)
    text = r.read().decode('utf-8')
out = []
for fam in text_string_to_metric_families(text):
    for s in fam.samples:
        out.append([s.name, s.labels, s.value])
json.dump(out, sys.stdout)";
    let out = Command::new(python()).args(["-c", SCRIPT, url]).output().expect("python");
    assert!(out.status.success(), "scraping {url}: {}", String::from_utf8_lossy(&out.stderr));
    let parsed: Vec<(String, BTreeMap<String, String>, f64)> =
        serde_json::from_slice(&out.stdout).expect("parser output");
    parsed.into_iter().map(|(name, labels, value)| Sample { name, labels, value }).collect()
}

/// The samples named `name` whose labels include all of `labels`.
fn samples<'a>(scrape: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
    scrape
        .iter()
        .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
        .collect()
}

fn num(s: &str) -> f64 {
    s.parse().unwrap_or_else(|_| panic!("not a number: {s:?}"))
}

/// In event-time order (1 ms apart), half the rows have the key `hot` and
/// the rest spread over 40 keys; every 50th row is sent back 10 s (late).
fn skewed_rows(n: usize) -> Vec<Row> {
    let mut g = Lcg(10);
    let mut rows: Vec<Row> = (0..n)
        .map(|i| {
            let k = if g.below(2) == 0 { "hot".to_string() } else { format!("k{}", g.below(40)) };
            Row { k: Some(k), v: Some(g.below(100) as i64), ts: Some(T0 + i as i64) }
        })
        .collect();
    for i in (5_000..n).step_by(50) {
        rows[i].ts = rows[i].ts.map(|t| t - 10_000);
    }
    rows
}

#[test]
fn hot_keys_late_events_operators_and_metrics_over_pgwire() {
    let dir = scratch();
    let rows = skewed_rows(300_000);
    write_json(&dir.path().join("in.json"), &rows);
    let file = dir.path().join("job.sql");
    std::fs::write(
        &file,
        format!(
            "SET 'parallelism.default' = '2';
SET 'execution.checkpointing.interval' = '0';
CREATE TABLE src (k VARCHAR, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json', 'scan.watermark.emit.strategy' = 'on-event');
CREATE TABLE out (ws TIMESTAMP(3), k VARCHAR, c BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO out SELECT window_start, k, count(*) FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' SECOND))
GROUP BY window_start, window_end, k;",
            dir.path().join("in.json").display()
        ),
    )
    .expect("job file");
    let server = Server::start(dir.path(), &file, Stdio::null());
    let jobs = server.poll("SELECT job_id, status, rows_in FROM weir.jobs", "the job does not finish", |r| {
        r.len() == 1 && r[0][1] != "RUNNING"
    });
    assert_eq!(jobs[0][1], "FINISHED", "{}", server.log());
    assert_eq!(num(&jobs[0][2]), rows.len() as f64);
    let job = jobs[0][0].clone();

    // The hot key: its share of the rows, estimated from a sample of each
    // batch, is near the true one.
    let hot_share = rows.iter().filter(|r| r.k.as_deref() == Some("hot")).count() as f64 / rows.len() as f64;
    let top = server.psql("SELECT key, rows, share, skew_ratio FROM weir.hot_keys ORDER BY rank");
    assert!(!top.is_empty() && top.len() <= 10, "{top:?}");
    assert_eq!(top[0][0], "hot", "{top:?}");
    assert!((num(&top[0][2]) - hot_share).abs() < 0.1, "estimated share {} vs {hot_share}: {top:?}", top[0][2]);
    assert!((num(&top[0][1]) / rows.len() as f64 - hot_share).abs() < 0.1, "{top:?}");
    // 40 other keys share the other half: `hot` is about 20 times the mean.
    assert!(num(&top[0][3]) > 5.0, "{top:?}");
    assert!(top[1..].iter().all(|r| r[0].starts_with('k') && num(&r[3]) < num(&top[0][3])), "{top:?}");

    // Late rows: the row-by-row oracle's count, under their reason.
    let late = decide(&rows, TUMBLE, DELAY, 0, (i64::MIN, i64::MAX)).late.len() as f64;
    assert!(late > 1_000.0);
    let reasons = server.psql("SELECT reason, sum(rows) FROM weir.late_events GROUP BY reason ORDER BY reason");
    let by_reason: BTreeMap<String, f64> = reasons.iter().map(|r| (r[0].clone(), num(&r[1]))).collect();
    assert_eq!(by_reason.get("late"), Some(&late), "{reasons:?}");
    assert_eq!(by_reason.get("invalid_event_time"), Some(&0.0), "{reasons:?}");
    assert_eq!(by_reason.get("decode_error"), Some(&0.0), "{reasons:?}");

    // Every row crossed the exchange: the sources' rows out and the window
    // tasks' rows in both add up to the input.
    let ops = server.psql(
        "SELECT stage, subtask, operator, rows_in, rows_out, batches_in, busy_share + idle_share + backpressured_share, queue_depth
         FROM weir.operators ORDER BY stage, subtask",
    );
    assert_eq!(ops.len(), 4, "{ops:?}");
    let total = |stage: &str, col: usize| ops.iter().filter(|r| r[0] == stage).map(|r| num(&r[col])).sum::<f64>();
    assert_eq!(total("0", 4), rows.len() as f64, "{ops:?}");
    assert_eq!(total("1", 3), rows.len() as f64, "{ops:?}");
    assert!(
        ops.iter().filter(|r| r[0] == "1").all(|r| r[2].contains("WindowAggregate") && r[2].ends_with("Sink: out")),
        "{ops:?}"
    );
    assert!(total("1", 5) >= (rows.len() / 8192) as f64, "{ops:?}");
    for r in &ops {
        // Busy, idle and backpressured split the task's time.
        assert!((num(&r[6]) - 1.0).abs() < 1e-6, "{r:?}");
        // The job ended: nothing waits in a channel.
        assert_eq!(r[7], "0", "{r:?}");
    }

    let memory = server.psql("SELECT operator, bytes FROM weir.memory WHERE job_id IS NULL");
    assert_eq!(memory.len(), 1, "{memory:?}");
    assert!(num(&memory[0][1]) > 1e6, "{memory:?}");

    // The scrape parses with Prometheus's parser and agrees with the tables
    // (the job has ended: nothing moves between the two reads).
    let scrape = server.scrape();
    for r in
        server.psql("SELECT stage, subtask, operator, rows_in, rows_out, batches_in, batches_out FROM weir.operators")
    {
        let labels = [
            ("job_id", job.as_str()),
            ("stage", r[0].as_str()),
            ("subtask", r[1].as_str()),
            ("operator", r[2].as_str()),
        ];
        for (name, col) in [
            ("weir_operator_rows_in_total", 3),
            ("weir_operator_rows_out_total", 4),
            ("weir_operator_batches_in_total", 5),
            ("weir_operator_batches_out_total", 6),
        ] {
            let s = samples(&scrape, name, &labels);
            assert_eq!(s.len(), 1, "{name} {labels:?}: {s:?}");
            assert_eq!(s[0].value, num(&r[col]), "{name} {labels:?}");
        }
    }
    let dropped: f64 = samples(&scrape, "weir_dropped_rows_total", &[("job_id", &job), ("reason", "late")])
        .iter()
        .map(|s| s.value)
        .sum();
    assert_eq!(dropped, late);
    let top_metric = samples(&scrape, "weir_hot_key_share", &[("job_id", &job), ("rank", "1")]);
    assert_eq!(top_metric.len(), 1, "{top_metric:?}");
    assert_eq!(top_metric[0].labels.get("key").map(String::as_str), Some("hot"));
    assert_eq!(top_metric[0].value, num(&top[0][2]));
    assert_eq!(samples(&scrape, "weir_job_rows_in_total", &[("job_id", &job)])[0].value, rows.len() as f64);
    assert_eq!(samples(&scrape, "weir_job_running", &[("job_id", &job), ("status", "FINISHED")])[0].value, 0.0);
    assert!(samples(&scrape, "weir_process_resident_memory_bytes", &[])[0].value > 1e6);
}

/// 40 000 rows over 3 000 keys in `dir/in` beside a FIFO, which keeps a
/// job reading them running with its state, and `job` (its `{}` the input
/// directory) as `dir/job.sql`: the file and the input's distinct keys.
fn job_over_keys(dir: &Path, seed: u64, job: &str) -> (PathBuf, usize) {
    let mut g = Lcg(seed);
    let rows: Vec<Row> = (0..40_000)
        .map(|i| Row { k: Some(format!("k{}", g.below(3_000))), v: Some(g.below(100) as i64), ts: Some(T0 + i) })
        .collect();
    let distinct = rows.iter().map(|r| r.k.clone()).collect::<std::collections::BTreeSet<_>>().len();
    std::fs::create_dir(dir.join("in")).expect("input dir");
    write_json(&dir.join("in/a.json"), &rows);
    assert!(Command::new("mkfifo").arg(dir.join("in/zz.pipe")).status().expect("mkfifo").success());
    let file = dir.join("job.sql");
    std::fs::write(&file, job.replace("{}", &dir.join("in").display().to_string())).expect("job file");
    (file, distinct)
}

/// `weir.memory` per stateful operator of a running job: a GROUP BY over
/// rows of known distinct keys at parallelism 2 holds, over its subtasks,
/// exactly as many keys as the input has (the oracle), under its state id,
/// and the Prometheus gauges agree. A FIFO in the source directory keeps
/// the job running with its state.
#[test]
fn memory_shows_each_stateful_operators_bytes_and_keys() {
    let dir = scratch();
    let (file, distinct) = job_over_keys(
        dir.path(),
        31,
            "SET 'parallelism.default' = '2';
SET 'execution.checkpointing.interval' = '200ms';
CREATE TABLE src (k VARCHAR, v BIGINT, ts TIMESTAMP(3)) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
CREATE TABLE out (k VARCHAR, c BIGINT, m BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO out SELECT k, count(*), max(v) FROM src GROUP BY k;",
    );
    let server = Server::start(dir.path(), &file, Stdio::null());
    let sql =
        "SELECT operator, subtask, keys, bytes FROM weir.memory WHERE job_id IS NOT NULL ORDER BY operator, subtask";
    let keys = |r: &[Vec<String>]| r.iter().filter(|r| r[0] == "GroupAggregate#0").map(|r| num(&r[2])).sum::<f64>();
    let memory = server.poll(sql, "the group aggregate's keys", |r| keys(r) == distinct as f64);
    let group: Vec<_> = memory.iter().filter(|r| r[0] == "GroupAggregate#0").collect();
    assert_eq!(group.len(), 2, "one row per subtask: {memory:?}");
    assert!(group.iter().all(|r| num(&r[2]) > 0.0 && num(&r[3]) > 0.0), "{memory:?}");
    let job = server.psql("SELECT job_id FROM weir.jobs").remove(0).remove(0);
    let scrape = server.scrape();
    let gauge = |name: &str| {
        samples(&scrape, name, &[("job_id", job.as_str()), ("operator", "GroupAggregate#0")])
            .iter()
            .map(|s| s.value)
            .sum::<f64>()
    };
    assert_eq!(gauge("weir_operator_state_keys"), distinct as f64);
    assert!(gauge("weir_operator_state_bytes") > 0.0);
}

/// `weir.memory` under the spilling backend: a one-hour TUMBLE over 3 000
/// keys at parallelism 2 with a 64 KB budget holds, per subtask, no more
/// than its 32 KB share in memory and the rest on disk (`spilled_bytes`),
/// its keys summed over subtasks at least the input's distinct keys (a
/// key spilled and seen again counts again), and the Prometheus gauge
/// agrees.
#[test]
fn memory_shows_state_spilled_to_disk() {
    let dir = scratch();
    let (file, distinct) = job_over_keys(
        dir.path(),
        32,
        "SET 'parallelism.default' = '2';
SET 'state.backend.type' = 'rocksdb';
SET 'state.memory.budget' = '64 kb';
CREATE TABLE src (k VARCHAR, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
CREATE TABLE out (k VARCHAR, c BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO out SELECT k, count(*) FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' HOUR))
  GROUP BY window_start, window_end, k;",
    );
    let server = Server::start(dir.path(), &file, Stdio::null());
    let sql = "SELECT subtask, keys, bytes, spilled_bytes FROM weir.memory WHERE operator = 'WindowAggregate#0' \
               ORDER BY subtask";
    let read = |r: &[Vec<String>]| r.iter().map(|r| num(&r[1])).sum::<f64>();
    let memory = server.poll(sql, "the window's keys", |r| r.len() == 2 && read(r) >= distinct as f64);
    for row in &memory {
        assert!(num(&row[2]) <= (32 << 10) as f64, "over its share in memory: {memory:?}");
        assert!(num(&row[3]) > 0.0, "nothing spilled: {memory:?}");
    }
    let job = server.psql("SELECT job_id FROM weir.jobs").remove(0).remove(0);
    // The gauge against a reading of weir.memory that did not change
    // around the scrape (the last input may still be arriving).
    let spilled = |r: &[Vec<String>]| r.iter().map(|r| num(&r[3])).sum::<f64>();
    for _ in 0..100 {
        let before = server.psql(sql);
        let scrape = server.scrape();
        if server.psql(sql) != before {
            continue;
        }
        let gauge = samples(
            &scrape,
            "weir_operator_state_spilled_bytes",
            &[("job_id", job.as_str()), ("operator", "WindowAggregate#0")],
        )
        .iter()
        .map(|s| s.value)
        .sum::<f64>();
        assert_eq!(gauge, spilled(&before));
        return;
    }
    panic!("weir.memory never held still");
}

/// A job whose print sink writes `rows-per-second` rows of windows to
/// stdout, after a keyed exchange; it checkpoints often, giving up on a
/// checkpoint after 1 s.
fn print_job(dir: &Path) -> PathBuf {
    let file = dir.join("print.sql");
    std::fs::write(
        &file,
        "SET 'parallelism.default' = '2';
SET 'execution.checkpointing.interval' = '300 ms';
SET 'execution.checkpointing.timeout' = '1 s';
CREATE TABLE ev (seq BIGINT, k BIGINT, ts AS TO_TIMESTAMP_LTZ(1767225600000 + seq, 3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
  WITH ('connector' = 'datagen', 'rows-per-second' = '20000',
        'fields.seq.kind' = 'sequence', 'fields.seq.start' = '0', 'fields.seq.end' = '100000000',
        'fields.k.min' = '0', 'fields.k.max' = '999');
CREATE TABLE out (ws TIMESTAMP(3), k BIGINT, c BIGINT) WITH ('connector' = 'print');
INSERT INTO out SELECT window_start, k, count(*) FROM TABLE(TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '1' SECOND))
GROUP BY window_start, window_end, k;",
    )
    .expect("job file");
    file
}

/// The sources' (stage 0) backpressured share and whether one of their two
/// output channels (one per window subtask) is full — the one a source
/// waits on; it sends nothing to the other meanwhile — as `weir.operators`
/// shows them.
const SOURCE_PRESSURE: &str = "SELECT backpressured_share, queue_depth >= queue_capacity / 2, rows_out
FROM weir.operators WHERE stage = 0 ORDER BY subtask";

#[test]
fn a_slow_sink_backpressures_the_tasks_before_it() {
    let dir = scratch();
    let file = print_job(dir.path());
    // Nobody reads the pipe: once its buffer is full, every print blocks.
    let stalled = Server::start(dir.path(), &file, Stdio::piped());
    // Most of the sources' time goes to waiting for room, their channels
    // full (how soon depends on the machine's load: polled).
    stalled.poll(SOURCE_PRESSURE, "the sources are not backpressured", |r| {
        r.len() == 2 && r.iter().all(|x| num(&x[0]) > 0.5 && x[1] == "t")
    });
    // The window tasks are the ones stuck (in the sink), not waiting.
    let windows = stalled.psql("SELECT busy_share FROM weir.operators WHERE stage = 1");
    assert!(windows.iter().all(|r| num(&r[0]) > 0.5), "{windows:?}");
    // The counter Prometheus scrapes goes on from what the table showed.
    let shown = stalled.psql("SELECT subtask, backpressured_ms FROM weir.operators WHERE stage = 0 ORDER BY subtask");
    let scrape = stalled.scrape();
    for r in &shown {
        let bp = samples(
            &scrape,
            "weir_operator_backpressured_seconds_total",
            &[("stage", "0"), ("subtask", r[0].as_str())],
        );
        assert_eq!(bp.len(), 1, "{bp:?}");
        assert!(bp[0].value >= num(&r[1]) / 1000.0 && bp[0].value > 0.0, "{bp:?} after {shown:?}");
    }
    // A barrier cannot pass the stuck sink: checkpoints time out.
    let failed =
        stalled.poll("SELECT duration_ms FROM weir.checkpoints WHERE status = 'FAILED'", "no checkpoint fails", |r| {
            !r.is_empty()
        });
    assert!(failed.iter().all(|r| num(&r[0]) >= 1_000.0), "{failed:?}");
    drop(stalled);

    // The same job with its output thrown away: the sources wait for the
    // generator's rate, never for room downstream.
    let drained = Server::start(dir.path(), &file, Stdio::null());
    drained.poll(SOURCE_PRESSURE, "the sources do not run", |r| r.len() == 2 && r.iter().all(|x| num(&x[2]) > 0.0));
    // As long as the stalled job took to fill its pipe, and more.
    std::thread::sleep(Duration::from_secs(3));
    let pressure = drained.psql(SOURCE_PRESSURE);
    assert!(pressure.iter().all(|x| num(&x[0]) < 0.2), "{pressure:?}\n{}", drained.log());
    // Its checkpoints complete, well within the timeout.
    let done = drained.poll(
        "SELECT duration_ms, bytes FROM weir.checkpoints WHERE status = 'COMPLETED'",
        "no checkpoint completes",
        |r| r.len() >= 2,
    );
    assert!(done.iter().all(|r| num(&r[0]) < 1_000.0 && num(&r[1]) > 0.0), "{done:?}");
}

#[test]
fn an_idle_kafka_partition_and_the_lag_of_each() {
    let broker = Broker::start();
    broker.create_topic("clicks", 2);
    let dir = scratch();
    let file = dir.path().join("kafka.sql");
    std::fs::write(
        &file,
        format!(
            "SET 'parallelism.default' = '2';
SET 'execution.checkpointing.interval' = '300 ms';
CREATE TABLE clicks (k VARCHAR, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND) WITH (
  'connector' = 'kafka', 'topic' = 'clicks', 'properties.bootstrap.servers' = '{}',
  'properties.group.id' = 'weir-lag', 'scan.startup.mode' = 'earliest-offset', 'format' = 'json',
  'source.idle-timeout' = '1 s');
CREATE TABLE out (ws TIMESTAMP(3), k VARCHAR, c BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO out SELECT window_start, k, count(*) FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '1' SECOND))
GROUP BY window_start, window_end, k;",
            broker.bootstrap()
        ),
    )
    .expect("job file");
    let record = |i: i64| {
        (
            Some(format!("k{}", i % 7).into_bytes()),
            format!("{{\"k\": \"k{}\", \"ts\": {}}}", i % 7, T0 + i * 10).into_bytes(),
        )
    };
    // Partition 0 gets records; partition 1 never does.
    let first: Vec<_> = (0..500).map(record).collect();
    broker.produce("clicks", 0, &first);
    let server = Server::start(dir.path(), &file, Stdio::null());

    // Everything read and committed: the lag is 0 at the offset produced.
    let lag_sql = "SELECT partition, read_offset, committed_offset, high_watermark, lag, read_lag FROM weir.kafka_lag ORDER BY partition";
    let lag = server.poll(lag_sql, "the records are not read and committed", |r| r.len() == 2 && r[0][2] == "500");
    assert_eq!(lag[0], ["0", "500", "500", "500", "0", "0"], "{lag:?}");
    assert_eq!(lag[1][3], "0", "{lag:?}");
    assert!(lag[1][2] == "null" && lag[1][4] == "null", "{lag:?}");

    // More records: the high watermark moves by as many, and the job
    // catches up again.
    let more: Vec<_> = (500..800).map(record).collect();
    broker.produce("clicks", 0, &more);
    let lag = server.poll(lag_sql, "the new records are not committed", |r| r.len() == 2 && r[0][2] == "800");
    assert_eq!(lag[0], ["0", "800", "800", "800", "0", "0"], "{lag:?}");

    // Partition 1 never had a record: idle once the timeout passed; while
    // partition 0 keeps getting records it is not.
    let wm_sql = "SELECT partition, idle, max_event_time, watermark FROM weir.watermarks ORDER BY partition";
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut next = 800;
    let watermarks = loop {
        broker.produce("clicks", 0, &[record(next)]);
        next += 1;
        let w = server.psql(wm_sql);
        if w.len() == 2 && w[1][1] == "t" && w[0][1] == "f" {
            break w;
        }
        assert!(Instant::now() < deadline, "partition 1 is not idle: {w:?}\n{}", server.log());
        std::thread::sleep(Duration::from_millis(150));
    };
    assert_eq!(watermarks[1][2], "null", "{watermarks:?}");
    // Partition 0's greatest event time is one of the records produced, and
    // its watermark is 2 s behind it.
    let max_t = parse_timestamp(&watermarks[0][2]);
    assert!(max_t >= T0 + 799 * 10 && max_t < T0 + next * 10, "{watermarks:?}");
    assert_eq!(parse_timestamp(&watermarks[0][3]), max_t - 2_000, "{watermarks:?}");

    // Checkpoints completed, and the scrape agrees with the lag table.
    let cps = server.psql("SELECT checkpoint_id, status, bytes, aligned_wait_ms IS NOT NULL FROM weir.checkpoints WHERE status = 'COMPLETED'");
    assert!(cps.len() >= 2, "{cps:?}");
    assert!(cps.iter().all(|c| num(&c[2]) > 0.0 && c[3] == "t"), "{cps:?}");
    let lag =
        server.poll(lag_sql, "the last records are not committed", |r| r.len() == 2 && r[0][2] == next.to_string());
    let scrape = server.scrape();
    // The Grafana dashboard reads only metrics and labels this scrape has.
    grafana::check_against(
        &scrape.iter().map(|s| grafana::Scraped { name: &s.name, labels: &s.labels }).collect::<Vec<_>>(),
    );
    let high = samples(&scrape, "weir_kafka_high_watermark", &[("topic", "clicks"), ("partition", "0")]);
    assert_eq!(high.len(), 1, "{high:?}");
    assert_eq!(high[0].value, num(&lag[0][3]));
    assert_eq!(high[0].value, next as f64);
    let idle = samples(&scrape, "weir_source_idle", &[("table", "clicks"), ("partition", "1")]);
    assert_eq!(idle.len(), 1, "{idle:?}");
    assert_eq!(idle[0].value, 1.0);
    assert!(samples(&scrape, "weir_checkpoints_total", &[("status", "COMPLETED")])[0].value >= cps.len() as f64);
}

#[test]
fn weir_run_files_and_the_repl_read_the_system_tables() {
    let dir = scratch();
    let rows = skewed_rows(20_000);
    write_json(&dir.path().join("in.json"), &rows);
    let script = format!(
        "SET 'table.dml-sync' = 'true';
CREATE TABLE src (k VARCHAR, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
  WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json', 'scan.watermark.emit.strategy' = 'on-event');
CREATE TABLE out (ws TIMESTAMP(3), k VARCHAR, c BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO out SELECT window_start, k, count(*) FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' SECOND))
GROUP BY window_start, window_end, k;
SELECT concat('JOB ', status, ' ', CAST(rows_in AS VARCHAR)) AS j FROM weir.jobs;
SELECT concat('LATE ', CAST(sum(rows) AS VARCHAR)) AS l FROM weir.late_events WHERE reason = 'late';",
        dir.path().join("in.json").display()
    );
    let late = decide(&rows, TUMBLE, DELAY, 0, (i64::MIN, i64::MAX)).late.len();
    let run = weir_run(dir.path(), &script);
    assert!(run.ok, "{}", run.stderr);
    assert!(run.stdout.contains(&format!("JOB FINISHED {}", rows.len())), "{}", run.stdout);
    assert!(run.stdout.contains(&format!("LATE {late}")), "{}", run.stdout);

    // The same statements typed into the REPL (piped in).
    let mut repl = Command::new(env!("CARGO_BIN_EXE_weir"))
        .current_dir(dir.path())
        .env("WEIR_HISTORY", dir.path().join("history"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the REPL");
    use std::io::Write;
    repl.stdin.take().expect("stdin").write_all(script.as_bytes()).expect("type the script");
    let out = repl.wait_with_output().expect("REPL");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("JOB FINISHED {}", rows.len())), "{stdout}");
    assert!(stdout.contains(&format!("LATE {late}")), "{stdout}");
}
