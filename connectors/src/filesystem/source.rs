//! The filesystem source: one partition per file, or per split of a big
//! file (`split.rs`); for a partitioned table, the files of every partition
//! directory, each row completed with the partition columns its
//! directory's name gives.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use datafusion::arrow::datatypes::SchemaRef;
use weir_engine::EngineError;
use weir_engine::error::Result;
use weir_engine::source::{Assignment, PARTITION_ENDED, Positions, SourceConnector, SourceEvent, SourceReader};

use super::decode::RecordDecoder;
use super::format::Format;
use super::lines::{LineChunk, LineReader};
use super::listing::list_files;
use super::split::{FileSplit, split};
use super::partition::PartitionLayout;
use super::partition::columns::PartitionValues;

/// Rows per batch, and so lines per decoded chunk.
const BATCH_ROWS: usize = 8192;

/// Reads the files of a filesystem table; bounded.
#[derive(Debug)]
pub(crate) struct FileSource {
    path: PathBuf,
    format: Format,
    schema: SchemaRef,
    /// `'source.max-record-size'`, in bytes.
    max_record: usize,
    /// `'source.split-size'`, in bytes, if set: bigger files are read in
    /// splits.
    split_bytes: Option<u64>,
    /// `PARTITIONED BY`: the files are in partition directories and hold
    /// the other columns.
    layout: Option<Arc<PartitionLayout>>,
    /// The splits of the files listed by the latest `partitions()`:
    /// `open()` must map partition numbers to the same splits even if the
    /// directory changes in between.
    listing: Mutex<Option<Arc<[FileSplit]>>>,
}

impl FileSource {
    pub(crate) fn new(
        path: PathBuf,
        format: Format,
        schema: SchemaRef,
        max_record: usize,
        split_bytes: Option<u64>,
        layout: Option<Arc<PartitionLayout>>,
    ) -> Self {
        Self {
            path,
            format,
            schema,
            max_record,
            split_bytes,
            layout,
            listing: Mutex::new(None),
        }
    }

    fn listing(&self) -> Result<Arc<[FileSplit]>> {
        let mut cached = self.listing.lock().unwrap_or_else(|e| e.into_inner());
        match &*cached {
            Some(splits) => Ok(Arc::clone(splits)),
            None => {
                let splits = self.list()?;
                *cached = Some(Arc::clone(&splits));
                Ok(splits)
            }
        }
    }

    fn list(&self) -> Result<Arc<[FileSplit]>> {
        Ok(split(list_files(&self.path, self.layout.as_deref())?, self.split_bytes).into())
    }
}

impl SourceConnector for FileSource {
    fn describe(&self) -> String {
        let partitioned = match &self.layout {
            Some(l) => format!(" partitioned by ({})", l.keys().iter().map(|k| k.name.as_str()).collect::<Vec<_>>().join(", ")),
            None => String::new(),
        };
        format!("filesystem path={} format={}{partitioned}", self.path.display(), self.format.name())
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn changelog(&self) -> bool {
        self.format.is_changelog()
    }

    fn partitions(&self, _parallelism: usize) -> Result<usize> {
        let splits = self.list()?;
        let n = splits.len();
        *self.listing.lock().unwrap_or_else(|e| e.into_inner()) = Some(splits);
        Ok(n)
    }

    /// With splits, a big file's positions count the lines of its splits:
    /// a checkpoint whose positions count them otherwise (of another split
    /// size, or read whole) is refused, not misread.
    fn positions(&self) -> Option<String> {
        self.split_bytes.map(|bytes| format!("lines of each file or split of {bytes} bytes"))
    }

    /// Resumed files are reopened and their consumed lines skipped: files
    /// are read as a stream of lines, so re-reading is the simplest way to
    /// reach a line, and it keeps line numbers those of the file.
    fn open(
        &self,
        assignment: Assignment,
        report_bad_records: bool,
        resume: &Positions,
    ) -> Result<Box<dyn SourceReader>> {
        let files = self.listing()?;
        let queue = assignment
            .partitions
            .into_iter()
            .filter_map(|partition| {
                let skip = resume.get(&partition).copied().unwrap_or(0);
                (skip != PARTITION_ENDED).then_some((partition, skip))
            })
            .map(|(partition, skip)| match files.get(partition) {
                Some(split) => Ok(QueuedFile {
                    partition,
                    split: split.clone(),
                    skip,
                    max_record: self.max_record,
                }),
                None => Err(EngineError::Plan(format!(
                    "filesystem source '{}' has {} files and splits, no partition {partition}",
                    self.path.display(),
                    files.len()
                ))),
            })
            .collect::<Result<VecDeque<_>>>()?;
        // A partitioned table's files hold the other columns.
        let file_schema = match &self.layout {
            Some(layout) => Arc::clone(layout.data_schema()),
            None => self.schema.clone(),
        };
        Ok(Box::new(FileReader {
            queue,
            current: None,
            chunk: LineChunk::default(),
            decoder: RecordDecoder::new(self.format.clone(), file_schema),
            tolerant: report_bad_records || self.format.ignore_parse_errors(),
            layout: self.layout.clone(),
            schema: self.schema.clone(),
        }))
    }
}

/// A file (or split) still to read and where to start in it.
struct QueuedFile {
    partition: usize,
    split: FileSplit,
    /// Lines already consumed before a restart (0 for a fresh read).
    skip: u64,
    /// `'source.max-record-size'`, in bytes.
    max_record: usize,
}

/// The file being read and its partition number.
struct OpenFile {
    partition: usize,
    path: PathBuf,
    /// How errors name it ([`FileSplit::shown`]).
    shown: PathBuf,
    values: Option<PartitionValues>,
    lines: LineReader,
}

/// Reads its files one after another, each to its end.
///
/// Not cancel-safe: a `next()` dropped while reading loses the lines read
/// so far into the chunk.
struct FileReader {
    queue: VecDeque<QueuedFile>,
    current: Option<OpenFile>,
    /// Reused across chunks so that reading allocates only while growing.
    chunk: LineChunk,
    decoder: RecordDecoder,
    /// Report undecodable records rather than fail on the first.
    tolerant: bool,
    /// The table's partitioning, to complete the rows of its files.
    layout: Option<Arc<PartitionLayout>>,
    /// The table's columns.
    schema: SchemaRef,
}

impl FileReader {
    /// Opens `queued` and skips the lines a checkpoint already covers.
    async fn open_file(queued: QueuedFile) -> Result<OpenFile> {
        let QueuedFile {
            partition,
            split,
            skip,
            max_record,
        } = queued;
        let mut lines = LineReader::open(&split.file.path, max_record, split.bytes.clone())
            .await
            .map_err(|e| io_error(&split.file.path, e))?;
        let shown = split.shown(lines.first_line());
        let FileSplit { file, .. } = split;
        let path = file.path;
        let found = lines.skip(skip).await.map_err(|e| io_error(&path, e))?;
        // Files are read to the end before their partition ends, so a
        // checkpoint can only hold a position past the end if the file
        // shrank: its rows can no longer be delivered exactly once.
        if found < skip {
            return Err(EngineError::Connector(format!(
                "'{}' has {found} lines but the checkpoint resumes it after line {skip}: \
                 the file changed since the checkpoint",
                shown.display()
            )));
        }
        Ok(OpenFile {
            partition,
            path,
            shown,
            values: file.partition,
            lines,
        })
    }
}

#[async_trait::async_trait]
impl SourceReader for FileReader {
    async fn next(&mut self) -> Result<Option<SourceEvent>> {
        let file = match &mut self.current {
            Some(file) => file,
            None => match self.queue.pop_front() {
                Some(queued) => self.current.insert(Self::open_file(queued).await?),
                None => return Ok(None),
            },
        };
        file.lines
            .fill(&mut self.chunk, BATCH_ROWS)
            .await
            .map_err(|e| io_error(&file.path, e))?;
        let partition = file.partition;
        if self.chunk.at_end() {
            self.current = None;
            return Ok(Some(SourceEvent::PartitionEnd(partition)));
        }
        let decoded = self
            .decoder
            .decode(&self.chunk, &file.shown, partition, self.tolerant)?;
        let batch = match (&self.layout, &file.values) {
            (Some(layout), Some(values)) => values.complete(layout, &self.schema, decoded.batch)?,
            _ => decoded.batch,
        };
        // Sent even without rows (a chunk of bad lines only), so that the
        // position moves past those lines.
        Ok(Some(SourceEvent::Batch {
            partition,
            batch,
            bad_records: decoded.bad,
            position: file.lines.position(),
        }))
    }
}

fn io_error(path: &Path, source: std::io::Error) -> EngineError {
    EngineError::Io {
        context: format!("reading '{}'", path.display()),
        source,
    }
}
