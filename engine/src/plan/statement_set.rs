//! A statement set's plans joined into one job's: each INSERT's stages
//! follow the earlier INSERTs', and a table that several INSERTs read with
//! the same source plan is read once, by one source stage whose output
//! every one of them reads (as Flink reuses a source its INSERTs share).
//! Only identical source plans are shared (same table, same connector,
//! same columns, watermark and computed columns); a source reporting
//! undecodable records to a `LATE DATA INTO` table stays its INSERT's own.

use std::sync::Arc;

use super::{Partitioning, Stage, StageInput, StreamPlan, Upstream};

/// The plans of a statement set's INSERTs, in order, as one plan. Without
/// a source two INSERTs share, the stages are the plans' one after the
/// other, exchanges renumbered; a shared source becomes one stage placed
/// before the first INSERT's stages that read it.
pub fn join(plans: Vec<StreamPlan>) -> StreamPlan {
    let mut stages = Vec::new();
    let mut insert_of = Vec::new();
    for (insert, plan) in plans.into_iter().enumerate() {
        let offset = stages.len();
        for mut stage in plan.stages {
            if let StageInput::Exchange(upstreams) = &mut stage.input {
                for u in upstreams {
                    u.from += offset;
                }
            }
            stages.push(stage);
            insert_of.push(insert);
        }
    }
    let groups = shared_sources(&stages, &insert_of);
    match groups.is_empty() {
        true => StreamPlan { stages },
        false => share(stages, &groups),
    }
}

/// Source stages of several INSERTs that read the same way, each group in
/// stage order: of each INSERT, only the first stage reading so (a second
/// read in one INSERT, as a self-join's, keeps its own source, as it does
/// outside a statement set).
fn shared_sources(stages: &[Stage], insert_of: &[usize]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, stage) in stages.iter().enumerate() {
        let StageInput::Source(plan) = &stage.input else {
            continue;
        };
        if plan.report_bad_records || plan.late_output.is_some() {
            continue;
        }
        let same = |group: &Vec<usize>| {
            let first = &stages[group[0]];
            matches!(&first.input, StageInput::Source(p) if p.same_reading(plan))
                && first.parallelism == stage.parallelism
        };
        match groups.iter_mut().find(|g| same(g)) {
            Some(group) if group.iter().all(|m| insert_of[*m] != insert_of[i]) => group.push(i),
            Some(_) => {}
            None => groups.push(vec![i]),
        }
    }
    groups.retain(|g| g.len() > 1);
    groups
}

/// `stages` with one source stage per group of `groups`: each member then
/// reads it forward, or, when the member only passed the source's rows on
/// to exchanges, is dropped and its readers read the shared stage.
fn share(stages: Vec<Stage>, groups: &[Vec<usize>]) -> StreamPlan {
    let mut out: Vec<Stage> = Vec::with_capacity(stages.len() + groups.len());
    // Where each stage of `stages` went (or the stage that replaces it).
    let mut moved = vec![0; stages.len()];
    let mut readers: Vec<Option<usize>> = vec![None; groups.len()];
    for (i, mut stage) in stages.into_iter().enumerate() {
        if let StageInput::Exchange(upstreams) = &mut stage.input {
            for u in upstreams {
                u.from = moved[u.from];
            }
        }
        let group = groups.iter().position(|g| g.contains(&i));
        let source = match &stage.input {
            StageInput::Source(source) => Some(Arc::clone(source)),
            StageInput::Exchange(_) => None,
        };
        let (Some(group), Some(source)) = (group, source) else {
            moved[i] = out.len();
            out.push(stage);
            continue;
        };
        let from = *readers[group].get_or_insert_with(|| {
            out.push(Stage {
                parallelism: stage.parallelism,
                input: StageInput::Source(source),
                chain: Vec::new(),
                sink: None,
                late_sink: None,
            });
            out.len() - 1
        });
        if stage.chain.is_empty() && stage.sink.is_none() && stage.late_sink.is_none() {
            moved[i] = from;
            continue;
        }
        stage.input = StageInput::Exchange(vec![Upstream {
            from,
            partitioning: Partitioning::Forward,
        }]);
        moved[i] = out.len();
        out.push(stage);
    }
    StreamPlan { stages: out }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
    use datafusion::physical_expr::expressions::lit;

    use super::*;
    use crate::error::{EngineError, Result};
    use crate::operators::filter::FilterPlan;
    use crate::plan::OperatorPlan;
    use crate::source::{Assignment, Positions, SourceConnector, SourcePlan, SourceReader};

    /// A connector the plans name and no test opens.
    #[derive(Debug)]
    struct Unread;

    impl SourceConnector for Unread {
        fn describe(&self) -> String {
            "unread".into()
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
        }))
    }

    fn stage(input: StageInput, chain: Vec<OperatorPlan>) -> Stage {
        Stage {
            parallelism: 2,
            input,
            chain,
            sink: None,
            late_sink: None,
        }
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
        let single = |from| {
            StageInput::Exchange(vec![Upstream {
                from,
                partitioning: Partitioning::Single,
            }])
        };
        vec![
            StreamPlan {
                stages: vec![stage(source(a), vec![filter()])],
            },
            StreamPlan {
                stages: vec![stage(source(b), Vec::new()), stage(single(0), vec![filter()])],
            },
        ]
    }

    #[test]
    fn a_source_two_inserts_read_alike_is_one_stage_both_read() {
        let connector: Arc<dyn SourceConnector> = Arc::new(Unread);
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
        let (a, b): (Arc<dyn SourceConnector>, Arc<dyn SourceConnector>) = (Arc::new(Unread), Arc::new(Unread));
        let plan = join(two_inserts(&a, &b));
        assert_eq!(plan.stages.len(), 3);
        assert_eq!((reads(&plan, 1), reads(&plan, 2)), (vec![], vec![1]));
        assert!(!plan.to_string().contains("Shared"));
    }

    /// A self-join's second read keeps its own source, as outside a set.
    #[test]
    fn one_insert_reading_a_table_twice_shares_its_first_read_only() {
        let connector: Arc<dyn SourceConnector> = Arc::new(Unread);
        let twice = StreamPlan {
            stages: vec![
                stage(source(&connector), vec![filter()]),
                stage(source(&connector), vec![filter()]),
            ],
        };
        let once = StreamPlan {
            stages: vec![stage(source(&connector), vec![filter()])],
        };
        let plan = join(vec![twice, once]);
        assert_eq!(plan.stages.len(), 4, "{plan}");
        assert_eq!(plan.consumers(0), vec![1, 3]);
        assert!(matches!(plan.stages[2].input, StageInput::Source(_)));
    }
}
