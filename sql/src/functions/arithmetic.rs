//! Flink's `MOD(a, b)`, which DataFusion lacks (it has the `%` operator):
//! the remainder of `a` divided by `b`, negative only when `a` is, as
//! Java's `%`. Arrow's `rem` kernel has those semantics, over the whole
//! array.

use datafusion::arrow::compute::kernels::numeric::rem;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::plan_err;
use datafusion::error::Result;
use datafusion::logical_expr::type_coercion::binary::type_union_resolution;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};

/// `MOD(a, b)` over the arguments' common numeric type; NULL when either is
/// NULL; an error when an integer `b` is 0 (Java's ArithmeticException).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct Mod {
    signature: Signature,
}

impl Mod {
    pub(super) fn new() -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for Mod {
    fn name(&self) -> &str {
        "mod"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let [a, b] = args else {
            return plan_err!("MOD takes 2 arguments, not {}", args.len());
        };
        for (i, t) in [a, b].into_iter().enumerate() {
            if !(t.is_numeric() || *t == DataType::Null) {
                return plan_err!("MOD takes numbers (argument {}), not {t}", i + 1);
            }
        }
        let common = match type_union_resolution(&[a.clone(), b.clone()]) {
            Some(DataType::Null) | None => DataType::Int32,
            Some(t) => t,
        };
        Ok(vec![common.clone(), common])
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args[0].clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let a = args.args[0].to_array(rows)?;
        let b = args.args[1].to_array(rows)?;
        Ok(ColumnarValue::Array(rem(&a, &b)?))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{query, query_err};

    /// Flink's docs (docs/data/sql_functions.yml, "numeric1 % numeric2 /
    /// MOD"): "The result is negative only if numeric1 is negative."
    #[tokio::test]
    async fn remainder_has_the_sign_of_the_dividend() {
        assert_eq!(
            query("SELECT MOD(a, b) FROM (VALUES (7, 3), (-7, 3), (7, -3), (-7, -3), (NULL, 3)) t(a, b)").await,
            ["1", "-1", "1", "-1", "NULL"]
        );
        assert_eq!(query("SELECT MOD(CAST(10 AS BIGINT), CAST(4 AS INT))").await, ["2"]);
        assert_eq!(query("SELECT MOD(7.5, 2)").await, ["1.5"]);
        let e = query_err("SELECT MOD(a, b) FROM (VALUES (1, 0)) t(a, b)").await;
        assert!(e.to_lowercase().contains("divide by zero"), "{e}");
        let e = query_err("SELECT MOD('a', 2)").await;
        assert!(e.contains("MOD") && e.contains("argument 1"), "{e}");
    }
}
