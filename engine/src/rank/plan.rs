//! The ranking as a plan node ([`OperatorSpec`]).

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use super::{Rank, RankMode, RankPlan};
use crate::checkpoint::identity::typed_columns;
use crate::error::Result;
use crate::operator::Operator;
use crate::plan::{OperatorContext, OperatorSpec, StateGrowth, StateShape, exprs};

impl RankPlan {
    /// Flink's name for it: a deduplication keeps a key's first or last row
    /// by a time attribute (or arrival), anything else ranks.
    fn kind(&self) -> &'static str {
        let by_time = self.order.is_empty() || self.later_wins_ties;
        match self.mode {
            RankMode::Updating { .. } if by_time => "Deduplicate",
            RankMode::Updating { .. } => "TopN",
            RankMode::Window { .. } => "WindowTopN",
            RankMode::FirstByEventTime { .. } => "Deduplicate",
        }
    }

    fn order(&self) -> String {
        match self.order.is_empty() {
            true => "arrival".into(),
            false => self.order.iter().map(|o| o.to_string()).collect::<Vec<_>>().join(", "),
        }
    }
}

impl OperatorSpec for RankPlan {
    fn name(&self) -> String {
        self.kind().into()
    }

    fn explain(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  {}:", self.kind())?;
        writeln!(f, "    partition by: [{}]", exprs(&self.partition))?;
        let ties = if self.later_wins_ties { "the later row first" } else { "the earlier row first" };
        writeln!(f, "    order by: [{}], ties {ties}", self.order())?;
        let number = if self.number { ", changes per rank (the number is used)" } else { "" };
        writeln!(f, "    ranks: {}..={}{number}", self.first, self.last)?;
        match self.mode {
            RankMode::Updating { changelog: true } => {
                let input = if self.retracting { "a changelog (every row kept)" } else { "appends" };
                writeln!(f, "    input: {input}; emits the changed ranks per batch (+I/-U/+U/-D)")
            }
            RankMode::Updating { changelog: false } => writeln!(f, "    emits each key's first row as it arrives"),
            RankMode::Window { lateness: 0, .. } => {
                writeln!(f, "    emits each window's ranks once, when the watermark passes its end")
            }
            RankMode::Window { lateness, .. } => writeln!(
                f,
                "    emits each window's ranks when the watermark passes its end, then for {lateness} ms the changes \
                 re-fired results make (-U/+U/-D/+I)"
            ),
            RankMode::FirstByEventTime { .. } => {
                writeln!(f, "    emits each key's earliest row once the watermark passes it")
            }
        }?;
        match (self.ttl, self.mode) {
            (Some(ttl), RankMode::Updating { .. } | RankMode::FirstByEventTime { .. }) => writeln!(
                f,
                "    state TTL: {} idle (processing time)",
                crate::window::spec::Millis(ttl.as_millis() as i64)
            ),
            _ => Ok(()),
        }
    }

    fn instantiate(self: Arc<Self>, name: String, cx: &OperatorContext) -> Result<Box<dyn Operator>> {
        let metrics = cx.register(&name);
        let budget = cx.state.share(&name, cx.subtask);
        Ok(Box::new(Rank::new(self, name, metrics, budget)?))
    }

    /// The rows each partition ranks, and the keys already deduplicated.
    fn state(&self) -> Option<StateShape> {
        let signature = format!(
            "rows {}; partition [{}]; order [{}]; ranks {}..={}; mode {:?}; retracting {}",
            typed_columns(&self.input_schema),
            exprs(&self.partition),
            self.order(),
            self.first,
            self.last,
            self.mode,
            self.retracting,
        );
        let growth = match (self.mode, self.ttl) {
            (RankMode::Window { .. }, _) | (_, Some(_)) => StateGrowth::Bounded,
            // Without PARTITION BY there is one partition, and over appends
            // it keeps only its top ranks; over a changelog every row.
            _ if self.partition.is_empty() && !self.retracting => StateGrowth::Bounded,
            _ => StateGrowth::Unbounded,
        };
        Some(StateShape { kind: self.kind(), signature, growth })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
