//! One spilled part of an operator's state: an immutable local file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::{Arc, OnceLock};

use datafusion::execution::SpillFile;
use datafusion::execution::disk_manager::DiskManager;
use tokio::runtime::{Handle, RuntimeFlavor};

use crate::error::{Result, ResultExt};

/// Bytes written to a spill file. Clones share the file, which is deleted
/// when the last of them is dropped: a checkpoint being written off the
/// task loop keeps the parts it captured readable after the operator let
/// them go.
#[derive(Clone)]
pub struct SpilledBytes {
    file: Arc<dyn SpillFile>,
    len: usize,
    /// The file opened for reading, once a part of it was read: a join
    /// probes its runs many times a second, and opening the file for each
    /// part cost a system call per part.
    reader: Arc<OnceLock<File>>,
}

impl SpilledBytes {
    /// A new file of `disk`, to be written piece by piece; `what` says
    /// whose state and where, in errors.
    pub(super) fn writer(disk: &Arc<DiskManager>, what: &str) -> Result<SpilledBytesWriter> {
        let ctx = || what.to_string();
        let file = disk.create_tmp_file(what).context(ctx)?;
        let out = blocking(|| file.open_writer()).context(ctx)?;
        Ok(SpilledBytesWriter {
            file,
            out: BufWriter::with_capacity(BUFFER, Announced(out)),
            len: 0,
            what: what.to_string(),
        })
    }

    /// Reads the bytes back.
    pub fn read(&self) -> Result<Vec<u8>> {
        let path = self.path()?;
        let bytes = blocking(|| std::fs::read(path)).context(|| format!("reading spilled state {}", path.display()))?;
        if bytes.len() != self.len {
            return Err(super::spill_error(
                &format!("reading spilled state {}", path.display()),
                format!("{} bytes where {} were written", bytes.len(), self.len),
            ));
        }
        Ok(bytes)
    }

    /// Reads `len` bytes from `offset`: parts of a file written in parts
    /// (a join's run is probed by key group), through the file opened at
    /// the first such read.
    pub fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let path = self.path()?;
        let ctx = || format!("reading spilled state {} at {offset}", path.display());
        if offset.saturating_add(len as u64) > self.len as u64 {
            return Err(super::spill_error(&ctx(), format!("{len} bytes past the {} written", self.len)));
        }
        let mut bytes = vec![0; len];
        blocking(|| -> std::io::Result<()> {
            let file = match self.reader.get() {
                Some(f) => f,
                None => {
                    // Another clone may have opened it meanwhile: either handle reads the same bytes.
                    let _ = self.reader.set(File::open(path)?);
                    self.reader.get().ok_or_else(|| std::io::Error::other("the file was not opened"))?
                }
            };
            file.read_exact_at(&mut bytes, offset)
        })
        .context(ctx)?;
        Ok(bytes)
    }

    /// The file's path: a checkpoint links the file into its store rather
    /// than copy it.
    pub fn path(&self) -> Result<&std::path::Path> {
        self.file.path().ok_or_else(|| super::spill_error("reading spilled state", "not a local file"))
    }

    /// Copies the file's bytes to `w` through a small buffer (a
    /// checkpoint's chunk streamed into its store); a file that is not as
    /// long as written is an error.
    pub fn copy_to(&self, w: &mut dyn Write) -> std::io::Result<()> {
        let path = self.path().map_err(std::io::Error::other)?;
        let copied = std::io::copy(&mut std::fs::File::open(path)?, w)?;
        if copied != self.len as u64 {
            return Err(std::io::Error::other(format!(
                "spilled state {}: {copied} bytes where {} were written",
                path.display(),
                self.len
            )));
        }
        Ok(())
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> usize {
        self.len
    }
}

/// Bytes a spill file is written and copied through at a time: what
/// writing a file holds in memory, whatever its size.
const BUFFER: usize = 1 << 20;

/// A spill file being written (a join's run, one key group's rows at a
/// time, or two runs merged), through a [`BUFFER`]: no more than that
/// and the piece being appended is in memory at once.
pub struct SpilledBytesWriter {
    file: Arc<dyn SpillFile>,
    out: BufWriter<Announced>,
    len: usize,
    /// Whose state and where, for errors.
    what: String,
}

impl SpilledBytesWriter {
    /// Appends `bytes` to the file.
    pub fn append(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).context(|| self.what.clone())?;
        self.len += bytes.len();
        Ok(())
    }

    /// Appends `len` bytes of `from` from `offset`, read a [`BUFFER`] at a
    /// time: a merge of two runs copies their parts without decoding them.
    pub fn copy_from(&mut self, from: &SpilledBytes, offset: u64, len: usize) -> Result<()> {
        let mut done = 0;
        while done < len {
            let n = (len - done).min(BUFFER);
            self.append(&from.read_at(offset + done as u64, n)?)?;
            done += n;
        }
        Ok(())
    }

    /// Bytes appended so far.
    pub fn bytes(&self) -> usize {
        self.len
    }

    /// Writes what is buffered and closes the file.
    pub fn finish(mut self) -> Result<SpilledBytes> {
        let ctx = || self.what.clone();
        self.out.flush().context(ctx)?;
        blocking(|| self.out.get_mut().0.finish()).context(ctx)?;
        Ok(SpilledBytes { file: self.file, len: self.len, reader: Arc::default() })
    }
}

/// DataFusion's writer of a spill file, each write announced as blocking:
/// what the buffer hands on when full.
struct Announced(Box<dyn datafusion::execution::SpillWriter>);

impl Write for Announced {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        blocking(|| self.0.write(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        blocking(|| self.0.flush())
    }
}

/// Runs file I/O from an operator, which runs inside a tokio task: on a
/// worker of a multi-threaded runtime the wait is announced
/// (`block_in_place`), so that the worker's other tasks move elsewhere
/// meanwhile.
fn blocking<T>(io: impl FnOnce() -> T) -> T {
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(io),
        _ => io(),
    }
}
