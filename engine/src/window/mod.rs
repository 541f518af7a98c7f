//! Event-time windows: their shapes, and the operator that aggregates and
//! fires them.

pub mod aggregate;
pub mod assign;
pub mod groups;
pub mod late;
pub mod pending;
mod plan;
pub mod session;
mod slice;
pub mod spec;
