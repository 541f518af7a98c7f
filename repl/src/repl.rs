//! The interactive shell: statements end with `;`; results print as tables.

use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;
use tokio::runtime::Runtime;
use weir_sql::{Outcome, Session, parse_script};

use crate::output;

/// Runs the shell until Ctrl-D or `\q`; returns true (errors are shown, not
/// fatal).
pub fn run(runtime: &Runtime) -> bool {
    let mut editor = match DefaultEditor::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot open the terminal: {e}");
            return false;
        }
    };
    println!("Weir {} — end statements with ';', \\q to quit.", env!("CARGO_PKG_VERSION"));
    let mut session = Session::new();
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() { "weir> " } else { "   -> " };
        match editor.readline(prompt) {
            Ok(line) => {
                if buffer.is_empty() && line.trim() == "\\q" {
                    return true;
                }
                buffer.push_str(&line);
                buffer.push('\n');
                if !line.trim_end().ends_with(';') {
                    continue;
                }
                let _ = editor.add_history_entry(buffer.trim());
                let script = std::mem::take(&mut buffer);
                runtime.block_on(execute(&mut session, &script));
            }
            Err(ReadlineError::Interrupted) => buffer.clear(),
            Err(ReadlineError::Eof) => return true,
            Err(e) => {
                eprintln!("error: {e}");
                return false;
            }
        }
    }
}

async fn execute(session: &mut Session, script: &str) {
    let statements = match parse_script(script) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{}", output::error("input", script, &e));
            return;
        }
    };
    for s in &statements {
        match session.execute(s).await {
            Ok(Outcome::Done(msg)) => println!("{msg}"),
            Ok(Outcome::Table(batches)) => println!("{}", output::table(&batches)),
            Ok(Outcome::Explain(plan)) => println!("{plan}"),
            Ok(Outcome::JobStarted(job)) => println!("Job '{}' started.", job.id),
            Ok(Outcome::Stream { job, mut rows, .. }) => {
                // Windows appear as they fire; Ctrl-C stops the query.
                loop {
                    tokio::select! {
                        batch = rows.recv() => match batch {
                            Some(b) => println!("{}", output::table(&[b])),
                            None => break,
                        },
                        _ = tokio::signal::ctrl_c() => {
                            job.cancel();
                            println!("Query cancelled.");
                            break;
                        }
                    }
                }
                if let weir_engine::runtime::job::JobStatus::Failed(why) = job.wait().await {
                    eprintln!("query failed: {why}");
                }
            }
            Err(e) => {
                eprintln!("{}", output::error("input", script, &e));
                return;
            }
        }
    }
}
