//! Lookup joins: each row of a stream is joined with the rows an external
//! table (a `postgres` table) holds for its key when the row goes by
//! (`FOR SYSTEM_TIME AS OF` a processing-time column). Lookups run
//! concurrently on tokio while the stream keeps flowing; the operator
//! (`join.rs`) caches answers, bounds what is in flight, and keeps rows
//! whose answers are pending in its checkpoints, so recovery re-issues
//! them.
//!
//! Connectors implement [`LookupSource`]; the engine knows nothing of SQL
//! or Postgres.

mod join;
mod plan;

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ScalarValue;
use datafusion::physical_plan::PhysicalExpr;

use crate::error::Result;
use crate::join::JoinSpec;

pub use join::LookupJoin;

/// How a lookup join uses its table: the connector's `lookup.*` options
/// that the operator (not the connector) applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupOptions {
    /// Lookups in flight at once per subtask; more input waits.
    pub max_concurrent: usize,
    /// Emit in input order (`ordered`), or as answers arrive
    /// (`unordered`, never across a watermark).
    pub ordered: bool,
    /// Keys whose answers are cached (least recently used are dropped);
    /// 0 disables the cache.
    pub cache_max_rows: usize,
    /// How long a cached answer is used; `None`: until evicted.
    pub cache_ttl: Option<Duration>,
}

/// A table rows can be looked up in by key.
pub trait LookupSource: Send + Sync + Debug {
    /// For EXPLAIN and errors, e.g. `postgres table users`.
    fn describe(&self) -> String;

    /// The table's row, as looked-up rows come back.
    fn schema(&self) -> SchemaRef;

    fn options(&self) -> &LookupOptions;

    /// A client for one subtask that looks rows up by the columns `keys`
    /// (indices into [`LookupSource::schema`]). It may connect lazily; its
    /// lookups then report a server that cannot be reached.
    fn open(&self, keys: &[usize]) -> Result<Arc<dyn LookupClient>>;
}

/// Looks rows up for one subtask; shared by the lookups in flight.
#[async_trait::async_trait]
pub trait LookupClient: Send + Sync {
    /// The rows whose key columns equal `key` (in the order of the `keys`
    /// the client was opened with, typed as those columns), with the
    /// table's schema. Transient failures are retried inside; an error is
    /// final and fails the job.
    async fn lookup(&self, key: Vec<ScalarValue>) -> Result<RecordBatch>;
}

/// A lookup join: the stream (left) joined with the looked-up table
/// (right).
#[derive(Debug)]
pub struct LookupJoinPlan {
    /// The join of the stream's rows with their looked-up rows. Its left
    /// schema is the stream's row plus a trailing row-number column, so
    /// that the output can be put back in input order.
    pub spec: JoinSpec,
    /// Over the stream's row: the key values looked up, one per column of
    /// `key_columns`.
    pub keys: Vec<Arc<dyn PhysicalExpr>>,
    /// The looked-up table's key columns (indices into its schema).
    pub key_columns: Vec<usize>,
    pub source: Arc<dyn LookupSource>,
    /// The table's name, for errors.
    pub table: String,
}
