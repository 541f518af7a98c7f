//! Flink's `GREATEST(value, …)` and `LEAST(value, …)`: the greatest (least)
//! of the arguments in their common type, and NULL when any argument is
//! NULL (Flink's docs: "Returns NULL if any argument is NULL"), where
//! DataFusion's namesakes skip NULLs. Each is Arrow's comparison and `zip`
//! kernels over whole arrays.

use datafusion::arrow::array::{ArrayRef, make_array, new_null_array};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::kernels::cmp::{gt, lt};
use datafusion::arrow::compute::kernels::zip::zip;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::plan_err;
use datafusion::error::Result;
use datafusion::logical_expr::type_coercion::binary::type_union_resolution;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

/// `GREATEST` and `LEAST`, to register (replacing DataFusion's).
pub(super) fn functions() -> [ScalarUDF; 2] {
    let f = |name, greatest| {
        ScalarUDF::from(Extreme { name, greatest, signature: Signature::user_defined(Volatility::Immutable) })
    };
    [f("greatest", true), f("least", false)]
}

/// One of `GREATEST` (`greatest`) and `LEAST`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Extreme {
    name: &'static str,
    greatest: bool,
    signature: Signature,
}

/// Whether values of `t` are ordered (Arrow compares them).
fn ordered(t: &DataType) -> bool {
    t.is_numeric()
        || t.is_temporal()
        || matches!(
            t,
            DataType::Null
                | DataType::Boolean
                | DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Binary
                | DataType::LargeBinary
                | DataType::BinaryView
        )
}

impl ScalarUDFImpl for Extreme {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let name = self.name.to_uppercase();
        if args.is_empty() {
            return plan_err!("{name} takes at least one argument");
        }
        for (i, t) in args.iter().enumerate() {
            if !ordered(t) {
                return plan_err!("{name} takes comparable values (argument {}), not {t}", i + 1);
            }
        }
        let Some(common) = type_union_resolution(args) else {
            let types: Vec<String> = args.iter().map(|t| t.to_string()).collect();
            return plan_err!("{name}'s arguments have no common type: {}", types.join(", "));
        };
        Ok(vec![common; args.len()])
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args[0].clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let values: Vec<ArrayRef> = args.args.iter().map(|a| a.to_array(rows)).collect::<Result<_>>()?;
        let result_type = args.return_field.data_type().clone();
        if result_type == DataType::Null {
            return Ok(ColumnarValue::Array(new_null_array(&DataType::Null, rows)));
        }
        let mut best = values[0].clone();
        for next in &values[1..] {
            // Where the comparison is NULL, zip keeps `best`; those rows
            // are NULL below anyway.
            let better = if self.greatest { gt(next, &best)? } else { lt(next, &best)? };
            best = zip(&better, next, &best)?;
        }
        let nulls = values
            .iter()
            .fold(None, |acc: Option<NullBuffer>, v| NullBuffer::union(acc.as_ref(), v.logical_nulls().as_ref()));
        let Some(nulls) = nulls else { return Ok(ColumnarValue::Array(best)) };
        let data = best.to_data().into_builder().nulls(Some(nulls)).build()?;
        Ok(ColumnarValue::Array(make_array(data)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{query, query_err};

    /// Flink's docs: "Returns the greatest (least) value of the list of
    /// arguments. Returns NULL if any argument is NULL."
    #[tokio::test]
    async fn null_if_any_argument_is_null() {
        assert_eq!(query("SELECT GREATEST(1, 5, 3)").await, ["5"]);
        assert_eq!(query("SELECT LEAST(1, 5, 3)").await, ["1"]);
        assert_eq!(query("SELECT GREATEST(1, CAST(NULL AS INT), 3)").await, ["NULL"]);
        assert_eq!(query("SELECT LEAST(1, CAST(NULL AS INT), 3)").await, ["NULL"]);
        assert_eq!(
            query("SELECT GREATEST(a, b) FROM (VALUES (1, 2), (4, 3), (NULL, 3), (5, NULL)) t(a, b)").await,
            ["2", "4", "NULL", "NULL"]
        );
        assert_eq!(
            query("SELECT LEAST(a, b, c) FROM (VALUES (1, 2, 0), (4, 3, 9), (NULL, 3, 1)) t(a, b, c)").await,
            ["0", "3", "NULL"]
        );
        assert_eq!(query("SELECT GREATEST('apple', 'pear', 'fig')").await, ["pear"]);
        assert_eq!(query("SELECT LEAST(DATE '2026-01-02', DATE '2025-12-31')").await, ["2025-12-31"]);
        // The arguments' common type.
        assert_eq!(query("SELECT GREATEST(1, 2.5)").await, ["2.5"]);
        assert_eq!(query("SELECT GREATEST(7)").await, ["7"]);
    }

    #[tokio::test]
    async fn incomparable_arguments_are_errors() {
        let e = query_err("SELECT GREATEST(1, make_array(1))").await;
        assert!(e.contains("GREATEST") && e.contains("argument 2"), "{e}");
    }
}
