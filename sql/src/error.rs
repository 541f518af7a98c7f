//! Errors of parsing, cataloguing and planning, with the place in the SQL
//! text they concern.

use std::fmt;

use datafusion::error::DataFusionError;
use datafusion::sql::sqlparser::parser::ParserError;
use datafusion::sql::sqlparser::tokenizer::{Location, Span};

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
            | SqlError::Panicked { position, .. } => *position,
            _ => None,
        }
    }

    /// The error placed at `at` if it has no place yet.
    pub fn or_at(mut self, at: Option<Position>) -> Self {
        if let SqlError::Syntax { position, .. } | SqlError::Unsupported { position, .. } | SqlError::Plan { position, .. } = &mut self
            && position.is_none()
        {
            *position = at;
        }
        self
    }

    pub fn plan(message: impl Into<String>, position: Option<Position>) -> Self {
        SqlError::Plan {
            message: message.into(),
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
        let message = match e.find_root() {
            DataFusionError::Plan(m) | DataFusionError::NotImplemented(m) => m.clone(),
            root => root.to_string(),
        };
        SqlError::Plan { message, position }
    }
}
