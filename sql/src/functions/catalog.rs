//! Flink's `CURRENT_DATABASE()` and `CURRENT_CATALOG()`: the names Flink
//! gives its built-in catalog and database, `default_catalog` and
//! `default_database`. Weir has one catalog of one database, which Flink
//! users' SQL knows by those names (DataFusion's own are `datafusion` and
//! `public`, which a Flink script never names).

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

/// Flink's name of the built-in catalog.
pub const DEFAULT_CATALOG: &str = "default_catalog";
/// Flink's name of the built-in catalog's database.
pub const DEFAULT_DATABASE: &str = "default_database";

/// A function returning one name.
#[derive(Debug, PartialEq, Eq, Hash)]
struct CurrentName {
    name: &'static str,
    value: &'static str,
    signature: Signature,
}

impl ScalarUDFImpl for CurrentName {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(self.value.to_string()))))
    }
}

/// `current_catalog` and `current_database`, to register.
pub fn functions() -> Vec<ScalarUDF> {
    [
        ("current_catalog", DEFAULT_CATALOG),
        ("current_database", DEFAULT_DATABASE),
    ]
    .into_iter()
    .map(|(name, value)| {
        ScalarUDF::from(CurrentName {
            name,
            value,
            signature: Signature::nullary(Volatility::Immutable),
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::super::testing::query;

    /// Flink's docs: "CURRENT_DATABASE() Return the current database."
    #[tokio::test]
    async fn flinks_default_names() {
        assert_eq!(query("SELECT CURRENT_DATABASE()").await, ["default_database"]);
        // (`CURRENT_CATALOG()` with parentheses is read by Weir's dialect.)
        assert_eq!(query("SELECT CURRENT_CATALOG").await, ["default_catalog"]);
    }
}
