//! A real S3-compatible server on loopback: moto in server mode (PyPI's
//! `moto[server]`, installed once into a venv under the target directory),
//! one per test, killed when dropped. Weir reaches it through the
//! environment `object_store` reads (`AWS_ENDPOINT`, `AWS_ALLOW_HTTP`, …).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The moto the tests were checked against: a newer one may answer S3
/// otherwise.
const MOTO: &str = "moto[server]==5.2.6";

/// The venv's `moto_server`, installed on first use.
fn moto_server() -> &'static Path {
    static SERVER: OnceLock<PathBuf> = OnceLock::new();
    SERVER.get_or_init(|| {
        let target = Path::new(env!("CARGO_BIN_EXE_weir")).ancestors().nth(2).expect("target dir");
        let venv = target.join("moto-venv");
        let server = venv.join("bin/moto_server");
        if !server.exists() {
            let made = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().expect("python3");
            assert!(made.success(), "python3 -m venv failed (Debian: python3-venv)");
            let pip = Command::new(venv.join("bin/pip")).args(["install", "-q", MOTO]).status().expect("pip");
            assert!(pip.success(), "pip install {MOTO} failed");
        }
        server
    })
}

/// A running moto server.
pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Moto {
    /// Starts a server on a free loopback port and waits until it answers.
    pub fn start() -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let child = Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let moto = Moto { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        while moto.request("GET", "/", "").is_none() {
            assert!(Instant::now() < deadline, "moto_server did not answer on port {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// A plain HTTP request (moto takes unsigned ones): the status and
    /// body, `None` if the server cannot be reached.
    fn request(&self, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
        let head = format!(
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\n\r\n{body}",
            self.port,
            body.len()
        );
        s.write_all(head.as_bytes()).ok()?;
        let mut answer = String::new();
        s.read_to_string(&mut answer).ok()?;
        let status = answer.split(' ').nth(1)?.parse().ok()?;
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_string();
        Some((status, body))
    }

    /// Creates `bucket`.
    pub fn create_bucket(&self, bucket: &str) {
        let answer = self.request("PUT", &format!("/{bucket}"), "");
        assert!(matches!(answer, Some((200, _))), "creating bucket {bucket}: {answer:?}");
    }

    /// The keys of `bucket` under `prefix`, sorted.
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token = String::new();
        loop {
            let path = format!("/{bucket}?list-type=2&prefix={prefix}{token}");
            let (status, body) = self.request("GET", &path, "").expect("moto answers");
            assert_eq!(status, 200, "{body}");
            keys.extend(body.split("<Key>").skip(1).filter_map(|k| k.split("</Key>").next()).map(str::to_string));
            match body.split("<NextContinuationToken>").nth(1).and_then(|t| t.split('<').next()) {
                Some(next) => token = format!("&continuation-token={next}"),
                None => break,
            }
        }
        keys.sort();
        keys
    }

    /// The environment a `weir` process needs to reach the server.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT", format!("http://127.0.0.1:{}", self.port)),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", "weir-test".into()),
            ("AWS_SECRET_ACCESS_KEY", "weir-test".into()),
            ("AWS_DEFAULT_REGION", "us-east-1".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Freezes the server (SIGSTOP): connections are accepted by the
    /// kernel and never answered, as with a hung or partitioned server.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Lets a paused server go on (SIGCONT).
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid.
        let r = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(r, 0, "kill({signal}) of moto_server");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // A paused server must run again to die of SIGKILL's reaping.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
