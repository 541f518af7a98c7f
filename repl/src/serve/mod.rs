//! `weir serve`: runs the statements of SQL files, then answers Postgres
//! clients (psql, psycopg, Grafana) over pgwire until SIGTERM or SIGINT,
//! and stops the jobs that are still running.
//!
//! One [`Session`] serves every connection: a table created or a job
//! started by one client is seen by all. pgwire speaks the protocol and
//! datafusion-postgres answers DataFusion's queries, with pg_catalog over
//! the session's DataFusion context; [`handler`] decides which statements
//! Weir runs; [`listener`] and [`connection`] hold clients to the
//! [`limits`] (docs/pgwire.md). What the session holds is kept in a
//! catalog under `state.dir` ([`persist`]) and rebuilt when the server
//! starts again ([`restore`], docs/serve.md).

pub(crate) mod auth;
mod cancel;
mod connection;
pub(crate) mod errors;
pub(crate) mod handler;
pub mod limits;
mod listener;
mod persist;
mod response;
mod restore;
mod result_rows;
mod tls;

use std::path::PathBuf;
use std::sync::Arc;

use datafusion_postgres::auth::AuthManager;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::setup_pg_catalog;
use datafusion_postgres::pgwire::api::auth::StartupHandler;
use datafusion_postgres::pgwire::api::cancel::CancelHandler;
use datafusion_postgres::pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use datafusion_postgres::pgwire::api::{ErrorHandler, PgWireServerHandlers};
use datafusion_postgres::DfSessionService;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Mutex;
use weir_engine::runtime::job::JobStatus;
use weir_sql::Session;
use weir_sql::settings::Settings;

use crate::dashboard;
use crate::run::start_metrics;
use auth::Startup;
use cancel::Cancels;
use errors::{QueryError, SqlStates};
use handler::{Router, WeirHandler};
use limits::Limits;
use persist::Store;

/// How to serve.
pub struct Options {
    pub bind: String,
    pub port: u16,
    pub user: String,
    /// Without one, only loopback clients are accepted.
    pub password: Option<String>,
    /// Run, in order, before clients are served.
    pub files: Vec<PathBuf>,
    /// Where Prometheus scrapes `/metrics` (on `bind`), if anywhere.
    pub metrics_port: Option<u16>,
    /// Where the web dashboard is served (on `bind`), if anywhere.
    pub ui_port: Option<u16>,
    /// What one client may ask of the server.
    pub limits: Limits,
    /// The PEM certificate chain and private key to offer TLS with.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// Serves until a signal; false if the files failed or the port could not
/// be served.
pub async fn serve(options: Options) -> bool {
    // Checked first: a server meant to encrypt must not start in the clear.
    let tls = match &options.tls {
        Some((cert, key)) => match tls::acceptor(cert, key) {
            Ok(acceptor) => Some(acceptor),
            Err(e) => {
                eprintln!("error: {e}");
                return false;
            }
        },
        None => None,
    };
    let mut session = Session::new();
    if let Some(port) = options.metrics_port
        && !start_metrics(&options.bind, port, &session).await
    {
        return false;
    }
    // The catalog of earlier runs first: the files may declare again what
    // it holds.
    let path = Settings::default().state_dir().join("serve").join("catalog.json");
    let (store, saved) = match Store::open(path) {
        Ok(opened) => opened,
        Err(e) => {
            eprintln!("error: {e}");
            return false;
        }
    };
    let restored = match restore::restore(&store, &mut session, saved).await {
        Ok(restored) => restored,
        Err(e) => {
            eprintln!("error: {e}");
            stop_jobs(&session).await;
            return false;
        }
    };
    let hint = QueryError::StreamingSelect.hint().unwrap_or_default();
    if !restore::execute_files(&store, &mut session, &options.files, &restored, &hint).await {
        stop_jobs(&session).await;
        return false;
    }
    let registry = session.system();
    let session = Arc::new(Mutex::new(session));
    // The dashboard runs statements as a client does, in the same session
    // and catalog, within the same limits.
    let dashboard = Router::new(Arc::clone(&session), Arc::new(options.limits.clone()), Some(Arc::clone(&store)));
    let handlers = match Handlers::new(&session, &options, store).await {
        Ok(h) => Arc::new(h),
        Err(e) => {
            eprintln!("error: cannot set up the pg_catalog tables: {e}");
            stop_jobs(&*session.lock().await).await;
            return false;
        }
    };
    let listener = match TcpListener::bind((options.bind.as_str(), options.port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot serve on {}:{}: {e}", options.bind, options.port);
            stop_jobs(&*session.lock().await).await;
            return false;
        }
    };
    if let Some(port) = options.ui_port {
        let ui = dashboard::Options {
            bind: options.bind.clone(),
            port,
            user: options.user.clone(),
            password: options.password.clone(),
        };
        if !dashboard::announce(ui, registry, Arc::new(dashboard)).await {
            stop_jobs(&*session.lock().await).await;
            return false;
        }
    }
    let who = match &options.password {
        Some(_) => format!("user '{}' with its password", options.user),
        None => "loopback clients only, no password".to_string(),
    };
    let encrypted = if tls.is_some() { ", TLS offered" } else { "" };
    // The port bound, which `--pg-port 0` leaves to the system.
    let port = listener.local_addr().map_or(options.port, |a| a.port());
    eprintln!("Serving pgwire on {}:{port} ({who}{encrypted}).", options.bind);
    let ok = tokio::select! {
        never = listener::accept(listener, tls, handlers) => match never {},
        stop = shutdown_signal() => match stop {
            Ok(name) => {
                eprintln!("{name}: stopping.");
                true
            }
            Err(e) => {
                eprintln!("error: cannot wait for signals: {e}");
                false
            }
        },
    };
    stop_jobs(&*session.lock().await).await;
    ok
}

/// Cancels the jobs still running and waits for them to stop. A durable
/// job (an `INSERT` with checkpointing) resumes from its latest checkpoint
/// when the same statement runs again.
async fn stop_jobs(session: &Session) {
    let running: Vec<_> = session.jobs().iter().filter(|j| !j.status().is_done()).collect();
    // A last checkpoint first, so that serving again resumes each durable
    // job where it stopped.
    for job in &running {
        match job.checkpoint().await {
            Ok(Some(id)) => eprintln!("job {}: checkpoint {id} taken", job.id),
            Ok(None) => {}
            Err(e) => eprintln!("job {}: no last checkpoint: {e}", job.id),
        }
        job.cancel();
    }
    for job in running {
        match job.wait().await {
            JobStatus::Failed(why) => eprintln!("job {} failed: {why}", job.id),
            _ => eprintln!("job {} stopped", job.id),
        }
    }
}

/// Resolves with the signal's name at SIGINT or SIGTERM.
async fn shutdown_signal() -> std::io::Result<&'static str> {
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        interrupted = tokio::signal::ctrl_c() => interrupted.map(|()| "SIGINT"),
        _ = terminate.recv() => Ok("SIGTERM"),
    }
}

/// The handlers every connection shares, and the limits they keep.
struct Handlers {
    queries: Arc<WeirHandler>,
    startup: Arc<Startup>,
    cancels: Arc<Cancels>,
    limits: Arc<Limits>,
}

impl Handlers {
    /// Sets up pg_catalog and information_schema in the session's context
    /// (what clients query on connect and for `\d`), the functions whose
    /// values' size is checked, and the handlers.
    async fn new(
        session: &Arc<Mutex<Session>>,
        options: &Options,
        store: Arc<Store>,
    ) -> Result<Self, Box<datafusion::error::DataFusionError>> {
        let ctx = session.lock().await.context();
        let catalog = {
            let state = ctx.state_ref();
            let mut state = state.write();
            state.config_mut().options_mut().catalog.information_schema = true;
            state.config().options().catalog.default_catalog.clone()
        };
        setup_pg_catalog(&ctx, &catalog, Arc::new(AuthManager::new()))?;
        weir_sql::functions::value_size::register(&ctx, options.limits.max_value_bytes);
        let datafusion = Arc::new(DfSessionService::new(Arc::new(ctx)));
        let limits = Arc::new(options.limits.clone());
        Ok(Self {
            queries: Arc::new(WeirHandler::new(Arc::clone(session), datafusion, Arc::clone(&limits), Some(store))),
            startup: Arc::new(Startup::new(options.user.clone(), options.password.clone())),
            cancels: Arc::new(Cancels::default()),
            limits,
        })
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::clone(&self.queries)
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        Arc::clone(&self.queries)
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        Arc::clone(&self.startup)
    }

    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        Arc::new(SqlStates)
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        Arc::clone(&self.cancels)
    }
}
