//! Splitting the streaming plan's tree into stages: where a node needs its
//! input's rows spread otherwise than they are, the input's stage ends and
//! an exchange feeds a new one. This pass alone places exchanges; the
//! planner's rules only say what each node needs ([`Distribution`]).

use super::node::{Distribution, NodeOp, StreamNode};
use super::{OperatorPlan, Partitioning, SinkPlan, Stage, StageInput, StreamPlan, Upstream};
use crate::error::{EngineError, Result};

/// A stage still taking operators.
struct Open {
    input: StageInput,
    parallelism: usize,
    chain: Vec<OperatorPlan>,
    late_sink: Option<SinkPlan>,
}

/// The stages of the plan whose root is `root` (a sink), at `parallelism`:
/// inputs before their consumers; a join's (or union's) inputs' stages in
/// input order, each input's own earlier stages first; a table read alike
/// several times read once ([`super::reuse_sources`]), each source making
/// the columns read ([`super::read_only_what_is_used`]).
pub fn split(root: StreamNode, parallelism: usize) -> Result<StreamPlan> {
    let mut splitter = Splitter { stages: Vec::new(), parallelism };
    let StreamNode { op: NodeOp::Sink(sink), inputs, late_sink, .. } = root else {
        return Err(malformed("its root is not a sink"));
    };
    let Ok::<[_; 1], _>([(input, distribution)]) = inputs.try_into() else {
        return Err(malformed("a sink of other than one input"));
    };
    let open = splitter.open(input)?;
    let mut open = splitter.distribute(open, distribution);
    open.late_sink = late_sink.or(open.late_sink);
    splitter.stages.push(Stage {
        parallelism: open.parallelism,
        input: open.input,
        chain: open.chain,
        sink: Some(sink),
        late_sink: open.late_sink,
    });
    Ok(super::read_only_what_is_used(super::reuse_sources(StreamPlan::new(splitter.stages))))
}

struct Splitter {
    stages: Vec<Stage>,
    parallelism: usize,
}

impl Splitter {
    /// The stage `node` ends, still open.
    fn open(&mut self, node: StreamNode) -> Result<Open> {
        let StreamNode { op, inputs, late_sink, .. } = node;
        let mut open = match (op, inputs.len()) {
            (NodeOp::Source(source), 0) => Open {
                input: StageInput::Source(source),
                parallelism: self.parallelism,
                chain: Vec::new(),
                late_sink: None,
            },
            (NodeOp::Operator(op), 1) => {
                let (input, distribution) =
                    inputs.into_iter().next().ok_or_else(|| malformed("an operator without input"))?;
                let open = self.open(input)?;
                let mut open = self.distribute(open, distribution);
                open.chain.push(op);
                open
            }
            (op @ (NodeOp::Operator(_) | NodeOp::Union), n) if n >= 2 => self.meet(op, inputs)?,
            (_, n) => return Err(malformed(&format!("a node with {n} inputs where it takes another number"))),
        };
        open.late_sink = late_sink.or(open.late_sink);
        Ok(open)
    }

    /// A node of several inputs: each input's stage ends, and a new stage
    /// reads them all through exchanges.
    fn meet(&mut self, op: NodeOp, inputs: Vec<(StreamNode, Distribution)>) -> Result<Open> {
        let mut opened = Vec::with_capacity(inputs.len());
        for (input, distribution) in inputs {
            opened.push((self.open(input)?, distribution));
        }
        let aligned = opened.iter().all(|(o, _)| o.parallelism == opened[0].0.parallelism);
        let mut upstreams = Vec::with_capacity(opened.len());
        let mut parallelism = self.parallelism;
        for (open, distribution) in opened {
            let (partitioning, p) = match distribution {
                Distribution::Hash(keys) => (Partitioning::Hash(keys), self.parallelism),
                Distribution::Single => (Partitioning::Single, 1),
                Distribution::Aligned if aligned => (Partitioning::Forward, open.parallelism),
                Distribution::Aligned => (Partitioning::Single, 1),
                Distribution::Any => (Partitioning::Forward, open.parallelism),
            };
            parallelism = p;
            upstreams.push(Upstream { from: self.push(open), partitioning });
        }
        Ok(Open {
            input: StageInput::Exchange(upstreams),
            parallelism,
            chain: match op {
                NodeOp::Operator(op) => vec![op],
                _ => Vec::new(),
            },
            late_sink: None,
        })
    }

    /// `open`, or a new stage reading it, as `distribution` needs. At
    /// parallelism 1 every row is already where any key needs it.
    fn distribute(&mut self, open: Open, distribution: Distribution) -> Open {
        let (partitioning, parallelism) = match distribution {
            Distribution::Any => return open,
            _ if self.parallelism == 1 => return open,
            // A stage of one task holds every row already.
            Distribution::Single if open.parallelism == 1 => return open,
            Distribution::Hash(keys) if !keys.is_empty() => (Partitioning::Hash(keys), self.parallelism),
            Distribution::Hash(_) | Distribution::Single => (Partitioning::Single, 1),
            Distribution::Aligned => (Partitioning::Forward, open.parallelism),
        };
        let from = self.push(open);
        Open {
            input: StageInput::Exchange(vec![Upstream { from, partitioning }]),
            parallelism,
            chain: Vec::new(),
            late_sink: None,
        }
    }

    /// Ends `open` as a stage a later one reads; its index.
    fn push(&mut self, open: Open) -> usize {
        self.stages.push(Stage {
            parallelism: open.parallelism,
            input: open.input,
            chain: open.chain,
            sink: None,
            late_sink: open.late_sink,
        });
        self.stages.len() - 1
    }
}

/// A tree the planner should not have built.
fn malformed(what: &str) -> EngineError {
    EngineError::Plan(format!("malformed streaming plan: {what}"))
}
