//! The partition columns of rows read from a partitioned table's files:
//! Flink reads them from the directory names, typed by the DDL, since the
//! files do not hold them.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ScalarValue;
use weir_engine::EngineError;

use super::layout::PartitionLayout;

/// The values of one file's partition columns, in key order: parsed once
/// per file, repeated for each of its batches.
#[derive(Debug, Clone)]
pub(crate) struct PartitionValues {
    values: Arc<[ScalarValue]>,
}

impl PartitionValues {
    /// The typed values of directory `rel`'s unescaped `texts` (key order):
    /// the default partition name is NULL, any other text is cast to the
    /// column's type; a text that is not a value of that type is an error
    /// naming the directory, since the table's DDL and its files disagree.
    pub(crate) fn parse(
        layout: &PartitionLayout,
        texts: &[String],
        dir: &std::path::Path,
    ) -> Result<Self, EngineError> {
        let values = layout
            .keys()
            .iter()
            .zip(texts)
            .map(|(key, text)| {
                let parsed = if text == layout.default_name() {
                    ScalarValue::try_from(&key.data_type)
                } else {
                    ScalarValue::try_from_string(text.clone(), &key.data_type)
                };
                let value = parsed.map_err(|e| {
                    EngineError::Connector(format!(
                        "partition directory '{}': '{text}' is not a value of column '{}' ({}): {}",
                        dir.display(),
                        key.name,
                        crate::types::sql_name(&key.data_type),
                        e.strip_backtrace()
                    ))
                })?;
                // A failed cast may give NULL rather than an error.
                if value.is_null() && text != layout.default_name() {
                    return Err(EngineError::Connector(format!(
                        "partition directory '{}': '{text}' is not a value of column '{}' ({})",
                        dir.display(),
                        key.name,
                        crate::types::sql_name(&key.data_type)
                    )));
                }
                Ok(value)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { values: values.into() })
    }

    /// `rows` (the file's columns) with the partition columns put back at
    /// their places in `schema`, the table's row.
    pub(crate) fn complete(
        &self,
        layout: &PartitionLayout,
        schema: &SchemaRef,
        rows: RecordBatch,
    ) -> Result<RecordBatch, EngineError> {
        let n = rows.num_rows();
        let mut columns: Vec<Option<ArrayRef>> = vec![None; schema.fields().len()];
        for (at, column) in layout.data_indices().iter().zip(rows.columns()) {
            columns[*at] = Some(Arc::clone(column));
        }
        for (key, value) in layout.keys().iter().zip(self.values.iter()) {
            let column = value
                .to_array_of_size(n)
                .map_err(|e| EngineError::Connector(e.strip_backtrace()))?;
            columns[key.index] = Some(column);
        }
        let columns: Vec<ArrayRef> = columns
            .into_iter()
            .map(|c| {
                c.ok_or_else(|| {
                    EngineError::Plan("a column of a partitioned table is neither read nor partitioned".into())
                })
            })
            .collect::<Result<_, _>>()?;
        RecordBatch::try_new(Arc::clone(schema), columns).map_err(|e| {
            EngineError::Connector(format!(
                "rows of a partitioned table (a NOT NULL partition column in the default partition?): {e}"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{AsArray, Int64Array};
    use datafusion::arrow::datatypes::{DataType, Date32Type, Field, Int64Type, Schema};

    use super::super::layout::DEFAULT_PARTITION_NAME;
    use super::*;

    fn layout() -> (SchemaRef, PartitionLayout) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("b", DataType::Int64, true),
            Field::new("v", DataType::Int64, true),
            Field::new("d", DataType::Date32, true),
        ]));
        let l = PartitionLayout::new(&schema, &["d".into(), "b".into()], DEFAULT_PARTITION_NAME.into()).unwrap();
        (schema, l)
    }

    #[test]
    fn values_are_typed_by_the_ddl_and_put_back_in_place() {
        let (schema, l) = layout();
        let dir = std::path::Path::new("d=2024-02-29/b=7");
        let values = PartitionValues::parse(&l, &["2024-02-29".into(), "7".into()], dir).unwrap();
        let rows = RecordBatch::try_new(
            Arc::clone(l.data_schema()),
            vec![Arc::new(Int64Array::from(vec![1, 2]))],
        )
        .unwrap();
        let full = values.complete(&l, &schema, rows).unwrap();
        assert_eq!(full.column(0).as_primitive::<Int64Type>().values(), &[7, 7]);
        assert_eq!(full.column(1).as_primitive::<Int64Type>().values(), &[1, 2]);
        assert_eq!(full.column(2).as_primitive::<Date32Type>().values(), &[19782, 19782]);
        let null = PartitionValues::parse(&l, &[DEFAULT_PARTITION_NAME.into(), "7".into()], dir).unwrap();
        let rows =
            RecordBatch::try_new(Arc::clone(l.data_schema()), vec![Arc::new(Int64Array::from(vec![1]))]).unwrap();
        assert!(null.complete(&l, &schema, rows).unwrap().column(2).is_null(0));
    }

    #[test]
    fn a_value_of_another_type_names_the_directory() {
        let (_, l) = layout();
        let e = PartitionValues::parse(
            &l,
            &["2024-01-01".into(), "seven".into()],
            std::path::Path::new("x/b=seven"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("x/b=seven") && e.contains("'seven'") && e.contains("'b'"),
            "{e}"
        );
    }
}
