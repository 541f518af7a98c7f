//! `EXPLAIN`: a plan's stages, each with its input, its operators (each
//! explains itself: [`super::OperatorSpec::explain`]) and its sinks.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::Schema;
use datafusion::physical_plan::PhysicalExpr;

use super::{Partitioning, StageInput, StateGrowth, StreamPlan, Upstream};
use crate::checkpoint::identity::state_ids;
use crate::window::spec::Millis;

/// What `EXPLAIN` says under an operator of kind `kind` whose state
/// nothing frees: it keeps every key (or row) it has seen, so its memory
/// and checkpoints grow with the input until the job falls over, which users
/// otherwise learn in production. The remedy depends on the operator.
fn unbounded(kind: &str) -> String {
    let remedy = match kind {
        "MatchRecognize" => "add WITHIN to the pattern",
        "OverAggregate" => "no state TTL applies to it: keep its PARTITION BY keys few",
        "TemporalJoin" => "no state TTL applies to it: each key of the versioned table keeps its latest version",
        _ => "set 'table.exec.state.ttl', or bound it by event time: a window, an interval join",
    };
    format!("warning: unbounded state: it keeps every key seen, as nothing frees it ({remedy})")
}

/// Expressions, comma-separated, as `EXPLAIN` lists them.
pub fn exprs(list: &[Arc<dyn PhysicalExpr>]) -> String {
    list.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(", ")
}

/// Column names, comma-separated.
pub fn columns(schema: &Schema) -> String {
    schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ")
}

impl fmt::Display for StreamPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Every stateful part shows the id its state is saved under, so
        // that a UID hint is written against what EXPLAIN says.
        let (ids, _) = state_ids(self);
        for ((i, stage), ids) in self.stages.iter().enumerate().zip(&ids) {
            writeln!(f, "Stage {i} (parallelism {})", stage.parallelism)?;
            match &stage.input {
                StageInput::Source(s) => {
                    writeln!(f, "  Source: {} [{}]", s.table, s.reading().describe())?;
                    writeln!(f, "    columns: {}", columns(&s.schema))?;
                    if let Some(w) = &s.watermark {
                        let emit = if w.on_event {
                            "on-event".to_string()
                        } else {
                            format!("every {}", Millis(w.interval.as_millis() as i64))
                        };
                        writeln!(
                            f,
                            "    watermark: {} AS {} (per partition, {emit})",
                            s.schema.field(w.time_column).name(),
                            w.display
                        )?;
                    }
                    if let Some(id) = &ids.source {
                        writeln!(f, "    state id: {id}")?;
                    }
                }
                StageInput::Exchange(upstreams) => {
                    for Upstream { from, partitioning } in upstreams {
                        match partitioning {
                            Partitioning::Forward => writeln!(f, "  Exchange: forward from stage {from}")?,
                            Partitioning::Single => writeln!(f, "  Exchange: single from stage {from}")?,
                            Partitioning::Hash(keys) => {
                                writeln!(f, "  Exchange: hash [{}] from stage {from}", exprs(keys))?
                            }
                        }
                    }
                }
            }
            for (op, id) in stage.chain.iter().zip(&ids.operators) {
                write!(f, "{op}")?;
                if let Some(id) = id {
                    writeln!(f, "    state id: {id}")?;
                }
                if let Some(state) = op.state().filter(|s| s.growth == StateGrowth::Unbounded) {
                    writeln!(f, "    {}", unbounded(state.kind))?;
                }
            }
            if let Some(s) = &stage.sink {
                writeln!(f, "  Sink: {} [{}]", s.table, s.connector.describe())?;
            }
            if let Some(s) = &stage.late_sink {
                writeln!(f, "  Late data: {} [{}]", s.table, s.connector.describe())?;
            }
            // Only a stage several stages read says so: the text of every
            // other plan, and so its fingerprint, stays as it was.
            let consumers = self.consumers(i);
            if consumers.len() > 1 {
                let list = consumers.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ");
                writeln!(f, "  Shared: read by stages {list}")?;
            }
        }
        Ok(())
    }
}
