//! Flink's `IF(condition, then, else)`, which DataFusion lacks. Like
//! `CASE`, only the chosen branch is evaluated for a row (`IF(b = 0, 0,
//! a / b)` must not divide by zero), so the call is rewritten to `CASE
//! WHEN condition THEN then ELSE else END` while planning. (`IFNULL` is
//! DataFusion's `nvl`, which is Flink's.)

use datafusion::arrow::array::AsArray;
use datafusion::arrow::compute::kernels::zip::zip;
use datafusion::arrow::compute::{and, cast, is_not_null};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::expr_fn::when;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::type_coercion::binary::type_union_resolution;
use datafusion::logical_expr::{ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};

/// `IF(condition, then, else)`: `then` where the condition is TRUE, else
/// `else` (also where it is NULL); the branches' common type.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct If {
    signature: Signature,
}

impl If {
    pub(super) fn new() -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for If {
    fn name(&self) -> &str {
        "if"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let [condition, then, otherwise] = args else {
            return plan_err!("IF takes 3 arguments (condition, then, else), not {}", args.len());
        };
        if !matches!(condition, DataType::Boolean | DataType::Null) {
            return plan_err!("IF takes a BOOLEAN condition (argument 1), not {condition}");
        }
        let Some(common) = type_union_resolution(&[then.clone(), otherwise.clone()]) else {
            return plan_err!("IF's branches (arguments 2 and 3) have no common type: {then} and {otherwise}");
        };
        Ok(vec![DataType::Boolean, common.clone(), common])
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args[1].clone())
    }

    /// `CASE`, which evaluates only the branch each row takes.
    fn simplify(&self, args: Vec<Expr>, _info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        let Ok([condition, then, otherwise]) = <[Expr; 3]>::try_from(args) else {
            return plan_err!("IF takes 3 arguments (condition, then, else)");
        };
        Ok(ExprSimplifyResult::Simplified(when(condition, then).otherwise(otherwise)?))
    }

    fn short_circuits(&self) -> bool {
        true
    }

    /// Only where planning did not rewrite the call: both branches are
    /// evaluated already, and each row takes its own.
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [condition, then, otherwise] = args.args.as_slice() else {
            return exec_err!("IF takes 3 arguments");
        };
        let rows = args.number_rows;
        let condition = cast(&condition.to_array(rows)?, &DataType::Boolean)?;
        let condition = condition.as_boolean();
        // NULL takes the else branch.
        let mask = and(condition, &is_not_null(condition)?)?;
        let chosen = zip(&mask, &then.to_array(rows)?, &otherwise.to_array(rows)?)?;
        Ok(ColumnarValue::Array(chosen))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::query;

    /// Flink's docs (docs/data/sql_functions.yml): "IF(5 > 3, 5, 3) returns
    /// 5"; IFNULL: "IFNULL(nullable_column, 5) returns never NULL".
    #[tokio::test]
    async fn if_and_ifnull_as_flinks_docs_say() {
        assert_eq!(query("SELECT IF(5 > 3, 5, 3)").await, ["5"]);
        assert_eq!(
            query("SELECT IF(x > 1, 'big', 'small') FROM (VALUES (1), (2), (NULL)) t(x)").await,
            ["small", "big", "small"]
        );
        // Only the branch taken is evaluated: no division by zero.
        assert_eq!(query("SELECT IF(b = 0, 0, a / b) FROM (VALUES (6, 0), (6, 3)) t(a, b)").await, ["0", "2"]);
        // The branches' common type.
        assert_eq!(query("SELECT arrow_typeof(IF(true, 1, 2.5))").await, ["Float64"]);
        assert_eq!(query("SELECT IFNULL(x, 5) FROM (VALUES (1), (NULL)) t(x)").await, ["1", "5"]);
    }
}
