//! The window operators as plan nodes ([`OperatorSpec`]): their names,
//! their `EXPLAIN`, their subtasks and the shape of their state.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::checkpoint::identity::typed_columns;
use crate::error::Result;
use crate::operator::Operator;
use crate::plan::{OperatorContext, OperatorSpec, StateGrowth, StateShape, exprs};
use crate::window::aggregate::{OutputColumn, WindowAggregate, WindowAggregatePlan, WindowedAggregation};
use crate::window::assign::{WindowAssign, WindowAssignPlan};
use crate::window::session::{SessionAggregate, SessionAggregatePlan};
use crate::window::spec::Millis;

impl WindowedAggregation {
    /// The `EXPLAIN` lines every windowed aggregation has.
    fn explain(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.allowed_lateness > 0 {
            writeln!(f, "    allowed lateness: {}", Millis(self.allowed_lateness))?;
        }
        writeln!(f, "    keys: [{}]", exprs(&self.grouping.keys))?;
        let aggs: Vec<String> = self.grouping.aggregates.iter().map(|c| c.function.name().to_string()).collect();
        writeln!(f, "    aggregates: [{}]", aggs.join(", "))?;
        let out: Vec<&str> = self
            .output
            .iter()
            .zip(self.output_schema.fields())
            .map(|(c, fld)| match c {
                OutputColumn::Aggregate(_) | OutputColumn::Key(_) => fld.name().as_str(),
                OutputColumn::WindowStart => "window_start",
                OutputColumn::WindowEnd => "window_end",
                OutputColumn::WindowTime => "window_time",
            })
            .collect();
        writeln!(f, "    emits: [{}] when watermark >= window_end - 1 ms", out.join(", "))
    }
}

impl OperatorSpec for WindowAssignPlan {
    fn name(&self) -> String {
        format!("WindowAssign {}", self.window)
    }

    fn explain(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  WindowAssign: {}", self.window)
    }

    fn instantiate(self: Arc<Self>, name: String, _cx: &OperatorContext) -> Result<Box<dyn Operator>> {
        Ok(Box::new(WindowAssign::new(self, name)))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl OperatorSpec for WindowAggregatePlan {
    fn name(&self) -> String {
        format!("WindowAggregate {}", self.window)
    }

    fn explain(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  WindowAggregate: {}", self.window)?;
        self.aggregation.explain(f)
    }

    fn instantiate(self: Arc<Self>, name: String, cx: &OperatorContext) -> Result<Box<dyn Operator>> {
        let m = cx.register(&name);
        let budget = cx.state.share(&name, cx.subtask);
        Ok(Box::new(WindowAggregate::new(self, name, m, budget)))
    }

    /// Partial aggregates per slice of the window: keys and each
    /// aggregate's state columns.
    fn state(&self) -> Option<StateShape> {
        let signature = format!("{}; {}", self.window, self.aggregation.grouping.state_signature());
        Some(StateShape { kind: "WindowAggregate", signature, growth: StateGrowth::Bounded })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl OperatorSpec for SessionAggregatePlan {
    fn name(&self) -> String {
        format!("SessionAggregate gap {}", Millis(self.gap))
    }

    fn explain(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.emit_rows.is_some() {
            writeln!(f, "  SessionWindow: SESSION(gap {}) emits each row of a closed session", Millis(self.gap))?;
            return writeln!(f, "    partition by: [{}]", crate::plan::exprs(&self.aggregation.grouping.keys));
        }
        writeln!(f, "  SessionAggregate: SESSION(gap {})", Millis(self.gap))?;
        self.aggregation.explain(f)
    }

    fn instantiate(self: Arc<Self>, name: String, cx: &OperatorContext) -> Result<Box<dyn Operator>> {
        let m = cx.register(&name);
        let budget = cx.state.share(&name, cx.subtask);
        Ok(Box::new(SessionAggregate::new(self, name, m, budget)?))
    }

    /// Open sessions' input rows, replayed on restore.
    fn state(&self) -> Option<StateShape> {
        let signature = format!(
            "gap {} ms; rows {}; {}{}",
            self.gap,
            typed_columns(&self.input_schema),
            self.aggregation.grouping.state_signature(),
            if self.emit_rows.is_some() { "; emits rows" } else { "" }
        );
        Some(StateShape { kind: "SessionAggregate", signature, growth: StateGrowth::Bounded })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
