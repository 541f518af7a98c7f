//! One big file read by several subtasks: with `'source.split-size'` set,
//! a regular file larger than that is read as splits of that many bytes,
//! each a partition of its own, as Flink's file source splits a file by
//! blocks. Without it every file is one partition, as before splits
//! existed: a split's position is not a whole file's, so a job's existing
//! checkpoints and savepoints restore only with what they were taken with.
//!
//! A split reads the lines that start within its bytes; the line its end
//! cuts it reads whole, and the next split skips that line's rest. Its
//! checkpoint position is the count of its lines read, as a whole file's
//! is. Splits are decided from the file's size when the job starts, the
//! same for every parallelism, so that positions restore at any; the last
//! split reads to the end of the file, however long it has grown.

use std::ops::Range;
use std::path::PathBuf;

use weir_engine::EngineError;

use super::listing::ListedFile;

/// A file, or the lines starting in a range of its bytes.
#[derive(Debug, Clone)]
pub(crate) struct FileSplit {
    pub(crate) file: ListedFile,
    /// `None`: the whole file (a small file, a named pipe).
    pub(crate) bytes: Option<Range<u64>>,
}

impl FileSplit {
    /// How errors name the split: the file, and for a split after the
    /// first the byte it starts at, since its line numbers count from
    /// there (a split does not know how many lines come before it).
    pub(crate) fn shown(&self) -> PathBuf {
        match &self.bytes {
            Some(bytes) if bytes.start > 0 => {
                PathBuf::from(format!("{} (from byte {})", self.file.path.display(), bytes.start))
            }
            _ => self.file.path.clone(),
        }
    }
}

/// `files` as splits of at most `split_bytes` bytes each; whole files
/// when `None`.
pub(crate) fn split(files: Vec<ListedFile>, split_bytes: Option<u64>) -> Result<Vec<FileSplit>, EngineError> {
    let Some(split_bytes) = split_bytes else {
        return Ok(files.into_iter().map(|file| FileSplit { file, bytes: None }).collect());
    };
    let mut splits = Vec::with_capacity(files.len());
    for file in files {
        let meta = std::fs::metadata(&file.path).map_err(|source| EngineError::Io {
            context: format!("filesystem source '{}'", file.path.display()),
            source,
        })?;
        let size = meta.len();
        if !meta.is_file() || size <= split_bytes {
            splits.push(FileSplit { file, bytes: None });
            continue;
        }
        let count = size.div_ceil(split_bytes);
        for k in 0..count {
            let end = match k + 1 == count {
                true => u64::MAX,
                false => (k + 1) * split_bytes,
            };
            splits.push(FileSplit { file: file.clone(), bytes: Some(k * split_bytes..end) });
        }
    }
    Ok(splits)
}
