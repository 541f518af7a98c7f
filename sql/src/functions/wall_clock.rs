//! The wall clock: `CURRENT_TIMESTAMP` / `NOW()` /
//! `CURRENT_ROW_TIMESTAMP()` and `PROCTIME()` (an
//! instant, `TIMESTAMP_LTZ(3)`), `LOCALTIMESTAMP` (a `TIMESTAMP(3)`),
//! `LOCALTIME` / `CURRENT_TIME` (a `TIME(0)`, whole seconds) and
//! `CURRENT_DATE`, the last three in the session's zone; read once per
//! batch.
//!
//! DataFusion's own `now()`, `current_time()` and `current_date()` are
//! stable functions (and its `current_time()` is UTC's): its
//! optimizer folds them into the time the query was planned, so a
//! streaming job would stamp every row of its life with its start time.
//! Flink evaluates them per record in a streaming query; these are
//! volatile, and never folded.

use std::sync::Arc;

use datafusion::arrow::array::{Date32Array, Time64NanosecondArray, TimestampMillisecondArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::datatypes::TimeUnit;
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

use crate::time_zone::{LTZ_LABEL, LocalZone, ltz_type};
use crate::types::TIMESTAMP_MS;

const MS_PER_DAY: i64 = 86_400_000;

/// What the clock is read as.
#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
enum Reading {
    Instant,
    LocalTimestamp,
    LocalTime,
    Date,
}

/// One name of the wall clock.
#[derive(Debug, PartialEq, Eq, Hash)]
struct WallClock {
    name: &'static str,
    aliases: Vec<String>,
    reading: Reading,
    zone: LocalZone,
    signature: Signature,
}

/// Every wall-clock function, to register (replacing DataFusion's `now`,
/// `current_timestamp`, `current_time` and `current_date`), reading local
/// times in `zone`.
pub fn functions(zone: &LocalZone) -> Vec<ScalarUDF> {
    let clock = |name, aliases: &[&str], reading| {
        let aliases = aliases.iter().map(|a| a.to_string()).collect();
        let signature = Signature::nullary(Volatility::Volatile);
        ScalarUDF::from(WallClock {
            name,
            aliases,
            reading,
            zone: zone.clone(),
            signature,
        })
    };
    vec![
        clock("now", &["current_timestamp", "current_row_timestamp"], Reading::Instant),
        clock("localtimestamp", &[], Reading::LocalTimestamp),
        clock("localtime", &["current_time"], Reading::LocalTime),
        clock("proctime", &[], Reading::Instant),
        clock("current_date", &[], Reading::Date),
    ]
}

impl ScalarUDFImpl for WallClock {
    fn name(&self) -> &str {
        self.name
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(match self.reading {
            Reading::Instant => ltz_type(),
            Reading::LocalTimestamp => TIMESTAMP_MS,
            // TIME literals are nanoseconds in DataFusion; comparable so.
            Reading::LocalTime => DataType::Time64(TimeUnit::Nanosecond),
            Reading::Date => DataType::Date32,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let now = weir_engine::message::now_ms();
        Ok(ColumnarValue::Array(match self.reading {
            Reading::Instant => {
                Arc::new(TimestampMillisecondArray::from_value(now, args.number_rows).with_timezone(LTZ_LABEL))
            }
            Reading::LocalTimestamp => Arc::new(TimestampMillisecondArray::from_value(
                self.zone.to_local(now),
                args.number_rows,
            )),
            Reading::LocalTime => {
                // Flink's TIME(0): the second of the day.
                let second = self.zone.to_local(now).div_euclid(1000).rem_euclid(MS_PER_DAY / 1000);
                Arc::new(Time64NanosecondArray::from_value(
                    second * 1_000_000_000,
                    args.number_rows,
                ))
            }
            Reading::Date => {
                let local = self.zone.to_local(now);
                let day = i32::try_from(local.div_euclid(MS_PER_DAY)).unwrap_or(i32::MAX);
                Arc::new(Date32Array::from_value(day, args.number_rows))
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::SessionContext;

    /// The optimizer keeps the clock a call, to be read as rows come:
    /// DataFusion's `now()` would be folded into the planning time.
    #[tokio::test]
    async fn the_clock_is_never_folded_into_a_constant() {
        let ctx = SessionContext::new();
        crate::functions::register(&ctx);
        crate::time_zone::register(&ctx, &Default::default());
        for (sql, call) in [
            ("SELECT CURRENT_TIMESTAMP", "Projection: now()"),
            ("SELECT NOW()", "Projection: now()"),
            ("SELECT CURRENT_DATE", "Projection: current_date()"),
            ("SELECT LOCALTIMESTAMP", "Projection: localtimestamp()"),
            ("SELECT LOCALTIME", "Projection: localtime()"),
            ("SELECT CURRENT_TIME", "Projection: localtime()"),
        ] {
            let plan = ctx.state().create_logical_plan(sql).await.unwrap();
            let optimized = crate::planner::optimize::optimize(plan, &ctx.state()).unwrap();
            let shown = optimized.display_indent().to_string();
            assert!(shown.starts_with(call), "{sql} was folded: {shown}");
            let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
            assert_eq!(batches[0].num_rows(), 1, "{sql}");
        }
    }
}
