//! The stream joins as plan nodes ([`OperatorSpec`]): their names, their
//! `EXPLAIN`, their subtasks and the shape of their state.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::checkpoint::identity::typed_columns;
use crate::error::Result;
use crate::join::exec::JoinSpec;
use crate::join::interval::{IntervalJoin, IntervalJoinPlan};
use crate::join::updating::{UpdatingJoin, UpdatingJoinPlan};
use crate::join::window::{WindowJoin, WindowJoinPlan};
use crate::operator::Operator;
use crate::plan::{OperatorContext, OperatorSpec, StateGrowth, StateShape};
use crate::window::spec::Millis;

impl JoinSpec {
    /// The `EXPLAIN` lines of the join condition.
    pub fn explain(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on: Vec<String> = self.on.iter().map(|(l, r)| format!("{l} = {r}")).collect();
        writeln!(f, "    on: [{}]", on.join(", "))?;
        if let Some(filter) = &self.filter {
            writeln!(f, "    filter: {}", filter.expression())?;
        }
        Ok(())
    }

    /// What a join keeps: each side's rows, split by its keys.
    pub fn state_signature(&self) -> String {
        let on: Vec<String> = self.on.iter().map(|(l, r)| format!("{l} = {r}")).collect();
        format!(
            "{:?}; left {}; right {}; on [{}]",
            self.join_type,
            typed_columns(&self.left_schema),
            typed_columns(&self.right_schema),
            on.join(", ")
        )
    }
}

impl OperatorSpec for WindowJoinPlan {
    fn name(&self) -> String {
        format!("WindowJoin {:?}", self.spec.join_type)
    }

    fn explain(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  WindowJoin: {:?}", self.spec.join_type)?;
        self.spec.explain(f)?;
        writeln!(f, "    emits when watermark >= window_end - 1 ms")
    }

    fn instantiate(self: Arc<Self>, name: String, cx: &OperatorContext) -> Result<Box<dyn Operator>> {
        let m = cx.register(&name);
        Ok(Box::new(WindowJoin::new(self, name, m)))
    }

    fn state(&self) -> Option<StateShape> {
        Some(StateShape { kind: "WindowJoin", signature: self.spec.state_signature(), growth: StateGrowth::Bounded })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl IntervalJoinPlan {
    /// An interval join, or a regular join when unbounded in time.
    fn kind(&self) -> &'static str {
        if self.bounds.is_some() { "IntervalJoin" } else { "RegularJoin" }
    }
}

impl OperatorSpec for IntervalJoinPlan {
    fn name(&self) -> String {
        format!("{} {:?}", self.kind(), self.spec.join_type)
    }

    fn explain(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  {}: {:?}", self.kind(), self.spec.join_type)?;
        self.spec.explain(f)?;
        match &self.bounds {
            Some(b) => writeln!(
                f,
                "    right time - left time within [{}, {}]; watermark held back {}",
                Millis(b.lower),
                Millis(b.upper),
                Millis(self.delay())
            ),
            None => {
                if self.ttl.iter().all(Option::is_none) {
                    writeln!(f, "    regular join: every row is kept")?;
                }
                for (side, ttl) in ["left", "right"].iter().zip(self.ttl) {
                    if let Some(ttl) = ttl {
                        let ms = Millis(ttl.as_millis() as i64);
                        writeln!(f, "    {side} state TTL: a row expires {ms} after it came (processing time)")?;
                    }
                }
                Ok(())
            }
        }
    }

    fn instantiate(self: Arc<Self>, name: String, cx: &OperatorContext) -> Result<Box<dyn Operator>> {
        let m = cx.register(&name);
        let budget = cx.state.share(&name, cx.subtask);
        Ok(Box::new(IntervalJoin::new(self, name, m).with_budget(budget)))
    }

    fn state(&self) -> Option<StateShape> {
        Some(StateShape {
            kind: self.kind(),
            signature: self.spec.state_signature(),
            // A regular join keeps every row; an interval join frees them
            // as the watermark passes their bound.
            growth: if self.bounds.is_some() || self.ttl.iter().all(Option::is_some) {
                StateGrowth::Bounded
            } else {
                StateGrowth::Unbounded
            },
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl OperatorSpec for UpdatingJoinPlan {
    fn name(&self) -> String {
        format!("UpdatingJoin {:?}", self.spec.join_type)
    }

    fn explain(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  UpdatingJoin: {:?}", self.spec.join_type)?;
        self.spec.explain(f)?;
        writeln!(f, "    regular join: every row is kept, per key with its partners; emits a changelog")?;
        for (side, ttl) in ["left", "right"].iter().zip(self.ttl) {
            if let Some(ttl) = ttl {
                let ms = crate::window::spec::Millis(ttl.as_millis() as i64);
                writeln!(f, "    {side} state TTL: {ms} idle (processing time)")?;
            }
        }
        Ok(())
    }

    fn instantiate(self: Arc<Self>, name: String, cx: &OperatorContext) -> Result<Box<dyn Operator>> {
        let m = cx.register(&name);
        Ok(Box::new(UpdatingJoin::new(self, name, m)?))
    }

    fn state(&self) -> Option<StateShape> {
        Some(StateShape {
            kind: "UpdatingJoin",
            signature: self.spec.state_signature(),
            growth: if self.ttl.iter().all(Option::is_some) { StateGrowth::Bounded } else { StateGrowth::Unbounded },
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
