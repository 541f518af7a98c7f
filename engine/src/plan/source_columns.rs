//! Sources make only the columns the job reads.
//!
//! A generator's text columns are most of its cost (a Nexmark bid's
//! `extra`, `channel` and `url`), and most queries read a few numbers and
//! the time. The planner puts a projection or a filter right after a
//! source (and before each exchange, `stream/narrow.rs`), so the first
//! projection of each reader says which columns of the table's row the job
//! reads: a source gets their physical columns, with those its computed
//! columns and its watermark read, as [`SourcePlan::read`], and its
//! connector leaves the others null ([`SourceConnector::only_columns`]).
//! Where a reader does anything else with the whole row first (an
//! exchange by key, a sink, another operator) the source makes every
//! column.
//!
//! [`SourceConnector::only_columns`]: crate::source::SourceConnector::only_columns

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::physical_expr::utils::collect_columns;
use datafusion::physical_plan::PhysicalExpr;

use super::{OperatorPlan, Partitioning, Stage, StageInput, StreamPlan};
use crate::operators::filter::FilterPlan;
use crate::operators::project::ProjectPlan;
use crate::source::SourcePlan;

/// `plan` with each source's [`SourcePlan::read`] set to what its readers
/// read.
pub fn read_only_what_is_used(mut plan: StreamPlan) -> StreamPlan {
    let read: Vec<Option<Vec<usize>>> = (0..plan.stages.len()).map(|i| columns_read(&plan.stages, i)).collect();
    for (stage, read) in plan.stages.iter_mut().zip(read) {
        if let StageInput::Source(source) = &mut stage.input {
            *source = Arc::new(SourcePlan { read, ..source.as_ref().clone() });
        }
    }
    plan
}

/// The physical columns the readers of stage `i`'s source read; `None`
/// when it has no source or they read the whole row.
fn columns_read(stages: &[Stage], i: usize) -> Option<Vec<usize>> {
    let StageInput::Source(source) = &stages[i].input else {
        return None;
    };
    let stage = &stages[i];
    let row: BTreeSet<usize> = if stage.chain.is_empty() && stage.sink.is_none() && stage.late_sink.is_none() {
        // A shared source: what each stage reading it forward reads.
        let mut readers = stages.iter().filter_map(|s| match &s.input {
            StageInput::Exchange(upstreams) => upstreams.iter().find(|u| u.from == i).map(|u| (s, &u.partitioning)),
            StageInput::Source(_) => None,
        });
        readers.try_fold(BTreeSet::new(), |mut all, (reader, partitioning)| {
            matches!(partitioning, Partitioning::Forward).then_some(())?;
            all.extend(read_by_chain(&reader.chain)?);
            Some(all)
        })?
    } else {
        read_by_chain(&stage.chain)?
    };
    Some(physical(source, row))
}

/// The columns of its input row a chain reads before its first
/// projection; `None` when something else comes first.
fn read_by_chain(chain: &[OperatorPlan]) -> Option<BTreeSet<usize>> {
    let mut read = BTreeSet::new();
    for op in chain {
        if let Some(filter) = op.downcast::<FilterPlan>() {
            read.extend(columns_of([&filter.predicate]));
        } else if let Some(project) = op.downcast::<ProjectPlan>() {
            read.extend(columns_of(&project.exprs));
            return Some(read);
        } else {
            return None;
        }
    }
    None
}

/// The physical columns behind `row`, columns of the table's row: through
/// its computed columns, with what its watermark reads.
fn physical(source: &SourcePlan, mut row: BTreeSet<usize>) -> Vec<usize> {
    if let Some(w) = &source.watermark {
        row.insert(w.time_column);
        row.extend(columns_of([&w.expr]));
    }
    let width = source.connector.schema().fields().len();
    let physical: BTreeSet<usize> = match &source.computed {
        Some(computed) => row.iter().filter_map(|&c| computed.exprs.get(c)).flat_map(|e| columns_of([e])).collect(),
        None => row,
    };
    physical.into_iter().filter(|&c| c < width).collect()
}

fn columns_of<'e>(exprs: impl IntoIterator<Item = &'e Arc<dyn PhysicalExpr>>) -> BTreeSet<usize> {
    exprs.into_iter().flat_map(collect_columns).map(|c| c.index()).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
    use datafusion::logical_expr::Operator;
    use datafusion::physical_expr::expressions::{BinaryExpr, Column, lit};

    use super::*;
    use crate::error::{EngineError, Result};
    use crate::event_time::EventTimeValidity;
    use crate::plan::Upstream;
    use crate::source::{Assignment, Positions, SourceConnector, SourceReader, WatermarkPlan};

    /// Columns a, b, c and the time ts; never opened.
    #[derive(Debug)]
    struct Table;

    impl SourceConnector for Table {
        fn describe(&self) -> String {
            "table".into()
        }

        fn schema(&self) -> SchemaRef {
            let int = |n: &str| Field::new(n, DataType::Int64, true);
            let ts = Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true);
            Arc::new(Schema::new(vec![int("a"), int("b"), int("c"), ts]))
        }

        fn partitions(&self, _parallelism: usize) -> Result<usize> {
            Ok(1)
        }

        fn open(&self, _assignment: Assignment, _report: bool, _resume: &Positions) -> Result<Box<dyn SourceReader>> {
            Err(EngineError::Plan("not opened in these tests".into()))
        }
    }

    fn col(i: usize) -> Arc<dyn PhysicalExpr> {
        Arc::new(Column::new(&format!("c{i}"), i))
    }

    fn plus(a: usize, b: usize) -> Arc<dyn PhysicalExpr> {
        Arc::new(BinaryExpr::new(col(a), Operator::Plus, col(b)))
    }

    /// The table, with a watermark on ts (`ts - c`) when `watermark`, and
    /// its row `a, b, c, ts, b + c` when `computed`.
    fn source(watermark: bool, computed: bool) -> StageInput {
        let connector: Arc<dyn SourceConnector> = Arc::new(Table);
        let watermark = watermark.then(|| WatermarkPlan {
            time_column: 3,
            expr: Arc::new(BinaryExpr::new(col(3), Operator::Minus, col(2))),
            display: "ts - c".into(),
            on_event: false,
            interval: Duration::from_millis(200),
            idle_timeout: None,
            validity: EventTimeValidity::default(),
            processing_time: false,
        });
        let computed = computed.then(|| {
            let exprs = vec![col(0), col(1), col(2), col(3), plus(1, 2)];
            Arc::new(ProjectPlan { exprs, schema: connector.schema() })
        });
        StageInput::Source(Arc::new(SourcePlan {
            table: "t".into(),
            schema: connector.schema(),
            connector,
            computed,
            watermark,
            report_bad_records: false,
            late_output: None,
            read: None,
        }))
    }

    fn stage(input: StageInput, chain: Vec<OperatorPlan>) -> Stage {
        Stage { parallelism: 1, input, chain, sink: None, late_sink: None }
    }

    fn from(stage: usize, partitioning: Partitioning) -> StageInput {
        StageInput::Exchange(vec![Upstream { from: stage, partitioning }])
    }

    fn filter(column: usize) -> OperatorPlan {
        let predicate = Arc::new(BinaryExpr::new(col(column), Operator::Gt, lit(0i64)));
        OperatorPlan::new(FilterPlan { predicate })
    }

    fn project(exprs: Vec<Arc<dyn PhysicalExpr>>) -> OperatorPlan {
        let schema = Arc::new(Schema::new(
            (0..exprs.len()).map(|i| Field::new(format!("p{i}"), DataType::Int64, true)).collect::<Vec<_>>(),
        ));
        OperatorPlan::new(ProjectPlan { exprs, schema })
    }

    fn read(stages: Vec<Stage>) -> Option<Vec<usize>> {
        match &read_only_what_is_used(StreamPlan::new(stages)).stages[0].input {
            StageInput::Source(s) => s.read.clone(),
            StageInput::Exchange(_) => panic!("stage 0 reads no source"),
        }
    }

    #[test]
    fn a_source_makes_what_its_filter_and_projection_read() {
        assert_eq!(read(vec![stage(source(false, false), vec![filter(1), project(vec![col(0)])])]), Some(vec![0, 1]));
        // The watermark reads ts and c.
        assert_eq!(read(vec![stage(source(true, false), vec![project(vec![col(0)])])]), Some(vec![0, 2, 3]));
        // A computed column reads what it is computed from.
        assert_eq!(read(vec![stage(source(false, true), vec![project(vec![col(4)])])]), Some(vec![1, 2]));
    }

    #[test]
    fn a_shared_source_makes_what_any_reader_reads() {
        let stages = vec![
            stage(source(false, false), Vec::new()),
            stage(from(0, Partitioning::Forward), vec![project(vec![col(0)])]),
            stage(from(0, Partitioning::Forward), vec![filter(2), project(vec![col(0)])]),
        ];
        assert_eq!(read(stages), Some(vec![0, 2]));
    }

    #[test]
    fn a_source_whose_rows_are_used_whole_makes_every_column() {
        // No projection before the rows leave.
        assert_eq!(read(vec![stage(source(true, false), vec![filter(1)])]), None);
        // An exchange by key, before any projection.
        let stages = vec![
            stage(source(false, false), Vec::new()),
            stage(from(0, Partitioning::Forward), vec![project(vec![col(0)])]),
            stage(from(0, Partitioning::Hash(vec![col(1)])), vec![project(vec![col(0)])]),
        ];
        assert_eq!(read(stages), None);
    }
}
