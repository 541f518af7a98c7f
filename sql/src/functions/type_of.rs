//! Flink's `TYPEOF(value[, force_serializable])`, which DataFusion lacks
//! (its `arrow_typeof` names Arrow's types): the value's SQL type in
//! Flink's words, with `NOT NULL` when the value cannot be NULL, as Flink's
//! summary string (`TYPEOF(1)` is `INT NOT NULL`). Weir's type names are
//! always serializable, so the second argument changes nothing.
//!
//! Differences: a string literal is `STRING NOT NULL` (Flink: `CHAR(n) NOT
//! NULL`), and a rowtime is not marked `*ROWTIME*`.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{ScalarValue, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};

/// `TYPEOF(value[, force_serializable])`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct TypeOf {
    signature: Signature,
}

impl TypeOf {
    pub(super) fn new() -> Self {
        Self {
            signature: Signature::one_of(
                vec![TypeSignature::Any(1), TypeSignature::Any(2)],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for TypeOf {
    fn name(&self) -> &str {
        "typeof"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if let Some(t) = args.get(1).filter(|t| !matches!(t, DataType::Boolean | DataType::Null)) {
            return plan_err!("TYPEOF: force_serializable (argument 2) is a BOOLEAN, not {t}");
        }
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let field = &args.arg_fields[0];
        let name = match field.data_type() {
            DataType::Null => "NULL".to_string(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "STRING".to_string(),
            other => crate::types::sql_name(other),
        };
        let name = if field.is_nullable() || field.data_type() == &DataType::Null {
            name
        } else {
            format!("{name} NOT NULL")
        };
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(name))))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{query, query_err};

    #[tokio::test]
    async fn flinks_type_names() {
        for (sql, expected) in [
            ("typeof(CAST(1 AS INT))", "INT NOT NULL"),
            ("typeof(CAST(1 AS BIGINT))", "BIGINT NOT NULL"),
            ("typeof('a')", "STRING NOT NULL"),
            ("typeof(1.5e0)", "DOUBLE NOT NULL"),
            ("typeof(CAST(NULL AS INT))", "INT"),
            ("typeof(NULL)", "NULL"),
            ("typeof(CAST(2.5 AS DECIMAL(10, 2)), TRUE)", "DECIMAL(10, 2) NOT NULL"),
            ("typeof(make_array(CAST(1 AS INT)))", "ARRAY<INT> NOT NULL"),
            ("typeof(x) FROM (VALUES (1), (NULL)) AS t(x) LIMIT 1", "BIGINT"),
        ] {
            assert_eq!(query(&format!("SELECT {sql}")).await, [expected], "{sql}");
        }
    }

    #[tokio::test]
    async fn force_serializable_is_a_boolean() {
        let e = query_err("SELECT typeof(1, 'yes')").await;
        assert!(
            e.contains("TYPEOF: force_serializable (argument 2) is a BOOLEAN"),
            "{e}"
        );
    }
}
