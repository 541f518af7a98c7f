//! A throwaway PostgreSQL server for the lookup-join tests: Debian's
//! `postgresql` binaries, a data directory in a temp dir, a free loopback
//! port, `pg_stat_statements` loaded to count lookups. initdb refuses to
//! run as root, so the server runs as the `postgres` user when the tests
//! run as root. Stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Postgres {
    bin: PathBuf,
    /// Holds the data directory; removed after the server stops.
    dir: tempfile::TempDir,
    pub port: u16,
}

/// The newest installed server's binaries.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (scripts/test.sh installs Debian's postgresql)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().expect("a PostgreSQL server under /usr/lib/postgresql/<version>/bin")
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

/// `program` run as the server's owner.
fn as_owner(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn check(what: &str, out: std::process::Output) {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Postgres {
    /// Initialises and starts a server.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        if is_root() {
            check("chown", Command::new("chown").arg("postgres:postgres").arg(dir.path()).output().unwrap());
        }
        let bin = bin_dir();
        let data = dir.path().join("data");
        check(
            "initdb",
            as_owner(&bin.join("initdb"))
                .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "-D"])
                .arg(&data)
                .output()
                .unwrap(),
        );
        let pg = Self { bin, dir, port: free_port() };
        pg.run();
        pg.psql("CREATE EXTENSION pg_stat_statements");
        pg
    }

    /// Starts the server on its data directory (again).
    pub fn run(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c shared_preload_libraries=pg_stat_statements -c max_connections=300 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        check(
            "pg_ctl start",
            as_owner(&self.bin.join("pg_ctl"))
                .args(["-w", "-D"])
                .arg(self.dir.path().join("data"))
                .args(["-o", &options, "-l"])
                .arg(self.dir.path().join("log"))
                .arg("start")
                .output()
                .unwrap(),
        );
    }

    /// Stops the server at once, dropping its connections.
    pub fn stop(&self) {
        let _ = as_owner(&self.bin.join("pg_ctl"))
            .args(["-w", "-m", "immediate", "-D"])
            .arg(self.dir.path().join("data"))
            .arg("stop")
            .output();
    }

    /// The connection URL for a table's `'url'`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs `sql` with psql; its unaligned output.
    pub fn psql(&self, sql: &str) -> String {
        let out = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-At", "-p"])
            .arg(self.port.to_string())
            .args(["-c", sql])
            .output()
            .expect("psql is installed");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        check(&format!("psql {sql}"), out);
        text
    }

    /// How many times statements whose text contains `fragment` ran.
    pub fn calls(&self, fragment: &str) -> u64 {
        let n = self.psql(&format!(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE '%{}%' AND query NOT LIKE '%pg_stat_statements%'",
            fragment.replace('\'', "''")
        ));
        n.trim().parse().expect("a count")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}
