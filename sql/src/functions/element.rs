//! Flink's `ELEMENT(array)`, which DataFusion lacks: the sole element of
//! an array; NULL for an empty or NULL array; an array of more than one
//! element is an error (Flink's job fails too), since a query that
//! expects one element and gets several has a bug worth stopping for.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, UInt64Array};
use datafusion::arrow::compute::{cast, take};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};

/// `ELEMENT(array)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct Element {
    signature: Signature,
}

impl Element {
    pub(super) fn new() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for Element {
    fn name(&self) -> &str {
        "element"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match &args[0] {
            DataType::List(item) | DataType::LargeList(item) | DataType::FixedSizeList(item, _) => {
                Ok(item.data_type().clone())
            }
            other => plan_err!("ELEMENT takes an ARRAY, not {other}"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = args.args[0].to_array(args.number_rows)?;
        let item = match arrays.data_type() {
            DataType::List(item) | DataType::LargeList(item) | DataType::FixedSizeList(item, _) => item.clone(),
            other => return exec_err!("ELEMENT takes an ARRAY, not {other}"),
        };
        let item = Arc::new(Field::new(item.name(), item.data_type().clone(), true));
        let lists = cast(&arrays, &DataType::List(item))?;
        let lists = lists.as_list::<i32>();
        let offsets = lists.value_offsets();
        // Where each row's element is among the lists' values; NULL where
        // there is none.
        let mut indices = Vec::with_capacity(lists.len());
        for row in 0..lists.len() {
            let len = offsets[row + 1] - offsets[row];
            indices.push(match len {
                _ if lists.is_null(row) => None,
                0 => None,
                1 => Some(offsets[row] as u64),
                n => return exec_err!("ELEMENT: the array has {n} elements; it must have at most one"),
            });
        }
        let elements = take(lists.values().as_ref(), &UInt64Array::from(indices), None)?;
        Ok(ColumnarValue::Array(elements))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{query, query_err};

    #[tokio::test]
    async fn the_sole_element_or_null() {
        assert_eq!(query("SELECT element(make_array(7))").await, ["7"]);
        assert_eq!(query("SELECT element(make_array('a'))").await, ["a"]);
        assert_eq!(query("SELECT element(CAST(make_array() AS INT[]))").await, ["NULL"]);
        assert_eq!(query("SELECT element(CAST(NULL AS INT[]))").await, ["NULL"]);
        assert_eq!(
            query("SELECT element(a) FROM (VALUES (make_array(1)), (make_array(2)), (CAST(NULL AS BIGINT[]))) AS t(a)")
                .await,
            ["1", "2", "NULL"]
        );
    }

    #[tokio::test]
    async fn more_than_one_element_is_an_error() {
        let e = query_err("SELECT element(make_array(1, 2))").await;
        assert!(
            e.contains("ELEMENT: the array has 2 elements; it must have at most one"),
            "{e}"
        );
        let e = query_err("SELECT element(1)").await;
        assert!(e.contains("ELEMENT takes an ARRAY"), "{e}");
    }
}
