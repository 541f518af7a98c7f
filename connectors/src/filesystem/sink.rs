//! The filesystem sink: part files made visible when complete.

use std::path::{Path, PathBuf};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use tokio::fs::File;
use tokio::io::AsyncWriteExt;
use weir_engine::error::{Result, ResultExt};
use weir_engine::sink::{SinkConnector, SinkWriter};

use super::encode::BatchEncoder;
use super::format::Format;

/// Writes a filesystem table's directory, Flink-style: every subtask writes
/// its own part files, invisible to readers until finished.
#[derive(Debug)]
pub(crate) struct FileSink {
    dir: PathBuf,
    format: Format,
    schema: SchemaRef,
    /// `'sink.rolling-policy.file-size'`: a part file this large is finished
    /// and the next batch starts a new one.
    roll_bytes: u64,
}

impl FileSink {
    pub(crate) fn new(dir: PathBuf, format: Format, schema: SchemaRef, roll_bytes: u64) -> Self {
        Self {
            dir,
            format,
            schema,
            roll_bytes,
        }
    }
}

impl SinkConnector for FileSink {
    fn describe(&self) -> String {
        format!(
            "filesystem path={} format={}",
            self.dir.display(),
            self.format.name()
        )
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn open(
        &self,
        job_id: &str,
        subtask: usize,
        _parallelism: usize,
    ) -> Result<Box<dyn SinkWriter>> {
        Ok(Box::new(PartWriter {
            dir: self.dir.clone(),
            name_prefix: format!("part-{job_id}-{subtask}-"),
            encoder: BatchEncoder::new(self.format.clone()),
            roll_bytes: self.roll_bytes,
            next_part: 0,
            current: None,
            dir_created: false,
        }))
    }
}

/// The part file being written.
struct InProgress {
    file: File,
    /// The hidden name while writing.
    hidden: PathBuf,
    /// The name it gets when finished.
    visible: PathBuf,
    bytes: u64,
}

/// Writes the part files of one subtask: `part-<job>-<subtask>-<n>`, each
/// first as `.part-<job>-<subtask>-<n>.inprogress`. A part file is only
/// opened for rows, so a subtask without rows leaves no file (as in Flink).
struct PartWriter {
    dir: PathBuf,
    name_prefix: String,
    encoder: BatchEncoder,
    roll_bytes: u64,
    next_part: u64,
    current: Option<InProgress>,
    dir_created: bool,
}

impl PartWriter {
    async fn create_dir(&mut self) -> Result<()> {
        if !self.dir_created {
            tokio::fs::create_dir_all(&self.dir).await.context(|| {
                format!(
                    "creating filesystem sink directory '{}'",
                    self.dir.display()
                )
            })?;
            self.dir_created = true;
        }
        Ok(())
    }

    async fn start_part(&mut self) -> Result<InProgress> {
        self.create_dir().await?;
        let name = format!("{}{}", self.name_prefix, self.next_part);
        self.next_part += 1;
        let hidden = self.dir.join(format!(".{name}.inprogress"));
        let file = File::create(&hidden)
            .await
            .context(|| describe_io("creating", &hidden))?;
        Ok(InProgress {
            file,
            hidden,
            visible: self.dir.join(name),
            bytes: 0,
        })
    }

    /// Makes the current part file visible under its final name.
    async fn finish_part(&mut self) -> Result<()> {
        let Some(mut part) = self.current.take() else {
            return Ok(());
        };
        // Durable before visible: a reader must never see a truncated file.
        part.file
            .flush()
            .await
            .context(|| describe_io("writing", &part.hidden))?;
        part.file
            .sync_all()
            .await
            .context(|| describe_io("syncing", &part.hidden))?;
        drop(part.file);
        tokio::fs::rename(&part.hidden, &part.visible)
            .await
            .context(|| {
                format!(
                    "renaming '{}' to '{}'",
                    part.hidden.display(),
                    part.visible.display()
                )
            })?;
        tracing::debug!(file = %part.visible.display(), bytes = part.bytes, "part file finished");
        Ok(())
    }
}

#[async_trait::async_trait]
impl SinkWriter for PartWriter {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let bytes = self
            .encoder
            .encode(&batch)
            .context(|| format!("encoding rows for '{}'", self.dir.display()))?;
        let part = match &mut self.current {
            Some(part) => part,
            None => {
                let part = self.start_part().await?;
                self.current.insert(part)
            }
        };
        part.file
            .write_all(&bytes)
            .await
            .context(|| describe_io("writing", &part.hidden))?;
        part.bytes += bytes.len() as u64;
        // Checked per batch: a part file exceeds the limit by at most one batch.
        if part.bytes >= self.roll_bytes {
            self.finish_part().await?;
        }
        Ok(())
    }

    async fn finish(&mut self) -> Result<()> {
        // The directory exists after a job even when it wrote no rows.
        self.create_dir().await?;
        self.finish_part().await
    }
}

fn describe_io(action: &str, path: &Path) -> String {
    format!("{action} '{}'", path.display())
}
