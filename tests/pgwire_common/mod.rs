//! The pgwire tests' harness: a `weir serve` process on a free port,
//! stopped with SIGTERM; psql (Debian's postgresql-client) and a venv with
//! psycopg 3 as its clients; and a client that speaks the protocol by
//! hand, for what no client library sends.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// A running `weir serve`; SIGTERM stops it when dropped.
pub struct Server {
    child: Option<Child>,
    pub port: u16,
    log: PathBuf,
}

impl Server {
    /// Starts `weir serve` in `dir` with `args` and waits until it accepts
    /// connections.
    ///
    /// Its port is the one it bound (`--pg-port 0`), read from its log: a
    /// port found free and passed in can be taken by another test's server
    /// in between, whose clients would then be this test's.
    pub fn start(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Server {
        Self::start_with_stdout(dir, args, envs, Stdio::null())
    }

    /// [`Server::start`] with the server's stdout going to `stdout` (a
    /// pipe nobody reads stalls a `print` sink: backpressure).
    pub fn start_with_stdout(dir: &Path, args: &[&str], envs: &[(&str, &str)], stdout: Stdio) -> Server {
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = dir.join(format!("serve-{}-{n}.log", std::process::id()));
        let child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .arg("serve")
            .args(["--pg-port", "0"])
            .args(args)
            .env_remove("WEIR_PG_PASSWORD")
            .envs(envs.iter().copied())
            .current_dir(dir)
            .stdout(stdout)
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start weir serve");
        let mut server = Server { child: Some(child), port: 0, log };
        let until = Instant::now() + Duration::from_secs(60);
        let bound = |log: &str| {
            let rest = log.split("Serving pgwire on ").nth(1)?;
            rest.split(' ').next()?.rsplit(':').next()?.parse::<u16>().ok()
        };
        while bound(&server.log()).is_none() {
            if let Some(status) = server.child.as_mut().and_then(|c| c.try_wait().expect("wait")) {
                panic!("weir serve exited ({status}):\n{}", server.log());
            }
            assert!(Instant::now() < until, "weir serve does not listen:\n{}", server.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        // The line is printed once the port is bound: connections queue
        // from then on. No probe connection: it would hold one of the
        // server's connection slots until the server sees it closed, and
        // tests of `--max-connections` count those slots.
        server.port = bound(&server.log()).expect("read above");
        server
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM; the exit status and the log.
    pub fn stop(mut self) -> (ExitStatus, String) {
        let status = self.terminate();
        (status, self.log())
    }

    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > until {
                let _ = child.kill();
                return child.wait().expect("reap");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Polls until every job has ended; SHOW JOBS' lines.
    pub fn wait_for_jobs(&self) -> String {
        let until = Instant::now() + Duration::from_secs(120);
        loop {
            let jobs = psql_ok(self.port, "SHOW JOBS");
            if !jobs.contains("|Running|") {
                return jobs;
            }
            assert!(Instant::now() < until, "jobs still running:\n{jobs}\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.terminate();
        }
    }
}

/// This machine's address on its default route, if it has one (a UDP
/// "connect" sends nothing): what a client elsewhere would connect to.
pub fn non_loopback_address() -> Option<String> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("10.255.255.255:1").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then(|| ip.to_string())
}

/// Runs psql (unaligned, no headers, `|` between fields, NULL as `null`).
pub fn psql(port: u16, sql: &str, password: Option<&str>) -> Output {
    psql_at("127.0.0.1", port, sql, password)
}

/// [`psql`] to `host`.
pub fn psql_at(host: &str, port: u16, sql: &str, password: Option<&str>) -> Output {
    let mut cmd = Command::new("psql");
    // -w: never prompt for a password.
    cmd.args(["-X", "-w", "-h", host, "-p", &port.to_string(), "-U", "weir", "-d", "weir"])
        .args(["-A", "-t", "-F", "|", "-P", "null=null", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose"])
        .args(["-c", sql])
        .env("PGCONNECT_TIMEOUT", "20")
        .env_remove("PGPASSWORD");
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    cmd.output().expect("run psql (Debian's postgresql-client; scripts/test.sh installs it)")
}

/// psql's output of a statement that must succeed.
#[track_caller]
pub fn psql_ok(port: u16, sql: &str) -> String {
    let out = psql(port, sql, None);
    assert!(out.status.success(), "psql -c {sql:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// psql's error for a statement that must fail.
#[track_caller]
pub fn psql_err(port: u16, sql: &str) -> String {
    let out = psql(port, sql, None);
    assert!(!out.status.success(), "psql -c {sql:?} succeeded: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// psql's rows of a window view (`window_start, window_end, k, c, d, s,
/// mn, mx, a`) in `common::aggregate`'s form: timestamps as epoch
/// milliseconds, averages to 6 decimals.
pub fn normalize_psql(out: &str) -> Vec<String> {
    let mut rows: Vec<String> = out
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut cells: Vec<String> = l.split('|').map(str::to_string).collect();
            for c in [0, 1] {
                cells[c] = crate::common::parse_timestamp(&cells[c]).to_string();
            }
            if cells[8] != "null" {
                cells[8] = format!("{:.6}", cells[8].parse::<f64>().expect("avg"));
            }
            cells.join("|")
        })
        .collect();
    rows.sort();
    rows
}

/// A venv with psycopg 3, made once under the target directory and kept.
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let target = Path::new(env!("CARGO_BIN_EXE_weir")).ancestors().nth(2).expect("target dir");
        let venv = target.join("pgwire-venv");
        let python = venv.join("bin/python");
        let ready = |p: &Path| Command::new(p).args(["-c", "import psycopg"]).status().is_ok_and(|s| s.success());
        if !ready(&python) {
            let made = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().expect("python3");
            assert!(made.success(), "python3 -m venv failed (Debian: python3-venv)");
            let pip = Command::new(venv.join("bin/pip")).args(["install", "-q", "psycopg[binary]"]).status().expect("pip");
            assert!(pip.success(), "pip install psycopg[binary] failed");
            assert!(ready(&python), "psycopg does not import");
        }
        python
    })
}

/// Sends a startup message as `weir` and reads until ReadyForQuery.
pub fn raw_login(port: u16) -> TcpStream {
    let mut stream = send_startup(port);
    let answer = read_until_ready(&mut stream);
    assert!(answer.last().is_some_and(|(kind, _)| *kind == b'Z'), "not logged in: {:?}", errors(&answer));
    stream
}

/// Connects and sends a startup message as `weir`, without reading.
pub fn send_startup(port: u16) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut body = 196_608u32.to_be_bytes().to_vec(); // protocol 3.0
    for s in ["user", "weir", "database", "weir", ""] {
        body.extend(s.as_bytes());
        body.push(0);
    }
    let mut message = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    message.extend(body);
    stream.write_all(&message).expect("startup");
    stream
}

/// Reads until the server closes the connection; false on a timeout.
pub fn closed_by_server(mut stream: TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}


/// Sends `sql` as one simple-query message.
pub fn send_query(stream: &mut TcpStream, sql: &str) {
    let mut message = vec![b'Q'];
    message.extend(((sql.len() + 5) as u32).to_be_bytes());
    message.extend(sql.as_bytes());
    message.push(0);
    stream.write_all(&message).expect("send a query");
}

/// The messages the server sends until ReadyForQuery (or until it closes
/// the connection), as (type, body).
pub fn read_until_ready(stream: &mut TcpStream) -> Vec<(u8, Vec<u8>)> {
    let mut messages = Vec::new();
    loop {
        let mut header = [0u8; 5];
        if stream.read_exact(&mut header).is_err() {
            return messages;
        }
        let mut body = vec![0u8; u32::from_be_bytes(header[1..].try_into().unwrap()) as usize - 4];
        if stream.read_exact(&mut body).is_err() {
            return messages;
        }
        let ready = header[0] == b'Z';
        messages.push((header[0], body));
        if ready {
            return messages;
        }
    }
}

/// The SQLSTATE and message of each ErrorResponse among `messages`.
pub fn errors(messages: &[(u8, Vec<u8>)]) -> Vec<(String, String)> {
    messages
        .iter()
        .filter(|(kind, _)| *kind == b'E')
        .map(|(_, body)| {
            let field = |tag: u8| {
                body.split(|b| *b == 0)
                    .find(|f| f.first() == Some(&tag))
                    .map(|f| String::from_utf8_lossy(&f[1..]).into_owned())
                    .unwrap_or_default()
            };
            (field(b'C'), field(b'M'))
        })
        .collect()
}
