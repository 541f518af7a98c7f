//! The sink of a plain `SELECT` over a stream: hands result batches to the
//! front door (REPL, `weir run`) as windows fire.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use tokio::sync::mpsc;
use weir_engine::error::{EngineError, Result};
use weir_engine::sink::{SinkConnector, SinkWriter};

/// Batches in flight to the front door before the job waits for it.
const BUFFER: usize = 16;

/// Sends every result batch to one receiver.
#[derive(Debug)]
pub struct CollectSink {
    schema: SchemaRef,
    tx: mpsc::Sender<RecordBatch>,
}

impl CollectSink {
    /// The sink and the receiver of its rows.
    pub fn new(schema: SchemaRef) -> (Self, mpsc::Receiver<RecordBatch>) {
        let (tx, rx) = mpsc::channel(BUFFER);
        (Self { schema, tx }, rx)
    }
}

impl SinkConnector for CollectSink {
    fn describe(&self) -> String {
        "collect to client".into()
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The client applies the changes (the REPL's live table).
    fn accepts_changes(&self) -> bool {
        true
    }

    fn open(&self, _job: &str, _subtask: usize, _parallelism: usize) -> Result<Box<dyn SinkWriter>> {
        Ok(Box::new(CollectWriter { tx: self.tx.clone() }))
    }
}

struct CollectWriter {
    tx: mpsc::Sender<RecordBatch>,
}

#[async_trait::async_trait]
impl SinkWriter for CollectWriter {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        self.tx
            .send(batch)
            .await
            .map_err(|_| EngineError::Connector("the client stopped reading results".into()))
    }

    async fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}
