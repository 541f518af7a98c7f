//! Errors found while a table's WITH options are turned into connectors.

/// Why `CREATE TABLE … WITH (…)` was refused: each variant names the option,
/// the value and what would have been accepted, so the user can fix the DDL
/// without reading the connector's source.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// The table has no `'connector'` option at all.
    #[error("table '{table}' has no 'connector' option (known connectors: {known})")]
    MissingConnector { table: String, known: String },
    /// `'connector'` names a connector Weir does not have.
    #[error("unknown connector '{name}' (known connectors: {known})")]
    UnknownConnector { name: String, known: String },
    /// A required option is absent.
    #[error("missing required option '{key}' for connector '{connector}'")]
    MissingOption { connector: String, key: String },
    /// An option the connector (or its format) does not know, often a typo.
    #[error("unknown option '{key}' for connector '{connector}' (allowed: {allowed})")]
    UnknownOption {
        connector: String,
        key: String,
        allowed: String,
    },
    /// A known option with a value that cannot be used.
    #[error("invalid value '{value}' for option '{key}': {reason}")]
    InvalidOption {
        key: String,
        value: String,
        reason: String,
    },
    /// Valid DDL that this connector cannot serve (yet), e.g. a column type.
    #[error("connector '{connector}': {what}")]
    Unsupported { connector: String, what: String },
}

impl ConnectorError {
    /// Shorthand for the most common error, whose fields are all borrowed
    /// from the option being parsed.
    pub(crate) fn invalid(key: &str, value: &str, reason: impl Into<String>) -> Self {
        Self::InvalidOption {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}
