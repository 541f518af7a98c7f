//! Checkpoints: barriers from the sources, each task's state gathered by a
//! coordinator, written to sled, restored after a crash.

pub mod chunk;
pub mod codec;
pub mod coordinator;
pub mod evolution;
pub mod identity;
pub mod inspect;
pub(crate) mod live_rows;
pub mod snapshot;
pub mod store;
