//! Errors of parsing, cataloguing and planning, with the place in the SQL
//! text they concern.

use std::fmt;

use datafusion::error::DataFusionError;
use datafusion::sql::sqlparser::parser::ParserError;
use datafusion::sql::sqlparser::tokenizer::{Location, Span};
use weir_engine::error::{ErrorKind, datafusion_kind};

use crate::functions::value_size::ValueTooLarge;

/// Result alias for the SQL layer.
pub type Result<T, E = SqlError> = std::result::Result<T, E>;

/// A 1-based line and column in the statement text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: u64,
    pub column: u64,
}

impl Position {
    /// The start of a sqlparser span, if the span is known.
    pub fn of(span: Span) -> Option<Self> {
        Self::at(span.start)
    }

    pub fn at(l: Location) -> Option<Self> {
        (l.line > 0).then_some(Self {
            line: l.line,
            column: l.column,
        })
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// What went wrong with a statement.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// The text is not valid SQL.
    #[error("syntax error: {message}")]
    Syntax {
        message: String,
        position: Option<Position>,
    },
    /// Valid SQL that Weir does not run (yet); names the construct.
    #[error("{construct} is not supported{}", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Unsupported {
        construct: String,
        detail: Option<String>,
        position: Option<Position>,
    },
    /// Valid SQL that cannot be planned (unknown table, wrong types, …).
    #[error("{message}")]
    Plan {
        message: String,
        position: Option<Position>,
    },
    /// A table the statement names does not exist: a client may create
    /// it (pgwire's `undefined_table`), so it is told apart from other
    /// planning errors by type.
    #[error("table '{table}' not found")]
    UnknownTable {
        table: String,
        position: Option<Position>,
    },
    /// DataFusion failed on something other than the statement's text:
    /// a value of the user's (a division by zero, a cast that fails) while
    /// a batch query ran or constants were folded, a system outside Weir
    /// (a file), or a bug. Kept whole so that [`SqlError::kind`] reads the
    /// cause; says what its innermost error says.
    #[error("{}", source.find_root())]
    DataFusion {
        source: DataFusionError,
        position: Option<Position>,
    },
    /// A statement beyond one of the limits that keep a hostile or
    /// generated statement from exhausting the process (how deep it nests,
    /// how long a script is); names the limit and how to change it.
    #[error("{message}")]
    Limit {
        message: String,
        position: Option<Position>,
    },
    /// Planning or starting the statement panicked: a bug, reported for
    /// this statement alone.
    #[error("internal error: the statement panicked: {message}")]
    Panicked {
        message: String,
        position: Option<Position>,
    },
    /// A bad `WITH (…)` option.
    #[error("table '{table}': {source}")]
    Connector {
        table: String,
        #[source]
        source: weir_connectors::ConnectorError,
    },
    /// An error from the engine while starting a job.
    #[error(transparent)]
    Engine(#[from] weir_engine::EngineError),
}

impl SqlError {
    /// Where in the statement the error is, when known.
    pub fn position(&self) -> Option<Position> {
        match self {
            SqlError::Syntax { position, .. }
            | SqlError::Unsupported { position, .. }
            | SqlError::Plan { position, .. }
            | SqlError::Limit { position, .. }
            | SqlError::Panicked { position, .. }
            | SqlError::UnknownTable { position, .. }
            | SqlError::DataFusion { position, .. } => *position,
            _ => None,
        }
    }

    /// Whose problem this is (see [`ErrorKind`]): what pgwire's SQLSTATE
    /// is picked from, read from the variant and the engine's or
    /// DataFusion's error inside, never from the message.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SqlError::Syntax { .. }
            | SqlError::Unsupported { .. }
            | SqlError::Plan { .. }
            | SqlError::UnknownTable { .. }
            | SqlError::Limit { .. }
            | SqlError::Connector { .. } => ErrorKind::User,
            SqlError::Panicked { .. } => ErrorKind::Internal,
            SqlError::DataFusion { source, .. } => datafusion_kind(source),
            SqlError::Engine(e) => e.kind(),
        }
    }

    /// Whether running the same statement again may succeed (a system
    /// outside Weir failed).
    pub fn retryable(&self) -> bool {
        self.kind().retryable()
    }

    /// The error placed at `at` if it has no place yet.
    pub fn or_at(mut self, at: Option<Position>) -> Self {
        if let SqlError::Syntax { position, .. }
        | SqlError::Unsupported { position, .. }
        | SqlError::Plan { position, .. }
        | SqlError::UnknownTable { position, .. }
        | SqlError::DataFusion { position, .. } = &mut self
            && position.is_none()
        {
            *position = at;
        }
        self
    }

    /// A planning error saying `message`.
    pub fn plan(message: impl Into<String>, position: Option<Position>) -> Self {
        SqlError::Plan { message: message.into(), position }
    }

    /// The table `table` does not exist.
    pub fn unknown_table(table: impl Into<String>, position: Option<Position>) -> Self {
        SqlError::UnknownTable {
            table: table.into(),
            position,
        }
    }

    pub fn unsupported(construct: impl Into<String>, position: Option<Position>) -> Self {
        SqlError::Unsupported {
            construct: construct.into(),
            detail: None,
            position,
        }
    }
}

/// The text a panic carried (`panic!` with a literal or a format).
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

impl From<ParserError> for SqlError {
    fn from(e: ParserError) -> Self {
        let text = match e {
            ParserError::TokenizerError(s) | ParserError::ParserError(s) => s,
            ParserError::RecursionLimitExceeded => format!(
                "statement nested too deeply: more than {} levels of parentheses, subqueries or prefix operators",
                crate::depth::PARSER_RECURSION_LIMIT
            ),
        };
        // sqlparser appends " at Line: L, Column: C"; keep the place apart.
        match text.rsplit_once(" at Line: ") {
            Some((message, place)) => {
                let mut parts = place.split(", Column: ");
                let line = parts.next().and_then(|l| l.trim().parse().ok());
                let column = parts.next().and_then(|c| c.trim().parse().ok());
                let position = match (line, column) {
                    (Some(line), Some(column)) => Some(Position { line, column }),
                    _ => None,
                };
                SqlError::Syntax {
                    message: message.to_string(),
                    position,
                }
            }
            None => SqlError::Syntax {
                message: text,
                position: None,
            },
        }
    }
}

impl From<DataFusionError> for SqlError {
    fn from(e: DataFusionError) -> Self {
        let position = e.diagnostic().and_then(|d| d.span).and_then(|s| {
            (s.start.line > 0).then_some(Position {
                line: s.start.line,
                column: s.start.column,
            })
        });
        if let Some(too_large) = ValueTooLarge::find(&e) {
            return SqlError::Limit {
                message: too_large.to_string(),
                position,
            };
        }
        let message = match e.find_root() {
            DataFusionError::Plan(m) => match unknown_table_in(m) {
                Some(table) => return SqlError::unknown_table(table, position),
                None => m.clone(),
            },
            DataFusionError::NotImplemented(m) => m.clone(),
            // What the statement says: kept a planning error (which the
            // planner places at the expression it compiled).
            root @ (DataFusionError::SQL(..) | DataFusionError::SchemaError(..) | DataFusionError::Configuration(_)) => {
                root.to_string()
            }
            _ => return SqlError::DataFusion { source: e, position },
        };
        SqlError::Plan { message, position }
    }
}

/// The table an unknown-table message names. DataFusion has no typed
/// "table not found" (it is a `Plan` error saying `table '…' not found`),
/// so its text is read here, where a DataFusion error becomes Weir's, and
/// nowhere else.
fn unknown_table_in(message: &str) -> Option<&str> {
    message.strip_prefix("table '")?.strip_suffix("' not found")
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::SessionContext;
    use weir_connectors::ConnectorError;
    use weir_engine::EngineError;

    use super::*;

    /// What DataFusion says when it runs `sql`, as Weir's error.
    async fn failed(ctx: &SessionContext, sql: &str) -> SqlError {
        let result = match ctx.sql(sql).await {
            Ok(frame) => frame.collect().await.map(|_| ()),
            Err(e) => Err(e),
        };
        SqlError::from(result.expect_err(sql))
    }

    #[test]
    fn every_variant_has_a_kind() {
        let user = [
            SqlError::Syntax { message: "x".into(), position: None },
            SqlError::unsupported("LATERAL", None),
            SqlError::plan("no such column", None),
            SqlError::unknown_table("t", None),
            SqlError::Limit { message: "too deep".into(), position: None },
            SqlError::Connector {
                table: "t".into(),
                source: ConnectorError::UnknownConnector { name: "x".into(), known: "datagen".into() },
            },
            SqlError::Engine(EngineError::Incompatible("another query's state".into())),
        ];
        for e in user {
            assert_eq!((e.kind(), e.retryable()), (ErrorKind::User, false), "{e}");
        }
        let broker = SqlError::Engine(EngineError::Connector("kafka: broker down".into()));
        assert_eq!((broker.kind(), broker.retryable()), (ErrorKind::External, true));
        let panicked = SqlError::Panicked { message: "oops".into(), position: None };
        assert_eq!((panicked.kind(), panicked.retryable()), (ErrorKind::Internal, false));
    }

    #[test]
    fn unknown_tables_are_typed_with_their_message_unchanged() {
        // DataFusion's own, and the planner's (until it makes them typed).
        for (e, table) in [
            (SqlError::from(DataFusionError::Plan("table 'datafusion.public.nope' not found".into())), "datafusion.public.nope"),
            (SqlError::unknown_table("nope", None), "nope"),
        ] {
            assert!(matches!(&e, SqlError::UnknownTable { table: t, .. } if t == table), "{e:?}");
            assert_eq!(e.to_string(), format!("table '{table}' not found"));
        }
        let other = SqlError::plan("table 'nope' already exists", None);
        assert!(matches!(other, SqlError::Plan { .. }), "{other:?}");
    }

    #[tokio::test]
    async fn datafusion_errors_keep_their_kind() {
        let ctx = SessionContext::new();
        crate::functions::value_size::register(&ctx, 1000);
        let divided = failed(&ctx, "SELECT a / 0 FROM (VALUES (1)) AS t(a)").await;
        assert!(matches!(divided, SqlError::DataFusion { .. }), "{divided:?}");
        assert_eq!(divided.kind(), ErrorKind::User);
        assert!(divided.to_string().contains("Divide by zero"), "{divided}");
        let unknown = failed(&ctx, "SELECT * FROM nope").await;
        assert!(matches!(unknown, SqlError::UnknownTable { .. }), "{unknown:?}");
        let column = failed(&ctx, "SELECT nope FROM (VALUES (1)) AS t(a)").await;
        assert!(matches!(column, SqlError::Plan { .. }), "{column:?}");
        let huge = failed(&ctx, "SELECT repeat(a, 2000) FROM (VALUES ('x')) AS t(a)").await;
        assert!(matches!(&huge, SqlError::Limit { message, .. } if message.starts_with("requested length too large")), "{huge:?}");
        let io = SqlError::from(DataFusionError::IoError(std::io::Error::other("disk gone")));
        assert_eq!((io.kind(), io.retryable()), (ErrorKind::External, true));
        let bug = SqlError::from(DataFusionError::Internal("invariant".into()));
        assert_eq!(bug.kind(), ErrorKind::Internal);
    }
}
