//! `ROW_NUMBER() OVER (PARTITION BY … ORDER BY …)` with a bound on the
//! number: Flink's Top-N, window Top-N and deduplication.
//!
//! One operator keeps, per partition, its best rows in order
//! (`ranked.rs`) and says what changed (`operator.rs`), in one of three
//! ways ([`RankMode`]):
//!
//! - **Updating** (Top-N and keep-last deduplication over a stream): each
//!   batch emits the changes to the ranks it touched, as Flink's
//!   `AppendOnlyTopNFunction` and `RetractableTopNFunction` do — with the
//!   rank number, `-U`/`+U` per rank whose row changed; without it, `-D`
//!   for rows that left the top and `+I` for rows that entered (a Top-1
//!   pairs them as `-U`/`+U`, as Flink's deduplication does).
//! - **Window** (window Top-N and window deduplication): a window's top
//!   rows leave once, append-only, when the watermark passes its end.
//! - **First by event time** (keep-first deduplication ordered by the
//!   rowtime): a key's earliest row leaves, append-only, once the
//!   watermark passes it, since no earlier row can come after that.
//!
//! Per-row work is arrow's row format: partition keys, sort keys and whole
//! rows are encoded per batch; only rows that enter a top are kept.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::physical_expr::PhysicalSortExpr;
use datafusion::physical_plan::PhysicalExpr;

use crate::window::late::LateOutputPlan;

mod first;
mod operator;
mod plan;
mod ranked;
mod spill;
#[cfg(test)]
mod spill_tests;
mod state;
#[cfg(test)]
mod tests;
mod ttl;
mod updating;
mod window;

pub use operator::Rank;

/// A ranking of a stream's rows, shared by its subtasks.
#[derive(Debug)]
pub struct RankPlan {
    /// `PARTITION BY`, over the input's visible columns (empty: one
    /// partition, at one subtask).
    pub partition: Vec<Arc<dyn PhysicalExpr>>,
    /// `ORDER BY`; empty orders rows by arrival (processing time).
    pub order: Vec<PhysicalSortExpr>,
    /// The ranks kept, from 1: `rn <= 10` is `1..=10`.
    pub first: u64,
    pub last: u64,
    /// Rows whose sort keys are equal rank by arrival: the earlier first
    /// (Top-N), or the later first (keep-last deduplication, whose latest
    /// row wins a tie as in Flink).
    pub later_wins_ties: bool,
    /// The query uses the rank number: a change is told per rank (a row
    /// moving from rank 2 to 3 is an update of both). Without it, only rows
    /// entering and leaving the ranks are changes. The number is always the
    /// column after the input's, dropped above when unused.
    pub number: bool,
    /// The input's visible columns.
    pub input_schema: SchemaRef,
    /// The output: the input's columns, the rank number, and the
    /// changelog column when the mode updates.
    pub output_schema: SchemaRef,
    /// The input is a changelog: its `-U`/`-D` rows leave the ranking.
    pub retracting: bool,
    pub mode: RankMode,
    /// Window Top-N with lateness: the input columns that identify a row
    /// (its group's, with the window), whose re-fired result replaces it.
    pub upsert_key: Vec<usize>,
    /// `LATE DATA INTO`: where rows behind the watermark go (the modes
    /// that wait for it).
    pub late_output: Option<Arc<LateOutputPlan>>,
    /// Partitions nothing wrote for this long are dropped (state TTL; not
    /// for window Top-N, whose windows bound its state).
    pub ttl: Option<std::time::Duration>,
}

/// When ranked rows leave the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RankMode {
    /// The changes of every batch (a changelog, or only inserts when the
    /// ranking can never change a row it emitted: keep-first by arrival).
    Updating { changelog: bool },
    /// A window's rows, once, when the watermark passes the end in column
    /// `end_column` (part of the partition); with `lateness` (the window
    /// aggregation's `ALLOWED LATENESS` under it, ms), the changes its
    /// re-fired results make, until the lateness has passed too.
    Window { end_column: usize, lateness: i64 },
    /// A partition's first row by the rowtime in `time_column`, once the
    /// watermark passes it (`first` = `last` = 1).
    FirstByEventTime { time_column: usize },
}

impl RankPlan {
    /// How many rows a partition's ranking must hold: every row when rows
    /// can be retracted (the next one moves up), else the last rank.
    fn capacity(&self) -> Option<usize> {
        let refires = matches!(self.mode, RankMode::Window { lateness, .. } if lateness > 0);
        (!self.retracting && !refires).then_some(self.last as usize)
    }

    /// Whether the output is a changelog (updates of rows emitted before).
    pub fn changelog_out(&self) -> bool {
        match self.mode {
            RankMode::Updating { changelog } => changelog,
            RankMode::Window { lateness, .. } => lateness > 0,
            RankMode::FirstByEventTime { .. } => false,
        }
    }
}
