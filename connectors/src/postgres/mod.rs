//! The `postgres` connector (also Flink's `jdbc` with a PostgreSQL URL): a
//! table of a PostgreSQL database, used as the dimension of a lookup join
//! (`JOIN users FOR SYSTEM_TIME AS OF s.proc_time AS u ON …`: each key a
//! stream row needs is looked up when the row goes by) and as a sink
//! (appends, or upserts and deletes on the table's primary key, exactly
//! once: docs/postgres.md). It is not read as a stream.
//!
//! `options` reads the WITH options of both sides. Lookups: `client` runs
//! them (a pool of connections, rate limit, retries), `types` maps column
//! types; with `'lookup.cache' = 'FULL'` the table is read whole instead
//! and probed in memory (`full_cache.rs`). Sink: `sink` (the writers),
//! `collapse` (each key's last change), `params` and `statements` (rows as
//! array parameters of one statement), `session` (the transaction of a
//! checkpoint), `marker` (what each subtask committed). `failure` sorts
//! errors into retried and final ones.

mod client;
mod collapse;
mod failure;
mod marker;
mod options;
mod params;
mod session;
mod sink;
mod statements;
mod types;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use weir_engine::duration::parse_duration;
use weir_engine::error::Result;
use weir_engine::lookup::{LookupClient, LookupOptions, LookupSource};
use weir_engine::sink::SinkConnector;

use crate::error::ConnectorError;
use crate::full_cache::{self, FullCache, Loader};
use crate::options::Options;
use crate::values::{non_negative_integer, positive_integer};

/// Reads a PostgreSQL table whole, for the FULL cache.
#[derive(Debug)]
struct PostgresLoader(PostgresTable);

#[async_trait::async_trait]
impl Loader for PostgresLoader {
    fn describe(&self) -> String {
        self.0.describe()
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.0.schema)
    }

    async fn load(&self) -> Result<RecordBatch> {
        let c = &self.0.connection;
        client::load_all(&c.config, &c.server(), &c.table, &self.0.schema).await
    }
}

/// Builds the table's two sides from its options: the lookup table and
/// the sink, which upserts on `primary_key` (column names; none: append
/// only). Nothing connects yet (the first lookup does, and a job writing
/// the table at its start).
pub(crate) fn create(
    options: &Options,
    schema: SchemaRef,
    primary_key: &[String],
) -> Result<(Arc<dyn LookupSource>, Arc<dyn SinkConnector>), ConnectorError> {
    let connection = options::connection(options)?;
    params::check(options.connector(), &schema)?;
    let key = primary_key
        .iter()
        .map(|k| {
            schema.index_of(k).map_err(|_| ConnectorError::Unsupported {
                connector: options.connector().into(),
                what: format!("the primary key column '{k}' is not a physical column of the table"),
            })
        })
        .collect::<Result<Vec<usize>, _>>()?;
    let target = session::Target {
        statements: statements::Statements::new(&connection, &schema, &key),
        options: options::sink(options)?,
        connection: connection.clone(),
    };
    let sink = Arc::new(sink::PostgresSink::new(target, Arc::clone(&schema)));
    Ok((lookup(options, connection, schema)?, sink))
}

/// The lookup side.
fn lookup(
    options: &Options,
    connection: options::Connection,
    schema: SchemaRef,
) -> Result<Arc<dyn LookupSource>, ConnectorError> {
    let max_concurrent = options
        .parse("lookup.max-concurrent", positive_integer)?
        .map_or(16, |n| n as usize);
    let ordered = match options.get("lookup.output-mode") {
        None | Some("ordered") => true,
        Some("unordered") => false,
        Some(other) => return Err(ConnectorError::invalid("lookup.output-mode", other, "expected 'ordered' or 'unordered'")),
    };
    let cache_max_rows = options
        .parse("lookup.cache.max-rows", non_negative_integer)?
        .map_or(0, |n| n as usize);
    let cache_ttl = options.parse("lookup.cache.ttl", parse_duration)?;
    let max_retries = options.parse("lookup.max-retries", non_negative_integer)?.unwrap_or(3) as u32;
    let rate_limit = options.parse("lookup.rate-limit", rate)?.map(|q| Arc::new(RateLimiter::direct(q)));
    let table = PostgresTable {
        connection,
        schema,
        options: LookupOptions {
            max_concurrent,
            ordered,
            cache_max_rows,
            cache_ttl,
        },
        max_retries,
        rate_limit,
    };
    // `'lookup.cache' = 'FULL'`: the table read whole, then probed in memory.
    Ok(match full_cache::requested(options, false, None)? {
        Some(reload) => Arc::new(FullCache::new(Arc::new(PostgresLoader(table)), reload)),
        None => Arc::new(table),
    })
}

/// `'1000/s'`, `'60/min'`, `'3600/h'`: lookups allowed per period.
fn rate(s: &str) -> Result<Quota, String> {
    let err = || "expected a rate like '1000/s', '600/min' or '3600/h'".to_string();
    let (n, per) = s.split_once('/').ok_or_else(err)?;
    let n = n.trim().parse::<u32>().ok().and_then(NonZeroU32::new).ok_or_else(err)?;
    Ok(match per.trim() {
        "s" | "sec" | "second" => Quota::per_second(n),
        "m" | "min" | "minute" => Quota::per_minute(n),
        "h" | "hour" => Quota::per_hour(n),
        _ => return Err(err()),
    })
}

/// A PostgreSQL table rows are looked up in.
pub(crate) struct PostgresTable {
    connection: options::Connection,
    schema: SchemaRef,
    options: LookupOptions,
    /// Attempts after the first before a lookup fails the job.
    max_retries: u32,
    /// Shared by every join of the table in this process, so that the
    /// database sees the rate the option says.
    rate_limit: Option<Arc<DefaultDirectRateLimiter>>,
}

impl std::fmt::Debug for PostgresTable {
    // The connection settings may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PostgresTable({})", self.connection.table)
    }
}

impl LookupSource for PostgresTable {
    fn describe(&self) -> String {
        format!("postgres table {} at {}", self.connection.table, self.connection.server())
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn options(&self) -> &LookupOptions {
        &self.options
    }

    fn open(&self, keys: &[usize]) -> Result<Arc<dyn LookupClient>> {
        let client = client::PostgresLookup::new(client::Setup {
            config: self.connection.config.clone(),
            server: self.connection.server(),
            table: self.connection.table.clone(),
            schema: Arc::clone(&self.schema),
            keys: keys.to_vec(),
            connections: self.options.max_concurrent,
            max_retries: self.max_retries,
            first_backoff: Duration::from_millis(100),
            rate_limit: self.rate_limit.clone(),
        })?;
        Ok(Arc::new(client))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(rate("1000/s"), Ok(Quota::per_second(NonZeroU32::new(1000).unwrap())));
        assert_eq!(rate("60/min"), Ok(Quota::per_minute(NonZeroU32::new(60).unwrap())));
        assert!(rate("0/s").is_err());
        assert!(rate("1000").is_err());
        assert!(rate("10/week").is_err());
    }
}
