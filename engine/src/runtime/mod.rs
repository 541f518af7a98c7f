//! Running a streaming plan: tasks on tokio, joined by bounded channels
//! (which are the backpressure).

pub(crate) mod attempt;
pub mod exchange;
pub mod fanout;
pub mod graph;
pub mod input;
pub mod job;
pub mod key_hash;
mod recovery;
pub mod restart;
mod supervisor;
pub(crate) mod task;
