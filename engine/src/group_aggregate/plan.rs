//! The group aggregate as a plan node ([`OperatorSpec`]).

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use super::{GroupAggregate, GroupAggregatePlan};
use crate::error::Result;
use crate::operator::Operator;
use crate::plan::{OperatorContext, OperatorSpec, StateGrowth, StateShape, exprs};

impl OperatorSpec for GroupAggregatePlan {
    fn name(&self) -> String {
        "GroupAggregate".into()
    }

    fn explain(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  GroupAggregate:")?;
        writeln!(f, "    keys: [{}]", exprs(&self.grouping.keys))?;
        let aggs: Vec<String> = self.grouping.aggregates.iter().map(|c| c.function.name().to_string()).collect();
        writeln!(f, "    aggregates: [{}]", aggs.join(", "))?;
        let input = if self.retracting { "a changelog (retracted)" } else { "appends" };
        writeln!(f, "    input: {input}; emits +I/-U/+U/-D per batch")?;
        match self.ttl {
            Some(ttl) => writeln!(
                f,
                "    state TTL: {} idle (processing time)",
                crate::window::spec::Millis(ttl.as_millis() as i64)
            ),
            None => Ok(()),
        }
    }

    fn instantiate(self: Arc<Self>, name: String, cx: &OperatorContext) -> Result<Box<dyn Operator>> {
        let m = cx.register(&name);
        let budget = cx.state.share(&name, cx.subtask);
        Ok(Box::new(GroupAggregate::new(self, name, m, budget)?))
    }

    /// Every group's accumulators, and whether they retract.
    fn state(&self) -> Option<StateShape> {
        let retracting = if self.retracting { "retracting" } else { "appending" };
        Some(StateShape {
            kind: "GroupAggregate",
            signature: format!("{}; {retracting}", self.grouping.state_signature()),
            growth: if self.ttl.is_some() { StateGrowth::Bounded } else { StateGrowth::Unbounded },
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
