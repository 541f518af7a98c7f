//! Which files a filesystem source reads.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use weir_engine::EngineError;

/// The files under `path`: the path itself if it is a file, else the
/// directory's regular files and named pipes, visible ones, in name order.
/// Names starting with `.` or `_` are skipped as Flink skips them: they are
/// in-progress part files and markers such as `_SUCCESS`. A named pipe is a
/// partition that lasts until its writer closes it: while it has no rows it
/// can turn idle (`'source.idle-timeout'`).
///
/// Runs once at job start, from the synchronous `partitions()`, hence
/// `std::fs`.
pub(crate) fn list_files(path: &Path) -> Result<Vec<PathBuf>, EngineError> {
    let io_err = |p: &Path| {
        let context = format!("filesystem source '{}'", p.display());
        move |source| EngineError::Io { context, source }
    };
    let meta = std::fs::metadata(path).map_err(io_err(path))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io_err(path))? {
        let entry = entry.map_err(io_err(path))?;
        let name = entry.file_name();
        let hidden = name.to_string_lossy().starts_with(['.', '_']);
        let file = entry.path();
        // `metadata` follows symbolic links, so a link to a file is read.
        let kind = std::fs::metadata(&file).map_err(io_err(&file))?.file_type();
        if !hidden && (kind.is_file() || kind.is_fifo()) {
            files.push(file);
        }
    }
    files.sort();
    tracing::debug!(path = %path.display(), files = files.len(), "filesystem source listed");
    Ok(files)
}
