//! Joins of two streams, bounded in time so that their state is too:
//! window joins (rows of the same window meet when it closes) and interval
//! joins (rows meet while their rowtimes are within a bound of each other).
//! A join is the first operator of a stage that reads two exchanges: input
//! 0 is the left side, input 1 the right.

pub mod exec;
mod index;
pub mod interval;
mod plan;
mod sides;
pub mod window;

pub use exec::JoinSpec;
