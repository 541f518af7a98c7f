//! Where the session's zone enters a query: casts between instants and
//! wall-clock times, and the functions that read a wall-clock field.
//!
//! Two passes. Over the SQL, `CAST(x AS TIMESTAMP_LTZ(p))` (a type
//! DataFusion does not know) becomes `local_to_ltz(CAST(x AS
//! TIMESTAMP(3)))`. Over the analysed logical plan, after DataFusion has
//! made every implicit cast explicit, a cast from `TIMESTAMP_LTZ` to a
//! wall-clock type reads the instant in the zone first, a cast to
//! `TIMESTAMP_LTZ` from one reads it as the zone's time, and the
//! arguments of the wall-clock functions (`HOUR`, `DATE_FORMAT`, …) are
//! read in the zone: so comparing an instant with a `TIMESTAMP` literal,
//! `CAST(ltz AS STRING)` and `DATE_FORMAT(ltz, …)` mean what they mean in
//! Flink.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result};
use datafusion::logical_expr::expr::{Cast, ScalarFunction, TryCast};
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan, ScalarUDF};
use datafusion::sql::sqlparser::ast::{
    self, DataType as SqlType, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident,
    ObjectName, Query, VisitMut, VisitorMut,
};

use super::convert::TO_INSTANT;
use super::is_ltz;
use crate::types::TIMESTAMP_MS;

/// Functions that read a field of a wall-clock time: given an instant,
/// they read it in the session's zone, as Flink does.
const WALL_CLOCK_READERS: &[&str] = &[
    "date_format",
    "year",
    "quarter",
    "month",
    "week",
    "dayofyear",
    "dayofmonth",
    "dayofweek",
    "hour",
    "minute",
    "second",
    "date_part",
    "date_trunc",
    "to_char",
    "extract",
];

/// `CAST(x AS TIMESTAMP_LTZ[(p)])` → `local_to_ltz(CAST(x AS TIMESTAMP(3)))`.
pub fn rewrite_casts(query: &mut Query) {
    let _ = query.visit(&mut LtzCasts);
}

struct LtzCasts;

impl VisitorMut for LtzCasts {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut ast::Expr) -> ControlFlow<()> {
        let ast::Expr::Cast {
            kind,
            expr: inner,
            data_type,
            array,
            format,
        } = expr
        else {
            return ControlFlow::Continue(());
        };
        let SqlType::Custom(name, _) = data_type else {
            return ControlFlow::Continue(());
        };
        if !name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .is_some_and(|i| i.value.eq_ignore_ascii_case("TIMESTAMP_LTZ"))
        {
            return ControlFlow::Continue(());
        }
        let wall_clock = ast::Expr::Cast {
            kind: kind.clone(),
            expr: inner.clone(),
            data_type: SqlType::Timestamp(Some(3), ast::TimezoneInfo::None),
            array: *array,
            format: format.clone(),
        };
        *expr = ast::Expr::Function(Function {
            name: ObjectName::from(vec![Ident::new(TO_INSTANT)]),
            uses_odbc_syntax: false,
            parameters: FunctionArguments::None,
            args: FunctionArguments::List(FunctionArgumentList {
                duplicate_treatment: None,
                args: vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(wall_clock))],
                clauses: vec![],
            }),
            filter: None,
            null_treatment: None,
            over: None,
            within_group: vec![],
        });
        ControlFlow::Continue(())
    }
}

/// The plan with the zone's conversions inserted (`to_local` and
/// `to_instant` are the session's two conversion functions).
pub fn localize(plan: LogicalPlan, functions: &ZoneFunctions) -> Result<LogicalPlan> {
    plan.transform_up_with_subqueries(|node| {
        let mut schema = DFSchema::empty();
        for input in node.inputs() {
            schema.merge(input.schema());
        }
        if node.inputs().is_empty() {
            schema.merge(node.schema());
        }
        node.map_expressions(|e| e.transform_up(|e| localize_expr(e, &schema, functions)))
    })
    .map(|t| t.data)
}

/// The session's functions the rewrite inserts.
pub struct ZoneFunctions {
    pub to_local: Arc<ScalarUDF>,
    pub to_instant: Arc<ScalarUDF>,
    /// Flink's `DATE_FORMAT`, for a timestamp cast to a string.
    pub date_format: Arc<ScalarUDF>,
}

/// Flink's text of a `TIMESTAMP(3)`: `CAST(ts AS STRING)`.
const TIMESTAMP_TEXT: &str = "yyyy-MM-dd HH:mm:ss.SSS";

fn localize_expr(e: Expr, schema: &DFSchema, functions: &ZoneFunctions) -> Result<Transformed<Expr>> {
    let (to_local, to_instant) = (&functions.to_local, &functions.to_instant);
    let call = |f: &Arc<ScalarUDF>, arg: Expr| Expr::ScalarFunction(ScalarFunction::new_udf(Arc::clone(f), vec![arg]));
    let type_of = |e: &Expr| e.get_type(schema).ok();
    // A timestamp as text is Flink's `yyyy-MM-dd HH:mm:ss.SSS` (an instant
    // read in the zone), not Arrow's ISO form.
    if let Expr::Cast(Cast { expr, field }) = &e
        && let Some(from @ DataType::Timestamp(..)) = type_of(expr)
        && matches!(
            field.data_type(),
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
        )
    {
        let value = if is_ltz(&from) {
            call(to_local, expr.as_ref().clone())
        } else {
            expr.as_ref().clone()
        };
        let pattern = Expr::Literal(datafusion::common::ScalarValue::Utf8(Some(TIMESTAMP_TEXT.into())), None);
        let text = Expr::ScalarFunction(ScalarFunction::new_udf(
            Arc::clone(&functions.date_format),
            vec![value, pattern],
        ));
        return Ok(Transformed::yes(match field.data_type() {
            DataType::Utf8 => text,
            other => Expr::Cast(Cast::new(Box::new(text), other.clone())),
        }));
    }
    Ok(match e {
        Expr::Cast(Cast { expr, field }) => match conversion(type_of(&expr), field.data_type()) {
            Some(Conversion::ToLocal) => Transformed::yes(Expr::Cast(Cast {
                expr: Box::new(call(to_local, *expr)),
                field,
            })),
            Some(Conversion::ToInstant) => {
                let wall_clock = Expr::Cast(Cast::new(expr, TIMESTAMP_MS));
                Transformed::yes(Expr::Cast(Cast {
                    expr: Box::new(call(to_instant, wall_clock)),
                    field,
                }))
            }
            None => Transformed::no(Expr::Cast(Cast { expr, field })),
        },
        Expr::TryCast(TryCast { expr, field }) => match conversion(type_of(&expr), field.data_type()) {
            Some(Conversion::ToLocal) => Transformed::yes(Expr::TryCast(TryCast {
                expr: Box::new(call(to_local, *expr)),
                field,
            })),
            Some(Conversion::ToInstant) => {
                let wall_clock = Expr::TryCast(TryCast::new(expr, TIMESTAMP_MS));
                Transformed::yes(Expr::TryCast(TryCast {
                    expr: Box::new(call(to_instant, wall_clock)),
                    field,
                }))
            }
            None => Transformed::no(Expr::TryCast(TryCast { expr, field })),
        },
        Expr::ScalarFunction(mut f) if WALL_CLOCK_READERS.contains(&f.func.name()) => {
            let mut changed = false;
            for arg in f.args.iter_mut() {
                if type_of(arg).is_some_and(|t| is_ltz(&t)) {
                    *arg = call(
                        to_local,
                        std::mem::replace(arg, Expr::Literal(datafusion::common::ScalarValue::Null, None)),
                    );
                    changed = true;
                }
            }
            if changed {
                Transformed::yes(Expr::ScalarFunction(f))
            } else {
                Transformed::no(Expr::ScalarFunction(f))
            }
        }
        other => Transformed::no(other),
    })
}

/// Which conversion a cast from `from` to `to` needs in a zone.
enum Conversion {
    ToLocal,
    ToInstant,
}

fn conversion(from: Option<DataType>, to: &DataType) -> Option<Conversion> {
    let from = from?;
    let wall_clock = |t: &DataType| {
        matches!(
            t,
            DataType::Timestamp(_, None)
                | DataType::Date32
                | DataType::Date64
                | DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Time32(_)
                | DataType::Time64(_)
        )
    };
    if is_ltz(&from) && wall_clock(to) {
        Some(Conversion::ToLocal)
    } else if is_ltz(to) && wall_clock(&from) {
        Some(Conversion::ToInstant)
    } else {
        None
    }
}
