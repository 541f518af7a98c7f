//! Errors sent to pgwire clients: every failure becomes an ErrorResponse
//! with a SQLSTATE a client can act on and the message Weir prints.

use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;
use datafusion_postgres::pgwire::api::{ClientInfo, ErrorHandler};
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError};
use weir_connectors::ConnectorError;
use weir_engine::EngineError;
use weir_engine::error::{ErrorKind, datafusion_kind};
use weir_sql::{Position, SqlError};

/// `syntax_error`
const SYNTAX_ERROR: &str = "42601";
/// `undefined_table`
const UNDEFINED_TABLE: &str = "42P01";
/// `feature_not_supported`
const FEATURE_NOT_SUPPORTED: &str = "0A000";
/// `program_limit_exceeded`: a statement beyond one of Weir's limits
/// (nesting, script length).
const PROGRAM_LIMIT_EXCEEDED: &str = "54000";
/// `syntax_error_or_access_rule_violation`: a statement that cannot be
/// planned (an unknown column, wrong types, a table that already exists).
const STATEMENT_ERROR: &str = "42000";
/// `invalid_parameter_value`: a bad `WITH (…)` option, as PostgreSQL says
/// of a bad storage parameter.
const INVALID_PARAMETER_VALUE: &str = "22023";
/// `data_exception`: a value of the user's that the query cannot compute
/// with (a cast that fails, an argument out of range).
const DATA_EXCEPTION: &str = "22000";
/// `division_by_zero`
const DIVISION_BY_ZERO: &str = "22012";
/// `numeric_value_out_of_range`: an arithmetic overflow.
const NUMERIC_VALUE_OUT_OF_RANGE: &str = "22003";
/// `object_not_in_prerequisite_state`: saved state that does not fit the
/// job (another query's, another Weir's).
const OBJECT_NOT_IN_PREREQUISITE_STATE: &str = "55000";
/// `system_error`: a system outside Weir failed (a broker, a lookup
/// database, the state store); retrying may succeed. Not `08…`
/// (connection exception), which a client reads as its own connection to
/// Weir being lost.
const SYSTEM_ERROR: &str = "58000";
/// `io_error`: reading or writing a file failed.
const IO_ERROR: &str = "58030";
/// `internal_error`: a bug in Weir (a panic, a plan the engine cannot run).
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

/// The SQLSTATE of a Weir error, from its variant and, for what the
/// engine or DataFusion raised, from its kind (the class) and its type
/// (the code within it); never from its message.
fn sql_state(e: &SqlError) -> &'static str {
    match e {
        SqlError::Syntax { .. } => SYNTAX_ERROR,
        SqlError::Unsupported { .. } => FEATURE_NOT_SUPPORTED,
        SqlError::UnknownTable { .. } => UNDEFINED_TABLE,
        SqlError::Plan { .. } => STATEMENT_ERROR,
        SqlError::Limit { .. } => PROGRAM_LIMIT_EXCEEDED,
        SqlError::Connector { source: ConnectorError::Unsupported { .. }, .. } => FEATURE_NOT_SUPPORTED,
        SqlError::Connector { .. } => INVALID_PARAMETER_VALUE,
        SqlError::Panicked { .. } => INTERNAL_ERROR,
        SqlError::DataFusion { source, .. } => datafusion_state(source),
        SqlError::Engine(e) => engine_state(e),
    }
}

/// The SQLSTATE of an error of the running (or starting) job.
fn engine_state(e: &EngineError) -> &'static str {
    match e.kind() {
        ErrorKind::Internal => INTERNAL_ERROR,
        ErrorKind::External => match e {
            EngineError::Io { .. } => IO_ERROR,
            EngineError::DataFusion { source, .. } => datafusion_state(source),
            _ => SYSTEM_ERROR,
        },
        ErrorKind::User => match e {
            EngineError::Incompatible(_) => OBJECT_NOT_IN_PREREQUISITE_STATE,
            EngineError::DataFusion { source, .. } => datafusion_state(source),
            EngineError::Arrow { source, .. } => arrow_state(source),
            _ => DATA_EXCEPTION,
        },
    }
}

/// The SQLSTATE of a DataFusion error, from its innermost error.
fn datafusion_state(e: &DataFusionError) -> &'static str {
    let root = e.find_root();
    match datafusion_kind(e) {
        ErrorKind::Internal => INTERNAL_ERROR,
        ErrorKind::External => match root {
            DataFusionError::IoError(_) => IO_ERROR,
            _ => SYSTEM_ERROR,
        },
        ErrorKind::User => match root {
            DataFusionError::SQL(..) => SYNTAX_ERROR,
            DataFusionError::NotImplemented(_) => FEATURE_NOT_SUPPORTED,
            DataFusionError::Plan(_) | DataFusionError::SchemaError(..) | DataFusionError::Configuration(_) => {
                STATEMENT_ERROR
            }
            DataFusionError::ArrowError(a, _) => arrow_state(a),
            DataFusionError::External(inner) => inner.downcast_ref::<ArrowError>().map_or(DATA_EXCEPTION, arrow_state),
            _ => DATA_EXCEPTION,
        },
    }
}

/// The SQLSTATE of an Arrow kernel's error about the user's values: the
/// specific `22…` code where Arrow's type says which.
fn arrow_state(e: &ArrowError) -> &'static str {
    match e {
        ArrowError::DivideByZero => DIVISION_BY_ZERO,
        ArrowError::ArithmeticOverflow(_) => NUMERIC_VALUE_OUT_OF_RANGE,
        ArrowError::NotYetImplemented(_) => FEATURE_NOT_SUPPORTED,
        _ => DATA_EXCEPTION,
    }
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
                // Weir's error flattens DataFusion's SQL and not-implemented
                // errors into planning errors; their own codes are kept.
                let flattened = match e.find_root() {
                    DataFusionError::SQL(..) => Some(SYNTAX_ERROR),
                    DataFusionError::NotImplemented(_) => Some(FEATURE_NOT_SUPPORTED),
                    _ => None,
                };
                let e = SqlError::from(*e);
                let code = flattened.unwrap_or_else(|| sql_state(&e));
                PgWireError::UserError(Box::new(ErrorInfo::new("ERROR".into(), code.into(), e.to_string())))
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
        let info = QueryError::from(SqlError::unknown_table("nope", None)).into_error_info("");
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
        for (e, code) in [
            (DataFusionError::Internal("invariant".into()), INTERNAL_ERROR),
            (DataFusionError::IoError(std::io::Error::other("disk gone")), IO_ERROR),
            (DataFusionError::External("a lookup database went away".into()), SYSTEM_ERROR),
            (DataFusionError::Plan("no column 'x'".into()), STATEMENT_ERROR),
            (DataFusionError::Execution("argument out of range".into()), DATA_EXCEPTION),
        ] {
            let PgWireError::UserError(info) = refine(PgWireError::ApiError(Box::new(e))) else { panic!() };
            assert_eq!(info.code, code, "{info:?}");
        }
    }

    /// The ErrorResponse datafusion-postgres' failure of `sql` becomes.
    async fn refined(ctx: &datafusion::prelude::SessionContext, sql: &str) -> ErrorInfo {
        let result = match ctx.sql(sql).await {
            Ok(frame) => frame.collect().await.map(|_| ()),
            Err(e) => Err(e),
        };
        let e = result.expect_err(sql);
        let PgWireError::UserError(info) = refine(PgWireError::ApiError(Box::new(e))) else { panic!("{sql}") };
        *info
    }

    #[tokio::test]
    async fn failures_of_running_queries_are_data_exceptions() {
        let ctx = datafusion::prelude::SessionContext::new();
        weir_sql::functions::value_size::register(&ctx, 1000);
        let divided = refined(&ctx, "SELECT a / 0 FROM (VALUES (1)) AS t(a)").await;
        assert_eq!(divided.code, DIVISION_BY_ZERO, "{divided:?}");
        assert!(divided.message.contains("Divide by zero"), "{divided:?}");
        let cast = refined(&ctx, "SELECT CAST(a AS INT) FROM (VALUES ('x')) AS t(a)").await;
        assert_eq!(cast.code, DATA_EXCEPTION, "{cast:?}");
        let huge = refined(&ctx, "SELECT repeat(a, 2000) FROM (VALUES ('x')) AS t(a)").await;
        assert_eq!(huge.code, PROGRAM_LIMIT_EXCEEDED, "{huge:?}");
        assert!(huge.message.starts_with("requested length too large"), "{huge:?}");
    }

    #[test]
    fn every_kind_has_its_sqlstate() {
        let arrow = |source| SqlError::Engine(EngineError::Arrow { context: "project: evaluating".into(), source });
        let cases = [
            // The user's: the statement, an option, the values, the state.
            (SqlError::plan("no column 'x'", None), STATEMENT_ERROR),
            (SqlError::unknown_table("t", None), UNDEFINED_TABLE),
            (SqlError::Limit { message: "too deep".into(), position: None }, PROGRAM_LIMIT_EXCEEDED),
            (
                SqlError::Connector {
                    table: "t".into(),
                    source: ConnectorError::UnknownConnector { name: "x".into(), known: "datagen".into() },
                },
                INVALID_PARAMETER_VALUE,
            ),
            (
                SqlError::Connector {
                    table: "t".into(),
                    source: ConnectorError::Unsupported { connector: "kafka".into(), what: "a MAP column".into() },
                },
                FEATURE_NOT_SUPPORTED,
            ),
            (arrow(ArrowError::DivideByZero), DIVISION_BY_ZERO),
            (arrow(ArrowError::ArithmeticOverflow("1 + i64::MAX".into())), NUMERIC_VALUE_OUT_OF_RANGE),
            (arrow(ArrowError::CastError("'x' as INT".into())), DATA_EXCEPTION),
            (
                SqlError::Engine(EngineError::DataFusion {
                    context: "filter: evaluating".into(),
                    source: DataFusionError::Execution("argument out of range".into()),
                }),
                DATA_EXCEPTION,
            ),
            (SqlError::Engine(EngineError::Incompatible("another query's state".into())), OBJECT_NOT_IN_PREREQUISITE_STATE),
            // Outside Weir.
            (SqlError::Engine(EngineError::Connector("kafka: broker down".into())), SYSTEM_ERROR),
            (SqlError::Engine(EngineError::State("cannot open state".into())), SYSTEM_ERROR),
            (
                SqlError::Engine(EngineError::Io { context: "reading 'in.json'".into(), source: std::io::Error::other("gone") }),
                IO_ERROR,
            ),
            // Weir's bugs.
            (SqlError::Panicked { message: "oops".into(), position: None }, INTERNAL_ERROR),
            (SqlError::Engine(EngineError::Plan("stage 1 reads from later stage 2".into())), INTERNAL_ERROR),
            (SqlError::Engine(EngineError::Task { task: "source s".into(), message: "panicked".into(), kind: weir_engine::error::ErrorKind::Internal }), INTERNAL_ERROR),
            (SqlError::from(DataFusionError::Internal("invariant".into())), INTERNAL_ERROR),
        ];
        for (e, code) in cases {
            let message = e.to_string();
            let info = QueryError::from(e).into_error_info("");
            assert_eq!(info.code, code, "{message}");
            assert_eq!(info.message, message);
        }
    }
}
