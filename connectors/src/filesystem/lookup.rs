//! A filesystem table as a lookup table, as Flink's filesystem connector
//! is one (`FileSystemLookupFunction`): `JOIN side FOR SYSTEM_TIME AS OF
//! s.proc_time AS d ON …` reads the table's files whole into memory at the
//! first lookup, answers every lookup from there, and reads them again once
//! `'lookup.join.cache.ttl'` (Flink's option, 60 min by default) has passed
//! — a small dimension table that changes now and then (Nexmark q13's side
//! input).
//!
//! The files are read by the table's own source reader (same listing,
//! formats, partition columns and errors as a scan), one copy shared by the
//! subtasks; each subtask's client indexes it by the join's key columns.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{RecordBatch, UInt32Array};
use datafusion::arrow::compute::{concat_batches, take_record_batch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ScalarValue;
use tokio::sync::Mutex;
use weir_engine::EngineError;
use weir_engine::error::Result;
use weir_engine::lookup::{LookupClient, LookupOptions, LookupSource};
use weir_engine::source::{Assignment, Positions, SourceConnector, SourceEvent};

use super::source::FileSource;

/// `'lookup.join.cache.ttl'`: how long the rows read are used.
pub(crate) const CACHE_TTL: &str = "lookup.join.cache.ttl";

/// Flink's default `'lookup.join.cache.ttl'`.
const DEFAULT_TTL: Duration = Duration::from_secs(60 * 60);

/// Lookups a subtask has in flight: each is a hash probe once the rows are
/// in memory.
const MAX_CONCURRENT: usize = 64;

/// The table's rows as last read, and when.
struct Loaded {
    at: Instant,
    rows: RecordBatch,
}

/// A filesystem table rows are looked up in.
pub(crate) struct FileLookup {
    source: Arc<FileSource>,
    schema: SchemaRef,
    options: LookupOptions,
    ttl: Duration,
    /// Shared by every subtask's client: one copy of the rows.
    loaded: Arc<Mutex<Option<Arc<Loaded>>>>,
}

impl std::fmt::Debug for FileLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileLookup").field("source", &self.source).field("ttl", &self.ttl).finish()
    }
}

impl FileLookup {
    /// A lookup table over what `source` reads; `ttl` is
    /// `'lookup.join.cache.ttl'` if given.
    pub(crate) fn new(source: FileSource, ttl: Option<Duration>) -> Self {
        let schema = source.schema();
        Self {
            source: Arc::new(source),
            schema,
            // Answers come from memory: the operator's own cache would only
            // copy them.
            options: LookupOptions { max_concurrent: MAX_CONCURRENT, ordered: true, cache_max_rows: 0, cache_ttl: None },
            ttl: ttl.unwrap_or(DEFAULT_TTL),
            loaded: Arc::new(Mutex::new(None)),
        }
    }
}

impl LookupSource for FileLookup {
    fn describe(&self) -> String {
        format!("{} (read whole, again every {:?})", self.source.describe(), self.ttl)
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn options(&self) -> &LookupOptions {
        &self.options
    }

    fn open(&self, keys: &[usize]) -> Result<Arc<dyn LookupClient>> {
        Ok(Arc::new(FileLookupClient {
            source: Arc::clone(&self.source),
            ttl: self.ttl,
            loaded: Arc::clone(&self.loaded),
            keys: keys.to_vec(),
            index: Mutex::new(None),
        }))
    }
}

/// The rows of each key, by row number in [`Loaded::rows`].
type Index = HashMap<Vec<ScalarValue>, Vec<u32>>;

/// One subtask's lookups.
struct FileLookupClient {
    source: Arc<FileSource>,
    ttl: Duration,
    loaded: Arc<Mutex<Option<Arc<Loaded>>>>,
    keys: Vec<usize>,
    /// The index of the rows read at the instant it holds.
    index: Mutex<Option<(Instant, Arc<Index>)>>,
}

impl FileLookupClient {
    /// The rows, read now if never read or read longer ago than the TTL.
    async fn rows(&self) -> Result<Arc<Loaded>> {
        let mut loaded = self.loaded.lock().await;
        if let Some(l) = loaded.as_ref().filter(|l| l.at.elapsed() < self.ttl) {
            return Ok(Arc::clone(l));
        }
        let rows = read_all(&self.source).await?;
        tracing::debug!(table = %self.source.describe(), rows = rows.num_rows(), "lookup table read");
        let fresh = Arc::new(Loaded { at: Instant::now(), rows });
        *loaded = Some(Arc::clone(&fresh));
        Ok(fresh)
    }

    /// The index of `loaded` by this client's key columns.
    async fn index(&self, loaded: &Loaded) -> Result<Arc<Index>> {
        let mut index = self.index.lock().await;
        if let Some((at, built)) = index.as_ref()
            && *at == loaded.at
        {
            return Ok(Arc::clone(built));
        }
        let built = Arc::new(build_index(&loaded.rows, &self.keys)?);
        *index = Some((loaded.at, Arc::clone(&built)));
        Ok(built)
    }
}

#[async_trait::async_trait]
impl LookupClient for FileLookupClient {
    async fn lookup(&self, key: Vec<ScalarValue>) -> Result<RecordBatch> {
        let loaded = self.rows().await?;
        // SQL's `=` never matches a NULL key.
        if key.iter().any(ScalarValue::is_null) {
            return Ok(RecordBatch::new_empty(loaded.rows.schema()));
        }
        let index = self.index(&loaded).await?;
        let rows = index.get(&key).map_or(&[][..], Vec::as_slice);
        take_record_batch(&loaded.rows, &UInt32Array::from(rows.to_vec()))
            .map_err(|e| EngineError::Connector(format!("lookup in {}: {e}", self.source.describe())))
    }
}

/// Every row of `source`'s files, in one batch.
async fn read_all(source: &Arc<FileSource>) -> Result<RecordBatch> {
    // Listing is synchronous (`std::fs`).
    let listing = Arc::clone(source);
    let total = tokio::task::spawn_blocking(move || listing.partitions(1))
        .await
        .map_err(|e| EngineError::Connector(format!("listing {}: {e}", source.describe())))??;
    let assignment = Assignment { subtask: 0, parallelism: 1, total, partitions: (0..total).collect() };
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

/// Row numbers of `rows` by their values in the columns `keys`; rows with a
/// NULL key are left out (they match nothing).
fn build_index(rows: &RecordBatch, keys: &[usize]) -> Result<Index> {
    let mut index = Index::new();
    for row in 0..rows.num_rows() {
        let key = keys
            .iter()
            .map(|&k| ScalarValue::try_from_array(rows.column(k), row))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| EngineError::Connector(format!("indexing a lookup table: {e}")))?;
        if key.iter().any(ScalarValue::is_null) {
            continue;
        }
        let row = u32::try_from(row).map_err(|_| {
            EngineError::Connector(format!("a lookup table of more than {} rows", u32::MAX))
        })?;
        index.entry(key).or_default().push(row);
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    #[test]
    fn the_index_finds_every_row_of_a_key_and_no_null_key() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("v", DataType::Utf8, true),
        ]));
        let rows = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![Some(1), Some(2), None, Some(1)])),
                Arc::new(StringArray::from(vec!["a", "b", "c", "d"])),
            ],
        )
        .unwrap();
        let index = build_index(&rows, &[0]).unwrap();
        assert_eq!(index[&vec![ScalarValue::Int64(Some(1))]], vec![0, 3]);
        assert_eq!(index[&vec![ScalarValue::Int64(Some(2))]], vec![1]);
        assert_eq!(index.len(), 2, "the NULL key is not indexed");
    }
}
