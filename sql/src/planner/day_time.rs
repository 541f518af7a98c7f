//! Day-time intervals added to timestamps as plain durations, as Flink
//! computes them.
//!
//! In Flink an `INTERVAL … DAY TO SECOND` is a number of milliseconds, and
//! `ts ± INTERVAL '1' DAY` adds that many to the timestamp, `TIMESTAMP_LTZ`
//! included (only year-month intervals move along the calendar).
//! DataFusion adds an interval literal through calendar arithmetic in the
//! session's time zone, row by row: it was half the cost of a Nexmark q0
//! source (its watermark) and three fifths of an interval join (its time
//! condition on every candidate pair). As a duration the same sum is an
//! integer addition over the whole column.

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::logical_expr::{BinaryExpr, Expr, ExprSchemable, Operator};

/// `e` with every `timestamp ± <interval literal without months>` as
/// `timestamp ± <duration literal>` in the timestamp's unit, where the
/// interval is a whole number of that unit (else it is left as written).
pub fn day_time_intervals_as_durations(e: Expr, schema: &DFSchema) -> datafusion::error::Result<Expr> {
    e.transform_up(|e| {
        let Expr::BinaryExpr(BinaryExpr { left, op: op @ (Operator::Minus | Operator::Plus), right }) = e else {
            return Ok(Transformed::no(e));
        };
        let duration = match left.get_type(schema) {
            Ok(DataType::Timestamp(unit, _)) => duration(&right, unit),
            _ => None,
        };
        Ok(match duration {
            Some(d) => Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(left, op, Box::new(Expr::Literal(d, None))))),
            None => Transformed::no(Expr::BinaryExpr(BinaryExpr { left, op, right })),
        })
    })
    .map(|t| t.data)
}

/// The interval literal `e` as a duration in `unit`, if it has no months
/// and is a whole number of `unit`s.
fn duration(e: &Expr, unit: TimeUnit) -> Option<ScalarValue> {
    let nanos = literal_nanos(e)?;
    let per_unit: i128 = match unit {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    };
    if nanos % per_unit != 0 {
        return None;
    }
    let n = i64::try_from(nanos / per_unit).ok()?;
    Some(match unit {
        TimeUnit::Second => ScalarValue::DurationSecond(Some(n)),
        TimeUnit::Millisecond => ScalarValue::DurationMillisecond(Some(n)),
        TimeUnit::Microsecond => ScalarValue::DurationMicrosecond(Some(n)),
        TimeUnit::Nanosecond => ScalarValue::DurationNanosecond(Some(n)),
    })
}

/// The interval literal `e` in nanoseconds, if it has no months (a day
/// is 24 hours, as in Flink).
pub fn literal_nanos(e: &Expr) -> Option<i128> {
    match e {
        Expr::Literal(ScalarValue::IntervalDayTime(Some(v)), _) => {
            Some((i128::from(v.days) * 86_400_000 + i128::from(v.milliseconds)) * 1_000_000)
        }
        Expr::Literal(ScalarValue::IntervalMonthDayNano(Some(v)), _) if v.months == 0 => {
            Some(i128::from(v.days) * 86_400_000_000_000 + i128::from(v.nanoseconds))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{AsArray, RecordBatch, TimestampMillisecondArray};
    use datafusion::arrow::datatypes::{Field, IntervalMonthDayNano, Schema, TimestampMillisecondType};
    use datafusion::execution::context::ExecutionProps;
    use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
    use datafusion::logical_expr::{col, lit};
    use datafusion::physical_expr::create_physical_expr;

    use super::*;

    /// Evaluates `e` over `ts` (TIMESTAMP_LTZ(3) in `zone`) as planned,
    /// with and without the rewrite.
    fn both(e: Expr, zone: &str, ts: &[i64]) -> (Vec<i64>, Vec<i64>, Expr) {
        let ltz = DataType::Timestamp(TimeUnit::Millisecond, Some(zone.into()));
        let schema = Arc::new(Schema::new(vec![Field::new("ts", ltz, false)]));
        let df = DFSchema::try_from(schema.as_ref().clone()).unwrap();
        let column = TimestampMillisecondArray::from(ts.to_vec()).with_timezone(zone);
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(column)]).unwrap();
        let run = |e: &Expr| -> Vec<i64> {
            let p = create_physical_expr(e, &df, &ExecutionProps::new(), &PhysicalPlanningContext::default()).unwrap();
            let out = p.evaluate(&batch).unwrap().into_array(ts.len()).unwrap();
            out.as_primitive::<TimestampMillisecondType>().values().to_vec()
        };
        let rewritten = day_time_intervals_as_durations(e.clone(), &df).unwrap();
        (run(&e), run(&rewritten), rewritten)
    }

    fn interval(days: i32, nanos: i64) -> Expr {
        lit(ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(0, days, nanos))))
    }

    /// Seconds and hours: the same instants either way.
    #[test]
    fn fixed_intervals_give_the_same_times() {
        let ts = [1_767_225_600_000, 1_767_225_600_123, 0, -86_400_001];
        for e in [col("ts") - interval(0, 2_000_000_000), col("ts") + interval(0, 3_600_000_000_000)] {
            let (calendar, durations, rewritten) = both(e, "Europe/Berlin", &ts);
            assert_eq!(calendar, durations);
            assert!(format!("{rewritten}").contains("Duration"), "{rewritten}");
        }
    }

    /// A day across a daylight-saving change: Flink adds 86 400 000 ms
    /// (an instant plus a day-time interval), not a calendar day.
    #[test]
    fn a_day_is_86_400_000_ms_across_a_clock_change() {
        // 2026-03-28 12:00 in Berlin (UTC+1); the clocks go forward that night.
        let noon = 1_774_695_600_000;
        let (calendar, durations, _) = both(col("ts") + interval(1, 0), "Europe/Berlin", &[noon]);
        assert_eq!(durations, [noon + 86_400_000]);
        assert_eq!(calendar, [noon + 86_400_000 - 3_600_000], "DataFusion's calendar day is 23 hours here");
    }

    /// Months, and a part of a millisecond on a TIMESTAMP(3), stay as written.
    #[test]
    fn months_and_fractions_stay_intervals() {
        let months = lit(ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(1, 0, 0))));
        let (_, _, rewritten) = both(col("ts") + months, "UTC", &[0]);
        assert!(!format!("{rewritten}").contains("Duration"), "{rewritten}");
        let (_, _, rewritten) = both(col("ts") + interval(0, 1_500), "UTC", &[0]);
        assert!(!format!("{rewritten}").contains("Duration"), "{rewritten}");
    }
}

