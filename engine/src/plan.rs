//! The streaming plan: stages of chained operators joined by exchanges.
//!
//! The SQL planner builds it from DataFusion's logical plan; the runtime
//! instantiates one task per stage and parallel subtask. `Display` is what
//! `EXPLAIN` prints.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::physical_plan::PhysicalExpr;

use crate::group_aggregate::GroupAggregatePlan;
use crate::join::interval::IntervalJoinPlan;
use crate::join::window::WindowJoinPlan;
use crate::lookup::LookupJoinPlan;
use crate::operators::project::ProjectPlan;
use crate::sink::SinkConnector;
use crate::source::SourcePlan;
use crate::window::aggregate::{OutputColumn, WindowAggregatePlan, WindowedAggregation};
use crate::window::session::SessionAggregatePlan;
use crate::window::assign::WindowAssignPlan;
use crate::window::spec::Millis;

/// A job: stages in topological order (inputs before their consumers).
#[derive(Debug)]
pub struct StreamPlan {
    pub stages: Vec<Stage>,
}

/// A set of identical parallel tasks, each running the same operator chain.
#[derive(Debug)]
pub struct Stage {
    pub parallelism: usize,
    pub input: StageInput,
    pub chain: Vec<OperatorPlan>,
    /// `None` when a later stage reads this one through an exchange.
    pub sink: Option<SinkPlan>,
    /// `LATE DATA INTO`: the side table of the stage's window aggregate.
    pub late_sink: Option<SinkPlan>,
}

/// Where a stage's rows come from.
#[derive(Debug)]
pub enum StageInput {
    Source(Arc<SourcePlan>),
    /// Earlier stages through exchanges: one, or two for a join (its left
    /// side first; the join sees each row's input by this order).
    Exchange(Vec<Upstream>),
}

/// An earlier stage a stage reads, and how its rows are spread.
#[derive(Debug)]
pub struct Upstream {
    pub from: usize,
    pub partitioning: Partitioning,
}

/// How rows of an upstream stage are spread over a stage's subtasks.
#[derive(Debug, Clone)]
pub enum Partitioning {
    /// Subtask i feeds subtask i (same parallelism).
    Forward,
    /// By key: every row with the same key reaches the same subtask.
    Hash(Vec<Arc<dyn PhysicalExpr>>),
    /// Everything to one subtask.
    Single,
}

/// One operator of a chain.
#[derive(Debug, Clone)]
pub enum OperatorPlan {
    Project(Arc<ProjectPlan>),
    Filter(Arc<dyn PhysicalExpr>),
    WindowAggregate(Arc<WindowAggregatePlan>),
    SessionAggregate(Arc<SessionAggregatePlan>),
    /// GROUP BY without a window: emits a changelog.
    GroupAggregate(Arc<GroupAggregatePlan>),
    WindowAssign(Arc<WindowAssignPlan>),
    WindowJoin(Arc<WindowJoinPlan>),
    IntervalJoin(Arc<IntervalJoinPlan>),
    LookupJoin(Arc<LookupJoinPlan>),
}

/// The sink that ends the last stage.
#[derive(Debug, Clone)]
pub struct SinkPlan {
    pub table: String,
    pub connector: Arc<dyn SinkConnector>,
    /// Columns of the sink's row that identify it (group columns and window
    /// of a windowed aggregation), for upsert sinks.
    pub upsert_key: Option<Vec<usize>>,
}

impl StreamPlan {
    /// The tables the plan reads and writes, in plan order.
    pub fn tables(&self) -> impl Iterator<Item = &str> {
        self.stages.iter().flat_map(|stage| {
            let source = match &stage.input {
                StageInput::Source(s) => Some(s.table.as_str()),
                StageInput::Exchange(_) => None,
            };
            source
                .into_iter()
                .chain(stage.sink.as_ref().map(|s| s.table.as_str()))
                .chain(stage.late_sink.as_ref().map(|s| s.table.as_str()))
        })
    }
}

impl OperatorPlan {
    /// Name used for tasks, metrics and errors.
    pub fn name(&self) -> String {
        match self {
            OperatorPlan::Project(_) => "Project".into(),
            OperatorPlan::Filter(_) => "Filter".into(),
            OperatorPlan::WindowAggregate(p) => format!("WindowAggregate {}", p.window),
            OperatorPlan::SessionAggregate(p) => format!("SessionAggregate gap {}", Millis(p.gap)),
            OperatorPlan::GroupAggregate(_) => "GroupAggregate".into(),
            OperatorPlan::WindowAssign(p) => format!("WindowAssign {}", p.window),
            OperatorPlan::WindowJoin(p) => format!("WindowJoin {:?}", p.spec.join_type),
            OperatorPlan::IntervalJoin(p) if p.bounds.is_none() => format!("RegularJoin {:?}", p.spec.join_type),
            OperatorPlan::IntervalJoin(p) => format!("IntervalJoin {:?}", p.spec.join_type),
            OperatorPlan::LookupJoin(p) => format!("LookupJoin {:?} {}", p.spec.join_type, p.table),
        }
    }
}

fn exprs(list: &[Arc<dyn PhysicalExpr>]) -> String {
    list.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(", ")
}

fn columns(schema: &SchemaRef) -> String {
    schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn fmt_aggregation(f: &mut fmt::Formatter<'_>, a: &WindowedAggregation) -> fmt::Result {
    if a.allowed_lateness > 0 {
        writeln!(f, "    allowed lateness: {}", Millis(a.allowed_lateness))?;
    }
    writeln!(f, "    keys: [{}]", exprs(&a.grouping.keys))?;
    let aggs: Vec<String> = a.grouping.aggregates.iter().map(|c| c.function.name().to_string()).collect();
    writeln!(f, "    aggregates: [{}]", aggs.join(", "))?;
    let out: Vec<&str> = a
        .output
        .iter()
        .zip(a.output_schema.fields())
        .map(|(c, fld)| match c {
            OutputColumn::Aggregate(_) | OutputColumn::Key(_) => fld.name().as_str(),
            OutputColumn::WindowStart => "window_start",
            OutputColumn::WindowEnd => "window_end",
            OutputColumn::WindowTime => "window_time",
        })
        .collect();
    writeln!(f, "    emits: [{}] when watermark >= window_end - 1 ms", out.join(", "))
}

fn fmt_join(f: &mut fmt::Formatter<'_>, spec: &crate::join::JoinSpec) -> fmt::Result {
    let on: Vec<String> = spec.on.iter().map(|(l, r)| format!("{l} = {r}")).collect();
    writeln!(f, "    on: [{}]", on.join(", "))?;
    if let Some(filter) = &spec.filter {
        writeln!(f, "    filter: {}", filter.expression())?;
    }
    Ok(())
}

impl fmt::Display for StreamPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, stage) in self.stages.iter().enumerate() {
            writeln!(f, "Stage {i} (parallelism {})", stage.parallelism)?;
            match &stage.input {
                StageInput::Source(s) => {
                    writeln!(f, "  Source: {} [{}]", s.table, s.connector.describe())?;
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
            for op in &stage.chain {
                match op {
                    OperatorPlan::Project(p) => writeln!(f, "  Project: {}", exprs(&p.exprs))?,
                    OperatorPlan::Filter(p) => writeln!(f, "  Filter: {p}")?,
                    OperatorPlan::WindowAssign(p) => writeln!(f, "  WindowAssign: {}", p.window)?,
                    OperatorPlan::WindowAggregate(p) => {
                        writeln!(f, "  WindowAggregate: {}", p.window)?;
                        fmt_aggregation(f, &p.aggregation)?;
                    }
                    OperatorPlan::SessionAggregate(p) => {
                        writeln!(f, "  SessionAggregate: SESSION(gap {})", Millis(p.gap))?;
                        fmt_aggregation(f, &p.aggregation)?;
                    }
                    OperatorPlan::GroupAggregate(p) => {
                        writeln!(f, "  GroupAggregate:")?;
                        writeln!(f, "    keys: [{}]", exprs(&p.grouping.keys))?;
                        let aggs: Vec<String> = p.grouping.aggregates.iter().map(|c| c.function.name().to_string()).collect();
                        writeln!(f, "    aggregates: [{}]", aggs.join(", "))?;
                        let input = if p.retracting { "a changelog (retracted)" } else { "appends" };
                        writeln!(f, "    input: {input}; emits +I/-U/+U/-D per batch")?;
                    }
                    OperatorPlan::WindowJoin(p) => {
                        writeln!(f, "  WindowJoin: {:?}", p.spec.join_type)?;
                        fmt_join(f, &p.spec)?;
                        writeln!(f, "    emits when watermark >= window_end - 1 ms")?;
                    }
                    OperatorPlan::IntervalJoin(p) => {
                        let kind = if p.bounds.is_some() { "IntervalJoin" } else { "RegularJoin" };
                        writeln!(f, "  {kind}: {:?}", p.spec.join_type)?;
                        fmt_join(f, &p.spec)?;
                        match &p.bounds {
                            Some(b) => writeln!(
                                f,
                                "    right time - left time within [{}, {}]; watermark held back {}",
                                Millis(b.lower),
                                Millis(b.upper),
                                Millis(p.delay())
                            )?,
                            None => writeln!(f, "    regular join: every row is kept")?,
                        }
                    }
                    OperatorPlan::LookupJoin(p) => {
                        writeln!(f, "  LookupJoin: {:?} {}", p.spec.join_type, p.source.describe())?;
                        fmt_join(f, &p.spec)?;
                        let o = p.source.options();
                        writeln!(
                            f,
                            "    {} lookups in flight, {} output, cache of {} keys",
                            o.max_concurrent,
                            if o.ordered { "ordered" } else { "unordered" },
                            o.cache_max_rows
                        )?;
                    }
                }
            }
            if let Some(s) = &stage.sink {
                writeln!(f, "  Sink: {} [{}]", s.table, s.connector.describe())?;
            }
            if let Some(s) = &stage.late_sink {
                writeln!(f, "  Late data: {} [{}]", s.table, s.connector.describe())?;
            }
        }
        Ok(())
    }
}
