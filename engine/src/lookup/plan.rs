//! The lookup join as a plan node ([`OperatorSpec`]).

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use super::{LookupJoin, LookupJoinPlan};
use crate::error::Result;
use crate::operator::Operator;
use crate::plan::{OperatorContext, OperatorSpec, StateGrowth, StateShape};

impl OperatorSpec for LookupJoinPlan {
    fn name(&self) -> String {
        format!("LookupJoin {:?} {}", self.spec.join_type, self.table)
    }

    fn explain(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  LookupJoin: {:?} {}", self.spec.join_type, self.source.describe())?;
        self.spec.explain(f)?;
        let o = self.source.options();
        writeln!(
            f,
            "    {} lookups in flight, {} output, cache of {} keys",
            o.max_concurrent,
            if o.ordered { "ordered" } else { "unordered" },
            o.cache_max_rows
        )
    }

    fn instantiate(self: Arc<Self>, name: String, _cx: &OperatorContext) -> Result<Box<dyn Operator>> {
        Ok(Box::new(LookupJoin::new(self, name)?))
    }

    /// The stream's rows still waiting for their lookups.
    fn state(&self) -> Option<StateShape> {
        let signature = format!("{}; table {}", self.spec.state_signature(), self.table);
        Some(StateShape { kind: "LookupJoin", signature, growth: StateGrowth::Bounded })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
