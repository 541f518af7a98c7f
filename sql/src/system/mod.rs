//! The `weir.*` system tables: each answers one operability question (which
//! task is the bottleneck, is there backpressure, which Kafka partition
//! lags, is there a hot key, how many rows are late and why, is memory
//! growing) with one SQL query, in the REPL, over pgwire and in `weir run`
//! files. Each table snapshots the jobs' counters when it is scanned; the
//! Prometheus endpoint reads the same snapshots ([`snapshot`]).

mod dotted;
pub mod pending;
mod savepoint;
mod savepoint_rows;
pub mod snapshot;
mod tables;

pub use dotted::rename_calls;

use std::sync::{Arc, Mutex};

use datafusion::catalog::MemorySchemaProvider;
use datafusion::prelude::SessionContext;
use weir_engine::runtime::job::JobHandle;
use weir_engine::source::SourceConnector;

use crate::error::Result;

/// The schema the system tables live in.
pub const SCHEMA: &str = "weir";

/// A job and the source connectors it reads (which know their broker's
/// offsets).
#[derive(Clone)]
pub struct JobEntry {
    pub handle: JobHandle,
    /// `(table, connector)` per source stage.
    pub sources: Vec<(String, Arc<dyn SourceConnector>)>,
}

/// The jobs of a session, shared by the session (which adds them) and the
/// system tables and the metrics endpoint (which read them).
#[derive(Default)]
pub struct Registry {
    jobs: Mutex<Vec<JobEntry>>,
}

impl Registry {
    /// Adds a job that just started.
    pub fn add(&self, entry: JobEntry) {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).push(entry);
    }

    /// Every job of the session, oldest first.
    pub fn jobs(&self) -> Vec<JobEntry> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Registers the `weir` schema and its tables in `ctx`, and the
/// `weir_savepoint` and `weir_savepoint_rows` table functions (also called
/// `weir.savepoint` and `weir.savepoint_rows`, see `dotted.rs`).
pub fn register(ctx: &SessionContext, registry: &Arc<Registry>) -> Result<()> {
    ctx.register_udtf(savepoint::NAME, Arc::new(savepoint::SavepointFunction));
    ctx.register_udtf(savepoint_rows::NAME, Arc::new(savepoint_rows::SavepointRowsFunction));
    dotted::register(ctx)?;
    let schema = Arc::new(MemorySchemaProvider::new());
    for table in tables::all(registry) {
        datafusion::catalog::SchemaProvider::register_table(schema.as_ref(), table.name.to_string(), Arc::new(table))?;
    }
    if let Some(catalog) = ctx.catalog(&ctx.state().config().options().catalog.default_catalog) {
        catalog.register_schema(SCHEMA, schema)?;
    }
    Ok(())
}

/// Whether a table reference names a system table (`weir.<table>`).
pub fn is_system(schema: Option<&str>) -> bool {
    schema.is_some_and(|s| s.eq_ignore_ascii_case(SCHEMA))
}

/// Whether a table reference is a call of a system table function
/// (`weir_savepoint(…)`, `weir.savepoint_rows(…)`), which reads a store,
/// not a stream.
pub fn is_system_function(schema: Option<&str>, table: &str) -> bool {
    match schema {
        None => [savepoint::NAME, savepoint_rows::NAME].iter().any(|n| table.eq_ignore_ascii_case(n)),
        Some(schema) => dotted::registered_name(schema, table).is_some(),
    }
}
