//! `weir`: the interactive SQL shell, `weir run FILE.sql`, `weir serve`
//! (pgwire) and `weir bench` (throughput of query files).

mod bench;
mod dashboard;
mod metrics_http;
mod output;
mod progress;
mod repl;
mod run;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Weir: a declarative SQL streaming engine.
#[derive(Parser)]
#[command(name = "weir", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the statements of SQL files; exit when every job has ended.
    Run {
        /// Files of `;`-separated statements, run in order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Serve Prometheus metrics at http://127.0.0.1:PORT/metrics.
        #[arg(long)]
        metrics_port: Option<u16>,
        /// Serve the web dashboard at http://127.0.0.1:PORT/ while the jobs
        /// run (0 picks a free port).
        #[arg(long)]
        ui_port: Option<u16>,
    },
    /// Run the statements of SQL files, then answer Postgres clients
    /// (psql, psycopg, Grafana) until SIGTERM or SIGINT.
    Serve {
        /// The port of the Postgres protocol.
        #[arg(long, default_value_t = 5433)]
        pg_port: u16,
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        bind: String,
        /// The user clients log in as (with --password).
        #[arg(long, default_value = "weir")]
        user: String,
        /// The password clients must give; without one, only loopback
        /// clients are accepted.
        #[arg(long, env = "WEIR_PG_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Serve Prometheus metrics at http://BIND:PORT/metrics.
        #[arg(long)]
        metrics_port: Option<u16>,
        /// Serve the web dashboard at http://BIND:PORT/, with the same user,
        /// password and loopback rule as pgwire (0 picks a free port).
        #[arg(long)]
        ui_port: Option<u16>,
        /// Connections served at once; more are refused (53300).
        #[arg(long, default_value_t = serve::limits::DEFAULT_MAX_CONNECTIONS, value_parser = clap::value_parser!(u32).range(1..))]
        max_connections: u32,
        /// Bytes of SQL in one query or Parse message (54000 beyond).
        #[arg(long, default_value_t = serve::limits::DEFAULT_MAX_STATEMENT_BYTES, value_parser = clap::value_parser!(u32).range(1..=(1 << 30)))]
        max_statement_bytes: u32,
        /// Statements in one query message (54000 beyond).
        #[arg(long, default_value_t = serve::limits::DEFAULT_MAX_STATEMENTS, value_parser = clap::value_parser!(u32).range(1..))]
        max_statements: u32,
        /// Rows one query returns without a cursor (54000 beyond).
        #[arg(long, default_value_t = serve::limits::DEFAULT_MAX_RESULT_ROWS, value_parser = clap::value_parser!(u32).range(1..))]
        max_result_rows: u32,
        /// Bytes of one value made by repeat, lpad or rpad (54000 beyond;
        /// at most 1 GiB, PostgreSQL's own bound).
        #[arg(long, default_value_t = serve::limits::DEFAULT_MAX_VALUE_BYTES, value_parser = clap::value_parser!(u32).range(1..=i64::from(serve::limits::MAX_VALUE_BYTES)))]
        max_value_bytes: u32,
        /// Each connection's statement_timeout until it sets its own, e.g.
        /// '30 s' (57014 when it passes); none by default.
        #[arg(long, value_parser = weir_engine::duration::parse_duration)]
        statement_timeout: Option<std::time::Duration>,
        /// Close a connection that sends nothing for this long, e.g.
        /// '10 min' (57P05); none by default.
        #[arg(long, value_parser = weir_engine::duration::parse_duration)]
        idle_timeout: Option<std::time::Duration>,
        /// A PEM certificate chain: clients asking for TLS (sslmode=require)
        /// get it. With --tls-key.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Files of `;`-separated statements, run in order first.
        files: Vec<PathBuf>,
    },
    /// Run each query file on generated input, each in a fresh process,
    /// and print events/s, events/s per core and peak memory.
    Bench {
        /// Query files, or directories of them (e.g. queries/nexmark).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Events per run: the 'number-of-events' of every nexmark table.
        #[arg(long, default_value_t = 10_000_000)]
        events: u64,
        /// Parallelisms to run each query at, e.g. 1,2.
        #[arg(long, value_delimiter = ',', default_value = "1")]
        parallelism: Vec<usize>,
        /// Seconds after which a run is stopped and reported as such.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
        /// A setting for every run, as a SET before the query's own
        /// statements: e.g. --set state.backend.type=rocksdb.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        settings: Vec<String>,
        /// Run one query in this process (what the benchmark starts).
        #[arg(long, hide = true)]
        child: bool,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        // Colours for a terminal only: a log file or a pipe gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    if let Err(e) = weir_engine::failpoints::configure_from_env() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    // Planning and evaluating a query recurse over its expressions: the
    // work runs on stacks sized for the deepest statement a session may
    // allow (`weir_sql::depth`), the runtime's workers included.
    let main = std::thread::Builder::new()
        .name("weir-main".into())
        .stack_size(weir_sql::depth::THREAD_STACK)
        .spawn(move || run(cli));
    match main.map(|t| t.join()) {
        Ok(Ok(code)) => code,
        Ok(Err(_)) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: cannot start the main thread: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the command line's command on a runtime of its own.
fn run(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .thread_stack_size(weir_sql::depth::THREAD_STACK)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ok = match cli.command {
        Some(Command::Run { files, metrics_port, ui_port }) => {
            runtime.block_on(run::run_files(&files, metrics_port, ui_port))
        }
        Some(Command::Serve {
            pg_port,
            bind,
            user,
            password,
            metrics_port,
            ui_port,
            max_connections,
            max_statement_bytes,
            max_statements,
            max_result_rows,
            max_value_bytes,
            statement_timeout,
            idle_timeout,
            tls_cert,
            tls_key,
            files,
        }) => runtime.block_on(serve::serve(serve::Options {
            metrics_port,
            ui_port,
            bind,
            port: pg_port,
            user,
            // An empty password (an empty WEIR_PG_PASSWORD) is none.
            password: password.filter(|p| !p.is_empty()),
            files,
            // (u32 fits a usize on every platform Weir builds for.)
            limits: serve::limits::Limits {
                max_connections: max_connections as usize,
                max_statement_bytes: max_statement_bytes as usize,
                max_statements: max_statements as usize,
                max_result_rows: max_result_rows as usize,
                max_value_bytes: max_value_bytes as usize,
                // 0 means none, as PostgreSQL reads it.
                statement_timeout: statement_timeout.filter(|t| !t.is_zero()),
                idle_timeout: idle_timeout.filter(|t| !t.is_zero()),
            },
            tls: tls_cert.zip(tls_key),
        })),
        Some(Command::Bench { paths, events, parallelism, timeout, settings, child }) => bench::run(&bench::Options {
            paths,
            events,
            parallelism,
            timeout: std::time::Duration::from_secs(timeout),
            settings,
            child,
        }),
        None => repl::run(&runtime),
    };
    shut_down(runtime);
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// How long the runtime's threads may take to end once everything that
/// matters has been waited for: only a blocking read of a stopped job (a
/// named pipe nobody writes to) takes longer, and is not waited for.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// Stops `runtime`, joining the threads that end within
/// [`SHUTDOWN_GRACE`]. Not `shutdown_background`: it detaches every
/// thread at once, among them threads that are ending at that moment, and
/// glibc's `pthread_detach` can then read a thread's descriptor after the
/// ending thread unmapped its stack (Weir's stacks, 64 MiB, are beyond
/// glibc's stack cache): `weir run` crashed with SIGSEGV in
/// `pthread_detach` after its job had finished, 3 times in a day of test
/// runs.
pub(crate) fn shut_down(runtime: tokio::runtime::Runtime) {
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
}
