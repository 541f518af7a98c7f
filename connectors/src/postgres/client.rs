//! Lookups against one PostgreSQL table for one subtask: a pool of as many
//! connections as lookups may be in flight (deadpool replaces a connection
//! the server dropped), one prepared statement per connection, the table's
//! rate limit, and retries with exponential back-off.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ScalarValue;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use governor::DefaultDirectRateLimiter;
use tokio_postgres::NoTls;
use tokio_postgres::types::ToSql;
use weir_engine::error::{EngineError, Result};
use weir_engine::lookup::LookupClient;

use super::failure::{Failure, classify};
use super::options::ident;
use super::types;

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What a client is built from.
pub(super) struct Setup {
    pub config: tokio_postgres::Config,
    /// `host:port`, for errors.
    pub server: String,
    pub table: String,
    pub schema: SchemaRef,
    pub keys: Vec<usize>,
    pub connections: usize,
    pub max_retries: u32,
    pub first_backoff: Duration,
    pub rate_limit: Option<Arc<DefaultDirectRateLimiter>>,
}

pub(super) struct PostgresLookup {
    pool: Pool,
    /// `SELECT cols FROM table WHERE key = $1 AND …`.
    query: String,
    setup: Setup,
}

/// The type column `i` is read as.
fn cast(table: &str, schema: &SchemaRef, i: usize) -> Result<&'static str> {
    let f = schema.field(i);
    types::pg_type(f.data_type())
        .ok_or_else(|| {
            EngineError::Plan(format!(
                "postgres table {table}: column '{}' has type {}, which lookups cannot read (they read BOOLEAN, \
                 SMALLINT, INT, BIGINT, FLOAT, DOUBLE, VARCHAR, TIMESTAMP(3))",
                f.name(),
                crate::types::sql_name(f.data_type())
            ))
        })
}

/// `SELECT cols FROM table`, each column cast to the type it is read as.
fn select(table: &str, schema: &SchemaRef) -> Result<String> {
    let columns = (0..schema.fields().len())
        .map(|i| Ok(format!("{}::{}", ident(schema.field(i).name()), cast(table, schema, i)?)))
        .collect::<Result<Vec<_>>>()?;
    // A dotted name is schema-qualified.
    let quoted = table.split('.').map(ident).collect::<Vec<_>>().join(".");
    Ok(format!("SELECT {} FROM {quoted}", columns.join(", ")))
}

/// Every row of `table` (for the FULL cache), over a connection of its own.
pub(super) async fn load_all(config: &tokio_postgres::Config, server: &str, table: &str, schema: &SchemaRef) -> Result<RecordBatch> {
    let query = select(table, schema)?;
    let fail = |e: tokio_postgres::Error| {
        EngineError::Connector(format!("reading postgres table {table} at {server} whole: {}", classify(e).message()))
    };
    let (client, connection) = config.connect(NoTls).await.map_err(fail)?;
    let driver = tokio::spawn(connection);
    let rows = client.query(&query, &[]).await.map_err(fail);
    drop(client);
    driver.abort();
    types::batch(schema, &rows?).map_err(|m| EngineError::Connector(format!("postgres table {table} at {server}: {m}")))
}

impl PostgresLookup {
    pub(super) fn new(setup: Setup) -> Result<Self> {
        let cast = |i: usize| cast(&setup.table, &setup.schema, i);
        let conditions = setup
            .keys
            .iter()
            .enumerate()
            .map(|(n, k)| Ok(format!("{} = ${}::{}", ident(setup.schema.field(*k).name()), n + 1, cast(*k)?)))
            .collect::<Result<Vec<_>>>()?;
        let query = format!("{} WHERE {}", select(&setup.table, &setup.schema)?, conditions.join(" AND "));
        let manager = Manager::from_config(
            setup.config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(setup.connections)
            .build()
            .map_err(|e| EngineError::Connector(format!("postgres table {}: {e}", setup.table)))?;
        Ok(Self { pool, query, setup })
    }

    /// One attempt at a lookup.
    async fn attempt(&self, params: &[&(dyn ToSql + Sync)]) -> std::result::Result<RecordBatch, Failure> {
        let client = self.pool.get().await.map_err(|e| Failure::Transient(format!("cannot connect to {}: {e}", self.setup.server)))?;
        let statement = client.prepare_cached(&self.query).await.map_err(classify)?;
        let rows = client.query(&statement, params).await.map_err(classify)?;
        types::batch(&self.setup.schema, &rows).map_err(Failure::Final)
    }
}

#[async_trait::async_trait]
impl LookupClient for PostgresLookup {
    async fn lookup(&self, key: Vec<ScalarValue>) -> Result<RecordBatch> {
        let s = &self.setup;
        let boxed = key
            .iter()
            .map(|v| {
                types::param(v).ok_or_else(|| EngineError::Plan(format!("postgres table {}: a key of type {} cannot be looked up", s.table, v.data_type())))
            })
            .collect::<Result<Vec<_>>>()?;
        let params: Vec<&(dyn ToSql + Sync)> = boxed.iter().map(|b| b.as_ref() as &(dyn ToSql + Sync)).collect();
        let mut backoff = s.first_backoff;
        let mut attempt = 0;
        loop {
            if let Some(limit) = &s.rate_limit {
                limit.until_ready().await;
            }
            match self.attempt(&params).await {
                Ok(batch) => return Ok(batch),
                Err(Failure::Final(m)) => {
                    return Err(EngineError::Refused(format!("lookup in postgres table {} at {}: {m}", s.table, s.server)));
                }
                Err(Failure::Transient(m)) if attempt >= s.max_retries => {
                    return Err(EngineError::Connector(format!(
                        "lookup in postgres table {} at {} failed after {} attempts ('lookup.max-retries' = {}): {m}",
                        s.table,
                        s.server,
                        attempt + 1,
                        s.max_retries
                    )));
                }
                Err(Failure::Transient(m)) => {
                    tracing::warn!(table = %s.table, attempt, "lookup failed, retrying in {backoff:?}: {m}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    attempt += 1;
                }
            }
        }
    }
}
