//! Flink functions that DataFusion lacks, registered as DataFusion UDFs.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, TimestampMillisecondArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::compute::kernels::numeric::mul;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{
    AggregateUDF, ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};
use datafusion::prelude::SessionContext;

mod arithmetic;
mod avg;
mod catalog;
mod charset;
mod collect;
mod comparison;
mod conditional;
mod convert_tz;
mod current_watermark;
pub(crate) mod date_format;
mod element;
mod encoding;
mod extract;
mod hashes;
mod java_pattern;
mod json;
mod json_agg;
mod json_build;
mod json_path;
mod json_sql;
mod map_union;
mod predicates;
mod printf;
mod random;
mod regexp;
mod regexp_all;
mod split;
mod str_to_map;
mod strings;
#[cfg(test)]
mod testing;
mod text_codecs;
mod timestamp_arith;
mod to_time;
mod type_of;
mod unhex;
pub(crate) mod unix_timestamp;
mod url;
pub mod value_size;
pub(crate) mod wall_clock;

/// Registers Weir's extra functions with a DataFusion context.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::from(ToTimestampLtz::new()));
    ctx.register_udf(ScalarUDF::from(current_watermark::CurrentWatermark::new()));
    ctx.register_udaf(AggregateUDF::from(avg::FlinkAvg::new()));
    ctx.register_udaf(AggregateUDF::from(collect::Collect::new()));
    for f in json_agg::functions() {
        ctx.register_udaf(f);
    }
    value_size::register(ctx, value_size::DEFAULT_MAX_VALUE_BYTES as usize);
    // Flink's built-in scalar functions where DataFusion lacks them or
    // means something else by the name (docs/functions.md).
    ctx.register_udf(ScalarUDF::from(date_format::DateFormat::new()));
    ctx.register_udf(ScalarUDF::from(regexp::RegexpExtract::new()));
    ctx.register_udf(ScalarUDF::from(regexp::RegexpReplace::new()));
    ctx.register_udf(ScalarUDF::from(strings::SplitIndex::new()));
    ctx.register_udf(ScalarUDF::from(strings::HashCode::new()));
    ctx.register_udf(ScalarUDF::from(conditional::If::new()));
    ctx.register_udf(ScalarUDF::from(arithmetic::Mod::new()));
    for f in extract::functions() {
        ctx.register_udf(f);
    }
    // Where Flink's meaning of a name DataFusion also has differs, Flink's
    // replaces DataFusion's.
    ctx.register_udf(ScalarUDF::from(strings::Concat::new()));
    ctx.register_udf(ScalarUDF::from(strings::Chr::new()));
    for f in comparison::functions()
        .into_iter()
        .chain(to_time::functions())
        .chain(hashes::functions())
    {
        ctx.register_udf(f);
    }
    ctx.register_udf(ScalarUDF::from(strings::Locate::new()));
    ctx.register_udf(ScalarUDF::from(regexp::Regexp::new()));
    ctx.register_udf(ScalarUDF::from(arithmetic::Truncate::new()));
    ctx.register_udf(ScalarUDF::from(url::ParseUrl::new()));
    ctx.register_udf(ScalarUDF::from(str_to_map::StrToMap::new()));
    ctx.register_udf(ScalarUDF::from(random::RandInteger::new()));
    // Replaces DataFusion's `rand` (its `random()`), which takes no seed.
    ctx.register_udf(ScalarUDF::from(random::Rand::new()));
    for f in timestamp_arith::functions() {
        ctx.register_udf(f);
    }
    for f in encoding::functions()
        .into_iter()
        .chain(predicates::functions())
        .chain(json::functions())
        .chain(json_build::functions())
        .chain(charset::functions())
        .chain(catalog::functions())
        .chain(regexp_all::functions())
        .chain(text_codecs::functions())
    {
        ctx.register_udf(f);
    }
    ctx.register_udf(ScalarUDF::from(convert_tz::ConvertTz::new()));
    ctx.register_udf(ScalarUDF::from(type_of::TypeOf::new()));
    ctx.register_udf(ScalarUDF::from(element::Element::new()));
    ctx.register_udf(ScalarUDF::from(split::Split::new()));
    ctx.register_udf(ScalarUDF::from(map_union::MapUnion::new()));
    ctx.register_udf(ScalarUDF::from(unhex::Unhex::new()));
    ctx.register_udf(ScalarUDF::from(printf::Printf::new()));
    // Flink's MAP_FROM_ARRAYS(keys, values) is DataFusion's map(keys,
    // values); Flink's ARRAY_REMOVE removes every equal element, as
    // DataFusion's array_remove_all (its array_remove only the first).
    for (function, alias) in [("map", "map_from_arrays"), ("array_remove_all", "array_remove")] {
        if let Ok(f) = ctx.udf(function) {
            ctx.register_udf(f.as_ref().clone().with_aliases([alias]));
        }
    }
}

/// `TO_TIMESTAMP_LTZ(epoch[, precision])`: epoch seconds (precision 0) or
/// milliseconds (precision 3, the default) to a `TIMESTAMP_LTZ(3)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ToTimestampLtz {
    signature: Signature,
}

impl ToTimestampLtz {
    fn new() -> Self {
        Self {
            signature: Signature::one_of(
                vec![TypeSignature::Any(1), TypeSignature::Any(2)],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for ToTimestampLtz {
    fn name(&self) -> &str {
        "to_timestamp_ltz"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if !args[0].is_integer() {
            return plan_err!("TO_TIMESTAMP_LTZ takes an integer epoch value, not {}", args[0]);
        }
        Ok(crate::time_zone::ltz_type())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let precision = match args
            .args
            .get(1)
            .unwrap_or(&ColumnarValue::Scalar(ScalarValue::Int64(Some(3))))
        {
            ColumnarValue::Scalar(s) => match s {
                ScalarValue::Int64(Some(p)) => *p,
                ScalarValue::Int32(Some(p)) => *p as i64,
                other => return exec_err!("TO_TIMESTAMP_LTZ precision must be 0 or 3, got {other}"),
            },
            ColumnarValue::Array(_) => return exec_err!("TO_TIMESTAMP_LTZ precision must be a constant"),
        };
        let factor: i64 = match precision {
            0 => 1000,
            3 => 1,
            p => return exec_err!("TO_TIMESTAMP_LTZ precision must be 0 or 3, got {p}"),
        };
        let values = args.args[0].to_array(args.number_rows)?;
        let values: ArrayRef = cast(&values, &DataType::Int64)?;
        let millis = if factor == 1 {
            values
        } else {
            let f = datafusion::arrow::array::Int64Array::new_scalar(factor);
            mul(&values, &f)?
        };
        let millis = millis.as_primitive::<Int64Type>();
        let out = TimestampMillisecondArray::new(millis.values().clone(), millis.nulls().cloned())
            .with_timezone(crate::time_zone::LTZ_LABEL);
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::testing::query;

    /// Flink's docs: "TO_TIMESTAMP_LTZ(numeric[, precision]) … If no
    /// precision is provided, the default precision is 3" (milliseconds).
    #[tokio::test]
    async fn to_timestamp_ltz_defaults_to_milliseconds() {
        assert_eq!(
            query("SELECT CAST(TO_TIMESTAMP_LTZ(1500) AS BIGINT) = CAST(TO_TIMESTAMP_LTZ(1500, 3) AS BIGINT)").await,
            ["true"]
        );
        assert_eq!(
            query("SELECT TO_TIMESTAMP_LTZ(2, 0) > TO_TIMESTAMP_LTZ(1999)").await,
            ["true"]
        );
    }
}
