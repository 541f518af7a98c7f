//! The interactive shell. On a terminal: line editing with history,
//! completion and colours (`helper`), backslash commands (`meta`), live
//! results of streaming queries (`live`), results to the terminal or a
//! file (`destination`). Piped in, it runs the statements it reads, with
//! no prompt and no colour.

mod complete;
mod destination;
mod helper;
mod history;
mod input;
mod live;
mod meta;

use std::io::{BufRead, IsTerminal};
use std::path::Path;
use std::time::Instant;

use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{CompletionType, Config, Editor};
use tokio::runtime::Runtime;
use weir_sql::{Outcome, ParsedStatement, Session, parse_script};

use crate::output::{self, Expanded};
use complete::Names;
use destination::Destination;
use helper::WeirHelper;
use live::Ended;
use meta::Meta;

/// Runs the shell until Ctrl-D, `\q` or the end of its input; returns
/// true (errors are shown, not fatal) unless the terminal fails.
pub fn run(runtime: &Runtime) -> bool {
    let mut shell = Shell {
        session: Session::new(),
        dest: Destination::stdout(),
        timing: false,
        expanded: Expanded::Auto,
    };
    if std::io::stdin().is_terminal() {
        interactive(runtime, &mut shell)
    } else {
        piped(runtime, &mut shell)
    }
}

/// Whether the shell goes on after an entry.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Quit,
}

fn interactive(runtime: &Runtime, shell: &mut Shell) -> bool {
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(false)
        .max_history_size(10_000)
        .map(|b| b.build());
    let editor = config.and_then(Editor::<WeirHelper, FileHistory>::with_config);
    let mut editor = match editor {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot open the terminal: {e}");
            return false;
        }
    };
    editor.set_helper(Some(WeirHelper::new()));
    let history = history::path();
    if let Some(path) = &history
        && path.exists()
        && let Err(e) = editor.load_history(path)
    {
        eprintln!("warning: cannot read the history {}: {e}", path.display());
    }
    println!(
        "Weir {} — end statements with ';', \\? for help, \\q or Ctrl-D to quit.",
        env!("CARGO_PKG_VERSION")
    );
    let mut buffer = String::new();
    loop {
        if let Some(h) = editor.helper_mut() {
            h.set_pending(&buffer);
        }
        let prompt = if buffer.is_empty() { "weir> " } else { "   -> " };
        match editor.readline(prompt) {
            Ok(line) => {
                buffer.push_str(&line);
                buffer.push('\n');
                if buffer.trim().is_empty() {
                    buffer.clear();
                    continue;
                }
                if !input::is_complete(&buffer) {
                    continue;
                }
                let entry = std::mem::take(&mut buffer);
                remember(&mut editor, history.as_deref(), entry.trim_end());
                if runtime.block_on(shell.entry(&entry)) == Flow::Quit {
                    return true;
                }
                if let Some(h) = editor.helper_mut() {
                    h.set_names(Names::of(&shell.session));
                }
            }
            // Ctrl-C drops what was typed, never the shell.
            Err(ReadlineError::Interrupted) => buffer.clear(),
            Err(ReadlineError::Eof) => return true,
            Err(e) => {
                eprintln!("error: {e}");
                return false;
            }
        }
    }
}

/// Adds an entry to the history and appends it to the file at once, so
/// that it survives however the shell ends.
fn remember(editor: &mut Editor<WeirHelper, FileHistory>, path: Option<&Path>, entry: &str) {
    if !matches!(editor.add_history_entry(entry), Ok(true)) {
        return;
    }
    if let Some(path) = path
        && let Err(e) = editor.append_history(path)
    {
        eprintln!("warning: cannot write the history {}: {e}", path.display());
    }
}

/// Statements piped in: run as they complete, the last even without `;`.
fn piped(runtime: &Runtime, shell: &mut Shell) -> bool {
    let mut buffer = String::new();
    for line in std::io::stdin().lock().lines() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: cannot read the input: {e}");
                return false;
            }
        };
        buffer.push_str(&line);
        buffer.push('\n');
        if buffer.trim().is_empty() || !input::is_complete(&buffer) {
            continue;
        }
        let entry = std::mem::take(&mut buffer);
        if runtime.block_on(shell.entry(&entry)) == Flow::Quit {
            return true;
        }
    }
    if !buffer.trim().is_empty() {
        runtime.block_on(shell.entry(&buffer));
    }
    true
}

/// A session and how its results are shown.
struct Shell {
    session: Session,
    dest: Destination,
    timing: bool,
    expanded: Expanded,
}

impl Shell {
    /// Runs what was typed: a backslash command or statements.
    async fn entry(&mut self, entry: &str) -> Flow {
        if entry.trim_start().starts_with('\\') {
            return match Meta::parse(entry) {
                Ok(m) => self.meta(m).await,
                Err(e) => {
                    eprintln!("error: {e}");
                    Flow::Continue
                }
            };
        }
        self.script("input", entry).await;
        Flow::Continue
    }

    /// Runs the statements of `script` in order, stopping at the first
    /// error (shown with a caret under its position).
    async fn script(&mut self, origin: &str, script: &str) {
        let statements = match parse_script(script) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{}", output::error(origin, script, &e));
                return;
            }
        };
        for s in &statements {
            if !self.statement(origin, script, s).await {
                return;
            }
        }
    }

    /// Runs one statement and shows what it produced; false if it failed
    /// or Ctrl-C stopped it.
    async fn statement(&mut self, origin: &str, script: &str, s: &ParsedStatement) -> bool {
        let started = Instant::now();
        let outcome = tokio::select! {
            outcome = self.session.execute(s) => outcome,
            _ = tokio::signal::ctrl_c() => {
                eprintln!("Cancelled.");
                return false;
            }
        };
        let ok = match outcome {
            Ok(Outcome::Done(msg)) => self.print(&msg),
            Ok(Outcome::Explain(plan)) => self.print(&plan),
            Ok(Outcome::JobStarted(job)) => self.print(&job.started_message()),
            Ok(Outcome::Table(batches)) => {
                let text = match batches.first() {
                    Some(first) => match output::cells(&first.schema(), &batches) {
                        Ok((header, rows)) => {
                            let mut t = output::render(&header, &rows, &self.dest.layout(self.expanded));
                            if self.dest.is_terminal() {
                                let n = rows.len();
                                t.push_str(&format!("\n({n} row{})", if n == 1 { "" } else { "s" }));
                            }
                            t
                        }
                        Err(e) => format!("(cannot display the result: {e})"),
                    },
                    None => "(0 rows)".to_string(),
                };
                self.print(&text)
            }
            Ok(Outcome::Stream { job, schema, rows, key }) => {
                match live::show(&job, &schema, key, rows, &mut self.dest, self.expanded).await {
                    Ended::Finished => true,
                    Ended::Cancelled => {
                        eprintln!("Query cancelled.");
                        false
                    }
                    Ended::Failed(why) => {
                        eprintln!("query failed: {why}");
                        false
                    }
                }
            }
            Err(e) => {
                eprintln!("{}", output::error(origin, script, &e));
                false
            }
        };
        if self.timing {
            println!("Time: {:.3} ms", started.elapsed().as_secs_f64() * 1000.0);
        }
        ok
    }

    /// Writes a result where results go; false if it cannot.
    fn print(&mut self, text: &str) -> bool {
        match self.dest.line(text) {
            Ok(()) => true,
            Err(e) => {
                eprintln!("error: cannot write the results: {e}");
                false
            }
        }
    }

    async fn meta(&mut self, m: Meta) -> Flow {
        match m {
            Meta::Help => println!("{}", meta::help()),
            Meta::Quit => return Flow::Quit,
            Meta::Describe(None) => self.script("\\d", "SHOW TABLES;").await,
            Meta::Describe(Some(table)) => self.script("\\d", &format!("DESCRIBE {table};")).await,
            Meta::Jobs => self.script("\\jobs", "SHOW JOBS;").await,
            Meta::Timing(on) => {
                self.timing = on.unwrap_or(!self.timing);
                println!("Timing is {}.", if self.timing { "on" } else { "off" });
            }
            Meta::Expanded(mode) => {
                self.expanded = mode.unwrap_or(match self.expanded {
                    Expanded::On => Expanded::Off,
                    Expanded::Off | Expanded::Auto => Expanded::On,
                });
                let what = match self.expanded {
                    Expanded::On => "on",
                    Expanded::Off => "off",
                    Expanded::Auto => "auto (when wider than the terminal)",
                };
                println!("Expanded display is {what}.");
            }
            Meta::Include(path) => self.include(&path).await,
            Meta::Output(None) => {
                if let Some(path) = self.dest.path() {
                    println!("Results go to the terminal again (were {}).", path.display());
                }
                self.dest = Destination::stdout();
            }
            Meta::Output(Some(path)) => match Destination::file(&path) {
                Ok(d) => {
                    self.dest = d;
                    println!("Results go to {} (\\o alone: back here).", path.display());
                }
                Err(e) => eprintln!("error: cannot write {}: {e}", path.display()),
            },
        }
        Flow::Continue
    }

    /// `\i FILE`: its statements, errors named by the file.
    async fn include(&mut self, path: &Path) {
        match tokio::fs::read_to_string(path).await {
            Ok(script) => self.script(&path.display().to_string(), &script).await,
            Err(e) => eprintln!("{}: error: cannot read the file: {e}", path.display()),
        }
    }
}
