//! What the benches that drive the real binary share: a `weir run` of one
//! job in its own scratch directory, what the process used (from `wait4`,
//! which gives a child's own CPU time and peak RSS once it has exited) and
//! what its end-of-job line says it wrote.
//!
//! The `weir` binary is the one cargo builds for benchmarks
//! (`CARGO_BIN_EXE_weir`, the `bench` profile, i.e. release settings), so
//! `cargo bench` always measures the current source.

// Each bench uses the part it needs.
#![allow(dead_code)]

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use tempfile::TempDir;
use weir_engine::runtime::job::{JobHandle, JobStatus};
use weir_sql::{Outcome, Session, parse_script};

/// What one `weir` process used.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// Seconds from starting `weir` to its exit: startup and the last
    /// commit count.
    pub wall: f64,
    /// User + system seconds of the `weir` process.
    pub cpu: f64,
    pub peak_rss_mib: f64,
}

/// What `weir run`'s end-of-job line reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub rows: u64,
    /// Records the sources could not decode: a bench whose input does not
    /// decode measures nothing.
    pub bad_records: u64,
}

/// A `weir run job.sql` in its own scratch directory, which also holds its
/// checkpoints and its standard error.
pub struct WeirRun {
    dir: TempDir,
    pub child: Child,
    started: Instant,
}

impl WeirRun {
    /// Starts `weir run` on `sql`, in a fresh scratch directory.
    pub fn start(sql: &str) -> WeirRun {
        let dir = tempfile::tempdir().expect("scratch directory for the job");
        std::fs::write(dir.path().join("job.sql"), sql).expect("write job.sql");
        let stderr = File::create(dir.path().join("stderr")).expect("create the job's stderr file");
        let started = Instant::now();
        let child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["run", "job.sql"])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start weir");
        WeirRun { dir, child, started }
    }

    /// The scratch directory the job runs in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// Panics with the job's stderr if it has exited: an unbounded job
    /// only ends by failing.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("poll weir") {
            panic!("weir exited ({status}):\n{}", self.stderr());
        }
    }

    /// Waits for the process to end: what it used, whether it succeeded,
    /// and its standard error.
    pub fn reap(self) -> (Usage, bool, String) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid fits pid_t");
        let mut status = 0;
        // SAFETY: rusage is plain data, valid when zeroed; wait4 fills it.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: pid is our unreaped child; the pointers are to live locals.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        assert_eq!(reaped, pid, "wait4 on weir: {}", std::io::Error::last_os_error());
        let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        let usage = Usage {
            wall: self.started.elapsed().as_secs_f64(),
            cpu: seconds(ru.ru_utime) + seconds(ru.ru_stime),
            // ru_maxrss is in KiB on Linux.
            peak_rss_mib: ru.ru_maxrss as f64 / 1024.0,
        };
        let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
        (usage, ok, self.stderr())
    }

    /// Runs a bounded job to its end; panics with its stderr if it fails or
    /// prints no end-of-job line.
    pub fn to_end(sql: &str) -> (Usage, Written) {
        let (usage, ok, stderr) = WeirRun::start(sql).reap();
        assert!(ok, "weir failed:\n{stderr}");
        let written = written(&stderr).unwrap_or_else(|| panic!("no end-of-job line in weir's stderr:\n{stderr}"));
        (usage, written)
    }
}

/// The rows written and records not decoded, from `weir run`'s line "job …
/// finished: N rows written, …, M records that could not be decoded, …".
fn written(stderr: &str) -> Option<Written> {
    let line = stderr.lines().find_map(|l| l.split_once(" finished: ").map(|(_, rest)| rest))?;
    let count_before = |what: &str| -> Option<u64> {
        let at = line.find(what)?;
        line[..at].rsplit([' ', ',']).next()?.parse().ok()
    };
    Some(Written {
        rows: count_before(" rows written")?,
        bad_records: count_before(" records that could not be decoded")?,
    })
}

/// A flag's value from the bench's arguments (`--events 100`), or `default`.
pub fn flag(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned()).unwrap_or_else(|| default.to_string())
}

/// A comma-separated flag as a list of numbers.
pub fn numbers<T: std::str::FromStr>(name: &str, default: &str) -> Vec<T> {
    flag(name, default)
        .split(',')
        .map(|v| v.trim().parse().unwrap_or_else(|_| panic!("{name} takes numbers, not '{v}'")))
        .collect()
}

/// Runs this bench's binary again as `--child <args>`, so that a case's peak
/// memory is its own, and returns the fields of the line the child printed
/// after `RESULT `; `None`, with the child's stderr printed, if it printed
/// none.
pub fn child_result(args: &[String]) -> Option<Vec<String>> {
    let exe = std::env::current_exe().expect("bench binary");
    let out = Command::new(exe).arg("--child").args(args).output().expect("run child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let fields = stdout.lines().find_map(|l| l.strip_prefix("RESULT "));
    if fields.is_none() {
        eprintln!("{}: failed\n{}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    fields.map(|f| f.split_whitespace().map(str::to_string).collect())
}

/// Runs `sql`'s statements in one session of this process: each job one
/// starts must finish, and `finished` then sees it (its metrics).
pub async fn run_jobs(sql: &str, mut finished: impl FnMut(&JobHandle)) {
    let mut session = Session::new();
    for s in parse_script(sql).expect("bench SQL parses") {
        if let Outcome::JobStarted(job) = session.execute(&s).await.expect("bench SQL runs") {
            let status = job.wait().await;
            assert_eq!(status, JobStatus::Finished, "{status:?}");
            finished(&job);
        }
    }
}
