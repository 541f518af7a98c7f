//! A filesystem table as a lookup table, as Flink's filesystem connector
//! is one (`FileSystemLookupFunction`): `JOIN side FOR SYSTEM_TIME AS OF
//! s.proc_time AS d ON …` reads the table's files whole into memory
//! (`full_cache.rs`: Flink's FULL cache) and reads them again once
//! `'lookup.join.cache.ttl'` (Flink's filesystem option, 60 min by
//! default) or the `lookup.full-cache.*` schedule says — a small dimension
//! table that changes now and then (Nexmark q13's side input).
//!
//! The files are read by the table's own source reader (same listing,
//! formats, partition columns and errors as a scan).

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::SchemaRef;
use weir_engine::EngineError;
use weir_engine::error::Result;
use weir_engine::source::{Assignment, Positions, SourceConnector, SourceEvent};

use super::source::FileSource;
use crate::full_cache::Loader;

/// `'lookup.join.cache.ttl'`: how long the rows read are used (the FULL
/// cache's periodic interval, under the filesystem connector's older name).
pub(crate) const CACHE_TTL: &str = "lookup.join.cache.ttl";

/// Reads a filesystem table's files whole.
#[derive(Debug)]
pub(crate) struct FileLoader {
    source: Arc<FileSource>,
}

impl FileLoader {
    pub(crate) fn new(source: FileSource) -> Self {
        Self {
            source: Arc::new(source),
        }
    }
}

#[async_trait::async_trait]
impl Loader for FileLoader {
    fn describe(&self) -> String {
        self.source.describe()
    }

    fn schema(&self) -> SchemaRef {
        self.source.schema()
    }

    /// Every row of the files, in one batch.
    async fn load(&self) -> Result<RecordBatch> {
        let source = &self.source;
        // Listing is synchronous (`std::fs`).
        let listing = Arc::clone(source);
        let total = tokio::task::spawn_blocking(move || listing.partitions(1))
            .await
            .map_err(|e| EngineError::Connector(format!("listing {}: {e}", source.describe())))??;
        let assignment = Assignment {
            subtask: 0,
            parallelism: 1,
            total,
            partitions: (0..total).collect(),
        };
        let mut reader = source.open(assignment, false, &Positions::new())?;
        let mut batches = Vec::new();
        while let Some(event) = reader.next().await? {
            if let SourceEvent::Batch { batch, .. } = event {
                batches.push(batch);
            }
        }
        concat_batches(&source.schema(), &batches)
            .map_err(|e| EngineError::Connector(format!("reading {}: {e}", source.describe())))
    }
}
