//! Which files a filesystem source reads.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use weir_engine::EngineError;

use super::partition::PartitionLayout;
use super::partition::columns::PartitionValues;
use super::partition::tree::partition_dirs;

/// A file a source reads, with the values of its partition columns when
/// the table is partitioned.
#[derive(Debug, Clone)]
pub(crate) struct ListedFile {
    pub(crate) path: PathBuf,
    pub(crate) partition: Option<PartitionValues>,
    /// Its length when listed if it is a regular file (`None` for a named
    /// pipe): what its splits are cut from (`split.rs`).
    pub(crate) size: Option<u64>,
}

/// The files under `path`: the path itself if it is a file, else the
/// directory's regular files and named pipes, visible ones, in name order.
/// Names starting with `.` or `_` are skipped as Flink skips them: they are
/// in-progress part files and markers such as `_SUCCESS`. A named pipe is a
/// partition that lasts until its writer closes it: while it has no rows it
/// can turn idle (`'source.idle-timeout'`).
///
/// With a partition layout, the files are those of every partition
/// directory (`key=value` per partition column, see
/// [`partition_dirs`]), in path order, each with its directory's values.
///
/// Runs once at job start, from the synchronous `partitions()`, hence
/// `std::fs`.
pub(crate) fn list_files(path: &Path, layout: Option<&PartitionLayout>) -> Result<Vec<ListedFile>, EngineError> {
    let meta = std::fs::metadata(path).map_err(io_err(path))?;
    let Some(layout) = layout else {
        if !meta.is_dir() {
            let size = meta.is_file().then_some(meta.len());
            return Ok(vec![ListedFile { path: path.to_path_buf(), partition: None, size }]);
        }
        let files = files_in(path)?.into_iter().map(|(path, size)| ListedFile { path, partition: None, size }).collect();
        return Ok(files);
    };
    if !meta.is_dir() {
        return Err(EngineError::Connector(format!(
            "filesystem source '{}': a partitioned table's path is a directory of partition directories, not a file",
            path.display()
        )));
    }
    let mut files = Vec::new();
    for dir in partition_dirs(path, Some(layout))? {
        let texts = layout.values_of(&dir.rel).ok_or_else(|| {
            EngineError::Connector(format!("filesystem source: '{}' is not a partition directory", dir.path.display()))
        })?;
        let values = PartitionValues::parse(layout, &texts, &dir.path)?;
        for (file, size) in files_in(&dir.path)? {
            files.push(ListedFile { path: file, partition: Some(values.clone()), size });
        }
    }
    tracing::debug!(path = %path.display(), files = files.len(), "partitioned filesystem source listed");
    Ok(files)
}

/// The visible regular files and named pipes of directory `dir`, in name
/// order, each with its length if it is a regular file.
fn files_in(dir: &Path) -> Result<Vec<(PathBuf, Option<u64>)>, EngineError> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let hidden = name.to_string_lossy().starts_with(['.', '_']);
        let file = entry.path();
        // `metadata` follows symbolic links, so a link to a file is read.
        let meta = std::fs::metadata(&file).map_err(io_err(&file))?;
        let kind = meta.file_type();
        if !hidden && (kind.is_file() || kind.is_fifo()) {
            files.push((file, kind.is_file().then_some(meta.len())));
        }
    }
    files.sort();
    tracing::debug!(path = %dir.display(), files = files.len(), "filesystem source listed");
    Ok(files)
}

fn io_err(p: &Path) -> impl Fn(std::io::Error) -> EngineError + '_ {
    move |source| EngineError::Io { context: format!("filesystem source '{}'", p.display()), source }
}
