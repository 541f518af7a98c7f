//! `weir serve`'s limits on clients, each hit by a real client (psql,
//! psycopg 3, or the protocol by hand) and answered with its SQLSTATE:
//! connections, message size and statements per message, rows without a
//! cursor, the size of one value, statement_timeout, CancelRequest, a
//! client that leaves mid-query, idle connections, TLS, failed passwords,
//! a panic while answering; and a huge message that must not stall other
//! clients or SIGTERM.

use crate::common;
use crate::pgwire_common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::scratch;
use pgwire_common::*;

/// A query that runs for minutes: DataFusion sums 10^11 generated numbers.
const SLOW: &str = "SELECT sum(value) FROM generate_series(1, 100000000000)";

/// Retries `f` for up to 30 s until it returns true.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < until, "never: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `script` (Python with psycopg) with the server's port as argv[1];
/// its standard output.
fn psycopg(dir: &Path, port: u16, script: &str) -> String {
    let file = dir.join("client.py");
    std::fs::write(&file, script).expect("write client");
    let out = Command::new(python()).arg(&file).arg(port.to_string()).output().expect("python");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}{said}", String::from_utf8_lossy(&out.stderr));
    said
}

#[test]
fn connections_beyond_the_limit_are_refused_with_53300() {
    let dir = scratch();
    let server = Server::start(dir.path(), &["--max-connections", "2"], &[]);
    let first = raw_login(server.port);
    let second = raw_login(server.port);
    let refused = psql_err(server.port, "SELECT 1");
    assert!(refused.contains("sorry, too many clients already"), "{refused}");
    let mut third = send_startup(server.port);
    let refused = errors(&read_until_ready(&mut third));
    assert_eq!(refused, [("53300".to_string(), "sorry, too many clients already".to_string())]);
    assert!(closed_by_server(third));
    // A slot freed is a slot for the next client.
    drop(first);
    eventually("a client is served once a connection has closed", || psql(server.port, "SELECT 1", None).status.success());
    drop(second);
    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
}

#[test]
fn long_messages_and_too_many_statements_are_refused_with_54000() {
    let dir = scratch();
    let server = Server::start(dir.path(), &["--max-statement-bytes", "1000", "--max-statements", "5"], &[]);
    let long = format!("SELECT '{}'", "x".repeat(1000));
    let refused = psql_err(server.port, &long);
    assert!(refused.contains("54000") && refused.contains("statement too long: 1009 bytes, at most 1000"), "{refused}");
    let refused = psql_err(server.port, &"SELECT 1;".repeat(6));
    assert!(refused.contains("54000") && refused.contains("too many statements in one message"), "{refused}");
    assert_eq!(psql_ok(server.port, &"SELECT 1;".repeat(5)).lines().count(), 5);
    // A Parse message too (psycopg prepares the statement).
    let said = psycopg(
        dir.path(),
        server.port,
        &format!(
            r#"
import sys, psycopg
with psycopg.connect(f"host=127.0.0.1 port={{sys.argv[1]}} user=weir dbname=weir", autocommit=True) as conn:
    try:
        conn.execute("SELECT %s::text, '{}'", ("a",), prepare=True)
    except psycopg.Error as e:
        print("refused", e.sqlstate)
    print("then", conn.execute("SELECT 1").fetchone()[0])
"#,
            "x".repeat(1000)
        ),
    );
    assert_eq!(said, "refused 54000\nthen 1\n");
}

/// The messages of `count` statements `SELECT 1;`, sent at once on each
/// of `clients` connections; each thread returns when its answer is read.
fn big_messages(port: u16, clients: usize, count: usize) -> Vec<std::thread::JoinHandle<usize>> {
    (0..clients)
        .map(|_| {
            std::thread::spawn(move || {
                let mut stream = raw_login(port);
                stream.set_read_timeout(Some(Duration::from_secs(600))).expect("timeout");
                send_query(&mut stream, &"SELECT 1;".repeat(count));
                read_until_ready(&mut stream).iter().filter(|(kind, _)| *kind == b'C').count()
            })
        })
        .collect()
}

#[test]
fn a_huge_message_stalls_neither_other_clients_nor_sigterm() {
    let dir = scratch();
    let server = Server::start(dir.path(), &["--max-statements", "50000"], &[]);
    // As many as the runtime has workers: if parsing or planning ran on
    // them, no worker would be left for anyone else.
    let clients = std::thread::available_parallelism().map_or(2, |n| n.get());
    let big = big_messages(server.port, clients, 30_000);
    std::thread::sleep(Duration::from_millis(300));
    let asked = Instant::now();
    assert_eq!(psql_ok(server.port, "SELECT 1").trim(), "1");
    let answered = asked.elapsed();
    let started = Instant::now();
    for b in big {
        assert_eq!(b.join().expect("client"), 30_000, "every statement answered");
    }
    let big_took = started.elapsed() + Duration::from_millis(300);
    assert!(answered < big_took, "SELECT 1 took {answered:?}, the huge messages {big_took:?}");

    // SIGTERM while huge messages are being answered stops the server at
    // once (its jobs checkpointed), not once they are done.
    let _big = big_messages(server.port, clients, 30_000);
    std::thread::sleep(Duration::from_millis(300));
    let asked = Instant::now();
    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
    assert!(asked.elapsed() < big_took, "SIGTERM took {:?}", asked.elapsed());
}

#[test]
fn rows_beyond_the_limit_need_a_cursor() {
    let dir = scratch();
    let server = Server::start(dir.path(), &["--max-result-rows", "1000"], &[]);
    assert_eq!(psql_ok(server.port, "SELECT * FROM generate_series(1, 1000)").lines().count(), 1000);
    let refused = psql_err(server.port, "SELECT * FROM generate_series(1, 1001)");
    assert!(refused.contains("54000") && refused.contains("more than 1000 rows") && refused.contains("cursor"), "{refused}");
    // psql's FETCH_COUNT reads through a cursor, 500 rows at a time.
    let mut cmd = Command::new("psql");
    cmd.args(["-X", "-w", "-h", "127.0.0.1", "-p", &server.port.to_string(), "-U", "weir", "-d", "weir", "-A", "-t"])
        .args(["-v", "FETCH_COUNT=500", "-v", "ON_ERROR_STOP=1", "-c", "SELECT * FROM generate_series(1, 2500)"]);
    let out = cmd.output().expect("psql");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2500);
    // The extended protocol: an Execute for all rows is bounded.
    let said = psycopg(
        dir.path(),
        server.port,
        r#"
import sys, psycopg
with psycopg.connect(f"host=127.0.0.1 port={sys.argv[1]} user=weir dbname=weir", autocommit=True) as conn:
    query = "SELECT value FROM generate_series(1, 2000) WHERE value <= %s"
    print("rows", len(conn.execute(query, (1000,)).fetchall()))
    try:
        conn.execute(query, (1001,))
    except psycopg.Error as e:
        print("refused", e.sqlstate)
"#,
    );
    assert_eq!(said, "rows 1000\nrefused 54000\n");
}

#[test]
fn values_larger_than_the_limit_are_refused_with_54000() {
    let dir = scratch();
    let server = Server::start(dir.path(), &["--max-value-bytes", "1000000"], &[]);
    for sql in ["SELECT repeat('x', 2000000000)", "SELECT length(lpad('x', 1000001))", "SELECT rpad('x', 2000000000, 'y')"] {
        let refused = psql_err(server.port, sql);
        assert!(refused.contains("54000") && refused.contains("requested length too large"), "{sql}: {refused}");
    }
    assert_eq!(psql_ok(server.port, "SELECT length(repeat('ab', 500000))").trim(), "1000000");
    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
}

/// psql runs each `-c` as a message of its own, on one connection.
fn psql_commands(port: u16, commands: &[&str]) -> std::process::Output {
    let mut cmd = Command::new("psql");
    cmd.args(["-X", "-w", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", "weir", "-d", "weir", "-A", "-t"])
        .args(["-v", "VERBOSITY=verbose"]);
    for c in commands {
        cmd.args(["-c", c]);
    }
    cmd.output().expect("psql")
}

#[test]
fn statement_timeout_cancels_with_57014() {
    let dir = scratch();
    let server = Server::start(dir.path(), &[], &[]);
    let out = psql_commands(server.port, &["SET statement_timeout = '1s'", SLOW]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("57014") && stderr.contains("canceling statement due to statement timeout"), "{stderr}");
    server.stop();

    // The server's default, which a connection may lift.
    let server = Server::start(dir.path(), &["--statement-timeout", "1 s"], &[]);
    let timed_out = psql_err(server.port, SLOW);
    assert!(timed_out.contains("57014"), "{timed_out}");
    assert_eq!(psql_ok(server.port, "SHOW statement_timeout").trim(), "1000ms");
    let out = psql_commands(server.port, &["SET statement_timeout = 0", "SELECT count(*) FROM generate_series(1, 3000000)"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_cancel_request_stops_the_running_query() {
    let dir = scratch();
    let server = Server::start(dir.path(), &[], &[]);
    // psql's Ctrl-C.
    let psql = Command::new("psql")
        .args(["-X", "-w", "-h", "127.0.0.1", "-p", &server.port.to_string(), "-U", "weir", "-d", "weir"])
        .args(["-v", "VERBOSITY=verbose", "-c", SLOW])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("psql");
    std::thread::sleep(Duration::from_secs(1));
    Command::new("kill").args(["-INT", &psql.id().to_string()]).status().expect("kill");
    let out = psql.wait_with_output().expect("psql");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("57014") && stderr.contains("canceling statement due to user request"), "{stderr}");
    // psycopg's cancel(), from another thread; the connection goes on.
    let said = psycopg(
        dir.path(),
        server.port,
        &format!(
            r#"
import sys, threading, psycopg
with psycopg.connect(f"host=127.0.0.1 port={{sys.argv[1]}} user=weir dbname=weir", autocommit=True) as conn:
    threading.Timer(1.0, conn.cancel).start()
    try:
        conn.execute("{SLOW}")
    except psycopg.errors.QueryCanceled as e:
        print("canceled", e.sqlstate)
    print("then", conn.execute("SELECT 1").fetchone()[0])
"#
        ),
    );
    assert_eq!(said, "canceled 57014\nthen 1\n");
}

#[test]
fn a_client_that_leaves_stops_its_query() {
    let dir = scratch();
    // One connection at a time: the next client is served only once the
    // query of the one that left has stopped and its connection ended.
    let server = Server::start(dir.path(), &["--max-connections", "1"], &[]);
    let mut leaving = raw_login(server.port);
    send_query(&mut leaving, SLOW);
    std::thread::sleep(Duration::from_millis(500));
    drop(leaving);
    eventually("the next client is served", || psql(server.port, "SELECT 1", None).status.success());
}

#[test]
fn an_idle_connection_is_closed_with_57p05() {
    let dir = scratch();
    let server = Server::start(dir.path(), &["--idle-timeout", "1 s"], &[]);
    let mut idle = raw_login(server.port);
    send_query(&mut idle, "SELECT 1");
    assert!(errors(&read_until_ready(&mut idle)).is_empty());
    let last = read_until_ready(&mut idle);
    assert_eq!(
        errors(&last),
        [("57P05".to_string(), "terminating connection due to idle-session timeout".to_string())]
    );
    assert!(closed_by_server(idle));
}

/// A self-signed certificate and its key, made with the openssl CLI.
fn self_signed(dir: &Path) -> (String, String) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl (Debian's openssl)");
    assert!(made.success());
    (cert.display().to_string(), key.display().to_string())
}

#[test]
fn tls_is_served_when_asked_for_and_a_bad_certificate_stops_startup() {
    let dir = scratch();
    let (cert, key) = self_signed(dir.path());
    let server = Server::start(dir.path(), &["--tls-cert", &cert, "--tls-key", &key], &[]);
    let conninfo = format!("sslmode=require host=127.0.0.1 port={} user=weir dbname=weir", server.port);
    let out = Command::new("psql").args(["-X", "-w", &conninfo, "-c", "\\conninfo"]).output().expect("psql");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && said.contains("SSL"), "{said}{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new("psql").args(["-X", "-w", "-A", "-t", &conninfo, "-c", "SELECT 1"]).output().expect("psql");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    // Clients that do not ask are still served.
    assert_eq!(psql_ok(server.port, "SELECT 1").trim(), "1");
    server.stop();

    // Without TLS, sslmode=require is refused by the client.
    let server = Server::start(dir.path(), &[], &[]);
    let conninfo = format!("sslmode=require host=127.0.0.1 port={} user=weir dbname=weir", server.port);
    let out = Command::new("psql").args(["-X", "-w", &conninfo, "-c", "SELECT 1"]).output().expect("psql");
    assert!(!out.status.success());
    server.stop();

    // A key that is not there is an error at startup, never plaintext.
    for (cert, key) in [(cert.as_str(), "/nonexistent/key.pem"), ("/nonexistent/cert.pem", key.as_str()), (key.as_str(), key.as_str())] {
        let out = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["serve", "--pg-port", &free_port().to_string(), "--tls-cert", cert, "--tls-key", key])
            .output()
            .expect("weir serve");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains("TLS"), "{stderr}");
        assert!(!stderr.contains("Serving pgwire"), "{stderr}");
    }
}

#[test]
fn a_wrong_password_is_answered_late_and_logged() {
    let dir = scratch();
    let server = Server::start(dir.path(), &["--password", "right-one"], &[]);
    let asked = Instant::now();
    let out = psql(server.port, "SELECT 1", Some("wrong-one"));
    assert!(!out.status.success());
    assert!(asked.elapsed() >= Duration::from_secs(1), "answered after {:?}", asked.elapsed());
    assert!(psql(server.port, "SELECT 1", Some("right-one")).status.success());
    let (_, log) = server.stop();
    assert!(log.contains("failed login") && log.contains("127.0.0.1"), "{log}");
    assert!(!log.contains("wrong-one") && !log.contains("right-one"), "{log}");
}

#[test]
fn a_panic_while_answering_fails_that_statement_only() {
    let dir = scratch();
    let server = Server::start(dir.path(), &[], &[("FAILPOINTS", "weir::pgwire::query=return(panic_here)")]);
    let mut client = raw_login(server.port);
    send_query(&mut client, "SELECT 'panic_here'");
    let answer = read_until_ready(&mut client);
    let errors = errors(&answer);
    assert!(errors.len() == 1 && errors[0].0 == "XX000" && errors[0].1.contains("failpoint"), "{errors:?}");
    // The same connection, and others, go on.
    send_query(&mut client, "SELECT 2");
    assert!(answer_rows(&read_until_ready(&mut client)) == 1);
    assert_eq!(psql_ok(server.port, "SELECT 3").trim(), "3");
    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
}

/// The DataRows among `messages`.
fn answer_rows(messages: &[(u8, Vec<u8>)]) -> usize {
    messages.iter().filter(|(kind, _)| *kind == b'D').count()
}
