//! The session's time zone in its statements: plans get the zone's
//! conversions (`crate::time_zone::rewrite`), results are shown in it.

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::Column;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, cast};
use tokio::sync::mpsc;

use super::{Outcome, Session};
use crate::error::Result;

impl Session {
    /// Rows as the user sees them: instants as wall-clock times in the
    /// session's zone (`crate::time_zone::display`).
    pub(super) fn shown(&self, outcome: Outcome) -> Result<Outcome> {
        use crate::time_zone::display::{shown, shown_schema};
        let zone = self.settings.local_zone();
        Ok(match outcome {
            Outcome::Table(batches) => Outcome::Table(
                batches
                    .into_iter()
                    .map(|b| shown(b, &zone))
                    .collect::<datafusion::error::Result<_>>()?,
            ),
            Outcome::Stream {
                job,
                schema,
                mut rows,
                key,
            } if shown_schema(&schema) != schema => {
                let (tx, shown_rows) = mpsc::channel(1);
                tokio::spawn(async move {
                    while let Some(batch) = rows.recv().await {
                        let Ok(batch) = shown(batch, &zone) else { break };
                        if tx.send(batch).await.is_err() {
                            break;
                        }
                    }
                });
                Outcome::Stream {
                    job,
                    schema: shown_schema(&schema),
                    rows: shown_rows,
                    key,
                }
            }
            other => other,
        })
    }

    /// The plan with the session zone's conversions
    /// (`crate::time_zone::rewrite`).
    pub(super) fn localize(&self, plan: LogicalPlan) -> Result<LogicalPlan> {
        use crate::time_zone::convert::{TO_INSTANT, TO_LOCAL};
        let state = self.ctx.state();
        let get = |name: &str| state.scalar_functions().get(name).cloned();
        let (Some(to_local), Some(to_instant), Some(date_format)) =
            (get(TO_LOCAL), get(TO_INSTANT), get("date_format"))
        else {
            return Ok(plan);
        };
        let functions = crate::time_zone::rewrite::ZoneFunctions {
            to_local,
            to_instant,
            date_format,
        };
        Ok(crate::time_zone::rewrite::localize(plan, &functions)?)
    }

    /// `plan` with each column that is an instant where the sink declares
    /// a wall-clock time (or the other way round) converted in the zone,
    /// as Flink's implicit cast on INSERT does.
    pub(super) fn to_declared_times(&self, plan: LogicalPlan, declared: &SchemaRef) -> Result<LogicalPlan> {
        use crate::time_zone::is_ltz;
        let fields = plan.schema().fields().clone();
        if fields.len() != declared.fields().len() {
            return Ok(plan);
        }
        let converts = |q: &DataType, d: &DataType| {
            matches!((q, d), (DataType::Timestamp(..), DataType::Timestamp(..))) && is_ltz(q) != is_ltz(d)
        };
        if !fields
            .iter()
            .zip(declared.fields())
            .any(|(q, d)| converts(q.data_type(), d.data_type()))
        {
            return Ok(plan);
        }
        let exprs: Vec<Expr> = plan
            .schema()
            .iter()
            .zip(declared.fields())
            .map(|((qualifier, q), d)| {
                let column = Expr::Column(Column::from((qualifier, q)));
                if converts(q.data_type(), d.data_type()) {
                    cast(column, d.data_type().clone()).alias(q.name())
                } else {
                    column
                }
            })
            .collect();
        let plan = LogicalPlanBuilder::from(plan).project(exprs)?.build()?;
        self.localize(plan)
    }
}
