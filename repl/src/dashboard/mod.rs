//! `--ui-port`: the web dashboard of `weir serve` and `weir run` — a jobs
//! page and, per job, its graph with live rows/s and backpressure, source
//! watermarks, dropped rows, checkpoints, state size, hot keys and "why no
//! output?"; a SQL box; stopping a job with or without a savepoint
//! (docs/dashboard.md). It reads the `weir.*` snapshots, as `/metrics`
//! does, and runs statements as pgwire does, under pgwire's rules of who
//! may connect ([`auth`]).

mod assets;
mod auth;
mod live;
mod payload;
mod rates;
mod sampler;
mod sql;
mod stop;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::watch;
use weir_sql::system::Registry;

use crate::serve::handler::Router;
use payload::Payload;

/// Where and for whom to serve the dashboard.
pub struct Options {
    pub bind: String,
    /// 0 picks a free port.
    pub port: u16,
    /// The user of HTTP Basic credentials (with `password`).
    pub user: String,
    /// Without one, only loopback clients are served.
    pub password: Option<String>,
}

/// Why the dashboard could not start.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("cannot listen on {addr} for the dashboard: {source}")]
    Bind { addr: String, source: std::io::Error },
}

/// What every request handler shares.
pub struct Dash {
    /// Runs the SQL box's statements and `STOP JOB`.
    router: Arc<Router>,
    /// The jobs, to find one to stop.
    registry: Arc<Registry>,
    /// The sampler's latest sample.
    latest: watch::Receiver<Arc<Payload>>,
}

/// Listens on `bind:port` and serves the dashboard of `registry`'s jobs,
/// running statements with `router`, until the process ends; returns the
/// address bound.
pub async fn start(
    options: Options,
    registry: Arc<Registry>,
    router: Arc<Router>,
) -> Result<SocketAddr, DashboardError> {
    let addr = format!("{}:{}", options.bind, options.port);
    let listener =
        TcpListener::bind(&addr).await.map_err(|source| DashboardError::Bind { addr: addr.clone(), source })?;
    let local = listener.local_addr().map_err(|source| DashboardError::Bind { addr, source })?;
    // A statement of the largest size the server takes, in JSON (whose
    // escapes at most double it).
    let body_limit = router.limits().max_statement_bytes.saturating_mul(2).saturating_add(1024);
    let rules = Arc::new(auth::Rules { user: options.user, password: options.password });
    let dash = Arc::new(Dash { router, latest: sampler::spawn(Arc::clone(&registry)), registry });
    let app = axum::Router::new()
        .route("/", get(assets::index))
        .route("/assets/app.js", get(assets::script))
        .route("/assets/app.css", get(assets::style))
        .route("/api/jobs", get(live::jobs))
        .route("/api/jobs/{id}", get(live::job))
        .route("/api/jobs/{id}/stop", post(stop::handle))
        .route("/api/events", get(live::events))
        .route("/api/sql", post(sql::handle))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(rules, auth::guard))
        .with_state(dash);
    // No graceful shutdown: event streams never end, and the process
    // stops its jobs and exits at a signal.
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await {
            tracing::warn!(error = %e, "dashboard: the server stopped");
        }
    });
    Ok(local)
}

/// Starts the dashboard and says where it is, as front ends print it
/// (tests read the port from this line); false, said on stderr, if it
/// cannot start.
pub async fn announce(options: Options, registry: Arc<Registry>, router: Arc<Router>) -> bool {
    match start(options, registry, router).await {
        Ok(addr) => {
            eprintln!("Dashboard at http://{addr}/");
            true
        }
        Err(e) => {
            eprintln!("error: {e}");
            false
        }
    }
}
