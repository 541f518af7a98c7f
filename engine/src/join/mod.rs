//! Joins of two streams: window joins (rows of the same window meet when
//! it closes), interval joins (rows meet while their rowtimes are within a
//! bound of each other), and regular joins, which hold every row — over
//! changelogs, or outer, as the updating join, whose output is a changelog.
//! A join is the first operator of a stage that reads two exchanges: input
//! 0 is the left side, input 1 the right.

mod arrival_ttl;
pub mod exec;
mod held_rows;
mod index;
pub mod interval;
mod plan;
mod run_order;
mod runs;
mod sides;
#[cfg(test)]
mod spill_tests;
pub mod updating;
pub mod window;

pub use exec::JoinSpec;
