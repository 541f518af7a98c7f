//! The part files a job has in a table's directories, for recovery and
//! for numbering a restarted job's files.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use weir_engine::EngineError;
use weir_engine::error::Result;

use super::names::{Part, PartNames, subtask_of};
use crate::filesystem::partition::PartitionLayout;
use crate::filesystem::partition::tree::partition_dirs;

/// One part file of a job.
#[derive(Debug, Clone)]
pub(super) struct JobPart {
    pub(super) subtask: usize,
    /// Its partition directory, relative to the table's path.
    pub(super) dir: String,
    pub(super) path: PathBuf,
    pub(super) part: Part,
}

/// Every part file of job `job_id`, visible or hidden, in every partition
/// directory under `root` (or `root` itself when unpartitioned).
///
/// Blocking: recovery runs before the job starts.
pub(super) fn job_parts(root: &Path, layout: Option<&PartitionLayout>, job_id: &str) -> Result<Vec<JobPart>> {
    let mut parts = Vec::new();
    for dir in partition_dirs(root, layout)? {
        let entries = match std::fs::read_dir(&dir.path) {
            Ok(entries) => entries,
            // Nothing was ever written, or the directory went meanwhile.
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(list_error(&dir.path, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| list_error(&dir.path, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(subtask) = subtask_of(name, job_id) else {
                continue;
            };
            if let Some(part) = PartNames::new(job_id, subtask).parse(name) {
                parts.push(JobPart {
                    subtask,
                    dir: dir.rel.clone(),
                    path: entry.path(),
                    part,
                });
            }
        }
    }
    Ok(parts)
}

/// The first part number of a subtask's current run: after its last final
/// part (committed when a bounded run finished). Running a finished job
/// again is a new run whose output joins the old; only the current run's
/// checkpointed output is ever withdrawn.
pub(super) fn current_run_start<'a>(parts: impl Iterator<Item = &'a Part>) -> u64 {
    parts
        .filter(|p| !p.hidden && p.checkpoint.is_none())
        .map(|p| p.number.saturating_add(1))
        .max()
        .unwrap_or(0)
}

pub(super) fn list_error(dir: &Path, source: std::io::Error) -> EngineError {
    EngineError::Io {
        context: format!("listing filesystem sink directory '{}'", dir.display()),
        source,
    }
}
