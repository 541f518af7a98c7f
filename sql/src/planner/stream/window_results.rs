//! Aggregations over the results of a window aggregation, grouped by their
//! windows (Nexmark q5: the highest count of each window). The rows already
//! name their window, so they are grouped by it and emitted when the
//! watermark closes it — the window aggregate they came from emitted them
//! just before the watermark that closed it, so none is late.

use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::logical_expr::{Aggregate, Expr};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::PhysicalExpr;
use weir_engine::event_time::EventTimeValidity;
use weir_engine::operators::project::ProjectPlan;
use weir_engine::plan::{Distribution, OperatorPlan, WindowColumns};
use weir_engine::window::aggregate::{OutputColumn, WindowAggregatePlan, WindowedAggregation};
use weir_engine::window::groups::Grouping;
use weir_engine::window::spec::{WindowKind, WindowSpec};

use super::{Flow, StreamPlanner, aggregation_key};
use crate::error::{Result, SqlError};
use crate::types::TIMESTAMP_MS;

impl StreamPlanner<'_> {
    /// Plans `agg` over `flow`, whose rows are window results with their
    /// window columns where `windows` says.
    pub(super) fn aggregate_window_results(
        &mut self,
        agg: &Aggregate,
        input: &DFSchema,
        mut flow: Flow,
        windows: WindowColumns,
    ) -> Result<Flow> {
        if self.clauses.is_some() {
            return Err(SqlError::unsupported(
                "EMIT EARLY, ALLOWED LATENESS or LATE DATA INTO on an aggregation of window results",
                None,
            ));
        }
        let is = |e: &Expr, index: usize| matches!(e, Expr::Column(c) if input.index_of_column(c).ok() == Some(index));
        let (mut start, mut end) = (None, None);
        let mut layout = Vec::new();
        let mut keys: Vec<Arc<dyn PhysicalExpr>> = Vec::new();
        let mut key_fields = Vec::new();
        for (i, g) in agg.group_expr.iter().enumerate() {
            if matches!(g, Expr::GroupingSet(_)) {
                return Err(SqlError::unsupported("GROUPING SETS, CUBE and ROLLUP in a window aggregation (they run in a GROUP BY without a window)", None));
            }
            if is(g, windows.end) {
                end = Some(i);
                layout.push(OutputColumn::WindowEnd);
                continue;
            }
            if is(g, windows.start) {
                start = Some(i);
            }
            // The window's start is a group key like any other: it is the
            // same for every row of the window.
            let field = agg.schema.field(i);
            key_fields.push(Field::new(field.name(), field.data_type().clone(), true));
            layout.push(OutputColumn::Key(keys.len()));
            keys.push(self.physical(g, input)?);
        }
        let (Some(start), Some(end)) = (start, end) else {
            return Err(SqlError::plan(
                "an aggregation of window results must GROUP BY both of their window columns (window_start and window_end, as named)",
                None,
            ));
        };
        let aggregates = self.aggregate_calls(agg, input, &mut layout)?;
        // Each row's time is its window's last millisecond (its window_time),
        // appended as a last column.
        let time_column = input.fields().len();
        let end_expr = match &agg.group_expr[end] {
            Expr::Column(c) => Expr::Column(c.clone()),
            other => other.clone(),
        };
        // The end is a wall-clock time when the windows are on a zone's
        // clock: the instant is that much earlier.
        let before_end = 1 + windows.spec.local_shift;
        let window_time = self.physical(
            &(end_expr - Expr::Literal(ScalarValue::DurationMillisecond(Some(before_end)), None)),
            input,
        )?;
        let mut exprs: Vec<Arc<dyn PhysicalExpr>> = input
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| Arc::new(Column::new(f.name(), i)) as Arc<dyn PhysicalExpr>)
            .collect();
        exprs.push(window_time);
        let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new("window_time", TIMESTAMP_MS, false));
        flow.push(OperatorPlan::new(ProjectPlan {
            exprs,
            schema: Arc::new(Schema::new(fields)),
        }));
        // Tumbling windows one slide long end where the input's windows end,
        // one for each of them.
        let spec = windows.spec;
        let (size, offset) = match spec.kind {
            WindowKind::Tumble { size } => (size, spec.offset),
            WindowKind::Hop { slide, size } => (slide, (spec.offset + size).rem_euclid(slide)),
            WindowKind::Cumulate { step, .. } => (step, spec.offset.rem_euclid(step)),
        };
        let window = WindowSpec {
            local_shift: spec.local_shift,
            ..WindowSpec::new(WindowKind::Tumble { size }, offset).map_err(|e| SqlError::plan(e, None))?
        };
        let aggregation = WindowedAggregation {
            time_column,
            grouping: Grouping::new(keys.clone(), key_fields, aggregates),
            output: layout.clone(),
            output_schema: Arc::new(agg.schema.as_arrow().clone()),
            allowed_lateness: 0,
            // Times Weir computed itself: none is invalid.
            validity: EventTimeValidity { min_valid: i64::MIN, max_future_ms: i64::MAX / 4 },
            late_output: None,
            emit_early: None,
        };
        flow.then(OperatorPlan::new(WindowAggregatePlan { window, aggregation }), Distribution::Hash(keys));
        let props = flow.props_mut();
        props.unique_key = Some(aggregation_key(&layout));
        props.rowtime = Some(end);
        // The results keep the input's windows: they join with others of
        // them (Nexmark q5 joins them back).
        props.window = Some(WindowColumns { spec, start, end });
        Ok(flow)
    }
}
