//! `ROW_NUMBER() OVER (PARTITION BY … ORDER BY …)` under a filter that
//! bounds it: Flink's Top-N, window Top-N and deduplication, planned as
//! one ranking operator (`weir_engine::rank`) whose mode Flink's rules
//! choose:
//!
//! - the partition holds a window's `window_start` and `window_end` (rows
//!   of a window TVF, or a window aggregation's results): window Top-N,
//!   emitted once per window;
//! - `rn = 1` ordered by the rowtime ascending: keep the first row, emitted
//!   once the watermark passes it (append-only);
//! - `rn = 1` ordered by a `PROCTIME()` column: keep the first (append-only)
//!   or the last row by arrival;
//! - otherwise (keep-last by rowtime too) an updating Top-N.
//!
//! DataFusion plans the ranking as a `Window` node under projections and
//! the filter; the filter's bound on the number is taken into the
//! operator, its other conditions stay.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::logical_expr::expr::WindowFunction;
use datafusion::logical_expr::utils::{conjunction, split_conjunction};
use datafusion::logical_expr::{Expr, Filter, LogicalPlan, Operator, Window};
use datafusion::physical_expr::PhysicalSortExpr;
use datafusion::physical_plan::PhysicalExpr;
use weir_engine::operators::filter::FilterPlan;
use weir_engine::plan::{Distribution, OperatorPlan, Properties};
use weir_engine::rank::{RankMode, RankPlan};

use super::{Flow, StreamPlanner};
use crate::error::{Result, SqlError};

/// The ranks a filter keeps, from 1.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    first: u64,
    last: Option<u64>,
}

impl StreamPlanner<'_> {
    /// Plans `f` as a ranking when it bounds a `ROW_NUMBER()` below it;
    /// `None` when it does not.
    pub(super) fn top_n(&mut self, f: &Filter) -> Result<Option<Flow>> {
        // The projections and aliases between the filter and the window.
        let mut between: Vec<&LogicalPlan> = Vec::new();
        let mut node = f.input.as_ref();
        let window = loop {
            match node {
                LogicalPlan::Projection(p) => {
                    between.push(node);
                    node = &p.input;
                }
                LogicalPlan::SubqueryAlias(a) => {
                    between.push(node);
                    node = &a.input;
                }
                LogicalPlan::Window(w) => break w,
                _ => return Ok(None),
            }
        };
        if window.window_expr.len() != 1 || row_number(&window.window_expr[0]).is_none() {
            return Ok(None);
        }
        // Where the number is at the filter.
        let mut at = Some(window.input.schema().fields().len());
        for node in between.iter().rev() {
            if let LogicalPlan::Projection(p) = node {
                at = at.and_then(|i| {
                    p.expr.iter().position(|e| match e.clone().unalias() {
                        Expr::Column(c) => p.input.schema().index_of_column(&c).ok() == Some(i),
                        _ => false,
                    })
                });
            }
        }
        let Some(at) = at else { return Ok(None) };
        let mut bounds = Bounds { first: 1, last: None };
        let mut rest = Vec::new();
        for conjunct in split_conjunction(&f.predicate) {
            if !bound(conjunct, at, f.input.schema(), &mut bounds)? {
                rest.push(conjunct.clone());
            }
        }
        if rest.len() == split_conjunction(&f.predicate).len() {
            return Ok(None);
        }
        let Some(last) = bounds.last else {
            return Err(SqlError::plan(
                format!(
                    "ROW_NUMBER() in a streaming query needs an upper bound ({} <= N): a ranking keeps only its first N rows",
                    f.input.schema().field(at).name()
                ),
                None,
            ));
        };
        if bounds.first > last {
            return Err(SqlError::plan(
                format!(
                    "the condition on ROW_NUMBER() keeps no rank ({} to {last})",
                    bounds.first
                ),
                None,
            ));
        }
        let mut flow = self.rank(window, bounds.first, last)?;
        for node in between.iter().rev() {
            if let LogicalPlan::Projection(p) = node {
                flow = self.project(p, flow, p.input.schema())?;
            }
        }
        if let Some(rest) = conjunction(rest) {
            let predicate = self.physical(&rest, f.input.schema())?;
            flow.push(OperatorPlan::new(FilterPlan { predicate }));
        }
        Ok(Some(flow))
    }

    /// The ranking of `w`'s rows, ranks `first..=last`.
    fn rank(&mut self, w: &Window, first: u64, last: u64) -> Result<Flow> {
        let Some(call) = row_number(&w.window_expr[0]) else {
            return Err(unbounded(w));
        };
        let params = &call.params;
        let mut flow = self.plan(&w.input)?;
        self.materialize(&mut flow)?;
        let input = w.input.schema();
        if params.order_by.is_empty() {
            return Err(SqlError::plan(
                "ROW_NUMBER() needs ORDER BY in a streaming query: the time attribute for a deduplication, \
                 any columns for a Top-N",
                None,
            ));
        }
        let partition: Vec<Arc<dyn PhysicalExpr>> = params
            .partition_by
            .iter()
            .map(|e| self.physical(e, input))
            .collect::<Result<_>>()?;
        let partition_columns: Vec<Option<usize>> = params
            .partition_by
            .iter()
            .map(|e| match e {
                Expr::Column(c) => input.index_of_column(c).ok(),
                _ => None,
            })
            .collect();
        let mut order = params
            .order_by
            .iter()
            .map(|s| {
                Ok(PhysicalSortExpr {
                    expr: self.physical(&s.expr, input)?,
                    options: SortOptions {
                        descending: !s.asc,
                        nulls_first: s.nulls_first,
                    },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let props = flow.props().clone();
        // The one ORDER BY column, if it is a time attribute.
        let single = match params.order_by.as_slice() {
            [s] => match &s.expr {
                Expr::Column(c) => input.index_of_column(c).ok().map(|i| (i, s.asc)),
                _ => None,
            },
            _ => None,
        };
        let window_end = props
            .window
            .filter(|wc| partition_columns.contains(&Some(wc.start)) && partition_columns.contains(&Some(wc.end)));
        let dedup = first == 1 && last == 1;
        let mut later_wins_ties = false;
        let mut upsert_key = Vec::new();
        let mode = match (window_end, single) {
            (Some(wc), _) => {
                flow.refuse_changelog("a window Top-N", None)?;
                let lateness = refires(&flow.node).unwrap_or(0);
                if lateness > 0 {
                    // A re-fired result replaces the row of its group.
                    upsert_key = props.unique_key.clone().ok_or_else(|| {
                        SqlError::unsupported(
                            "a window Top-N over a window aggregation with ALLOWED LATENESS whose group columns are not all selected",
                            None,
                        )
                    })?;
                }
                RankMode::Window {
                    end_column: wc.end,
                    lateness,
                }
            }
            (None, Some((t, true))) if dedup && !props.changelog && Some(t) == props.rowtime => {
                RankMode::FirstByEventTime { time_column: t }
            }
            (None, Some((t, asc))) if dedup && !props.changelog && Some(t) == props.proctime => {
                // By arrival: the first row stays, or the last replaces it.
                order.clear();
                later_wins_ties = !asc;
                RankMode::Updating { changelog: !asc }
            }
            (None, Some((t, false))) if dedup && Some(t) == props.rowtime => {
                // Keep-last by event time: an equal time replaces, as in Flink.
                later_wins_ties = true;
                RankMode::Updating { changelog: true }
            }
            _ => RankMode::Updating { changelog: true },
        };
        let column = w.schema.field(input.fields().len()).name();
        let number = self.rank_numbers.contains(column);
        let visible = Arc::new(input.as_arrow().clone());
        let mut fields: Vec<Field> = w.schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        let changelog = match mode {
            RankMode::Updating { changelog } => changelog,
            RankMode::Window { lateness, .. } => lateness > 0,
            RankMode::FirstByEventTime { .. } => false,
        };
        if changelog {
            fields.push(weir_engine::changelog::op_field());
        }
        let late = match mode {
            RankMode::Window { .. } | RankMode::FirstByEventTime { .. } => self.take_late_data(&visible)?,
            RankMode::Updating { .. } => None,
        };
        let plan = RankPlan {
            late_output: late.as_ref().map(|(plan, _)| Arc::clone(plan)),
            upsert_key,
            partition: partition.clone(),
            order,
            first,
            last,
            later_wins_ties,
            number,
            input_schema: visible,
            output_schema: Arc::new(Schema::new(fields)),
            retracting: props.changelog,
            mode,
            ttl: self.state_ttl.unhinted(),
        };
        let distribution = match partition.is_empty() {
            true => Distribution::Single,
            false => Distribution::Hash(partition),
        };
        flow.then(OperatorPlan::new(plan), distribution);
        flow.node.late_sink = late.map(|(_, sink)| sink);
        let rank_column = input.fields().len();
        let keys: Option<Vec<usize>> = partition_columns.iter().copied().collect();
        let unique_key = match (keys, number, last) {
            (Some(mut k), true, _) => {
                k.push(rank_column);
                Some(k)
            }
            (Some(k), false, 1) if !k.is_empty() => Some(k),
            _ => None,
        };
        *flow.props_mut() = match changelog {
            true => Properties {
                changelog: true,
                unique_key,
                ..Properties::default()
            },
            false => Properties { unique_key, ..props },
        };
        Ok(flow)
    }
}

/// The `ALLOWED LATENESS` of the window aggregation `node`'s rows come
/// from, if they do: within it the aggregation re-fires windows for late
/// rows, and a window Top-N replaces the rows it ranked.
fn refires(node: &weir_engine::plan::StreamNode) -> Option<i64> {
    if let Some(op) = node.operator()
        && let Some(agg) = op.downcast::<weir_engine::window::aggregate::WindowAggregatePlan>()
    {
        return Some(agg.aggregation.allowed_lateness);
    }
    match node.inputs.as_slice() {
        [(input, Distribution::Any)] => refires(input),
        _ => None,
    }
}

/// The `ROW_NUMBER()` call of a window expression, if it is one.
fn row_number(e: &Expr) -> Option<WindowFunction> {
    match e.clone().unalias() {
        Expr::WindowFunction(w) if w.fun.name() == "row_number" => Some(*w),
        _ => None,
    }
}

/// Takes `e` into `bounds` when it compares the number at column `at` with
/// an integer; false when it is another condition.
fn bound(e: &Expr, at: usize, schema: &DFSchema, bounds: &mut Bounds) -> Result<bool> {
    let Expr::BinaryExpr(b) = e else { return Ok(false) };
    let is_number = |e: &Expr| match strip_cast(e) {
        Expr::Column(c) => schema.index_of_column(c).ok() == Some(at),
        _ => false,
    };
    let (op, value) = match (b.left.as_ref(), b.right.as_ref()) {
        (l, Expr::Literal(v, _)) if is_number(l) => (b.op, v),
        (Expr::Literal(v, _), r) if is_number(r) => match b.op.swap() {
            Some(op) => (op, v),
            None => return Ok(false),
        },
        _ => return Ok(false),
    };
    let n = match value.cast_to(&DataType::Int64) {
        Ok(ScalarValue::Int64(Some(n))) => n,
        _ => return Ok(false),
    };
    let clamp = |n: i64| n.max(0) as u64;
    match op {
        Operator::LtEq => bounds.last = Some(bounds.last.map_or(clamp(n), |l| l.min(clamp(n)))),
        Operator::Lt => bounds.last = Some(bounds.last.map_or(clamp(n - 1), |l| l.min(clamp(n - 1)))),
        Operator::Eq => {
            bounds.first = bounds.first.max(clamp(n));
            bounds.last = Some(bounds.last.map_or(clamp(n), |l| l.min(clamp(n))));
        }
        Operator::GtEq => bounds.first = bounds.first.max(clamp(n)),
        Operator::Gt => bounds.first = bounds.first.max(clamp(n + 1)),
        _ => return Ok(false),
    }
    Ok(true)
}

fn strip_cast(e: &Expr) -> &Expr {
    match e {
        Expr::Cast(c) => strip_cast(&c.expr),
        Expr::TryCast(c) => strip_cast(&c.expr),
        _ => e,
    }
}

/// The error for an `OVER` window the planner cannot run.
pub(super) fn unbounded(w: &Window) -> SqlError {
    let names: Vec<String> = w.window_expr.iter().map(|e| e.schema_name().to_string()).collect();
    if w.window_expr.iter().any(|e| row_number(e).is_some()) {
        return SqlError::plan(
            "ROW_NUMBER() in a streaming query must be bounded by a filter right above it \
             (SELECT … FROM (SELECT …, ROW_NUMBER() OVER (…) AS rn FROM t) WHERE rn <= N): \
             a Top-N or a deduplication",
            None,
        );
    }
    SqlError::unsupported(format!("OVER windows ({})", names.join(", ")), None)
}

/// The `ROW_NUMBER()` columns whose values the query's result uses: those
/// reaching its output, or read by an expression other than the filter
/// that bounds them. A ranking whose number is not used emits a row that
/// enters as `+I` and one that leaves as `-D` (Flink's Top-N without rank
/// number), not an update of every rank that moved.
pub(super) fn numbers_used(plan: &LogicalPlan) -> HashSet<String> {
    let mut used = HashSet::new();
    let reaching = numbers(plan, &mut used);
    used.extend(reaching.into_iter().map(|(_, name)| name));
    used
}

/// The output columns of `plan` that are a `ROW_NUMBER()` passed through,
/// with the window column's name; the ones read otherwise go to `used`.
fn numbers(plan: &LogicalPlan, used: &mut HashSet<String>) -> Vec<(usize, String)> {
    match plan {
        LogicalPlan::Window(w) => {
            let mut below = numbers(&w.input, used);
            let width = w.input.schema().fields().len();
            for (j, e) in w.window_expr.iter().enumerate() {
                if row_number(e).is_some() {
                    below.push((width + j, w.schema.field(width + j).name().clone()));
                }
            }
            below
        }
        LogicalPlan::Projection(p) => {
            let below = numbers(&p.input, used);
            let schema = p.input.schema();
            let mut out = Vec::new();
            for (i, e) in p.expr.iter().enumerate() {
                if let Expr::Column(c) = e.clone().unalias()
                    && let Some((_, name)) = below
                        .iter()
                        .find(|(at, _)| schema.index_of_column(&c).ok() == Some(*at))
                {
                    out.push((i, name.clone()));
                    continue;
                }
                for c in e.column_refs() {
                    if let Some((_, name)) = below.iter().find(|(at, _)| schema.index_of_column(c).ok() == Some(*at)) {
                        used.insert(name.clone());
                    }
                }
            }
            out
        }
        LogicalPlan::Filter(f) => numbers(&f.input, used),
        LogicalPlan::SubqueryAlias(a) => numbers(&a.input, used),
        other => {
            // Anything else reading a number uses it.
            for input in other.inputs() {
                let reaching = numbers(input, used);
                used.extend(reaching.into_iter().map(|(_, name)| name));
            }
            Vec::new()
        }
    }
}
