//! `--metrics-port`: the figures of the `weir.*` system tables at
//! `GET /metrics`, in Prometheus's text format, for a Prometheus server to
//! scrape. Each scrape reads the same snapshots the tables do
//! ([`weir_sql::system::snapshot`]), so a dashboard and a query agree.

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use prometheus::{CounterVec, Encoder, GaugeVec, Opts, TextEncoder};
use tokio::net::TcpListener;
use weir_sql::system::Registry;
use weir_sql::system::snapshot;

/// Why the endpoint could not start or a scrape could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("cannot listen on {addr} for /metrics: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("encoding the metrics: {0}")]
    Encode(#[from] prometheus::Error),
    #[error("the metrics are not UTF-8: {0}")]
    Utf8(#[from] std::string::FromUtf8Error),
}

/// Listens on `bind:port` and serves `/metrics` from `registry` on the
/// current runtime until the process ends; returns the address bound (port
/// 0 picks a free one).
pub async fn start(bind: &str, port: u16, registry: Arc<Registry>) -> Result<std::net::SocketAddr, MetricsError> {
    let addr = format!("{bind}:{port}");
    let listener =
        TcpListener::bind(&addr).await.map_err(|source| MetricsError::Bind { addr: addr.clone(), source })?;
    let local = listener.local_addr().map_err(|source| MetricsError::Bind { addr, source })?;
    tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics endpoint: accepting a connection failed");
                    continue;
                }
            };
            let registry = Arc::clone(&registry);
            tokio::spawn(async move {
                let service = service_fn(move |req| answer(req, Arc::clone(&registry)));
                if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                    tracing::debug!(error = %e, "metrics endpoint: connection ended with an error");
                }
            });
        }
    });
    Ok(local)
}

async fn answer(req: Request<Incoming>, registry: Arc<Registry>) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, content_type: &str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        if let Ok(v) = header::HeaderValue::from_str(content_type) {
            r.headers_mut().insert(header::CONTENT_TYPE, v);
        }
        Ok(r)
    };
    if req.method() != Method::GET || req.uri().path() != "/metrics" {
        return reply(StatusCode::NOT_FOUND, "text/plain", "only GET /metrics is served here\n".into());
    }
    // Kafka lag asks the brokers: off the runtime's workers.
    match tokio::task::spawn_blocking(move || render(&registry)).await {
        Ok(Ok(text)) => reply(StatusCode::OK, prometheus::TEXT_FORMAT, text),
        Ok(Err(e)) => reply(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", format!("{e}\n")),
        Err(e) => reply(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", format!("{e}\n")),
    }
}

/// The metric families of one scrape, registered as they are declared.
struct Families(prometheus::Registry);

impl Families {
    fn counter(&self, name: &str, help: &str, labels: &[&str]) -> Result<CounterVec, MetricsError> {
        let c = CounterVec::new(Opts::new(name, help), labels)?;
        self.0.register(Box::new(c.clone()))?;
        Ok(c)
    }

    fn gauge(&self, name: &str, help: &str, labels: &[&str]) -> Result<GaugeVec, MetricsError> {
        let g = GaugeVec::new(Opts::new(name, help), labels)?;
        self.0.register(Box::new(g.clone()))?;
        Ok(g)
    }
}

fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// One scrape: every figure of the system tables, as Prometheus metrics.
/// Blocking (asks Kafka brokers for their offsets).
pub fn render(registry: &Registry) -> Result<String, MetricsError> {
    let f = Families(prometheus::Registry::new());

    let job_up = f.gauge("weir_job_running", "1 while the job runs, 0 once it ended.", &["job_id", "status"])?;
    let job_in = f.counter("weir_job_rows_in_total", "Rows the job's sources read.", &["job_id"])?;
    let job_out = f.counter("weir_job_rows_out_total", "Rows the job wrote to its sinks.", &["job_id"])?;
    let job_wm =
        f.gauge("weir_job_watermark_seconds", "The job's watermark (event time, Unix seconds).", &["job_id"])?;
    let job_restarts = f.counter("weir_job_restarts_total", "Restarts of the job after a task failed.", &["job_id"])?;
    for j in snapshot::jobs(registry) {
        job_restarts.with_label_values(&[&j.job_id]).inc_by(j.restarts as f64);
        job_up
            .with_label_values(&[j.job_id.as_str(), j.status])
            .set(f64::from(u8::from(matches!(j.status, "RUNNING" | "RESTARTING"))));
        job_in.with_label_values(&[&j.job_id]).inc_by(j.rows_in as f64);
        job_out.with_label_values(&[&j.job_id]).inc_by(j.rows_out as f64);
        if let Some(w) = j.watermark {
            job_wm.with_label_values(&[&j.job_id]).set(seconds(w));
        }
    }

    let op = ["job_id", "stage", "subtask", "operator"];
    let rows_in = f.counter("weir_operator_rows_in_total", "Rows a task received.", &op)?;
    let rows_out = f.counter("weir_operator_rows_out_total", "Rows a task emitted.", &op)?;
    let batches_in = f.counter("weir_operator_batches_in_total", "Batches a task received.", &op)?;
    let batches_out = f.counter("weir_operator_batches_out_total", "Batches a task emitted.", &op)?;
    let queue = f.gauge("weir_operator_queue_depth", "Messages waiting in a task's output channels.", &op)?;
    let queue_cap = f.gauge("weir_operator_queue_capacity", "Messages a task's output channels can hold.", &op)?;
    let busy =
        f.counter("weir_operator_busy_seconds_total", "Time a task spent running its operators and sinks.", &op)?;
    let idle = f.counter("weir_operator_idle_seconds_total", "Time a task spent waiting for input.", &op)?;
    let bp = f.counter(
        "weir_operator_backpressured_seconds_total",
        "Time a task spent waiting for room in a full channel downstream.",
        &op,
    )?;
    let state = f.gauge("weir_operator_state_bytes", "Bytes of an operator's state in one subtask.", &op)?;
    let keys = f.gauge("weir_operator_state_keys", "Keys an operator holds state for in one subtask.", &op)?;
    let spilled = f.gauge(
        "weir_operator_state_spilled_bytes",
        "Bytes of an operator's state spilled to local disk in one subtask (the spilling state backend).",
        &op,
    )?;
    for o in snapshot::operators(registry) {
        let (stage, subtask) = (o.stage.to_string(), o.subtask.to_string());
        let l = [o.job_id.as_str(), stage.as_str(), subtask.as_str(), o.operator.as_str()];
        rows_in.with_label_values(&l).inc_by(o.rows_in as f64);
        rows_out.with_label_values(&l).inc_by(o.rows_out as f64);
        batches_in.with_label_values(&l).inc_by(o.batches_in as f64);
        batches_out.with_label_values(&l).inc_by(o.batches_out as f64);
        queue.with_label_values(&l).set(o.queue_depth as f64);
        queue_cap.with_label_values(&l).set(o.queue_capacity as f64);
        busy.with_label_values(&l).inc_by(o.busy_ns as f64 / 1e9);
        idle.with_label_values(&l).inc_by(o.idle_ns as f64 / 1e9);
        bp.with_label_values(&l).inc_by(o.backpressured_ns as f64 / 1e9);
    }
    for m in snapshot::memory(registry) {
        if let (Some(job), Some(stage), Some(subtask)) = (&m.job_id, m.stage, m.subtask) {
            let (stage, subtask) = (stage.to_string(), subtask.to_string());
            let l = [job.as_str(), stage.as_str(), subtask.as_str(), m.operator.as_str()];
            state.with_label_values(&l).set(m.bytes as f64);
            spilled.with_label_values(&l).set(m.spilled_bytes as f64);
            if let Some(k) = m.keys {
                keys.with_label_values(&l).set(k as f64);
            }
        }
    }
    if let Some(rss) = snapshot::rss_bytes() {
        let g = prometheus::Gauge::with_opts(Opts::new(
            "weir_process_resident_memory_bytes",
            "The weir process's resident memory.",
        ))?;
        f.0.register(Box::new(g.clone()))?;
        g.set(rss as f64);
    }

    let part = ["job_id", "table", "subtask", "partition"];
    let wm = f.gauge("weir_source_watermark_seconds", "A source partition's watermark (Unix seconds).", &part)?;
    let max_t =
        f.gauge("weir_source_max_event_time_seconds", "The greatest event time read from a partition.", &part)?;
    let idle_p = f.gauge("weir_source_idle", "1 when a partition is idle (holds no watermark back).", &part)?;
    let lag_t = f.gauge(
        "weir_source_event_time_lag_seconds",
        "How far a partition's event time is behind the wall clock.",
        &part,
    )?;
    for w in snapshot::watermarks(registry) {
        let (subtask, partition) = (w.subtask.to_string(), w.partition.to_string());
        let l = [w.job_id.as_str(), w.table.as_str(), subtask.as_str(), partition.as_str()];
        if let Some(v) = w.watermark {
            wm.with_label_values(&l).set(seconds(v));
        }
        if let Some(v) = w.max_event_time {
            max_t.with_label_values(&l).set(seconds(v));
        }
        if let Some(v) = w.event_time_lag_ms {
            lag_t.with_label_values(&l).set(seconds(v));
        }
        idle_p.with_label_values(&l).set(f64::from(u8::from(w.idle)));
    }

    match snapshot::kafka_lag(registry) {
        Ok(rows) => {
            let kl = ["job_id", "table", "topic", "partition"];
            let high = f.gauge("weir_kafka_high_watermark", "The offset the partition's next record will get.", &kl)?;
            let committed = f.gauge("weir_kafka_committed_offset", "The consumer group's committed offset.", &kl)?;
            let read = f.gauge("weir_kafka_read_offset", "The next offset the job reads.", &kl)?;
            let lag = f.gauge("weir_kafka_lag", "Records after the committed offset.", &kl)?;
            let read_lag = f.gauge("weir_kafka_read_lag", "Records not read yet.", &kl)?;
            for k in rows {
                let partition = k.partition.to_string();
                let l = [k.job_id.as_str(), k.table.as_str(), k.topic.as_str(), partition.as_str()];
                high.with_label_values(&l).set(k.high_watermark as f64);
                if let Some(v) = k.committed_offset {
                    committed.with_label_values(&l).set(v as f64);
                }
                if let Some(v) = k.read_offset {
                    read.with_label_values(&l).set(v as f64);
                }
                if let Some(v) = k.lag {
                    lag.with_label_values(&l).set(v as f64);
                }
                if let Some(v) = k.read_lag {
                    read_lag.with_label_values(&l).set(v as f64);
                }
            }
        }
        // A broker that does not answer must not hide every other figure.
        Err(e) => tracing::warn!(error = %e, "metrics endpoint: no Kafka lag this scrape"),
    }

    let cps = f.counter("weir_checkpoints_total", "Checkpoints that completed or failed.", &["job_id", "status"])?;
    let cp_l = ["job_id"];
    let cp_dur =
        f.gauge("weir_checkpoint_last_duration_seconds", "The latest completed checkpoint's duration.", &cp_l)?;
    let cp_bytes = f.gauge("weir_checkpoint_last_bytes", "The latest completed checkpoint's state written.", &cp_l)?;
    let cp_wait = f.gauge(
        "weir_checkpoint_last_aligned_wait_seconds",
        "The latest completed checkpoint's longest barrier alignment.",
        &cp_l,
    )?;
    for c in snapshot::checkpoints(registry) {
        cps.with_label_values(&[c.job_id.as_str(), c.status]).inc();
        if c.status == "COMPLETED" {
            // Rows come oldest first: the last one set stays.
            cp_dur.with_label_values(&[&c.job_id]).set(c.duration_ms as f64 / 1000.0);
            cp_bytes.with_label_values(&[&c.job_id]).set(c.bytes as f64);
            if let Some(w) = c.aligned_wait_ms {
                cp_wait.with_label_values(&[&c.job_id]).set(w / 1000.0);
            }
        }
    }

    let late = f.counter(
        "weir_dropped_rows_total",
        "Rows dropped, by operator and reason.",
        &["job_id", "operator", "reason"],
    )?;
    for l in snapshot::late_events(registry) {
        late.with_label_values(&[l.job_id.as_str(), l.operator.as_str(), l.reason]).inc_by(l.rows as f64);
    }

    let hk = ["job_id", "stage", "keyed_by", "rank", "key"];
    let hot_rows =
        f.gauge("weir_hot_key_rows", "Estimated rows of a key among the top keys of a keyed exchange.", &hk)?;
    let hot_share = f.gauge("weir_hot_key_share", "A top key's estimated share of its exchange's rows.", &hk)?;
    let hot_skew = f.gauge("weir_hot_key_skew_ratio", "A top key's rows over the mean of the keys tracked.", &hk)?;
    for h in snapshot::hot_keys(registry) {
        let (stage, rank) = (h.stage.to_string(), h.rank.to_string());
        let l = [h.job_id.as_str(), stage.as_str(), h.keyed_by.as_str(), rank.as_str(), h.key.as_str()];
        hot_rows.with_label_values(&l).set(h.rows as f64);
        hot_share.with_label_values(&l).set(h.share);
        hot_skew.with_label_values(&l).set(h.skew_ratio);
    }

    let mut out = Vec::new();
    TextEncoder::new().encode(&f.0.gather(), &mut out)?;
    Ok(String::from_utf8(out)?)
}
