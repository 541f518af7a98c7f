//! Flink's shorthands for `EXTRACT`: `YEAR(d)`, `QUARTER(d)`, `MONTH(d)`,
//! `WEEK(d)`, `DAYOFYEAR(d)`, `DAYOFMONTH(d)`, `DAYOFWEEK(d)` (1 = Sunday …
//! 7 = Saturday), `HOUR(ts)`, `MINUTE(ts)`, `SECOND(ts)`, each a BIGINT.
//! DataFusion has none of these names (its `date_part('dow', …)` counts
//! Sunday as 0). Each is Arrow's `date_part` kernel over the whole array.

use datafusion::arrow::compute::cast;
use datafusion::arrow::compute::kernels::temporal::{DatePart, date_part};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::plan_err;
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

/// The functions, by Flink's name, and the part each takes.
pub(super) const PARTS: [(&str, DatePart); 10] = [
    ("year", DatePart::Year),
    ("quarter", DatePart::Quarter),
    ("month", DatePart::Month),
    // Calcite's (and Flink's) WEEK is the ISO week.
    ("week", DatePart::Week),
    ("dayofyear", DatePart::DayOfYear),
    ("dayofmonth", DatePart::Day),
    ("dayofweek", DatePart::DayOfWeekSunday1),
    ("hour", DatePart::Hour),
    ("minute", DatePart::Minute),
    ("second", DatePart::Second),
];

/// The UDFs of [`PARTS`].
pub(super) fn functions() -> impl Iterator<Item = ScalarUDF> {
    PARTS.into_iter().map(|(name, part)| ScalarUDF::from(Extract::new(name, part)))
}

/// One part of a date or timestamp, as a BIGINT (Flink's type for
/// `EXTRACT`).
#[derive(Debug, PartialEq, Eq)]
struct Extract {
    name: &'static str,
    part: DatePart,
    signature: Signature,
}

impl Extract {
    fn new(name: &'static str, part: DatePart) -> Self {
        Self { name, part, signature: Signature::any(1, Volatility::Immutable) }
    }
}

/// By name: each name takes one part (and `DatePart` has no `Hash`).
impl std::hash::Hash for Extract {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state)
    }
}

impl ScalarUDFImpl for Extract {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match &args[0] {
            DataType::Date32 | DataType::Date64 | DataType::Timestamp(..) | DataType::Null => Ok(DataType::Int64),
            // Flink reads a time for HOUR, MINUTE and SECOND too.
            DataType::Time32(_) | DataType::Time64(_)
                if matches!(self.part, DatePart::Hour | DatePart::Minute | DatePart::Second) =>
            {
                Ok(DataType::Int64)
            }
            other => plan_err!("{} takes a date or timestamp (argument 1), not {other}", self.name.to_uppercase()),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let values = args.args[0].to_array(args.number_rows)?;
        let values = match values.data_type() {
            DataType::Null => cast(&values, &DataType::Date32)?,
            _ => values,
        };
        let part = date_part(values.as_ref(), self.part)?;
        Ok(ColumnarValue::Array(cast(&part, &DataType::Int64)?))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::query;

    /// The examples of Flink's docs (docs/data/sql_functions.yml,
    /// "temporal"): YEAR(DATE '1994-09-27') returns 1994, QUARTER 3, MONTH 9,
    /// WEEK 39, DAYOFYEAR 270, DAYOFMONTH 27, DAYOFWEEK 3; of TIMESTAMP
    /// '1994-09-27 13:14:15' MINUTE 14, SECOND 15 (and HOUR 13).
    #[tokio::test]
    async fn flinks_documented_examples() {
        let d = "DATE '1994-09-27'";
        let got = query(&format!(
            "SELECT CONCAT_WS(',', YEAR({d}), QUARTER({d}), MONTH({d}), WEEK({d}), DAYOFYEAR({d}), DAYOFMONTH({d}), DAYOFWEEK({d}))"
        ))
        .await;
        assert_eq!(got, ["1994,3,9,39,270,27,3"]);
        let ts = "TIMESTAMP '1994-09-27 13:14:15'";
        let got =
            query(&format!("SELECT CONCAT_WS(',', HOUR({ts}), MINUTE({ts}), SECOND({ts}), DAYOFWEEK({ts}))")).await;
        assert_eq!(got, ["13,14,15,3"]);
        assert_eq!(query("SELECT arrow_typeof(DAYOFWEEK(DATE '2026-01-03'))").await, ["Int64"]);
        // 2026-01-03 is a Saturday, 2026-01-04 a Sunday.
        assert_eq!(
            query("SELECT DAYOFWEEK(d) FROM (VALUES (DATE '2026-01-03'), (DATE '2026-01-04'), (NULL)) t(d)").await,
            ["7", "1", "NULL"]
        );
    }
}
