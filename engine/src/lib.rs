//! Weir's runtime: streaming operators over Arrow record batches, run as
//! tokio tasks joined by bounded channels.
//!
//! Where things live: `source/` reads partitions and makes watermarks,
//! `window/` assigns, aggregates and fires windows, `group_aggregate/`
//! keeps GROUP BY results without windows up to date (`changelog.rs`: the
//! rows they emit), `rank/` keeps Top-N and deduplication, `temporal_join/` joins
//! rows with a versioned table's version at their event time, `over/`
//! computes OVER windows, `operators/` holds the
//! stateless operators, `runtime/` runs tasks and exchanges, `plan/` is
//! the streaming plan that the SQL planner builds (each operator's plan
//! implements `plan::OperatorSpec`), `checkpoint/` writes and restores
//! state (`identity.rs`: which state belongs to which operator).

pub mod cep;
pub mod changelog;
pub mod checkpoint;
pub mod current_watermark;
pub mod duration;
pub mod error;
pub mod event_time;
pub mod failpoints;
/// Entry points of the fuzz targets in `fuzz/`; not Weir's API.
#[doc(hidden)]
pub mod fuzzing;
pub mod group_aggregate;
pub mod hot_keys;
pub mod join;
pub mod limit;
pub mod lookup;
pub mod memory_size;
pub mod message;
pub mod metrics;
pub mod peak_memory;
pub mod operator;
pub mod operators;
pub mod over;
pub mod partition_keys;
pub mod plan;
pub mod rank;
pub mod runtime;
pub mod sink;
pub mod sort;
pub mod source;
pub mod spill;
pub mod state_ttl;
pub mod temporal_join;
#[cfg(test)]
mod testing;
pub mod waiting;
pub mod window;

pub use error::{EngineError, Result};
