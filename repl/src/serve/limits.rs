//! The bounds `weir serve` puts on what one client may ask of it, so that
//! no client can exhaust the server its neighbours and jobs share: how
//! many connect, how much SQL one message carries, how many rows and how
//! large a value one query returns, how long a statement runs and how long
//! a connection idles. Each refusal is an ErrorResponse with the SQLSTATE
//! PostgreSQL uses for it.

use std::time::Duration;

use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError};

/// Connections served at once: PostgreSQL's own default `max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 100;
/// The text of one message (a simple query's script, or a Parse). A parse
/// tree takes tens of times the memory of its text; 1 MiB keeps one
/// message's under about a hundred MiB, and is a hundred times the longest
/// query a dashboard sends. Weir reads rows from connectors, not from SQL
/// text, so nothing needs more (it may be raised to pgwire's own bound on
/// a message, 1 GiB).
pub const DEFAULT_MAX_STATEMENT_BYTES: u32 = 1 << 20;
/// Statements in one simple-query message: each one is planned and
/// answered separately, so this bounds the work and the responses one
/// message can queue.
pub const DEFAULT_MAX_STATEMENTS: u32 = 10_000;
/// Rows one query sends without a cursor; beyond a million a client wants
/// `LIMIT`, or a cursor that fetches in parts.
pub const DEFAULT_MAX_RESULT_ROWS: u32 = 1_000_000;
/// The size of one value a function such as `repeat` may make, and its
/// bound (the checked functions live with the session's functions).
pub use weir_sql::functions::value_size::{DEFAULT_MAX_VALUE_BYTES, MAX_VALUE_BYTES};

/// `too_many_connections`
pub const TOO_MANY_CONNECTIONS: &str = "53300";
/// `program_limit_exceeded`
pub const PROGRAM_LIMIT_EXCEEDED: &str = "54000";
/// `query_canceled`: by a CancelRequest or the statement timeout.
pub const QUERY_CANCELED: &str = "57014";
/// `idle_session_timeout`
pub const IDLE_SESSION_TIMEOUT: &str = "57P05";

/// What one client may ask of the server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once; others are told so and closed.
    pub max_connections: usize,
    /// Bytes of SQL in one Query or Parse message.
    pub max_statement_bytes: usize,
    /// Statements in one Query message.
    pub max_statements: usize,
    /// Rows of one query's answer, unless read through a cursor.
    pub max_result_rows: usize,
    /// Bytes of one value made by `repeat`, `lpad` or `rpad`.
    pub max_value_bytes: usize,
    /// Each connection's `statement_timeout` until it sets its own.
    pub statement_timeout: Option<Duration>,
    /// How long a connection may send nothing before it is closed.
    pub idle_timeout: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS as usize,
            max_statement_bytes: DEFAULT_MAX_STATEMENT_BYTES as usize,
            max_statements: DEFAULT_MAX_STATEMENTS as usize,
            max_result_rows: DEFAULT_MAX_RESULT_ROWS as usize,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES as usize,
            statement_timeout: None,
            idle_timeout: None,
        }
    }
}

impl Limits {
    /// Refuses `sql` longer than the limit, before anything parses it.
    pub fn check_statement_bytes(&self, sql: &str) -> Result<(), PgWireError> {
        if sql.len() <= self.max_statement_bytes {
            return Ok(());
        }
        Err(error(
            "ERROR",
            PROGRAM_LIMIT_EXCEEDED,
            format!(
                "statement too long: {} bytes, at most {} (weir serve --max-statement-bytes)",
                sql.len(),
                self.max_statement_bytes
            ),
            None,
        ))
    }

    /// Refuses, before anything parses it, a message with more `;` than
    /// statements may be sent at once: parsing alone takes memory for each
    /// statement. (A `;` in a string literal counts too; the exact count is
    /// checked again once parsed.)
    pub fn check_separators(&self, sql: &str) -> Result<(), PgWireError> {
        self.check_statements(sql.bytes().filter(|b| *b == b';').count())
    }

    /// Refuses a message of `count` statements beyond the limit, before
    /// any of them runs.
    pub fn check_statements(&self, count: usize) -> Result<(), PgWireError> {
        if count <= self.max_statements {
            return Ok(());
        }
        Err(error(
            "ERROR",
            PROGRAM_LIMIT_EXCEEDED,
            format!(
                "too many statements in one message: {count}, at most {} (weir serve --max-statements)",
                self.max_statements
            ),
            Some("send them in several messages".into()),
        ))
    }

    /// The error of a query whose answer passed `max_result_rows`.
    pub fn too_many_rows(&self) -> PgWireError {
        error(
            "ERROR",
            PROGRAM_LIMIT_EXCEEDED,
            format!(
                "the query returns more than {} rows (weir serve --max-result-rows)",
                self.max_result_rows
            ),
            Some("add a LIMIT, or read the rows through a cursor (DECLARE … CURSOR and FETCH, or a client's server-side cursor)".into()),
        )
    }
}

/// `FATAL 53300`, as PostgreSQL answers a client over `max_connections`.
pub fn too_many_connections(limit: usize) -> PgWireError {
    error(
        "FATAL",
        TOO_MANY_CONNECTIONS,
        "sorry, too many clients already".into(),
        Some(format!("weir serve serves at most {limit} connections (--max-connections)")),
    )
}

/// `FATAL 57P05`, as PostgreSQL closes a session idle for too long.
pub fn idle_timeout() -> PgWireError {
    error(
        "FATAL",
        IDLE_SESSION_TIMEOUT,
        "terminating connection due to idle-session timeout".into(),
        None,
    )
}

/// Why a running statement was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interruption {
    /// A CancelRequest named this connection.
    Canceled,
    /// It ran for longer than the connection's `statement_timeout`.
    TimedOut,
}

impl Interruption {
    /// The error PostgreSQL sends for it.
    pub fn into_error(self) -> PgWireError {
        let message = match self {
            Interruption::Canceled => "canceling statement due to user request",
            Interruption::TimedOut => "canceling statement due to statement timeout",
        };
        error("ERROR", QUERY_CANCELED, message.into(), None)
    }
}

/// An ErrorResponse of `severity`.
fn error(severity: &str, code: &str, message: String, hint: Option<String>) -> PgWireError {
    let mut info = ErrorInfo::new(severity.into(), code.into(), message);
    info.hint = hint;
    PgWireError::UserError(Box::new(info))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(e: PgWireError) -> String {
        match e {
            PgWireError::UserError(info) => info.code,
            other => panic!("not a user error: {other}"),
        }
    }

    #[test]
    fn statements_are_counted_before_and_after_parsing() {
        let limits = Limits { max_statements: 3, ..Limits::default() };
        assert!(limits.check_separators("SELECT 1; SELECT 2; SELECT 3;").is_ok());
        assert_eq!(code(limits.check_separators("SELECT ';;;;'").unwrap_err()), PROGRAM_LIMIT_EXCEEDED);
        assert!(limits.check_statements(3).is_ok());
        assert_eq!(code(limits.check_statements(4).unwrap_err()), PROGRAM_LIMIT_EXCEEDED);
    }

    #[test]
    fn long_statements_are_refused() {
        let limits = Limits { max_statement_bytes: 8, ..Limits::default() };
        assert!(limits.check_statement_bytes("SELECT 1").is_ok());
        assert_eq!(code(limits.check_statement_bytes("SELECT 10").unwrap_err()), PROGRAM_LIMIT_EXCEEDED);
    }
}
