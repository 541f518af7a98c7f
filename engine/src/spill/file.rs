//! One spilled part of an operator's state: an immutable local file.

use std::io::Write;
use std::sync::Arc;

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
}

impl SpilledBytes {
    /// Writes `bytes` to a new file of `disk`; `what` says whose state and
    /// where, in errors.
    pub(super) fn write(disk: &Arc<DiskManager>, what: &str, bytes: &[u8]) -> Result<Self> {
        let ctx = || what.to_string();
        let file = disk.create_tmp_file(what).context(ctx)?;
        blocking(|| -> Result<()> {
            let mut writer = file.open_writer().context(ctx)?;
            writer.write_all(bytes).context(ctx)?;
            writer.finish().context(ctx)
        })?;
        Ok(Self { file, len: bytes.len() })
    }

    /// Reads the bytes back.
    pub fn read(&self) -> Result<Vec<u8>> {
        let path = self.file.path().ok_or_else(|| super::spill_error("reading spilled state", "not a local file"))?;
        let bytes = blocking(|| std::fs::read(path)).context(|| format!("reading spilled state {}", path.display()))?;
        if bytes.len() != self.len {
            return Err(super::spill_error(
                &format!("reading spilled state {}", path.display()),
                format!("{} bytes where {} were written", bytes.len(), self.len),
            ));
        }
        Ok(bytes)
    }

    /// Reads `len` bytes from `offset`: one part of a file written in
    /// parts (a join's run is probed one key group at a time).
    pub fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let path = self.file.path().ok_or_else(|| super::spill_error("reading spilled state", "not a local file"))?;
        let ctx = || format!("reading spilled state {} at {offset}", path.display());
        if offset.saturating_add(len as u64) > self.len as u64 {
            return Err(super::spill_error(&ctx(), format!("{len} bytes past the {} written", self.len)));
        }
        let mut bytes = vec![0; len];
        blocking(|| std::fs::File::open(path).and_then(|f| f.read_exact_at(&mut bytes, offset))).context(ctx)?;
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
