//! Errors sent to pgwire clients: every failure becomes an ErrorResponse
//! with a SQLSTATE a client can act on and the message Weir prints.

use datafusion::error::DataFusionError;
use datafusion_postgres::pgwire::api::{ClientInfo, ErrorHandler};
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError};
use weir_sql::{Position, SqlError};

use weir_sql::functions::value_size::ValueTooLarge;

/// `syntax_error`
const SYNTAX_ERROR: &str = "42601";
/// `undefined_table`
const UNDEFINED_TABLE: &str = "42P01";
/// `feature_not_supported`
const FEATURE_NOT_SUPPORTED: &str = "0A000";
/// `program_limit_exceeded`: a statement beyond one of Weir's limits
/// (nesting, script length).
const PROGRAM_LIMIT_EXCEEDED: &str = "54000";
/// `internal_error`: any other failure (planning, connectors, the engine).
const INTERNAL_ERROR: &str = "XX000";

/// Why a statement sent over pgwire was not run, or failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Weir could not parse, plan or run it.
    #[error(transparent)]
    Sql(#[from] SqlError),
    /// A `SELECT` over streams never ends: a pgwire client could not read
    /// its result.
    #[error("a SELECT over streams runs until it is stopped, so it cannot be answered over pgwire")]
    StreamingSelect,
}

impl QueryError {
    /// This error as pgwire sends it (see [`Self::into_error_info`]).
    pub fn into_pg_error(self, sql: &str) -> PgWireError {
        PgWireError::UserError(Box::new(self.into_error_info(sql)))
    }

    /// The ErrorResponse of this error; `sql` is the text the client sent,
    /// against which Weir's line and column become a character position.
    fn into_error_info(self, sql: &str) -> ErrorInfo {
        let (code, position) = match &self {
            QueryError::Sql(e) => (sql_state(e), e.position().and_then(|p| char_position(sql, p))),
            QueryError::StreamingSelect => (FEATURE_NOT_SUPPORTED, None),
        };
        let mut info = ErrorInfo::new("ERROR".into(), code.into(), self.to_string());
        info.position = position.map(|p| p.to_string());
        info.hint = self.hint().map(str::to_string);
        info
    }

    /// What to do instead, when there is something.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            QueryError::StreamingSelect => Some(
                "keep its results in a view and query that: CREATE MATERIALIZED VIEW v AS SELECT …; SELECT * FROM v",
            ),
            QueryError::Sql(_) => None,
        }
    }
}

/// The SQLSTATE of a Weir error.
fn sql_state(e: &SqlError) -> &'static str {
    match e {
        SqlError::Syntax { .. } => SYNTAX_ERROR,
        SqlError::Unsupported { .. } => FEATURE_NOT_SUPPORTED,
        SqlError::Plan { message, .. } if is_unknown_table(message) => UNDEFINED_TABLE,
        SqlError::Limit { .. } => PROGRAM_LIMIT_EXCEEDED,
        _ => INTERNAL_ERROR,
    }
}

/// Neither Weir nor DataFusion has a typed "unknown table" error; both say
/// `table '…' not found`.
fn is_unknown_table(message: &str) -> bool {
    message.starts_with("table '") && message.ends_with("' not found")
}

/// The 1-based character position of a line and column in `sql`, as
/// ErrorResponse's position field counts.
fn char_position(sql: &str, p: Position) -> Option<usize> {
    let line_start: usize = sql
        .split_inclusive('\n')
        .take(usize::try_from(p.line).ok()?.checked_sub(1)?)
        .map(|l| l.chars().count())
        .sum();
    Some(line_start + usize::try_from(p.column).ok()?)
}

/// Gives DataFusion's errors (from the queries datafusion-postgres runs)
/// the SQLSTATE and message a Weir error of the same kind has; pgwire
/// would send them all as `XX000` with DataFusion's own wording.
#[derive(Debug)]
pub struct SqlStates;

impl ErrorHandler for SqlStates {
    fn on_error<C: ClientInfo>(&self, _client: &C, error: &mut PgWireError) {
        let taken = std::mem::replace(error, PgWireError::PortalNotStarted);
        *error = refine(taken);
    }
}

/// `error`, with a DataFusion error turned into Weir's form of it.
pub fn refine(error: PgWireError) -> PgWireError {
    match error {
        PgWireError::ApiError(source) => match source.downcast::<DataFusionError>() {
            Ok(e) => {
                if let Some(too_large) = ValueTooLarge::find(&e) {
                    let message = too_large.to_string();
                    return PgWireError::UserError(Box::new(ErrorInfo::new("ERROR".into(), PROGRAM_LIMIT_EXCEEDED.into(), message)));
                }
                let code = match e.find_root() {
                    DataFusionError::SQL(..) => SYNTAX_ERROR,
                    DataFusionError::NotImplemented(_) => FEATURE_NOT_SUPPORTED,
                    DataFusionError::Plan(m) if is_unknown_table(m) => UNDEFINED_TABLE,
                    _ => INTERNAL_ERROR,
                };
                let message = SqlError::from(*e).to_string();
                PgWireError::UserError(Box::new(ErrorInfo::new("ERROR".into(), code.into(), message)))
            }
            Err(other) => PgWireError::ApiError(other),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weir_errors_get_their_sqlstate_and_position() {
        let sql = "SELECT 1;\nSELEC x";
        let e = weir_sql::parse_script(sql).unwrap_err();
        let info = QueryError::from(e).into_error_info(sql);
        assert_eq!(info.code, SYNTAX_ERROR);
        assert_eq!(info.position.as_deref(), Some("11"), "{info:?}");
        let info = QueryError::from(SqlError::plan("table 'nope' not found", None)).into_error_info("");
        assert_eq!(info.code, UNDEFINED_TABLE);
        let info = QueryError::StreamingSelect.into_error_info("");
        assert_eq!(info.code, FEATURE_NOT_SUPPORTED);
        assert!(info.hint.unwrap().contains("CREATE MATERIALIZED VIEW"));
    }

    #[test]
    fn datafusion_errors_are_refined() {
        let e = DataFusionError::Plan("table 'datafusion.public.nope' not found".into());
        let PgWireError::UserError(info) = refine(PgWireError::ApiError(Box::new(e))) else { panic!() };
        assert_eq!(info.code, UNDEFINED_TABLE);
        assert_eq!(info.message, "table 'datafusion.public.nope' not found");
        let e = DataFusionError::NotImplemented("LATERAL".into());
        let PgWireError::UserError(info) = refine(PgWireError::ApiError(Box::new(e))) else { panic!() };
        assert_eq!(info.code, FEATURE_NOT_SUPPORTED);
    }
}
