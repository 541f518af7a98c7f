//! `MATCH_RECOGNIZE` on an event-time stream: complex event processing in
//! SQL, as Flink's `Match` operator runs it.
//!
//! Rows wait until the watermark passes them (`operator.rs`, as OVER
//! windows do), then each partition's rows are fed in time order to the
//! pattern, compiled to an NFA (`nfa.rs`). Every row starts an attempt; an
//! attempt's threads follow the NFA's paths in priority order (greedy or
//! reluctant quantifiers, alternation left first), each holding the rows
//! it matched and their variables, and take a row when its variable's
//! `DEFINE` holds over them (`eval.rs`). Attempts are decided in the order
//! of their first rows, so the matches are the ones a batch engine finds
//! scanning the partition from its start (`matcher.rs`); a match leaves
//! as one row, its partition columns then its `MEASURES`, and `AFTER
//! MATCH SKIP` drops the attempts it overlaps.
//!
//! The state is the rows waiting for the watermark and each partition's
//! attempts as the rows they matched (`state.rs`, per key group).

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::physical_plan::PhysicalExpr;

use crate::checkpoint::identity::typed_columns;
use crate::error::Result;
use crate::operator::Operator;
use crate::plan::{OperatorContext, OperatorSpec, StateGrowth, StateShape, exprs};

mod eval;
mod matcher;
mod nfa;
mod operator;
mod state;
#[cfg(test)]
mod tests;

pub use eval::{Condition, Navigation, Row};
pub use nfa::{Nfa, Pattern};
pub use operator::MatchRecognize;

/// Where the next attempt starts after a match (`AFTER MATCH SKIP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterMatch {
    /// `PAST LAST ROW` (the default): matches never share rows.
    PastLastRow,
    /// `TO NEXT ROW`: at the row after the match's first.
    ToNextRow,
    /// `TO FIRST v`: at the first row matched to variable `v`.
    ToFirst(usize),
    /// `TO LAST v`: at the last row matched to variable `v`.
    ToLast(usize),
}

/// A `MATCH_RECOGNIZE` clause over a stream, shared by its subtasks.
#[derive(Debug, Clone)]
pub struct MatchPlan {
    /// `PARTITION BY` columns of the input (empty: one subtask).
    pub partition: Vec<usize>,
    /// The input's rowtime, which `ORDER BY` names.
    pub time_column: usize,
    /// Values a row carries besides its columns (arguments of aggregates
    /// and navigations that are not plain columns), computed as it arrives.
    pub derived: Vec<Arc<dyn PhysicalExpr>>,
    /// The pattern variables, by index.
    pub variables: Vec<String>,
    /// The `PATTERN`, compiled.
    pub nfa: Nfa,
    /// The `PATTERN` as written, for `EXPLAIN` and the state signature.
    pub pattern_text: String,
    /// `DEFINE` per variable; `None`: any row (Flink's default).
    pub defines: Vec<Option<Condition>>,
    /// `MEASURES`, evaluated over a whole match.
    pub measures: Vec<Condition>,
    /// Where matching goes on after a match.
    pub after_match: AfterMatch,
    /// `WITHIN`: a match's last row is less than this many milliseconds
    /// after its first.
    pub within: Option<i64>,
    /// The rows matched.
    pub input_schema: SchemaRef,
    /// The partition columns, then one per measure.
    pub output_schema: SchemaRef,
    /// `LATE DATA INTO`: where rows behind the watermark go.
    pub late_output: Option<Arc<crate::window::late::LateOutputPlan>>,
}

impl MatchPlan {
    fn describe_defines(&self) -> String {
        self.defines
            .iter()
            .zip(&self.variables)
            .filter_map(|(d, v)| d.as_ref().map(|d| format!("{v} AS {}", d.text)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn describe_measures(&self) -> String {
        let names = self.output_schema.fields().iter().skip(self.partition.len());
        self.measures
            .iter()
            .zip(names)
            .map(|(m, f)| format!("{} AS {}", m.text, f.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn describe_skip(&self) -> String {
        match self.after_match {
            AfterMatch::PastLastRow => "PAST LAST ROW".into(),
            AfterMatch::ToNextRow => "TO NEXT ROW".into(),
            AfterMatch::ToFirst(v) => format!("TO FIRST {}", self.variables[v]),
            AfterMatch::ToLast(v) => format!("TO LAST {}", self.variables[v]),
        }
    }

    fn describe_partition(&self) -> String {
        self.partition.iter().map(|c| self.input_schema.field(*c).name().as_str()).collect::<Vec<_>>().join(", ")
    }
}

impl OperatorSpec for MatchPlan {
    fn name(&self) -> String {
        "MatchRecognize".into()
    }

    fn explain(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  MatchRecognize:")?;
        writeln!(f, "    partition by: [{}]", self.describe_partition())?;
        let time = self.input_schema.field(self.time_column).name();
        writeln!(f, "    order by: {time}; rows are matched as the watermark passes them")?;
        let within = self.within.map(|ms| format!(" within {ms} ms")).unwrap_or_default();
        writeln!(f, "    pattern: ({}){within}", self.pattern_text)?;
        writeln!(f, "    define: [{}]", self.describe_defines())?;
        writeln!(f, "    measures: [{}]", self.describe_measures())?;
        if !self.derived.is_empty() {
            writeln!(f, "    computed per row: [{}]", exprs(&self.derived))?;
        }
        writeln!(f, "    one row per match; after match skip {}", self.describe_skip())
    }

    fn instantiate(self: Arc<Self>, name: String, cx: &OperatorContext) -> Result<Box<dyn Operator>> {
        let metrics = cx.register(&name);
        Ok(Box::new(MatchRecognize::new(self, name, metrics)?))
    }

    /// Rows waiting for the watermark and each partition's attempts.
    fn state(&self) -> Option<StateShape> {
        let signature = format!(
            "rows {}; partition [{}]; time {}; pattern ({}); define [{}]; derived [{}]",
            typed_columns(&self.input_schema),
            self.describe_partition(),
            self.time_column,
            self.pattern_text,
            self.describe_defines(),
            exprs(&self.derived),
        );
        // Without WITHIN an attempt may wait for its next row forever.
        let growth = match self.within {
            Some(_) => StateGrowth::Bounded,
            None => StateGrowth::Unbounded,
        };
        Some(StateShape { kind: "MatchRecognize", signature, growth })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
