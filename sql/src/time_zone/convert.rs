//! The two conversions between instants and wall-clock times in the
//! session's zone, as functions the planner inserts: `ltz_to_local`
//! (`TIMESTAMP_LTZ` → `TIMESTAMP`, Flink's `CAST(ltz AS TIMESTAMP)`) and
//! `local_to_ltz` (`TIMESTAMP` → `TIMESTAMP_LTZ`, Flink's
//! `CAST(ts AS TIMESTAMP_LTZ)`). Each carries the zone of the session that
//! planned it, so a running job keeps its zone whatever is `SET` later.

use std::sync::Arc;

use datafusion::arrow::array::{AsArray, TimestampMillisecondArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMillisecondType};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

use super::{LTZ_LABEL, LocalZone, ltz_type};
use crate::types::TIMESTAMP_MS;

/// Which way a conversion goes.
#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
enum Direction {
    /// An instant to the wall-clock time it is in the zone.
    ToLocal,
    /// A wall-clock time in the zone to its instant.
    ToInstant,
}

/// One conversion, bound to a zone.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Convert {
    direction: Direction,
    zone: LocalZone,
    signature: Signature,
}

/// The name of the instant → wall-clock conversion.
pub const TO_LOCAL: &str = "ltz_to_local";
/// The name of the wall-clock → instant conversion.
pub const TO_INSTANT: &str = "local_to_ltz";

/// Both conversions in `zone`, to register in a session.
pub fn functions(zone: &LocalZone) -> Vec<ScalarUDF> {
    [Direction::ToLocal, Direction::ToInstant]
        .into_iter()
        .map(|direction| {
            ScalarUDF::from(Convert {
                direction,
                zone: zone.clone(),
                signature: Signature::any(1, Volatility::Immutable),
            })
        })
        .collect()
}

impl ScalarUDFImpl for Convert {
    fn name(&self) -> &str {
        match self.direction {
            Direction::ToLocal => TO_LOCAL,
            Direction::ToInstant => TO_INSTANT,
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match (self.direction, &args[0]) {
            (Direction::ToLocal, DataType::Timestamp(_, _) | DataType::Null) => Ok(TIMESTAMP_MS),
            (Direction::ToInstant, DataType::Timestamp(_, _) | DataType::Null) => Ok(ltz_type()),
            (_, other) => plan_err!("{} takes a TIMESTAMP, not {other}", self.name()),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let input = &args.args[0];
        if let ColumnarValue::Scalar(s) = input
            && s.is_null()
        {
            let out = match self.direction {
                Direction::ToLocal => ScalarValue::TimestampMillisecond(None, None),
                Direction::ToInstant => ScalarValue::TimestampMillisecond(None, Some(Arc::from(LTZ_LABEL))),
            };
            return Ok(ColumnarValue::Scalar(out));
        }
        let values = input.to_array(args.number_rows)?;
        let values = cast(&values, &DataType::Timestamp(TimeUnit::Millisecond, None))?;
        let values = values.as_primitive::<TimestampMillisecondType>();
        let zone = &self.zone;
        let out: TimestampMillisecondArray = match (self.direction, zone.fixed_offset_ms()) {
            (Direction::ToLocal, Some(0)) | (Direction::ToInstant, Some(0)) => values.clone(),
            (Direction::ToLocal, _) => values.unary(|t| zone.to_local(t)),
            (Direction::ToInstant, _) => values.unary(|t| zone.to_utc(t)),
        };
        let out = match self.direction {
            Direction::ToLocal => out.with_timezone_opt(None::<Arc<str>>),
            Direction::ToInstant => out.with_timezone(LTZ_LABEL),
        };
        let scalar = matches!(input, ColumnarValue::Scalar(_));
        Ok(if scalar && out.len() == 1 {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)
        } else {
            ColumnarValue::Array(Arc::new(out))
        })
    }
}
