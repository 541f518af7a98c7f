//! A statement set's plans joined into one job's: each INSERT's stages
//! follow the earlier INSERTs', and a table that several INSERTs read with
//! the same source plan is read once ([`super::reuse_sources`]).

use super::{StageInput, StreamPlan};

/// The plans of a statement set's INSERTs, in order, as one plan: the
/// stages are the plans' one after the other, exchanges renumbered, and a
/// source several of them read alike is one stage they all read.
pub fn join(plans: Vec<StreamPlan>) -> StreamPlan {
    let mut stages = Vec::new();
    for plan in plans {
        let offset = stages.len();
        for mut stage in plan.stages {
            if let StageInput::Exchange(upstreams) = &mut stage.input {
                for u in upstreams {
                    u.from += offset;
                }
            }
            stages.push(stage);
        }
    }
    super::read_only_what_is_used(super::reuse_sources(StreamPlan::new(stages)))
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
    use datafusion::physical_expr::expressions::lit;

    use std::sync::Arc;

    use super::*;
    use crate::error::{EngineError, Result};
    use crate::operators::filter::FilterPlan;
    use crate::plan::OperatorPlan;
    use crate::plan::{Partitioning, Stage, Upstream};
    use crate::source::{Assignment, Positions, SourceConnector, SourcePlan, SourceReader};

    /// A connector the plans name and no test opens; connectors of other
    /// names read otherwise.
    #[derive(Debug)]
    struct Unread(&'static str);

    impl SourceConnector for Unread {
        fn describe(&self) -> String {
            format!("unread {}", self.0)
        }

        fn schema(&self) -> SchemaRef {
            Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]))
        }

        fn partitions(&self, _parallelism: usize) -> Result<usize> {
            Ok(1)
        }

        fn open(&self, _assignment: Assignment, _report: bool, _resume: &Positions) -> Result<Box<dyn SourceReader>> {
            Err(EngineError::Plan("not opened in these tests".into()))
        }
    }

    fn source(connector: &Arc<dyn SourceConnector>) -> StageInput {
        StageInput::Source(Arc::new(SourcePlan {
            table: "t".into(),
            connector: Arc::clone(connector),
            computed: None,
            watermark: None,
            schema: connector.schema(),
            report_bad_records: false,
            late_output: None,
            read: None,
        }))
    }

    fn stage(input: StageInput, chain: Vec<OperatorPlan>) -> Stage {
        Stage { parallelism: 2, input, chain, sink: None, late_sink: None }
    }

    fn filter() -> OperatorPlan {
        OperatorPlan::new(FilterPlan { predicate: lit(true) })
    }

    fn reads(plan: &StreamPlan, stage: usize) -> Vec<usize> {
        match &plan.stages[stage].input {
            StageInput::Exchange(ups) => ups.iter().map(|u| u.from).collect(),
            StageInput::Source(_) => Vec::new(),
        }
    }

    /// An INSERT whose source runs in its own tasks, and one whose source
    /// stage only feeds an exchange.
    fn two_inserts(a: &Arc<dyn SourceConnector>, b: &Arc<dyn SourceConnector>) -> Vec<StreamPlan> {
        let single = |from| StageInput::Exchange(vec![Upstream { from, partitioning: Partitioning::Single }]);
        vec![
            StreamPlan::new(vec![stage(source(a), vec![filter()])]),
            StreamPlan::new(vec![stage(source(b), Vec::new()), stage(single(0), vec![filter()])]),
        ]
    }

    #[test]
    fn a_source_two_inserts_read_alike_is_one_stage_both_read() {
        let connector: Arc<dyn SourceConnector> = Arc::new(Unread("t"));
        let plan = join(two_inserts(&connector, &connector));
        assert_eq!(plan.stages.len(), 3, "{plan}");
        assert!(matches!(plan.stages[0].input, StageInput::Source(_)) && plan.stages[0].chain.is_empty());
        assert_eq!((reads(&plan, 1), reads(&plan, 2)), (vec![0], vec![0]));
        assert_eq!(plan.consumers(0), vec![1, 2]);
        let text = plan.to_string();
        assert_eq!(text.matches("Source: t").count(), 1, "{text}");
        assert!(text.contains("Shared: read by stages 1, 2"), "{text}");
    }

    #[test]
    fn sources_read_otherwise_stay_apart() {
        let (a, b): (Arc<dyn SourceConnector>, Arc<dyn SourceConnector>) =
            (Arc::new(Unread("a")), Arc::new(Unread("b")));
        let plan = join(two_inserts(&a, &b));
        assert_eq!(plan.stages.len(), 3);
        assert_eq!((reads(&plan, 1), reads(&plan, 2)), (vec![], vec![1]));
        assert!(!plan.to_string().contains("Shared"));
    }

    /// A self-join's second read shares the first's source too.
    #[test]
    fn one_insert_reading_a_table_twice_reads_it_once() {
        let connector: Arc<dyn SourceConnector> = Arc::new(Unread("t"));
        let twice =
            StreamPlan::new(vec![stage(source(&connector), vec![filter()]), stage(source(&connector), vec![filter()])]);
        let once = StreamPlan::new(vec![stage(source(&connector), vec![filter()])]);
        let plan = join(vec![twice, once]);
        assert_eq!(plan.stages.len(), 4, "{plan}");
        assert_eq!(plan.consumers(0), vec![1, 2, 3]);
        assert_eq!(plan.to_string().matches("Source: t").count(), 1, "{plan}");
    }
}
