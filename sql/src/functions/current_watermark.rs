//! Flink's `CURRENT_WATERMARK(rowtime)`: the watermark of the operator
//! that evaluates it, typed as the rowtime, NULL before the first one
//! (`weir_engine::current_watermark`). Flink's docs filter late rows with
//! it: `WHERE CURRENT_WATERMARK(ts) IS NULL OR ts > CURRENT_WATERMARK(ts)`.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::plan_err;
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};

/// `CURRENT_WATERMARK(rowtime)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct CurrentWatermark {
    signature: Signature,
}

impl CurrentWatermark {
    pub(super) fn new() -> Self {
        // Volatile: read as rows come, never folded into a constant.
        Self {
            signature: Signature::any(1, Volatility::Volatile),
        }
    }
}

impl ScalarUDFImpl for CurrentWatermark {
    fn name(&self) -> &str {
        "current_watermark"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match &args[0] {
            DataType::Timestamp(_, tz) => Ok(DataType::Timestamp(
                datafusion::arrow::datatypes::TimeUnit::Millisecond,
                tz.clone(),
            )),
            other => plan_err!("CURRENT_WATERMARK takes the rowtime column (a TIMESTAMP(3)), not {other}"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let tz = match args.return_field.data_type() {
            DataType::Timestamp(_, tz) => tz.clone(),
            _ => None,
        };
        let values = weir_engine::current_watermark::current(args.number_rows).with_timezone_opt(tz);
        Ok(ColumnarValue::Array(Arc::new(values)))
    }
}
