//! `weir`: the interactive SQL shell, `weir run FILE.sql`, and (later)
//! `weir serve`.

mod output;
mod repl;
mod run;

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
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ok = match cli.command {
        Some(Command::Run { files }) => runtime.block_on(run::run_files(&files)),
        None => repl::run(&runtime),
    };
    // Do not wait for blocking reads of stopped jobs (a named pipe nobody
    // writes to): everything that matters has been waited for.
    runtime.shutdown_background();
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
