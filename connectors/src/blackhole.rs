//! The `blackhole` connector: a sink that discards, for benchmarks.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use weir_engine::error::Result;
use weir_engine::sink::{SinkConnector, SinkWriter};

use crate::error::ConnectorError;
use crate::options::Options;

/// Builds the sink; the connector takes no options. Columns of any type are
/// fine since nothing is encoded.
pub(crate) fn create(
    options: &Options,
    schema: SchemaRef,
) -> Result<Arc<dyn SinkConnector>, ConnectorError> {
    options.check_keys(&[])?;
    Ok(Arc::new(BlackholeSink { schema }))
}

/// Accepts every row and keeps none.
#[derive(Debug)]
struct BlackholeSink {
    schema: SchemaRef,
}

impl SinkConnector for BlackholeSink {
    fn describe(&self) -> String {
        "blackhole".into()
    }

    fn accepts_changes(&self) -> bool {
        true
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn open(
        &self,
        _job_id: &str,
        _subtask: usize,
        _parallelism: usize,
    ) -> Result<Box<dyn SinkWriter>> {
        Ok(Box::new(Discard))
    }
}

struct Discard;

#[async_trait::async_trait]
impl SinkWriter for Discard {
    async fn write(&mut self, _batch: RecordBatch) -> Result<()> {
        Ok(())
    }

    async fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}
