//! The streaming plan as the SQL planner builds it: a tree of stream nodes,
//! each knowing what its rows are ([`Properties`]) and how its inputs' rows
//! must be spread over its subtasks ([`Distribution`]). Where stages begin
//! and which exchanges join them is decided afterwards, by one pass over the
//! tree (`stages.rs`), not by the rules that pick operators.

use std::sync::Arc;

use datafusion::physical_plan::PhysicalExpr;

use super::{OperatorPlan, SinkPlan};
use crate::source::SourcePlan;
use crate::window::spec::WindowSpec;

/// What a node does.
#[derive(Debug)]
pub enum NodeOp {
    /// Reads a table; a leaf.
    Source(Arc<SourcePlan>),
    /// An operator of a chain: one input, or two for a join (left first).
    Operator(OperatorPlan),
    /// Every input's rows, as they come (`UNION ALL`).
    Union,
    /// Writes its input's rows into a table; the root.
    Sink(SinkPlan),
}

/// How a node needs an input's rows spread over its subtasks.
#[derive(Debug, Clone)]
pub enum Distribution {
    /// As they are: the node runs in its input's tasks.
    Any,
    /// Every row of a key at the same subtask.
    Hash(Vec<Arc<dyn PhysicalExpr>>),
    /// Every row at one subtask.
    Single,
    /// Subtask i of every input at subtask i when the inputs run alike,
    /// else all at one subtask (`UNION ALL`).
    Aligned,
}

/// How an operator's state grows (`EXPLAIN` shows it: an unbounded one
/// needs a TTL or a window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateGrowth {
    /// It keeps nothing.
    Stateless,
    /// Freed as the watermark passes (windows, interval joins).
    Bounded,
    /// Every key or row so far (a GROUP BY without a window, a regular join).
    Unbounded,
}

/// Where the window columns a window TVF computed are, while they pass
/// through: what a window join matches and an aggregation over window
/// results groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowColumns {
    pub spec: WindowSpec,
    pub start: usize,
    pub end: usize,
}

/// What a node's rows are, derived from its inputs' by the rule that built
/// it.
#[derive(Debug, Clone, Default)]
pub struct Properties {
    /// Rows are a changelog (`+I`/`-U`/`+U`/`-D`, the changelog column after
    /// the visible ones) rather than append-only.
    pub changelog: bool,
    /// The rowtime column while it passes through unchanged: what an
    /// interval join bounds.
    pub rowtime: Option<usize>,
    /// The `PROCTIME()` column while it passes through unchanged: what a
    /// deduplication by arrival orders by.
    pub proctime: Option<usize>,
    pub window: Option<WindowColumns>,
    /// Columns that identify a row (a windowed aggregation's group columns
    /// and window), for upsert sinks.
    pub unique_key: Option<Vec<usize>>,
}

impl Properties {
    /// Follows the columns through a projection: `passthrough[i]` is the
    /// input column output `i` is, if it is one unchanged.
    pub fn remap(&mut self, passthrough: &[Option<usize>]) {
        let to = |from: usize| passthrough.iter().position(|p| *p == Some(from));
        // A changelog's rows are told apart by their whole key: without
        // part of it, a sink keeps them as a multiset instead.
        if self.changelog
            && let Some(key) = &self.unique_key
            && !key.iter().all(|k| to(*k).is_some())
        {
            self.unique_key = None;
        }
        self.unique_key = self.unique_key.take().and_then(|key| {
            let moved: Vec<usize> = (0..passthrough.len())
                .filter(|i| passthrough[*i].is_some_and(|p| key.contains(&p)))
                .collect();
            (!moved.is_empty()).then_some(moved)
        });
        self.rowtime = self.rowtime.and_then(to);
        self.proctime = self.proctime.and_then(to);
        self.window = self.window.and_then(|w| {
            Some(WindowColumns {
                spec: w.spec,
                start: to(w.start)?,
                end: to(w.end)?,
            })
        });
    }
}

/// One node of the streaming plan and the nodes it reads.
#[derive(Debug)]
pub struct StreamNode {
    pub op: NodeOp,
    /// With the distribution this node needs of each.
    pub inputs: Vec<(StreamNode, Distribution)>,
    pub properties: Properties,
    /// `LATE DATA INTO`: the side table this node's late or undecodable
    /// rows go to, written by the stage that runs it.
    pub late_sink: Option<SinkPlan>,
}

impl StreamNode {
    /// A source: append-only rows whose rowtime is the table's watermark
    /// column, and whose processing time its `PROCTIME()` column.
    pub fn source(plan: Arc<SourcePlan>) -> Self {
        let rowtime = plan.watermark.as_ref().map(|w| w.time_column);
        let proctime = plan.computed.as_ref().and_then(|c| (0..c.exprs.len()).find(|i| c.is_proctime(*i)));
        let changelog = plan.connector.changelog();
        Self {
            op: NodeOp::Source(plan),
            inputs: Vec::new(),
            properties: Properties { rowtime, proctime, changelog, ..Properties::default() },
            late_sink: None,
        }
    }

    /// `op` over `self`'s rows, distributed as `distribution`; its rows
    /// keep `self`'s properties until the caller derives its own.
    pub fn then(self, op: OperatorPlan, distribution: Distribution) -> Self {
        let properties = self.properties.clone();
        Self {
            op: NodeOp::Operator(op),
            inputs: vec![(self, distribution)],
            properties,
            late_sink: None,
        }
    }

    /// A node over several inputs (a join, a union) with `properties`.
    pub fn over(op: NodeOp, inputs: Vec<(StreamNode, Distribution)>, properties: Properties) -> Self {
        Self { op, inputs, properties, late_sink: None }
    }

    /// The operator, if the node is one.
    pub fn operator(&self) -> Option<&OperatorPlan> {
        match &self.op {
            NodeOp::Operator(op) => Some(op),
            _ => None,
        }
    }

    /// How this node's own state grows.
    pub fn growth(&self) -> StateGrowth {
        match &self.op {
            NodeOp::Operator(op) => op.state().map_or(StateGrowth::Stateless, |s| s.growth),
            NodeOp::Source(_) | NodeOp::Union | NodeOp::Sink(_) => StateGrowth::Stateless,
        }
    }

    /// The source at the bottom of the operators that run in the same tasks
    /// as this node (inputs taken as they are), if there is one: where
    /// records that cannot be decoded enter.
    pub fn chained_source_mut(&mut self) -> Option<&mut StreamNode> {
        match (&self.op, self.inputs.as_slice()) {
            (NodeOp::Source(_), _) => Some(self),
            (NodeOp::Operator(_), [(_, Distribution::Any)]) => self.inputs[0].0.chained_source_mut(),
            _ => None,
        }
    }
}
