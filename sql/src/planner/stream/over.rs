//! OVER windows (`weir_engine::over`): aggregates and `LAG` over a frame
//! that ends at the current row, ordered by a time attribute ascending —
//! Flink's rules for OVER aggregation on a stream. `ROW_NUMBER()` under a
//! bound is a ranking instead (`rank.rs`).

use std::sync::Arc;

use datafusion::common::{DFSchema, ScalarValue};
use datafusion::logical_expr::expr::WindowFunction;
use datafusion::logical_expr::{
    Expr, Window, WindowFrame, WindowFrameBound, WindowFrameUnits, WindowFunctionDefinition,
};
use datafusion::physical_expr::aggregate::AggregateExprBuilder;
use datafusion::physical_plan::PhysicalExpr;
use weir_engine::over::{Frame, OverFunction, OverPlan};
use weir_engine::plan::{Distribution, OperatorPlan};

use super::{Flow, StreamPlanner, rank};
use crate::error::{Result, SqlError};

impl StreamPlanner<'_> {
    /// Plans an OVER window node.
    pub(super) fn over(&mut self, w: &Window) -> Result<Flow> {
        let calls: Vec<WindowFunction> = w
            .window_expr
            .iter()
            .map(|e| match e.clone().unalias() {
                Expr::WindowFunction(f) => Ok(*f),
                other => Err(SqlError::unsupported(format!("{other} as an OVER window"), None)),
            })
            .collect::<Result<_>>()?;
        if calls.iter().any(|c| c.fun.name() == "row_number") {
            return Err(rank::unbounded(w));
        }
        let first = &calls[0].params;
        if calls
            .iter()
            .any(|c| c.params.partition_by != first.partition_by || c.params.order_by != first.order_by)
        {
            return Err(SqlError::unsupported(
                "OVER windows of one SELECT with different PARTITION BY or ORDER BY",
                None,
            ));
        }
        let mut flow = self.plan(&w.input)?;
        self.materialize(&mut flow)?;
        flow.refuse_changelog("an OVER window", None)?;
        let input = w.input.schema();
        let props = flow.props().clone();
        let time = match first.order_by.as_slice() {
            [s] if s.asc => match &s.expr {
                Expr::Column(c) => input.index_of_column(c).ok(),
                _ => None,
            },
            _ => None,
        };
        let (time_column, processing_time) = match time {
            Some(t) if Some(t) == props.rowtime => (t, false),
            Some(t) if Some(t) == props.proctime => (t, true),
            _ => {
                let attribute = props
                    .rowtime
                    .map(|i| format!(" ('{}')", input.field(i).name()))
                    .unwrap_or_default();
                return Err(SqlError::Unsupported {
                    construct: "an OVER window not ordered by a time attribute ascending".into(),
                    detail: Some(format!(
                        "as in Flink, OVER windows on a stream are ordered by the rowtime{attribute} or a PROCTIME() column: \
                         OVER (PARTITION BY … ORDER BY <time attribute> [ASC] …)"
                    )),
                    position: None,
                });
            }
        };
        let functions = calls
            .iter()
            .enumerate()
            .map(|(j, call)| self.over_function(call, input, w.schema.field(input.fields().len() + j).name()))
            .collect::<Result<Vec<_>>>()?;
        let partition: Vec<Arc<dyn PhysicalExpr>> = first
            .partition_by
            .iter()
            .map(|e| self.physical(e, input))
            .collect::<Result<_>>()?;
        let input_schema = Arc::new(input.as_arrow().clone());
        let late = match processing_time {
            true => None,
            false => self.take_late_data(&input_schema)?,
        };
        let plan = OverPlan {
            partition: partition.clone(),
            time_column,
            processing_time,
            functions,
            input_schema,
            output_schema: Arc::new(w.schema.as_arrow().clone()),
            late_output: late.as_ref().map(|(plan, _)| Arc::clone(plan)),
        };
        let distribution = match partition.is_empty() {
            true => Distribution::Single,
            false => Distribution::Hash(partition),
        };
        // The input's columns stay where they were; rows leave in time
        // order behind the watermark, so the rowtime stays one.
        flow.then(OperatorPlan::new(plan), distribution);
        flow.node.late_sink = late.map(|(_, sink)| sink);
        *flow.props_mut() = props;
        Ok(flow)
    }

    fn over_function(&self, call: &WindowFunction, input: &DFSchema, name: &str) -> Result<OverFunction> {
        let params = &call.params;
        let what = call.fun.name().to_ascii_uppercase();
        if params.filter.is_some() || params.distinct {
            return Err(SqlError::unsupported(
                format!("{what}(DISTINCT …) or FILTER in an OVER window"),
                None,
            ));
        }
        let args: Vec<Arc<dyn PhysicalExpr>> = params
            .args
            .iter()
            .map(|a| self.physical(a, input))
            .collect::<Result<_>>()?;
        match &call.fun {
            WindowFunctionDefinition::AggregateUDF(udaf) => {
                let function = AggregateExprBuilder::new(Arc::clone(udaf), args)
                    .schema(Arc::new(input.as_arrow().clone()))
                    .alias(name)
                    .build()?;
                let frame = frame(&params.window_frame, &what)?;
                if !frame_unbounded(frame) && function.create_sliding_accumulator().is_err() {
                    return Err(SqlError::unsupported(
                        format!("{what} over a bounded OVER frame (it cannot take back rows that leave the frame)"),
                        None,
                    ));
                }
                Ok(OverFunction::Aggregate {
                    function: Arc::new(function),
                    frame,
                })
            }
            WindowFunctionDefinition::WindowUDF(udf) if udf.name() == "lag" => {
                let literal = |i: usize| match params.args.get(i) {
                    Some(Expr::Literal(v, _)) => Ok(Some(v.clone())),
                    Some(other) => Err(SqlError::unsupported(
                        format!("LAG with a non-constant argument {other}"),
                        None,
                    )),
                    None => Ok(None),
                };
                let offset = match literal(1)? {
                    None => 1,
                    Some(v) => match v.cast_to(&datafusion::arrow::datatypes::DataType::Int64) {
                        Ok(ScalarValue::Int64(Some(n))) if n >= 0 => n as usize,
                        _ => {
                            return Err(SqlError::plan(
                                format!("LAG's offset must be a non-negative integer, not {v}"),
                                None,
                            ));
                        }
                    },
                };
                let default = literal(2)?.unwrap_or(ScalarValue::Null);
                let value = args
                    .into_iter()
                    .next()
                    .ok_or_else(|| SqlError::plan("LAG needs the value it takes from an earlier row", None))?;
                Ok(OverFunction::Lag { value, offset, default })
            }
            WindowFunctionDefinition::WindowUDF(udf) if udf.name() == "lead" => Err(SqlError::Unsupported {
                construct: "LEAD over a stream".into(),
                detail: Some(
                    "a row's result would wait for the rows after it (Flink refuses LEAD in stream mode too); LAG takes a row before".into(),
                ),
                position: None,
            }),
            other => Err(SqlError::unsupported(
                format!("{}() OVER (…) on a stream", other.name().to_ascii_uppercase()),
                None,
            )),
        }
    }
}

fn frame_unbounded(frame: Frame) -> bool {
    matches!(frame, Frame::Rows(None) | Frame::Range(None))
}

/// Flink's OVER frames: from `UNBOUNDED` or `n` / an interval `PRECEDING`,
/// to the current row.
fn frame(f: &WindowFrame, what: &str) -> Result<Frame> {
    if !matches!(f.end_bound, WindowFrameBound::CurrentRow) {
        return Err(SqlError::Unsupported {
            construct: format!("{what} OVER a frame that does not end at the current row"),
            detail: Some("as in Flink, an OVER window on a stream ends at CURRENT ROW".into()),
            position: None,
        });
    }
    let preceding = match &f.start_bound {
        WindowFrameBound::Preceding(v) if v.is_null() => None,
        WindowFrameBound::Preceding(v) => Some(v.clone()),
        WindowFrameBound::CurrentRow => Some(ScalarValue::UInt64(Some(0))),
        WindowFrameBound::Following(_) => {
            return Err(SqlError::unsupported(
                format!("{what} OVER a frame that starts after the current row"),
                None,
            ));
        }
    };
    match f.units {
        WindowFrameUnits::Rows => Ok(Frame::Rows(match preceding {
            None => None,
            Some(v) => match v.cast_to(&datafusion::arrow::datatypes::DataType::UInt64) {
                Ok(ScalarValue::UInt64(Some(n))) => Some(n),
                _ => return Err(SqlError::plan(format!("ROWS {v} PRECEDING: not a row count"), None)),
            },
        })),
        WindowFrameUnits::Range => Ok(Frame::Range(match preceding {
            None => None,
            Some(v) => Some(interval_ms(&v).ok_or_else(|| {
                SqlError::plan(
                    format!("RANGE {v} PRECEDING: a range over a time attribute is an INTERVAL of days or less"),
                    None,
                )
            })?),
        })),
        WindowFrameUnits::Groups => Err(SqlError::unsupported("GROUPS frames in an OVER window", None)),
    }
}

/// An interval of a fixed length in milliseconds (no months).
fn interval_ms(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::IntervalDayTime(Some(d)) => Some(d.days as i64 * 86_400_000 + d.milliseconds as i64),
        ScalarValue::IntervalMonthDayNano(Some(i)) if i.months == 0 => {
            Some(i.days as i64 * 86_400_000 + i.nanoseconds / 1_000_000)
        }
        ScalarValue::UInt64(Some(0)) => Some(0),
        _ => None,
    }
}
