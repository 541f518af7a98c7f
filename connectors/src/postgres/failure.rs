//! Which PostgreSQL errors are worth another attempt: the lookups and the
//! sink both retry a server that is down or restarting, and fail at once
//! on an error that the same statement would meet again.

use tokio_postgres::error::SqlState;

/// Why an attempt failed.
#[derive(Debug)]
pub(super) enum Failure {
    /// The server is down, restarting or overloaded: worth another try.
    Transient(String),
    /// The statement itself is wrong, or the data breaks a rule of the
    /// table (no such table or column, a value that does not convert, a
    /// NOT NULL or CHECK constraint): retrying cannot help.
    Final(String),
}

impl Failure {
    /// What went wrong, for the user.
    pub(super) fn message(&self) -> &str {
        match self {
            Failure::Transient(m) | Failure::Final(m) => m,
        }
    }
}

/// Classes of SQLSTATE that retrying cannot cure: 21 (cardinality), 22
/// (data exception), 23 (integrity constraint violation), 42 (syntax error
/// or access rule violation: undefined table or column), 0A (feature not
/// supported).
const FINAL_CLASSES: &[&str] = &["21", "22", "23", "42", "0A"];

/// Sorts a client error: Postgres's own message and SQLSTATE where the
/// server answered.
pub(super) fn classify(e: tokio_postgres::Error) -> Failure {
    let message = match e.as_db_error() {
        Some(db) => {
            let detail = db.detail().map(|d| format!(" ({d})")).unwrap_or_default();
            format!("{}{detail} (SQLSTATE {})", db.message(), db.code().code())
        }
        None => e.to_string(),
    };
    match e.code() {
        Some(code) if FINAL_CLASSES.iter().any(|c| code.code().starts_with(c)) => Failure::Final(message),
        Some(code) if *code == SqlState::INSUFFICIENT_PRIVILEGE => Failure::Final(message),
        _ => Failure::Transient(message),
    }
}
