//! OVER aggregation: `agg(…) OVER (PARTITION BY k ORDER BY rowtime ROWS |
//! RANGE BETWEEN … PRECEDING AND CURRENT ROW)` and `LAG(…)`, as Flink's
//! `OverAggregate` runs them.
//!
//! Every input row leaves once, with its window's values appended, when
//! the watermark passes its time: rows wait (`operator.rs`), then each
//! key's rows are taken in time order — ties by arrival for `ROWS`, as
//! peers sharing one value for `RANGE` — and computed over the rows of
//! their frame (`frames.rs`). A row already behind the watermark when it
//! arrives cannot be put in order and is late (counted, dropped), as in
//! Flink. Ordered by a `PROCTIME()` column, rows are taken as they arrive.
//!
//! A key keeps only what later rows can still see: the last rows of its
//! bounded frames (as Arrow rows of the input) and the accumulators of its
//! unbounded ones (`state.rs` writes both per key group).

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ScalarValue;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_plan::PhysicalExpr;

use crate::checkpoint::identity::typed_columns;
use crate::error::Result;
use crate::operator::Operator;
use crate::plan::{OperatorContext, OperatorSpec, StateGrowth, StateShape, exprs};
use crate::window::late::LateOutputPlan;

mod frames;
mod operator;
mod state;
#[cfg(test)]
mod tests;

pub use operator::Over;

/// An OVER window's functions over a stream, shared by its subtasks.
#[derive(Debug)]
pub struct OverPlan {
    /// `PARTITION BY`, over the input's columns (empty: one subtask).
    pub partition: Vec<Arc<dyn PhysicalExpr>>,
    /// The time attribute of `ORDER BY` (ascending).
    pub time_column: usize,
    /// It is a `PROCTIME()` column: rows are taken as they arrive.
    pub processing_time: bool,
    pub functions: Vec<OverFunction>,
    pub input_schema: SchemaRef,
    /// The input's columns, then one per function.
    pub output_schema: SchemaRef,
    /// `LATE DATA INTO`: where rows behind the watermark go.
    pub late_output: Option<Arc<LateOutputPlan>>,
}

/// One function of the window.
#[derive(Debug)]
pub enum OverFunction {
    /// An aggregate over the rows of its frame.
    Aggregate { function: Arc<AggregateFunctionExpr>, frame: Frame },
    /// `LAG(value, offset, default)`: the value `offset` rows before, in
    /// the key's order.
    Lag { value: Arc<dyn PhysicalExpr>, offset: usize, default: ScalarValue },
}

/// The rows before the current one that a frame takes (it always ends at
/// the current row, as Flink's OVER windows do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// `ROWS BETWEEN n PRECEDING` (`None`: `UNBOUNDED`).
    Rows(Option<u64>),
    /// `RANGE BETWEEN INTERVAL … PRECEDING`, in milliseconds (`None`:
    /// `UNBOUNDED`): rows with equal times are peers, in each other's frame.
    Range(Option<i64>),
}

impl Frame {
    fn unbounded(self) -> bool {
        matches!(self, Frame::Rows(None) | Frame::Range(None))
    }
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Frame::Rows(None) => write!(f, "ROWS UNBOUNDED PRECEDING"),
            Frame::Rows(Some(n)) => write!(f, "ROWS {n} PRECEDING"),
            Frame::Range(None) => write!(f, "RANGE UNBOUNDED PRECEDING"),
            Frame::Range(Some(ms)) => write!(f, "RANGE {ms} ms PRECEDING"),
        }
    }
}

impl fmt::Display for OverFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OverFunction::Aggregate { function, frame } => write!(f, "{} ({frame})", function.fun().name()),
            OverFunction::Lag { value, offset, default } => write!(f, "LAG({value}, {offset}, {default})"),
        }
    }
}

impl OverPlan {
    fn describe_functions(&self) -> String {
        self.functions.iter().map(|f| f.to_string()).collect::<Vec<_>>().join(", ")
    }
}

impl OperatorSpec for OverPlan {
    fn name(&self) -> String {
        "OverAggregate".into()
    }

    fn explain(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  OverAggregate:")?;
        writeln!(f, "    partition by: [{}]", exprs(&self.partition))?;
        let time = self.input_schema.field(self.time_column).name();
        match self.processing_time {
            true => writeln!(f, "    order by: {time} (processing time: rows as they arrive)")?,
            false => writeln!(f, "    order by: {time}; rows leave as the watermark passes them")?,
        }
        writeln!(f, "    functions: [{}]", self.describe_functions())
    }

    fn instantiate(self: Arc<Self>, name: String, cx: &OperatorContext) -> Result<Box<dyn Operator>> {
        let metrics = cx.register(&name);
        Ok(Box::new(Over::new(self, name, metrics)?))
    }

    /// Rows waiting for the watermark, each key's frame rows and
    /// unbounded accumulators.
    fn state(&self) -> Option<StateShape> {
        let signature = format!(
            "rows {}; partition [{}]; time {}; functions [{}]",
            typed_columns(&self.input_schema),
            exprs(&self.partition),
            self.time_column,
            self.describe_functions()
        );
        let growth = match self.partition.is_empty() {
            true => StateGrowth::Bounded,
            false => StateGrowth::Unbounded,
        };
        Some(StateShape { kind: "OverAggregate", signature, growth })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
