//! Kafka → Weir → Kafka benchmark, against a local nisshi broker (the one
//! the integration tests use, started on a free loopback port).
//!
//! `cargo bench --bench kafka [-- --events 200000 --keys 1000
//! --delivery exactly-once,at-least-once --latency true --rate 2000
//! --seconds 20]`
//!
//! Throughput: `--events` JSON records are produced into topic `in` (4
//! partitions) before any job starts; then, for each `--delivery`
//! guarantee, `weir run` copies them unchanged to `out-<guarantee>` (a
//! pass-through, so that what is measured is Weir's Kafka path: fetching,
//! decoding, encoding, producing, one checkpoint and transaction per
//! second), and once more through a 10 s TUMBLE count/sum per key into
//! `out-tumble`, exactly once. Each run reports wall time (from starting
//! `weir` to its exit, so startup and the last commit count), the `weir`
//! process's CPU time and peak RSS (from `wait4`), and the broker's CPU time
//! over the same run: on a small machine the broker, not Weir, bounds the
//! rate, and msgs/s per core (messages per CPU second of `weir`) is the
//! figure that does not depend on it.
//!
//! Latency (`--latency true`): a job is started first on an empty topic
//! and reads it without end, exactly once (then at least once), with a
//! checkpoint every second; records are then produced at `--rate` per
//! second for `--seconds`, each stamped with the wall clock in `sent`, and a
//! `read_committed` consumer of the output takes `received - sent` per
//! record; a consumer of the input does the same, for the delay of the
//! broker and clients alone. Exactly once, a record shows only when the
//! transaction of the checkpoint after it commits, so expect about half the
//! interval plus the commit. nisshi keeps open transactions from
//! `read_committed` fetches (it serves them up to the last stable offset)
//! but does not report aborted ones; no transaction aborts in these runs,
//! so the consumer sees what a Kafka consumer would.
//!
//! nisshi does not wake a waiting Fetch when records arrive: it reads its
//! storage again after half the wait left, so a consumer that has caught up
//! sees a record up to half of `fetch.wait.max.ms` late. The bench's
//! consumers wait 100 ms, so that they add little; Weir's source keeps
//! librdkafka's 500 ms, as a job does unless it sets
//! `'properties.fetch.wait.max.ms'`.
//!
//! `weir` runs as every bench that drives the binary runs it
//! (`support::WeirRun`).

// The bench uses the broker of the shared test harness (whose Kafka module
// leans on the rest of the common helpers); the rest is unused here.
#[allow(dead_code)]
#[path = "../../tests/common/mod.rs"]
mod common;
mod support;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::kafka::Broker;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use support::{WeirRun, flag};

/// Partitions of every topic: enough that the source reads several at once.
const PARTITIONS: i32 = 4;
/// Record `i`'s event time is `i` ms after 2026-01-01 00:00:00, written for
/// `i` within a day either side.
const DAY_MS: i64 = 86_400_000;
/// How long a job may take to deliver its first record, or a latency run's
/// last ones, before the bench gives up.
const PATIENCE: Duration = Duration::from_secs(60);

fn main() {
    let events: i64 = flag("--events", "200000").parse().expect("--events takes a number");
    let keys: i64 = flag("--keys", "1000").parse().expect("--keys takes a number");
    let guarantees: Vec<String> =
        flag("--delivery", "exactly-once,at-least-once").split(',').map(str::to_string).collect();
    let latency: bool = flag("--latency", "true").parse().expect("--latency takes true or false");
    let rate: u64 = flag("--rate", "2000").parse().expect("--rate takes records per second");
    let seconds: u64 = flag("--seconds", "20").parse().expect("--seconds takes a number");
    assert!(events < DAY_MS, "--events must be under {DAY_MS} (one record per ms of one day)");

    let broker = Broker::start();
    let broker_pid = broker_pid();
    broker.create_topic("in", PARTITIONS);
    let started = Instant::now();
    {
        // Batched (linger 20 ms): only the time to load the input matters.
        let producer = producer(&broker, "20");
        for i in 0..events {
            send(&producer, "in", (i % i64::from(PARTITIONS)) as i32, &record(i, keys, now_ms()));
        }
        flush(&producer);
    }
    let secs = started.elapsed().as_secs_f64();
    println!("produced {events} records into `in` in {secs:.2} s ({:.0} msgs/s)\n", events as f64 / secs);

    let mut runs = Vec::new();
    for g in &guarantees {
        let out = format!("out-{g}");
        broker.create_topic(&out, PARTITIONS);
        let sql = job_sql(&broker, "in", true, &out, g, PASS_THROUGH_COLUMNS, PASS_THROUGH);
        let run = throughput(&sql, broker_pid);
        assert_eq!(run.rows_out, events as u64, "{g}: a pass-through writes every record");
        runs.push(("pass-through", g.as_str(), run));
    }
    broker.create_topic("out-tumble", PARTITIONS);
    let sql = job_sql(&broker, "in", true, "out-tumble", "exactly-once", TUMBLE_COLUMNS, TUMBLE);
    runs.push(("tumble 10 s", "exactly-once", throughput(&sql, broker_pid)));

    println!(
        "| job | delivery | msgs in | rows out | wall s | msgs/s | weir CPU s | msgs/s/core | peak RSS MiB | broker CPU s |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (job, g, r) in &runs {
        println!(
            "| {job} | {g} | {events} | {} | {:.2} | {:.0} | {:.2} | {:.0} | {:.1} | {:.2} |",
            r.rows_out,
            r.usage.weir.wall,
            events as f64 / r.usage.weir.wall,
            r.usage.weir.cpu,
            events as f64 / r.usage.weir.cpu,
            r.usage.weir.peak_rss_mib,
            r.usage.broker_cpu
        );
    }

    if latency {
        let results: Vec<(&str, Latency)> =
            guarantees.iter().map(|g| (g.as_str(), latency_run(&broker, broker_pid, g, rate, seconds, keys))).collect();
        println!(
            "\n| delivery | rate/s | sent | received | p50 ms | p99 ms | max ms | broker only: p50 / p99 / max ms | weir CPU s | peak RSS MiB | broker CPU s |"
        );
        println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        for (g, l) in results {
            let (w, d) = (&l.through_weir, &l.direct);
            println!(
                "| {g} | {rate} | {} | {} | {} | {} | {} | {} / {} / {} | {:.2} | {:.1} | {:.2} |",
                l.sent,
                w.received,
                w.p50,
                w.p99,
                w.max,
                d.p50,
                d.p99,
                d.max,
                l.usage.weir.cpu,
                l.usage.weir.peak_rss_mib,
                l.usage.broker_cpu
            );
        }
    }
}

const PASS_THROUGH_COLUMNS: &str = "k VARCHAR, v BIGINT, ts TIMESTAMP(3), sent BIGINT";
const PASS_THROUGH: &str = "SELECT k, v, ts, sent FROM src";
const TUMBLE_COLUMNS: &str = "window_start TIMESTAMP(3), window_end TIMESTAMP(3), k VARCHAR, c BIGINT, s BIGINT";
const TUMBLE: &str = "SELECT window_start, window_end, k, count(*), sum(v)
FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, k";

/// A job reading `input` from its start (up to the offsets that are the
/// latest when it starts if `bounded`, else without end) and writing
/// `query`'s rows to `output` with the delivery `guarantee`, checkpointing
/// every second.
fn job_sql(
    broker: &Broker,
    input: &str,
    bounded: bool,
    output: &str,
    guarantee: &str,
    columns: &str,
    query: &str,
) -> String {
    let servers = broker.bootstrap();
    let bound = if bounded { "'scan.bounded.mode' = 'latest-offset'," } else { "" };
    format!(
        "SET 'execution.checkpointing.interval' = '1 s';
CREATE TABLE src (k VARCHAR, v BIGINT, ts TIMESTAMP(3), sent BIGINT,
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND) WITH (
  'connector' = 'kafka', 'topic' = '{input}', 'properties.bootstrap.servers' = '{servers}',
  'properties.group.id' = 'weir-bench-{output}', 'scan.startup.mode' = 'earliest-offset', {bound}
  'format' = 'json');
CREATE TABLE out ({columns}) WITH (
  'connector' = 'kafka', 'topic' = '{output}', 'properties.bootstrap.servers' = '{servers}',
  'format' = 'json', 'sink.delivery-guarantee' = '{guarantee}');
INSERT INTO out {query};"
    )
}

/// Record `i` of the input: key `k<i % keys>`, event time 2026-01-01
/// 00:00:00 plus `i` ms (so each partition's event time only grows and no
/// window row is late; the latency run's warm-up records, numbered below
/// 0, come before all others), `sent` the epoch milliseconds it was
/// produced at.
fn record(i: i64, keys: i64, sent: i64) -> String {
    let (date, ms) = if i < 0 { ("2025-12-31", i + DAY_MS) } else { ("2026-01-01", i) };
    let ts = format!("{date} {:02}:{:02}:{:02}.{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    format!(r#"{{"k": "k{}", "v": {i}, "ts": "{ts}", "sent": {sent}}}"#, i % keys)
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_millis() as i64
}

/// What one `weir` process used, and the broker meanwhile.
struct Usage {
    weir: support::Usage,
    /// User + system seconds the broker used while `weir` ran.
    broker_cpu: f64,
}

struct Throughput {
    usage: Usage,
    /// From `weir run`'s end-of-job line.
    rows_out: u64,
}

/// A `weir run` and the broker's CPU time when it started.
struct Job {
    run: WeirRun,
    broker_cpu: f64,
    broker_pid: u32,
}

impl Job {
    fn start(sql: &str, broker_pid: u32) -> Job {
        let broker_cpu = cpu_seconds(broker_pid);
        Job { run: WeirRun::start(sql), broker_cpu, broker_pid }
    }

    /// Waits for `weir` to end: what it and the broker used, whether it
    /// succeeded, and its stderr.
    fn reap(self) -> (Usage, bool, String) {
        let (weir, ok, stderr) = self.run.reap();
        (Usage { weir, broker_cpu: cpu_seconds(self.broker_pid) - self.broker_cpu }, ok, stderr)
    }
}

/// Runs a bounded job to its end.
fn throughput(sql: &str, broker_pid: u32) -> Throughput {
    let broker_cpu = cpu_seconds(broker_pid);
    let (weir, written) = WeirRun::to_end(sql);
    assert_eq!(written.bad_records, 0, "every produced record decodes");
    Throughput { usage: Usage { weir, broker_cpu: cpu_seconds(broker_pid) - broker_cpu }, rows_out: written.rows }
}

struct Latency {
    sent: u64,
    /// Delays to a consumer of the job's output.
    through_weir: Delays,
    /// Delays to a consumer of the job's input: what the broker and the
    /// clients alone take, the floor under the figures through Weir.
    direct: Delays,
    usage: Usage,
}

/// Percentiles of the delays of the distinct records received, in ms.
struct Delays {
    /// Records received (at least once may deliver some twice: counted once).
    received: usize,
    p50: i64,
    p99: i64,
    max: i64,
}

impl Delays {
    fn of(mut delays: Vec<i64>) -> Delays {
        delays.sort_unstable();
        let at = |q: usize| delays.get(delays.len().saturating_sub(1) * q / 100).copied().unwrap_or(-1);
        Delays { received: delays.len(), p50: at(50), p99: at(99), max: at(100) }
    }
}

/// Starts an unbounded job on a fresh topic, waits until records flow
/// through it, then produces at `rate` for `seconds` and measures each
/// record's delay to a `read_committed` consumer of the output (and of the
/// input, for comparison).
fn latency_run(broker: &Broker, broker_pid: u32, guarantee: &str, rate: u64, seconds: u64, keys: i64) -> Latency {
    let input = format!("lat-in-{guarantee}");
    let output = format!("lat-out-{guarantee}");
    broker.create_topic(&input, PARTITIONS);
    broker.create_topic(&output, PARTITIONS);
    let through_weir = Receiver::start(broker, &output);
    let direct = Receiver::start(broker, &input);
    let mut job =
        Job::start(&job_sql(broker, &input, false, &output, guarantee, PASS_THROUGH_COLUMNS, PASS_THROUGH), broker_pid);
    // librdkafka's default linger (5 ms), which `sent` includes: a request
    // per record (linger 0) loads nisshi enough to slow every path down.
    let producer = producer(broker, "5");

    // Warm-up records (negative `v`, not measured) until one comes out: the
    // job is then reading and its sink's producer is ready.
    let deadline = Instant::now() + PATIENCE;
    let mut warm = -1;
    while through_weir.received() == 0 {
        job.run.assert_running();
        assert!(Instant::now() < deadline, "no record came through {guarantee} in {PATIENCE:?}:\n{}", job.run.stderr());
        send(&producer, &input, 0, &record(warm, keys, now_ms()));
        warm -= 1;
        std::thread::sleep(Duration::from_millis(100));
    }

    // A steady rate: by tick t (10 ms each), rate * t / 100 records sent.
    let total = rate * seconds;
    let start = Instant::now();
    let mut sent = 0u64;
    for tick in 1..=seconds * 100 {
        let due = rate * tick / 100;
        while sent < due {
            let i = sent as i64;
            send(&producer, &input, (i % i64::from(PARTITIONS)) as i32, &record(i, keys, now_ms()));
            sent += 1;
        }
        if let Some(wait) = (start + Duration::from_millis(tick * 10)).checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    flush(&producer);

    let deadline = Instant::now() + PATIENCE;
    while (through_weir.measured() as u64) < total && Instant::now() < deadline {
        job.run.assert_running();
        std::thread::sleep(Duration::from_millis(100));
    }
    job.run.child.kill().expect("kill weir");
    let (usage, _, _) = job.reap();
    Latency { sent: total, through_weir: Delays::of(through_weir.stop()), direct: Delays::of(direct.stop()), usage }
}

/// A `read_committed` consumer of every partition of a topic, on its own
/// thread, taking for each record the milliseconds from its `sent` stamp
/// to its arrival.
struct Receiver {
    stop: Arc<AtomicBool>,
    /// First delay seen per measured record (`v >= 0`), by `v`.
    delays: Arc<Mutex<HashMap<i64, i64>>>,
    /// Records seen, warm-up ones included.
    seen: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl Receiver {
    fn start(broker: &Broker, topic: &str) -> Receiver {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", broker.bootstrap())
            .set("group.id", format!("weir-bench-reader-{topic}"))
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            // Bounds what nisshi's polling of parked fetches adds (see the
            // module's doc) without a poll so frequent it loads the broker.
            .set("fetch.wait.max.ms", "100")
            .create()
            .expect("create the latency consumer");
        let mut partitions = TopicPartitionList::new();
        for p in 0..PARTITIONS {
            partitions.add_partition_offset(topic, p, Offset::Beginning).expect("an offset to assign");
        }
        consumer.assign(&partitions).expect("assign the output partitions");
        let stop = Arc::new(AtomicBool::new(false));
        let delays = Arc::new(Mutex::new(HashMap::new()));
        let seen = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, delays, seen) = (Arc::clone(&stop), Arc::clone(&delays), Arc::clone(&seen));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Some(message) = consumer.poll(Duration::from_millis(100)) else { continue };
                    let message = message.expect("read the latency output");
                    let received = now_ms();
                    let value: serde_json::Value =
                        serde_json::from_slice(message.payload().expect("a record value")).expect("a JSON record");
                    let (v, sent) = (value["v"].as_i64().expect("v"), value["sent"].as_i64().expect("sent"));
                    seen.fetch_add(1, Ordering::Relaxed);
                    if v >= 0 {
                        delays.lock().expect("delays lock").entry(v).or_insert(received - sent);
                    }
                }
            })
        };
        Receiver { stop, delays, seen, thread }
    }

    fn received(&self) -> u64 {
        self.seen.load(Ordering::Relaxed)
    }

    fn measured(&self) -> usize {
        self.delays.lock().expect("delays lock").len()
    }

    fn stop(self) -> Vec<i64> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the latency consumer thread");
        let delays = self.delays.lock().expect("delays lock");
        delays.values().copied().collect()
    }
}

/// Counts messages the broker did not take, which the bench's producers
/// check after flushing: a lost input record would skew every figure.
#[derive(Default)]
struct Deliveries {
    failed: AtomicU64,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            eprintln!("a bench record was not delivered: {e}");
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn producer(broker: &Broker, linger_ms: &str) -> ThreadedProducer<Deliveries> {
    ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("linger.ms", linger_ms)
        .create_with_context(Deliveries::default())
        .expect("create the bench's producer")
}

/// Queues one record, waiting while librdkafka's queue is full.
fn send(producer: &ThreadedProducer<Deliveries>, topic: &str, partition: i32, value: &str) {
    let mut record = BaseRecord::to(topic).partition(partition).payload(value);
    loop {
        match producer.send::<(), str>(record) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((e, _)) => panic!("producing to {topic}: {e}"),
        }
    }
}

fn flush(producer: &ThreadedProducer<Deliveries>) {
    producer.flush(Duration::from_secs(60)).expect("flush the bench's producer");
    let failed = producer.context().failed.load(Ordering::Relaxed);
    assert_eq!(failed, 0, "{failed} bench records were not delivered");
}

/// The broker's pid: the `nisshi` child of this process (the test harness
/// keeps its `Child` to itself).
fn broker_pid() -> u32 {
    let tasks = std::fs::read_dir("/proc/self/task").expect("read /proc/self/task");
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("children")).ok())
        .flat_map(|children| children.split_whitespace().filter_map(|p| p.parse().ok()).collect::<Vec<u32>>())
        .find(|pid| {
            std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("comm"))
                .is_ok_and(|comm| comm.trim() == "nisshi")
        })
        .expect("the nisshi broker among this process's children")
}

/// User + system CPU seconds of a live process, from `/proc/<pid>/stat`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read the broker's /proc stat");
    // Fields after the command name (which may hold spaces) start at the
    // state, field 3; utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat.rsplit_once(')').expect("a stat line").1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    ticks as f64 / per_second as f64
}
