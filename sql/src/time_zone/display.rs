//! Results as the user sees them: a `TIMESTAMP_LTZ` column is shown as
//! the wall-clock time in the session's zone, as Flink's SQL client shows
//! it, whether the rows reach the REPL, `weir run` or a Postgres client.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMillisecondType};
use datafusion::error::Result;

use super::{LocalZone, is_ltz};
use crate::types::TIMESTAMP_MS;

/// The schema of results shown in the zone: `TIMESTAMP_LTZ` columns
/// become `TIMESTAMP(3)`, or `schema` itself if it has none.
pub fn shown_schema(schema: &SchemaRef) -> SchemaRef {
    if !schema.fields().iter().any(|f| is_ltz(f.data_type())) {
        return Arc::clone(schema);
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            if is_ltz(f.data_type()) {
                f.as_ref().clone().with_data_type(TIMESTAMP_MS)
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// `batch` with its `TIMESTAMP_LTZ` columns read in `zone`.
pub fn shown(batch: RecordBatch, zone: &LocalZone) -> Result<RecordBatch> {
    let schema = batch.schema();
    if !schema.fields().iter().any(|f| is_ltz(f.data_type())) {
        return Ok(batch);
    }
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|c| -> Result<ArrayRef> {
            if !is_ltz(c.data_type()) {
                return Ok(Arc::clone(c));
            }
            let ms = cast(c, &DataType::Timestamp(TimeUnit::Millisecond, None))?;
            let local = ms
                .as_primitive::<TimestampMillisecondType>()
                .unary::<_, TimestampMillisecondType>(|t| zone.to_local(t));
            Ok(Arc::new(local))
        })
        .collect::<Result<_>>()?;
    Ok(RecordBatch::try_new(shown_schema(&schema), columns)?)
}
