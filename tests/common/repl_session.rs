//! A `weir` REPL driven through its standard input, its standard output
//! read line by line on a thread: for tests that type statements into a
//! running session — start a job, watch `weir.jobs`, stop it with a
//! savepoint.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

/// How long a line the test waits for may take.
const LINE_TIMEOUT: Duration = Duration::from_secs(60);

/// A running REPL.
pub struct ReplSession {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl ReplSession {
    /// Starts `weir` (the REPL) in `dir` with `env` set.
    pub fn start(dir: &Path, env: &[(String, String)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .current_dir(dir)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the weir REPL");
        let stdin = child.stdin.take().expect("the REPL's stdin");
        let stdout = child.stdout.take().expect("the REPL's stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self { child, stdin, lines }
    }

    /// Types `statements`.
    pub fn send(&mut self, statements: &str) {
        self.stdin.write_all(statements.as_bytes()).expect("type into the REPL");
    }

    /// What follows `prefix` on the next line that has it.
    pub fn wait_for(&self, prefix: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(LINE_TIMEOUT)
                .unwrap_or_else(|_| panic!("no line with {prefix:?}"));
            if let Some(i) = line.find(prefix) {
                return line[i + prefix.len()..].to_string();
            }
        }
    }

    /// The id of the next job the session starts.
    pub fn job_id(&self) -> String {
        self.wait_for("Job '")
            .split('\'')
            .next()
            .unwrap_or_default()
            .to_string()
    }

    /// `STOP JOB 'id' WITH SAVEPOINT`: where the savepoint went.
    pub fn stop_with_savepoint(&mut self, id: &str) -> String {
        self.send(&format!("STOP JOB '{id}' WITH SAVEPOINT;\n"));
        self.wait_for("stopped with savepoint '")
            .split('\'')
            .next()
            .unwrap_or_default()
            .to_string()
    }

    /// Quits the session and checks that it ended well.
    pub fn quit(mut self) {
        self.send("\\q\n");
        drop(self.stdin);
        assert!(
            self.child.wait().expect("wait for the REPL").success(),
            "the REPL failed"
        );
    }
}
