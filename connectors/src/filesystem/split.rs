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

use super::listing::ListedFile;

/// A file, or the lines starting in a range of its bytes.
#[derive(Debug, Clone)]
pub(crate) struct FileSplit {
    pub(crate) file: ListedFile,
    /// `None`: the whole file (a small file, a named pipe).
    pub(crate) bytes: Option<Range<u64>>,
}

impl FileSplit {
    /// How errors name the split, whose first line starts at byte
    /// `first_line`: the file, and for a split after the first that byte,
    /// since its line numbers count from there (a split does not know how
    /// many lines come before it).
    pub(crate) fn shown(&self, first_line: u64) -> PathBuf {
        match first_line {
            0 => self.file.path.clone(),
            byte => PathBuf::from(format!("{} (from byte {byte})", self.file.path.display())),
        }
    }
}

/// `files` as splits of at most `split_bytes` bytes each (by their
/// listed sizes); whole files when `None`.
pub(crate) fn split(files: Vec<ListedFile>, split_bytes: Option<u64>) -> Vec<FileSplit> {
    let mut splits = Vec::with_capacity(files.len());
    for file in files {
        let (size, split_bytes) = match (file.size, split_bytes) {
            (Some(size), Some(split_bytes)) if size > split_bytes => (size, split_bytes),
            _ => {
                splits.push(FileSplit { file, bytes: None });
                continue;
            }
        };
        let count = size.div_ceil(split_bytes);
        for k in 0..count {
            let end = match k + 1 == count {
                true => u64::MAX,
                false => (k + 1) * split_bytes,
            };
            splits.push(FileSplit { file: file.clone(), bytes: Some(k * split_bytes..end) });
        }
    }
    splits
}
