//! Flink's event-time temporal join (`TemporalRowTimeJoinOperator`):
//! `orders JOIN rates FOR SYSTEM_TIME AS OF orders.order_time ON …`.
//!
//! Each left row joins the version of its key in the versioned (right)
//! table that was current at the left row's time: the right row of that
//! key whose time is the latest at or before it. Versions may arrive after
//! the left rows that need them, so a left row waits until the combined
//! watermark (the lower of both inputs') passes its time; its result is
//! then final, and the output only appends. An inner join drops a left row
//! without a version (or whose version is a deletion); a left join emits it
//! with NULLs.
//!
//! State (`versions.rs`, checkpointed per key group by `state.rs`): the
//! left rows waiting for the watermark, and per key the versions a left
//! row still to come could need — the newest at or before the watermark
//! and every later one. Left rows behind the watermark when they arrive
//! are late: counted and dropped, as Flink does.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::physical_plan::PhysicalExpr;

use crate::checkpoint::identity::typed_columns;
use crate::error::Result;
use crate::operator::Operator;
use crate::plan::{OperatorContext, OperatorSpec, StateGrowth, StateShape};

mod operator;
mod state;
#[cfg(test)]
mod tests;
mod versions;

pub use operator::TemporalJoin;

/// An event-time temporal join, shared by its subtasks. Input 0 is the
/// left (probe) side, input 1 the versioned table; both are spread by
/// their keys.
#[derive(Debug)]
pub struct TemporalJoinPlan {
    /// A left join keeps left rows without a version (with NULLs).
    pub outer: bool,
    /// The left rows' columns.
    pub left_schema: SchemaRef,
    /// The versioned table's visible columns (without the changelog
    /// column when `right_changelog`).
    pub right_schema: SchemaRef,
    /// Left columns, then right columns.
    pub output_schema: SchemaRef,
    /// The join keys, pairwise equal: over left rows, over right rows.
    pub left_keys: Vec<Arc<dyn PhysicalExpr>>,
    pub right_keys: Vec<Arc<dyn PhysicalExpr>>,
    /// The left rowtime (`FOR SYSTEM_TIME AS OF` it), also the output's.
    pub left_time: usize,
    /// The versioned table's rowtime: each version's time.
    pub right_time: usize,
    /// The right rows carry Flink's row kinds: `+I`/`+U` are versions,
    /// `-D` a deletion from its time on, `-U` is ignored.
    pub right_changelog: bool,
    /// The versioned table's name, for `EXPLAIN`.
    pub table: String,
}

impl TemporalJoinPlan {
    fn kind(&self) -> &'static str {
        if self.outer { "Left" } else { "Inner" }
    }
}

impl OperatorSpec for TemporalJoinPlan {
    fn name(&self) -> String {
        format!("TemporalJoin {}", self.kind())
    }

    fn explain(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  TemporalJoin: {} (event time)", self.kind())?;
        let on: Vec<String> = self.left_keys.iter().zip(&self.right_keys).map(|(l, r)| format!("{l} = {r}")).collect();
        writeln!(f, "    on: [{}]", on.join(", "))?;
        writeln!(
            f,
            "    versions of {} by {}{}; left rows wait for the watermark to pass {}",
            self.table,
            self.right_schema.field(self.right_time).name(),
            if self.right_changelog { " (changelog: -D deletes)" } else { "" },
            self.left_schema.field(self.left_time).name()
        )
    }

    fn instantiate(self: Arc<Self>, name: String, cx: &OperatorContext) -> Result<Box<dyn Operator>> {
        let m = cx.register(&name);
        Ok(Box::new(TemporalJoin::new(self, name, m)?))
    }

    fn state(&self) -> Option<StateShape> {
        let on: Vec<String> = self.left_keys.iter().zip(&self.right_keys).map(|(l, r)| format!("{l} = {r}")).collect();
        Some(StateShape {
            kind: "TemporalJoin",
            signature: format!(
                "{}; left {} by {}; versions {} by {}; on [{}]",
                self.kind(),
                typed_columns(&self.left_schema),
                self.left_time,
                typed_columns(&self.right_schema),
                self.right_time,
                on.join(", ")
            ),
            // Waiting left rows go as the watermark passes them, but every
            // key of the versioned table keeps its current version.
            growth: StateGrowth::Unbounded,
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
