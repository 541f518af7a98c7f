//! The filesystem source: one partition per file.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use datafusion::arrow::datatypes::SchemaRef;
use weir_engine::EngineError;
use weir_engine::error::Result;
use weir_engine::source::{BadRecord, SourceConnector, SourceEvent, SourceReader};

use super::decode::RecordDecoder;
use super::format::Format;
use super::lines::{LineChunk, LineReader};
use super::listing::list_files;

/// Rows per batch, and so lines per decoded chunk.
const BATCH_ROWS: usize = 8192;

/// Reads the files of a filesystem table; bounded.
#[derive(Debug)]
pub(crate) struct FileSource {
    path: PathBuf,
    format: Format,
    schema: SchemaRef,
    /// The files listed by the latest `partitions()`: `open()` must map
    /// partition numbers to the same files even if the directory changes
    /// in between.
    listing: Mutex<Option<Arc<[PathBuf]>>>,
}

impl FileSource {
    pub(crate) fn new(path: PathBuf, format: Format, schema: SchemaRef) -> Self {
        Self {
            path,
            format,
            schema,
            listing: Mutex::new(None),
        }
    }

    fn listing(&self) -> Result<Arc<[PathBuf]>> {
        let mut cached = self.listing.lock().unwrap_or_else(|e| e.into_inner());
        match &*cached {
            Some(files) => Ok(Arc::clone(files)),
            None => {
                let files: Arc<[PathBuf]> = list_files(&self.path)?.into();
                *cached = Some(Arc::clone(&files));
                Ok(files)
            }
        }
    }
}

impl SourceConnector for FileSource {
    fn describe(&self) -> String {
        format!(
            "filesystem path={} format={}",
            self.path.display(),
            self.format.name()
        )
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn partitions(&self, _parallelism: usize) -> Result<usize> {
        let files: Arc<[PathBuf]> = list_files(&self.path)?.into();
        let n = files.len();
        *self.listing.lock().unwrap_or_else(|e| e.into_inner()) = Some(files);
        Ok(n)
    }

    fn open(
        &self,
        partitions: Vec<usize>,
        _parallelism: usize,
        report_bad_records: bool,
    ) -> Result<Box<dyn SourceReader>> {
        let files = self.listing()?;
        let queue = partitions
            .into_iter()
            .map(|p| match files.get(p) {
                Some(file) => Ok((p, file.clone())),
                None => Err(EngineError::Plan(format!(
                    "filesystem source '{}' has {} files, no partition {p}",
                    self.path.display(),
                    files.len()
                ))),
            })
            .collect::<Result<VecDeque<_>>>()?;
        Ok(Box::new(FileReader {
            queue,
            current: None,
            chunk: LineChunk::default(),
            decoder: RecordDecoder::new(self.format.clone(), self.schema.clone()),
            tolerant: report_bad_records || self.format.ignore_parse_errors(),
            bad: None,
        }))
    }
}

/// The file being read and its partition number.
struct OpenFile {
    partition: usize,
    path: PathBuf,
    lines: LineReader,
}

/// Reads its files one after another, each to its end.
///
/// Not cancel-safe: a `next()` dropped while reading loses the lines read
/// so far into the chunk.
struct FileReader {
    queue: VecDeque<(usize, PathBuf)>,
    current: Option<OpenFile>,
    /// Reused across chunks so that reading allocates only while growing.
    chunk: LineChunk,
    decoder: RecordDecoder,
    /// Report undecodable records rather than fail on the first.
    tolerant: bool,
    /// The bad records of the chunk whose batch was just returned: they
    /// follow it, keeping file order as far as events can.
    bad: Option<Vec<BadRecord>>,
}

#[async_trait::async_trait]
impl SourceReader for FileReader {
    async fn next(&mut self) -> Result<Option<SourceEvent>> {
        if let Some(bad) = self.bad.take() {
            return Ok(Some(SourceEvent::BadRecords(bad)));
        }
        let file = match &mut self.current {
            Some(file) => file,
            None => match self.queue.pop_front() {
                Some((partition, path)) => {
                    let lines = LineReader::open(&path)
                        .await
                        .map_err(|e| io_error(&path, e))?;
                    self.current.insert(OpenFile {
                        partition,
                        path,
                        lines,
                    })
                }
                None => return Ok(None),
            },
        };
        file.lines
            .fill(&mut self.chunk, BATCH_ROWS)
            .await
            .map_err(|e| io_error(&file.path, e))?;
        let partition = file.partition;
        if self.chunk.is_empty() {
            self.current = None;
            return Ok(Some(SourceEvent::PartitionEnd(partition)));
        }
        let decoded = self
            .decoder
            .decode(&self.chunk, &file.path, partition, self.tolerant)?;
        if decoded.bad.is_empty() {
            return Ok(Some(SourceEvent::Batch {
                partition,
                batch: decoded.batch,
            }));
        }
        if decoded.batch.num_rows() == 0 {
            return Ok(Some(SourceEvent::BadRecords(decoded.bad)));
        }
        self.bad = Some(decoded.bad);
        Ok(Some(SourceEvent::Batch {
            partition,
            batch: decoded.batch,
        }))
    }
}

fn io_error(path: &Path, source: std::io::Error) -> EngineError {
    EngineError::Io {
        context: format!("reading '{}'", path.display()),
        source,
    }
}
