//! One operator of a chain, as the planner builds it: a plan struct in the
//! operator's own file implements [`OperatorSpec`], which is everything the
//! runtime, `EXPLAIN` and checkpoints need of it. A new operator is its
//! file and its planner rule; nothing else lists the operators.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::error::Result;
use crate::metrics::{JobMetrics, OperatorMetrics};
use crate::operator::Operator;
use crate::plan::StateGrowth;
use crate::spill::StateBackend;

/// The kind and signature of what an operator keeps in checkpoints (see
/// `checkpoint::identity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateShape {
    /// The first half of its state id, e.g. `WindowAggregate`.
    pub kind: &'static str,
    /// What it stores, without column positions or output names: a restore
    /// whose signature differs is refused.
    pub signature: String,
    /// Whether the watermark frees it.
    pub growth: StateGrowth,
}

/// What an operator is, for the parts of Weir that are not the operator
/// itself.
pub trait OperatorSpec: fmt::Debug + Send + Sync + 'static {
    /// Name used for tasks, metrics and errors.
    fn name(&self) -> String;

    /// Its lines of `EXPLAIN`: the first `  Kind: …`, details indented by
    /// four spaces.
    fn explain(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;

    /// A subtask of it. `name` is [`OperatorSpec::name`].
    fn instantiate(self: Arc<Self>, name: String, cx: &OperatorContext) -> Result<Box<dyn Operator>>;

    /// What it keeps in checkpoints; `None` when it keeps nothing.
    fn state(&self) -> Option<StateShape> {
        None
    }

    /// For the planner, which looks at the operator it just built.
    fn as_any(&self) -> &dyn Any;
}

/// What a subtask of an operator is made with.
pub struct OperatorContext<'a> {
    pub subtask: usize,
    /// The job's metrics, which operators that count rows or hold state
    /// register with ([`OperatorContext::register`]).
    pub metrics: &'a Arc<JobMetrics>,
    /// Where the job keeps keyed state: operators that can spill take
    /// their share of its budget from it.
    pub state: &'a StateBackend,
}

impl OperatorContext<'_> {
    /// The metrics of operator `name` in this subtask.
    pub fn register(&self, name: &str) -> Arc<OperatorMetrics> {
        self.metrics.register(name, self.subtask)
    }
}

/// One operator of a chain.
#[derive(Debug, Clone)]
pub struct OperatorPlan {
    spec: Arc<dyn OperatorSpec>,
    /// The state id the user set (the `UID` hint), which replaces the
    /// derived one so that its state follows the operator wherever a
    /// changed query puts it.
    uid: Option<Arc<str>>,
}

impl OperatorPlan {
    pub fn new(spec: impl OperatorSpec) -> Self {
        Self { spec: Arc::new(spec), uid: None }
    }

    /// The operator with the state id `uid` (see `checkpoint::identity`).
    pub fn with_uid(self, uid: &str) -> Self {
        Self { uid: Some(uid.into()), ..self }
    }

    /// The state id the user set, if any.
    pub fn uid(&self) -> Option<&str> {
        self.uid.as_deref()
    }

    /// The plan struct, if it is a `T`.
    pub fn downcast<T: OperatorSpec>(&self) -> Option<&T> {
        self.spec.as_any().downcast_ref::<T>()
    }

    pub fn name(&self) -> String {
        self.spec.name()
    }

    pub fn state(&self) -> Option<StateShape> {
        self.spec.state()
    }

    /// A subtask of the operator.
    pub fn instantiate(&self, cx: &OperatorContext) -> Result<Box<dyn Operator>> {
        Arc::clone(&self.spec).instantiate(self.spec.name(), cx)
    }
}

impl fmt::Display for OperatorPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.spec.explain(f)
    }
}
