//! The WITH options of a `postgres` table, or of a `jdbc` one with a
//! PostgreSQL URL, for both its sides: the connection (Flink's JDBC names
//! `url`, `table-name`, `username`, `password`, and Weir's older `table`),
//! the lookup options, and the sink's buffer and retry options. One parser,
//! so that a table declared for a lookup join can also be written.

use std::str::FromStr;
use std::time::Duration;

use weir_engine::duration::parse_duration;

use crate::error::ConnectorError;
use crate::full_cache;
use crate::options::Options;
use crate::values::positive_integer;

/// Options of the connection and the table, for either side.
const CONNECTION: &[&str] = &["url", "table-name", "table", "username", "password"];

/// Options of the lookup side (Weir's, see docs/lookup.md).
pub(super) const LOOKUP: &[&str] = &[
    "lookup.cache.max-rows",
    "lookup.cache.ttl",
    "lookup.max-concurrent",
    "lookup.output-mode",
    "lookup.rate-limit",
    "lookup.max-retries",
];

/// Options of the sink side (Flink's JDBC sink options).
const SINK: &[&str] = &[
    "sink.buffer-flush.max-rows",
    "sink.buffer-flush.interval",
    "sink.max-retries",
    "sink.parallelism",
];

/// Where the table is: what both sides connect with.
#[derive(Clone)]
pub(super) struct Connection {
    pub config: tokio_postgres::Config,
    /// The table as the user named it; a dotted name is schema-qualified.
    pub table: String,
}

impl Connection {
    /// Where the server is, for errors (never the credentials).
    pub(super) fn server(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!("{host}:{port}")
    }

    /// The table quoted for SQL: each dotted part an identifier.
    pub(super) fn quoted_table(&self) -> String {
        self.table.split('.').map(ident).collect::<Vec<_>>().join(".")
    }
}

/// A quoted SQL identifier: column and table names are used as declared.
pub(super) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// How the sink batches and retries its writes.
#[derive(Debug, Clone, Copy)]
pub(super) struct SinkOptions {
    /// Rows per statement; without checkpoints also the rows buffered
    /// before a write (Flink's default: 100).
    pub max_rows: usize,
    /// Without checkpoints: buffered rows are written once this old, at
    /// the next batch (Flink's default: 1 s).
    pub interval: Option<Duration>,
    /// Attempts after the first when the server cannot be reached.
    pub max_retries: u32,
}

/// Checks the keys of the table's options and reads the connection.
pub(super) fn connection(options: &Options) -> Result<Connection, ConnectorError> {
    let keys: Vec<&str> = CONNECTION
        .iter()
        .chain(LOOKUP)
        .chain(SINK)
        .chain(full_cache::OPTIONS)
        .copied()
        .collect();
    options.check_keys(&keys)?;
    let url = options.required("url")?;
    // Flink's JDBC URL is `jdbc:postgresql://host:port/db`; the client
    // reads the same URL without the `jdbc:` prefix.
    let bare = url.strip_prefix("jdbc:").unwrap_or(url);
    if !(bare.starts_with("postgresql://") || bare.starts_with("postgres://")) && bare.contains("://") {
        return Err(ConnectorError::Unsupported {
            connector: options.connector().into(),
            what: format!(
                "the URL names another database ({}…): Weir writes and looks up PostgreSQL only (jdbc:postgresql://host:port/db)",
                bare.split("://").next().unwrap_or(bare)
            ),
        });
    }
    let mut config = tokio_postgres::Config::from_str(bare).map_err(|e| {
        // The URL may hold a password: the error does not repeat it.
        ConnectorError::invalid("url", "…", format!("not a PostgreSQL connection string or URL: {e}"))
    })?;
    if let Some(user) = options.get("username") {
        config.user(user);
    }
    if let Some(password) = options.get("password") {
        config.password(password);
    }
    let table = match (options.get("table-name"), options.get("table")) {
        (Some(t), None) | (None, Some(t)) => t.to_string(),
        (Some(_), Some(_)) => {
            return Err(ConnectorError::invalid(
                "table",
                options.get("table").unwrap_or_default(),
                "give 'table-name' or 'table', not both",
            ));
        }
        (None, None) => options.required("table-name")?.to_string(),
    };
    Ok(Connection { config, table })
}

/// The sink's options (Flink's defaults where absent).
pub(super) fn sink(options: &Options) -> Result<SinkOptions, ConnectorError> {
    if let Some(p) = options.get("sink.parallelism") {
        return Err(ConnectorError::Unsupported {
            connector: options.connector().into(),
            what: format!(
                "'sink.parallelism' = '{p}': a sink runs at its query's parallelism ('parallelism.default'), chained to the operator before it"
            ),
        });
    }
    let max_rows = options
        .parse("sink.buffer-flush.max-rows", positive_integer)?
        .map_or(100, |n| n as usize);
    let interval = match options.parse("sink.buffer-flush.interval", parse_duration)? {
        None => Some(Duration::from_secs(1)),
        Some(d) if d.is_zero() => None,
        Some(d) => Some(d),
    };
    let max_retries = options
        .parse("sink.max-retries", |s| {
            s.trim()
                .parse::<u32>()
                .map_err(|_| "expected a non-negative integer".into())
        })?
        .unwrap_or(3);
    Ok(SinkOptions {
        max_rows,
        interval,
        max_retries,
    })
}
