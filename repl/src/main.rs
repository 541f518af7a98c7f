//! `weir`: the interactive SQL shell, `weir run FILE.sql`, `weir serve`
//! (pgwire) and `weir bench` (throughput of query files).

mod bench;
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
        Some(Command::Run { files, metrics_port }) => runtime.block_on(run::run_files(&files, metrics_port)),
        Some(Command::Serve { pg_port, bind, user, password, metrics_port, files }) => runtime.block_on(serve::serve(serve::Options {
            metrics_port,
            bind,
            port: pg_port,
            user,
            // An empty password (an empty WEIR_PG_PASSWORD) is none.
            password: password.filter(|p| !p.is_empty()),
            files,
        })),
        Some(Command::Bench { paths, events, parallelism, timeout, child }) => bench::run(&bench::Options {
            paths,
            events,
            parallelism,
            timeout: std::time::Duration::from_secs(timeout),
            child,
        }),
        None => repl::run(&runtime),
    };
    // Do not wait for blocking reads of stopped jobs (a named pipe nobody
    // writes to): everything that matters has been waited for.
    runtime.shutdown_background();
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
