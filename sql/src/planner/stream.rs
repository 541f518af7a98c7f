//! DataFusion's logical plan to Weir's streaming plan.
//!
//! DataFusion resolves names, types and expressions; this module maps each
//! logical node to a streaming operator, splits the plan into stages where
//! rows must be re-partitioned by key, and refuses what cannot run on an
//! unbounded stream.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::{Column as LColumn, DFSchema};
use datafusion::execution::SessionState;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{Aggregate, Expr, LogicalPlan};
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::physical_expr::aggregate::LoweredAggregateBuilder;
use datafusion::physical_expr::create_physical_expr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::PhysicalExpr;
use weir_engine::event_time::EventTimeValidity;
use weir_engine::operators::filter::FilterPlan;
use weir_engine::operators::positional_cast::PositionalCast;
use weir_engine::operators::project::ProjectPlan;
use weir_engine::plan::{
    Distribution, NodeOp, OperatorPlan, Properties, SinkPlan, StreamNode, StreamPlan, WindowColumns, split,
};
use weir_engine::source::{SourcePlan, WatermarkPlan};
use weir_engine::window::aggregate::{OutputColumn, WindowAggregatePlan, WindowedAggregation};
use weir_engine::window::assign::WindowAssignPlan;
use weir_engine::window::groups::{AggregateCall, Grouping};
use weir_engine::window::late::{LateColumn, LateOutputPlan};
use weir_engine::window::session::SessionAggregatePlan;

use crate::catalog::{Catalog, TableDef};
use crate::error::{Result, SqlError};
use crate::planner::window_tvf::{WindowInput, WindowRelation, Windows};
use crate::settings::Settings;
use crate::types::{TIMESTAMP_MS, sql_name};

mod group_aggregate;
mod grouping_sets;
mod join;
mod late;
mod limit;
mod lookup;
mod match_recognize;
mod narrow;
mod over;
mod rank;
pub(crate) mod state_ttl;
pub(crate) mod uid;
mod temporal_join;
mod time_sort;
mod union;
pub mod unnest;
mod values;
mod window_results;

use narrow::Narrowing;

/// The `ALLOWED LATENESS` and `LATE DATA INTO` of a query, resolved.
#[derive(Debug, Default)]
pub struct LateClauses {
    /// Milliseconds; 0 without the clause.
    pub allowed_lateness: i64,
    /// `EMIT EARLY EVERY`.
    pub emit_early: Option<std::time::Duration>,
    pub late_data_into: Option<LateTarget>,
    /// Where the clauses are, for errors.
    pub position: Option<crate::error::Position>,
}

/// The table named by `LATE DATA INTO`.
#[derive(Debug)]
pub enum LateTarget {
    /// A declared table: it gets the columns it declares, matched by name.
    Declared(Arc<TableDef>),
    /// Not declared: a memory table with the row's columns, `reason`,
    /// `watermark` and `arrived_at` is created under this name.
    New(String),
}

/// The plan built so far for a part of the query: the stream node that
/// yields its rows, and a window TVF whose window columns are not computed
/// yet (an aggregate right above it becomes a window aggregate).
pub(super) struct Flow {
    pub(super) node: StreamNode,
    window: Option<WindowRelation>,
}

impl Flow {
    pub(super) fn new(node: StreamNode) -> Self {
        Self { node, window: None }
    }

    pub(super) fn props(&self) -> &Properties {
        &self.node.properties
    }

    pub(super) fn props_mut(&mut self) -> &mut Properties {
        &mut self.node.properties
    }

    /// `op` over the rows as they are.
    pub(super) fn push(&mut self, op: OperatorPlan) {
        self.then(op, Distribution::Any);
    }

    /// `op` over the rows spread as `distribution`: the new node keeps the
    /// rows' properties until the caller sets its own.
    pub(super) fn then(&mut self, op: OperatorPlan, distribution: Distribution) {
        let placeholder = StreamNode::over(NodeOp::Union, Vec::new(), Properties::default());
        let input = std::mem::replace(&mut self.node, placeholder);
        self.node = input.then(op, distribution);
    }

    /// Refuses `what` over a changelog: its rows would need retracting.
    pub(super) fn refuse_changelog(&self, what: &str, at: Option<crate::error::Position>) -> Result<()> {
        if !self.props().changelog {
            return Ok(());
        }
        Err(SqlError::Unsupported {
            construct: format!(
                "{what} over the results of a GROUP BY without a window (or another updating result: a Top-N, \
                 a regular outer join, a changelog source)"
            ),
            detail: Some("those results change as rows arrive; aggregate over a window to get final rows".into()),
            position: at,
        })
    }
}

/// Builds the stages of one streaming query.
pub struct StreamPlanner<'a> {
    pub state: &'a SessionState,
    pub catalog: &'a Catalog,
    pub windows: &'a HashMap<String, WindowRelation>,
    pub settings: &'a Settings,
    clauses: Option<LateClauses>,
    /// A memory table created for `LATE DATA INTO`, for the catalog.
    pub created_late_table: Option<TableDef>,
    /// Where the query's first JOIN is, for errors about joins.
    pub join_position: Option<crate::error::Position>,
    /// Sources planned now carry the wall clock as their watermark (under
    /// a window over a view's `PROCTIME()` column).
    processing_time_sources: bool,
    /// The `ROW_NUMBER()` columns the query's result uses (`rank.rs`).
    rank_numbers: std::collections::HashSet<String>,
    /// The state TTLs the query asks for (`state_ttl.rs`).
    pub(crate) state_ttl: state_ttl::StateTtls,
}

impl<'a> StreamPlanner<'a> {
    pub fn new(
        state: &'a SessionState,
        catalog: &'a Catalog,
        windows: &'a HashMap<String, WindowRelation>,
        settings: &'a Settings,
    ) -> Self {
        Self {
            state,
            catalog,
            windows,
            settings,
            clauses: None,
            created_late_table: None,
            join_position: None,
            processing_time_sources: false,
            rank_numbers: Default::default(),
            state_ttl: state_ttl::StateTtls::new(settings.state_ttl()),
        }
    }

    /// Applies `ALLOWED LATENESS` / `LATE DATA INTO` to the query's window
    /// aggregate.
    pub fn with_clauses(mut self, clauses: LateClauses) -> Self {
        self.clauses = Some(clauses);
        self
    }

    /// Plans `plan` and ends it in `sink` (whose columns it is cast to),
    /// then splits the tree into stages. Returns the plan and, when
    /// `LATE DATA INTO` named a new table, that table.
    pub fn plan_into_sink(mut self, plan: &LogicalPlan, mut sink: SinkPlan) -> Result<(StreamPlan, Option<TableDef>)> {
        self.rank_numbers = rank::numbers_used(plan);
        let mut flow = self.plan(plan)?;
        self.state_ttl.check_used()?;
        if let Some(c) = &self.clauses {
            return Err(SqlError::plan(
                "EMIT EARLY, ALLOWED LATENESS and LATE DATA INTO need a windowed GROUP BY \
                 (LATE DATA INTO alone also takes the late rows of an OVER window, a window Top-N or a deduplication)",
                c.position,
            ));
        }
        self.materialize(&mut flow)?;
        let target = sink.connector.schema();
        if flow.props().changelog && !sink.connector.accepts_changes() {
            return Err(SqlError::plan(
                format!(
                    "INSERT INTO {table}: the query's results change as rows arrive (a GROUP BY without a window, \
                     a Top-N, an outer join without a time bound, a changelog source), but table '{table}' ({}) can only \
                     append rows; write them to a table that applies changes (memory, print, blackhole, kafka with \
                     'key.fields', upsert-kafka, or postgres / jdbc with a PRIMARY KEY) or aggregate and rank over a window",
                    sink.connector.describe(),
                    table = sink.table,
                ),
                None,
            ));
        }
        if let Some(cast) = cast_to(plan.schema(), &target, &sink.table, flow.props().changelog)? {
            flow.push(OperatorPlan::new(cast));
        }
        sink.upsert_key = flow.props().unique_key.clone();
        let properties = flow.props().clone();
        let root = StreamNode::over(NodeOp::Sink(sink), vec![(flow.node, Distribution::Any)], properties);
        Ok((split(root, self.parallelism())?, self.created_late_table))
    }

    fn parallelism(&self) -> usize {
        self.settings.parallelism()
    }

    fn plan(&mut self, plan: &LogicalPlan) -> Result<Flow> {
        match plan {
            LogicalPlan::TableScan(scan) if let Some(rel) = crate::planner::match_recognize::relation(scan) => {
                self.match_recognize(&rel, scan)
            }
            LogicalPlan::TableScan(scan) => {
                let name = scan.table_name.table();
                let mut flow = match self.windows.get(name) {
                    Some(rel) => self.windowed(rel)?,
                    None => {
                        let t = self
                            .catalog
                            .get(name)
                            .ok_or_else(|| SqlError::unknown_table(name, None))?;
                        self.scan(t)?
                    }
                };
                if let Some(projection) = &scan.projection {
                    self.materialize(&mut flow)?;
                    let passthrough: Vec<Option<usize>> = projection.iter().map(|i| Some(*i)).collect();
                    let input = scan.source.schema();
                    if flow.props().changelog {
                        // The kinds stay after the columns read.
                        let mut with_op: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
                        with_op.push(weir_engine::changelog::op_field());
                        let keep: Vec<usize> = projection.iter().copied().chain([input.fields().len()]).collect();
                        flow.push(narrow::select(&Schema::new(with_op), &keep)?);
                    } else {
                        flow.push(narrow::select(input.as_ref(), projection)?);
                    }
                    flow.props_mut().remap(&passthrough);
                }
                Ok(flow)
            }
            LogicalPlan::SubqueryAlias(a) => self.plan(&a.input),
            _ if let Some(join) = unnest::lateral(plan) => Ok(self.unnest_join(join, None)?.0),
            _ if let Some(join) = self.stream_join(plan) => Ok(self.join(join, None)?.0),
            LogicalPlan::Join(join) if let Some(table) = self.lookup_table(&join.right) => {
                self.lookup_join(join, table)
            }
            LogicalPlan::Filter(f) if let Some(flow) = self.top_n(f)? => Ok(flow),
            LogicalPlan::Filter(f) => {
                let mut flow = self.plan(&f.input)?;
                narrow_source(&mut flow, &f.predicate);
                if let Some(rel) = &flow.window
                    && references_window(&f.predicate, f.input.schema(), rel)?
                {
                    self.materialize(&mut flow)?;
                }
                let predicate = self.physical(&f.predicate, f.input.schema())?;
                flow.push(OperatorPlan::new(FilterPlan { predicate }));
                Ok(flow)
            }
            LogicalPlan::Projection(p) => {
                let needed = columns_read(&p.expr, p.input.schema());
                let (flow, input) = self.plan_reading(&p.input, &needed)?;
                self.project(p, flow, &input)
            }
            LogicalPlan::Aggregate(agg) => self.aggregate(agg),
            LogicalPlan::Union(union) => self.union_all(union),
            LogicalPlan::Sort(sort) => match sort.fetch {
                None => self.time_sort(sort),
                Some(fetch) => self.sorted_limit(sort, fetch),
            },
            LogicalPlan::Limit(limit) => self.limit(limit),
            LogicalPlan::Window(w) => self.over(w),
            LogicalPlan::Values(values) => self.values(values),
            LogicalPlan::EmptyRelation(e) if e.produce_one_row => self.one_row(),
            other => Err(SqlError::unsupported(describe(other), None)),
        }
    }

    /// `p` over `flow`, whose rows are `input`'s: the key, rowtime and
    /// window columns follow the columns it passes through.
    fn project(&mut self, p: &datafusion::logical_expr::Projection, mut flow: Flow, input: &DFSchema) -> Result<Flow> {
        self.materialize(&mut flow)?;
        let mut exprs: Vec<Arc<dyn PhysicalExpr>> =
            p.expr.iter().map(|e| self.physical(e, input)).collect::<Result<_>>()?;
        let passthrough: Vec<Option<usize>> = p
            .expr
            .iter()
            .map(|e| match e.clone().unalias() {
                Expr::Column(c) => input.index_of_column(&c).ok(),
                _ => None,
            })
            .collect();
        let mut schema = p.schema.as_arrow().clone();
        if flow.props().changelog {
            exprs.push(group_aggregate::op_passthrough(input.fields().len()));
            let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
            fields.push(weir_engine::changelog::op_field());
            schema = Schema::new(fields);
        }
        flow.push(OperatorPlan::new(ProjectPlan {
            exprs,
            schema: Arc::new(schema),
        }));
        flow.props_mut().remap(&passthrough);
        Ok(flow)
    }

    /// The rows a window TVF windows, with the TVF pending over them: a
    /// table's source, or a view's query, whose DESCRIPTOR column must be
    /// a rowtime passed through unchanged.
    fn windowed(&mut self, rel: &WindowRelation) -> Result<Flow> {
        let mut flow = match &rel.input {
            WindowInput::Table(table) if rel.processing_time => {
                Flow::new(StreamNode::source(self.processing_time_source(table, rel.time_column)?))
            }
            WindowInput::Table(table) => {
                let flow = Flow::new(StreamNode::source(self.source(table)?));
                if flow.props().changelog {
                    return Err(SqlError::Unsupported {
                        construct: format!("a window TVF over table '{}', whose rows are a changelog", table.name),
                        detail: Some(
                            "its rows are updated and deleted (a changelog format or an upsert topic), \
                             while a window's result is final once it fires; aggregate with a GROUP BY without a window"
                                .into(),
                        ),
                        position: None,
                    });
                }
                flow
            }
            // A view's PROCTIME() column (`planner/proctime_view.rs`): its
            // sources' watermark is the wall clock.
            WindowInput::View { plan, .. } if rel.processing_time => {
                let event_time = std::mem::replace(&mut self.processing_time_sources, true);
                let planned = self.plan(plan);
                self.processing_time_sources = event_time;
                let mut flow = planned?;
                self.materialize(&mut flow)?;
                flow.props_mut().rowtime = Some(rel.time_column);
                flow
            }
            WindowInput::View { name, plan } => {
                let mut flow = self.plan(plan)?;
                self.materialize(&mut flow)?;
                if flow.props().rowtime != Some(rel.time_column) {
                    let column = rel.row.field(rel.time_column).name();
                    return Err(SqlError::plan(
                        format!(
                            "DESCRIPTOR({column}): column '{column}' of view '{name}' is not a time attribute: \
                             a window TVF over a view needs the rowtime (WATERMARK) column of its table, selected unchanged"
                        ),
                        None,
                    ));
                }
                flow
            }
        };
        flow.window = Some(rel.clone());
        Ok(flow)
    }

    /// The table's source for windows over its `PROCTIME()` column at
    /// `time_column`: its watermark is the wall clock.
    fn processing_time_source(&self, table: &TableDef, time_column: usize) -> Result<Arc<SourcePlan>> {
        let mut plan = self.event_time_source(table)?;
        let name = table.schema.field(time_column).name();
        plan.watermark = Some(WatermarkPlan {
            time_column,
            expr: Arc::new(Column::new(name, time_column)),
            display: "PROCTIME() (processing time: the wall clock)".into(),
            on_event: false,
            interval: self
                .settings
                .watermark_interval()
                .max(std::time::Duration::from_millis(1)),
            idle_timeout: None,
            validity: EventTimeValidity::default(),
            processing_time: true,
        });
        Ok(Arc::new(plan))
    }

    /// A scan of `table`: a changelog source's rows are told apart by the
    /// table's `PRIMARY KEY` (upsert sinks key by it), as in Flink.
    fn scan(&self, table: &TableDef) -> Result<Flow> {
        let mut flow = Flow::new(StreamNode::source(self.source(table)?));
        if flow.props().changelog {
            let key: Option<Vec<usize>> = table.declared.as_ref().map(|d| {
                d.primary_key
                    .iter()
                    .filter_map(|k| table.schema.index_of(&crate::planner::table::normalize(k)).ok())
                    .collect()
            });
            flow.props_mut().unique_key = key.filter(|k| !k.is_empty());
        }
        Ok(flow)
    }

    /// The table's source: with its WATERMARK, or, under a window over a
    /// view's `PROCTIME()`, the wall clock.
    fn source(&self, table: &TableDef) -> Result<Arc<SourcePlan>> {
        match self.processing_time_sources {
            true => {
                let time_column = table.watermark.as_ref().map_or(0, |w| w.time_column);
                self.processing_time_source(table, time_column)
            }
            false => Ok(Arc::new(self.event_time_source(table)?)),
        }
    }

    fn event_time_source(&self, table: &TableDef) -> Result<SourcePlan> {
        let connector = table.connector.source.clone().ok_or_else(|| {
            SqlError::plan(
                format!(
                    "table '{}' cannot be read: connector '{}' is a sink only",
                    table.name, table.connector.connector
                ),
                None,
            )
        })?;
        let watermark = table.watermark.clone().map(|mut w| {
            w.interval = self.settings.watermark_interval();
            w.on_event |= w.interval.is_zero();
            // The table's own 'source.idle-timeout' wins over the session's.
            w.idle_timeout = w.idle_timeout.or(self.settings.source_idle_timeout());
            w
        });
        Ok(SourcePlan {
            table: table.name.clone(),
            connector,
            computed: table.computed.clone(),
            watermark,
            schema: Arc::clone(&table.schema),
            report_bad_records: false,
            late_output: None,
            read: None,
        })
    }

    /// Computes the window columns of a window TVF under `flow` whose rows
    /// are used directly (not aggregated); nothing when there is none.
    fn materialize(&self, flow: &mut Flow) -> Result<()> {
        let Some(rel) = flow.window.take() else {
            return Ok(());
        };
        let window = match &rel.windows {
            Windows::Sliced(window) => *window,
            Windows::Session { gap, partition } => return self.session_rows(flow, &rel, *gap, partition),
        };
        flow.push(OperatorPlan::new(WindowAssignPlan {
            window,
            time_column: rel.time_column,
            schema: Arc::clone(&rel.schema),
        }));
        let start = rel.first_window_column();
        flow.props_mut().window = Some(WindowColumns {
            spec: window,
            start,
            end: start + 1,
        });
        Ok(())
    }

    /// The rows of a SESSION TVF used as they are: each row leaves when
    /// its session closes, with the session's window columns.
    fn session_rows(&self, flow: &mut Flow, rel: &WindowRelation, gap: i64, partition: &[String]) -> Result<()> {
        let mut keys: Vec<Arc<dyn PhysicalExpr>> = Vec::new();
        let mut key_fields = Vec::new();
        for p in partition {
            let i = rel.row.index_of(p).map_err(|e| SqlError::plan(e.to_string(), None))?;
            keys.push(Arc::new(Column::new(p, i)));
            key_fields.push(rel.row.field(i).clone().with_nullable(true));
        }
        let aggregation = WindowedAggregation {
            time_column: rel.time_column,
            grouping: Grouping::new(keys.clone(), key_fields, Vec::new()),
            output: Vec::new(),
            output_schema: Arc::clone(&rel.schema),
            allowed_lateness: 0,
            validity: rel.validity,
            late_output: None,
            emit_early: None,
        };
        let plan = SessionAggregatePlan {
            gap,
            aggregation,
            input_schema: Arc::clone(&rel.row),
            emit_rows: Some(Arc::clone(&rel.schema)),
        };
        let distribution = if keys.is_empty() {
            Distribution::Single
        } else {
            Distribution::Hash(keys)
        };
        flow.then(OperatorPlan::new(plan), distribution);
        // The rows' time attribute is now their session's window_time.
        flow.props_mut().rowtime = Some(rel.first_window_column() + 2);
        Ok(())
    }

    /// `e` as a physical expression over rows of `schema`, simplified first
    /// as DataFusion's optimizer would (some functions, e.g. COALESCE, exist
    /// only in simplified form at execution).
    fn physical(&self, e: &Expr, schema: &DFSchema) -> Result<Arc<dyn PhysicalExpr>> {
        refuse_subqueries(e)?;
        let info = SimplifyContext::builder()
            .with_schema(Arc::new(schema.clone()))
            .with_config_options(Arc::new(self.state.config_options().as_ref().clone()))
            .build();
        let simplified = ExprSimplifier::new(info).simplify(e.clone())?;
        let simplified = crate::planner::day_time::day_time_intervals_as_durations(simplified, schema)?;
        Ok(create_physical_expr(
            &simplified,
            schema,
            self.state.execution_props(),
            &PhysicalPlanningContext::default(),
        )?)
    }

    /// The aggregate calls of `agg`, lowered by DataFusion; their outputs
    /// follow `layout`.
    fn aggregate_calls(
        &self,
        agg: &Aggregate,
        input: &DFSchema,
        layout: &mut Vec<OutputColumn>,
    ) -> Result<Vec<AggregateCall>> {
        let mut aggregates = Vec::new();
        for (i, e) in agg.aggr_expr.iter().enumerate() {
            let lowered = LoweredAggregateBuilder::new(
                e,
                input,
                input.as_arrow(),
                self.state.execution_props(),
                &PhysicalPlanningContext::default(),
            )
            .build()?;
            if !lowered.order_bys.is_empty() {
                return Err(SqlError::unsupported(format!("ORDER BY inside aggregate {e}"), None));
            }
            aggregates.push(AggregateCall {
                function: lowered.aggregate,
                filter: lowered.filter,
            });
            layout.push(OutputColumn::Aggregate(i));
        }
        Ok(aggregates)
    }

    fn aggregate(&mut self, agg: &Aggregate) -> Result<Flow> {
        let needed = columns_read(agg.group_expr.iter().chain(&agg.aggr_expr), agg.input.schema());
        let (mut flow, input) = self.plan_reading(&agg.input, &needed)?;
        if flow.window.is_none()
            && let Some(windows) = flow.props().window
        {
            return self.aggregate_window_results(agg, &input, flow, windows);
        }
        let Some(rel) = flow.window.take() else {
            return self.group_aggregate(agg, &input, flow);
        };
        let input = input.as_ref();
        let base = rel.first_window_column();
        let mut layout = Vec::new();
        let mut keys = Vec::new();
        let mut key_fields = Vec::new();
        // The rows the aggregation reads, when an Expand makes them.
        let mut expanded: Option<SchemaRef> = None;
        if let [Expr::GroupingSet(gs)] = agg.group_expr.as_slice() {
            if !matches!(rel.windows, Windows::Sliced(_)) {
                return Err(SqlError::unsupported(
                    "GROUPING SETS, CUBE and ROLLUP in a SESSION window aggregation",
                    None,
                ));
            }
            if self.clauses.as_ref().is_some_and(|c| c.late_data_into.is_some()) {
                return Err(SqlError::unsupported(
                    "LATE DATA INTO with GROUPING SETS, CUBE or ROLLUP",
                    None,
                ));
            }
            let e = self.expand_grouping_sets(agg, gs, input, Some(base), &mut flow)?;
            (layout, keys, key_fields) = (e.layout, e.keys, e.key_fields);
            expanded = Some(Arc::new(Schema::new(e.row)));
        }
        for (i, g) in agg.group_expr.iter().enumerate().filter(|_| expanded.is_none()) {
            if let Expr::Column(c) = g {
                let idx = input.index_of_column(c)?;
                if idx >= base {
                    layout.push(match idx - base {
                        0 => OutputColumn::WindowStart,
                        1 => OutputColumn::WindowEnd,
                        _ => OutputColumn::WindowTime,
                    });
                    continue;
                }
            }
            if matches!(g, Expr::GroupingSet(_)) {
                return Err(SqlError::unsupported(
                    "GROUPING SETS mixed with other GROUP BY items",
                    None,
                ));
            }
            if references_window(g, input, &rel)? {
                return Err(SqlError::plan(
                    format!("GROUP BY {g}: window columns can only be grouped by as they are"),
                    None,
                ));
            }
            let key = self.physical(g, input)?;
            let field = agg.schema.field(i);
            key_fields.push(Field::new(field.name(), field.data_type().clone(), true));
            layout.push(OutputColumn::Key(keys.len()));
            keys.push(key);
        }
        if !layout.contains(&OutputColumn::WindowStart) || !layout.contains(&OutputColumn::WindowEnd) {
            return Err(SqlError::plan(
                "a window aggregation must GROUP BY both window_start and window_end",
                None,
            ));
        }
        for e in &agg.aggr_expr {
            if references_window(e, input, &rel)? {
                return Err(SqlError::plan(
                    format!("{e}: window columns can only appear in GROUP BY"),
                    None,
                ));
            }
        }
        let aggregates = self.aggregate_calls(agg, input, &mut layout)?;
        let clauses = self.clauses.take().unwrap_or_default();
        let (late_output, late_sink) = match &clauses.late_data_into {
            None => (None, None),
            Some(target) => {
                let (plan, sink) = self.late_output(target, &rel.row, clauses.position)?;
                let plan = Arc::new(plan);
                // Records the source cannot decode go to the side table too
                // (when the rows are the table's: a view's are not).
                if matches!(rel.input, WindowInput::Table(_))
                    && let Some(node) = flow.node.chained_source_mut()
                    && let NodeOp::Source(source) = &mut node.op
                {
                    let mut read = source.as_ref().clone();
                    read.report_bad_records = true;
                    read.late_output = Some(Arc::clone(&plan));
                    *source = Arc::new(read);
                    node.late_sink = Some(sink.clone());
                }
                (Some(plan), Some(sink))
            }
        };
        // The late-data side table takes whole rows; otherwise only what
        // the aggregation reads crosses the exchange.
        let mut time_column = rel.time_column;
        let mut input_schema = expanded.clone().unwrap_or_else(|| Arc::clone(&rel.row));
        let (mut keys, mut aggregates) = (keys, aggregates);
        if late_output.is_none()
            && expanded.is_none()
            && let Some(n) = Narrowing::apply(&mut flow, &rel.row, &mut keys, &mut aggregates, &[time_column])?
        {
            time_column = n.index(time_column)?;
            input_schema = n.schema(&rel.row)?;
        }
        let aggregation = WindowedAggregation {
            time_column,
            grouping: Grouping::new(keys.clone(), key_fields, aggregates),
            output: layout,
            output_schema: Arc::new(agg.schema.as_arrow().clone()),
            allowed_lateness: clauses.allowed_lateness,
            validity: rel.validity,
            late_output,
            emit_early: clauses.emit_early,
        };
        let operator = match rel.windows {
            Windows::Sliced(window) => OperatorPlan::new(WindowAggregatePlan { window, aggregation }),
            Windows::Session { gap, partition } => {
                let mut grouped: Vec<String> = agg
                    .group_expr
                    .iter()
                    .filter_map(|g| match g {
                        Expr::Column(c)
                            if !matches!(c.name.as_str(), "window_start" | "window_end" | "window_time") =>
                        {
                            Some(c.name.clone())
                        }
                        _ => None,
                    })
                    .collect();
                let mut partition = partition;
                grouped.sort();
                partition.sort();
                if grouped != partition || grouped.len() != aggregation.grouping.keys.len() {
                    return Err(SqlError::plan(
                        format!(
                            "a SESSION window aggregation must group by window_start, window_end and exactly its PARTITION BY columns ({})",
                            partition.join(", ")
                        ),
                        None,
                    ));
                }
                OperatorPlan::new(SessionAggregatePlan {
                    gap,
                    aggregation,
                    input_schema,
                    emit_rows: None,
                })
            }
        };
        let layout = layout_of(&operator);
        let windowed = operator.downcast::<WindowAggregatePlan>().map(|p| p.window);
        flow.then(operator, Distribution::Hash(keys));
        flow.node.late_sink = late_sink;
        let props = flow.props_mut();
        props.unique_key = Some(aggregation_key(&layout));
        // A window's result row is never behind the watermark that fired it:
        // its window_time (else its window_end) is a rowtime for a join.
        props.rowtime = layout
            .iter()
            .position(|c| *c == OutputColumn::WindowTime)
            .or_else(|| layout.iter().position(|c| *c == OutputColumn::WindowEnd));
        // Results of TUMBLE/HOP windows can be joined with another's by
        // window (Nexmark q8): their window columns lead to the window join.
        props.window = windowed.and_then(|spec| {
            let at = |c: OutputColumn| layout.iter().position(|l| *l == c);
            match (at(OutputColumn::WindowStart), at(OutputColumn::WindowEnd)) {
                (Some(start), Some(end)) => Some(WindowColumns { spec, start, end }),
                _ => None,
            }
        });
        Ok(flow)
    }

    /// The side table of `LATE DATA INTO`: its columns matched by name
    /// among the row's columns, `reason`, `watermark` and `arrived_at`.
    fn late_output(
        &mut self,
        target: &LateTarget,
        row: &SchemaRef,
        position: Option<crate::error::Position>,
    ) -> Result<(LateOutputPlan, SinkPlan)> {
        let extra = [
            ("reason", DataType::Utf8, LateColumn::Reason),
            ("watermark", TIMESTAMP_MS, LateColumn::Watermark),
            ("arrived_at", TIMESTAMP_MS, LateColumn::ArrivedAt),
        ];
        let side = match target {
            LateTarget::Declared(def) => Arc::clone(def),
            LateTarget::New(name) => {
                let mut fields: Vec<Field> = row
                    .fields()
                    .iter()
                    .map(|f| f.as_ref().clone().with_nullable(true))
                    .collect();
                for (n, t, _) in &extra {
                    fields.push(Field::new(*n, t.clone(), true));
                }
                let schema: SchemaRef = Arc::new(Schema::new(fields));
                let def = Arc::new(TableDef::memory(
                    name,
                    format!("-- created by LATE DATA INTO {name}"),
                    schema,
                ));
                self.created_late_table = Some(def.as_ref().clone());
                def
            }
        };
        let sink = side.connector.sink.clone().ok_or_else(|| {
            SqlError::plan(
                format!(
                    "LATE DATA INTO {}: connector '{}' cannot be written",
                    side.name, side.connector.connector
                ),
                position,
            )
        })?;
        let target_schema = sink.schema();
        let mut columns = Vec::new();
        for f in target_schema.fields() {
            let c = if let Some((_, _, c)) = extra.iter().find(|(n, _, _)| n == f.name()) {
                *c
            } else if let Ok(i) = row.index_of(f.name()) {
                if !f.is_nullable() {
                    return Err(SqlError::plan(
                        format!(
                            "LATE DATA INTO {}: column '{}' must accept NULL (a record that cannot be decoded has no values)",
                            side.name,
                            f.name()
                        ),
                        position,
                    ));
                }
                LateColumn::Input(i)
            } else {
                return Err(SqlError::plan(
                    format!(
                        "LATE DATA INTO {}: column '{}' is none of the row's columns ({}) nor reason, watermark, arrived_at",
                        side.name,
                        f.name(),
                        row.fields()
                            .iter()
                            .map(|f| f.name().as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    position,
                ));
            };
            columns.push(c);
        }
        Ok((
            LateOutputPlan {
                columns,
                schema: target_schema,
            },
            SinkPlan {
                table: side.name.clone(),
                connector: sink,
                upsert_key: None,
            },
        ))
    }
}

/// The output layout of a windowed aggregation operator.
fn layout_of(op: &OperatorPlan) -> Vec<OutputColumn> {
    let aggregation = op
        .downcast::<WindowAggregatePlan>()
        .map(|p| &p.aggregation)
        .or_else(|| op.downcast::<SessionAggregatePlan>().map(|p| &p.aggregation));
    aggregation.map_or_else(Vec::new, |a| a.output.clone())
}

/// Positions of the group columns (window and keys) in an aggregation's
/// output: together they identify a row.
fn aggregation_key(layout: &[OutputColumn]) -> Vec<usize> {
    layout
        .iter()
        .enumerate()
        .filter(|(_, c)| !matches!(c, OutputColumn::Aggregate(_)))
        .map(|(i, _)| i)
        .collect()
}

/// Indices in `schema` of the columns `exprs` read.
fn columns_read<'e>(exprs: impl IntoIterator<Item = &'e Expr>, schema: &DFSchema) -> BTreeSet<usize> {
    exprs
        .into_iter()
        .flat_map(|e| e.column_refs())
        .filter_map(|c| schema.index_of_column(c).ok())
        .collect()
}

/// Does `e` use a window column of `rel`?
fn references_window(e: &Expr, schema: &DFSchema, rel: &WindowRelation) -> Result<bool> {
    let base = rel.first_window_column();
    for c in e.column_refs() {
        let c: &LColumn = c;
        if schema.index_of_column(c)? >= base {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Refuses a subquery inside an expression (`IN (SELECT …)`, `EXISTS`, a
/// scalar subquery): on a stream each would be a join whose result changes
/// as the other side's rows arrive, which Weir does not run yet.
fn refuse_subqueries(e: &Expr) -> Result<()> {
    use datafusion::common::tree_node::TreeNode;
    let mut found = None;
    e.apply(|x| {
        found = match x {
            Expr::InSubquery(s) => Some(if s.negated {
                "NOT IN (SELECT …)"
            } else {
                "IN (SELECT …)"
            }),
            Expr::Exists(s) => Some(if s.negated {
                "NOT EXISTS (SELECT …)"
            } else {
                "EXISTS (SELECT …)"
            }),
            Expr::ScalarSubquery(_) => Some("a scalar subquery"),
            _ => None,
        };
        Ok(match found {
            Some(_) => datafusion::common::tree_node::TreeNodeRecursion::Stop,
            None => datafusion::common::tree_node::TreeNodeRecursion::Continue,
        })
    })?;
    match found {
        None => Ok(()),
        Some(what) => Err(SqlError::Unsupported {
            construct: format!("{what} in a streaming query"),
            detail: Some("write it as a JOIN of the two tables".into()),
            position: None,
        }),
    }
}

/// Lets a source right under a filter make only the rows an equality of
/// the filter keeps, when it can (`SourceConnector::only_rows_where`): a
/// query of Flink nexmark's `bid` view then makes bids only, as fast as
/// over a table of bids. The filter stays.
fn narrow_source(flow: &mut Flow, predicate: &Expr) {
    let NodeOp::Source(source) = &mut flow.node.op else {
        return;
    };
    for conjunct in split_conjunction(predicate) {
        let Expr::BinaryExpr(b) = conjunct else { continue };
        if b.op != datafusion::logical_expr::Operator::Eq {
            continue;
        }
        let (column, value) = match (b.left.as_ref(), b.right.as_ref()) {
            (Expr::Column(c), Expr::Literal(v, _)) | (Expr::Literal(v, _), Expr::Column(c)) => (c, v),
            _ => continue,
        };
        let Some(connector) = &source
            .connector
            .schema()
            .index_of(&column.name)
            .ok()
            .and_then(|i| source.connector.only_rows_where(i, value))
        else {
            continue;
        };
        let mut narrowed = source.as_ref().clone();
        narrowed.connector = Arc::clone(connector);
        *source = Arc::new(narrowed);
        return;
    }
}

/// Casts and renames a query's columns to the sink's, matched by position
/// as in Flink; `None` when they already match.
/// A changelog keeps its changelog column after the sink's columns.
fn cast_to(query: &DFSchema, sink: &SchemaRef, table: &str, updating: bool) -> Result<Option<ProjectPlan>> {
    let q = query.as_arrow();
    if q.fields().len() != sink.fields().len() {
        return Err(SqlError::plan(
            format!(
                "INSERT INTO {table}: the query produces {} columns but the table has {} ({})",
                q.fields().len(),
                sink.fields().len(),
                sink.fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None,
        ));
    }
    let mut same = true;
    let mut exprs: Vec<Arc<dyn PhysicalExpr>> = Vec::new();
    for (i, (qf, sf)) in q.fields().iter().zip(sink.fields()).enumerate() {
        let col: Arc<dyn PhysicalExpr> = Arc::new(Column::new(qf.name(), i));
        if qf.data_type() == sf.data_type() {
            // Sinks that write names (JSON) take them from the table.
            same &= qf.name() == sf.name();
            exprs.push(col);
            continue;
        }
        // ROW fields are matched by position, as Flink does.
        let cast = PositionalCast::new(col, qf.data_type(), sf.data_type().clone()).map_err(|why| {
            SqlError::plan(
                format!(
                    "INSERT INTO {table}: column {} ('{}') is {} in the query but {} in the table: {why}",
                    i + 1,
                    sf.name(),
                    sql_name(qf.data_type()),
                    sql_name(sf.data_type())
                ),
                None,
            )
        })?;
        same = false;
        exprs.push(Arc::new(cast));
    }
    if same {
        return Ok(None);
    }
    if !updating {
        return Ok(Some(ProjectPlan {
            exprs,
            schema: Arc::clone(sink),
        }));
    }
    exprs.push(group_aggregate::op_passthrough(q.fields().len()));
    let mut fields: Vec<Field> = sink.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(weir_engine::changelog::op_field());
    Ok(Some(ProjectPlan {
        exprs,
        schema: Arc::new(Schema::new(fields)),
    }))
}

/// Names a logical node Weir cannot run on a stream.
fn describe(plan: &LogicalPlan) -> String {
    match plan {
        LogicalPlan::Sort(_) => "ORDER BY on a streaming query".into(),
        LogicalPlan::Join(_) => "JOIN".into(),
        LogicalPlan::Union(_) => "UNION".into(),
        LogicalPlan::Distinct(_) => "SELECT DISTINCT on a stream".into(),
        LogicalPlan::Window(_) => "OVER windows".into(),
        LogicalPlan::EmptyRelation(_) => "a query without a streaming source".into(),
        LogicalPlan::Subquery(_) => "subqueries in expressions".into(),
        LogicalPlan::Unnest(_) => {
            "UNNEST in SELECT (expand an ARRAY or a MAP with CROSS JOIN UNNEST(…) AS t(…))".into()
        }
        other => format!(
            "{} in a streaming query",
            other
                .display()
                .to_string()
                .split(':')
                .next()
                .unwrap_or("this plan node")
        ),
    }
}
