//! `VALUES (…), (…)` in a streaming query: Flink reads it as a bounded,
//! insert-only stream of those rows, which is how most examples of Flink's
//! documentation make their input.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::Values;
use datafusion::physical_plan::ColumnarValue;
use weir_connectors::rows::RowsSource;
use weir_engine::plan::StreamNode;
use weir_engine::source::SourcePlan;

use super::{Flow, StreamPlanner};
use crate::error::Result;

/// The name `EXPLAIN` and state identity give a `VALUES` source.
const VALUES: &str = "VALUES";

impl StreamPlanner<'_> {
    /// `SELECT <constants>` without FROM: Flink runs it as a bounded stream
    /// of one row, like `VALUES` of one row.
    pub(super) fn one_row(&self) -> Result<Flow> {
        let schema = Arc::new(datafusion::arrow::datatypes::Schema::empty());
        let options = datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(1));
        let rows =
            RecordBatch::try_new_with_options(Arc::clone(&schema), vec![], &options).map_err(DataFusionError::from)?;
        Ok(Flow::new(StreamNode::source(Arc::new(rows_source(rows, schema)))))
    }

    pub(super) fn values(&self, values: &Values) -> Result<Flow> {
        let schema = Arc::new(values.schema.as_arrow().clone());
        // Each value is a constant expression: evaluated over one empty row.
        let one_row = RecordBatch::try_new_with_options(
            Arc::new(datafusion::arrow::datatypes::Schema::empty()),
            vec![],
            &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(1)),
        )
        .map_err(DataFusionError::from)?;
        let empty = DFSchema::empty();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
        for (i, field) in schema.fields().iter().enumerate() {
            let scalars = values
                .values
                .iter()
                .map(|row| {
                    let value = self.physical(&row[i], &empty)?.evaluate(&one_row)?;
                    Ok(match value {
                        ColumnarValue::Scalar(s) => s,
                        ColumnarValue::Array(a) => ScalarValue::try_from_array(&a, 0)?,
                    })
                })
                .collect::<Result<Vec<ScalarValue>>>()?;
            let array = match scalars.is_empty() {
                true => datafusion::arrow::array::new_empty_array(field.data_type()),
                false => ScalarValue::iter_to_array(scalars)?,
            };
            columns.push(match array.data_type() == field.data_type() {
                true => array,
                false => cast(&array, field.data_type()).map_err(DataFusionError::from)?,
            });
        }
        let rows = RecordBatch::try_new(Arc::clone(&schema), columns).map_err(DataFusionError::from)?;
        Ok(Flow::new(StreamNode::source(Arc::new(rows_source(rows, schema)))))
    }
}

/// The source of the bounded stream `rows`.
fn rows_source(rows: RecordBatch, schema: datafusion::arrow::datatypes::SchemaRef) -> SourcePlan {
    SourcePlan {
        table: VALUES.into(),
        connector: RowsSource::connector(rows),
        computed: None,
        watermark: None,
        schema,
        report_bad_records: false,
        late_output: None,
        read: None,
    }
}
