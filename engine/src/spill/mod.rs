//! State larger than memory: the spilling state backend.
//!
//! With `state.backend.type = 'rocksdb'` (Flink's name for its disk-backed
//! backend, so a Flink job's settings run unchanged) a job's keyed state is
//! bounded by `state.memory.budget`: every stateful subtask that can spill
//! holds a share of one DataFusion [`MemoryPool`] (a [`FairSpillPool`], so
//! each gets the budget divided by their number), and once its state
//! outgrows its share it writes immutable parts of it to local files
//! ([`SpilledBytes`]) under the job's state directory, as DataFusion's own
//! operators spill, through a [`DiskManager`]. What is spilled is written
//! in the checkpoint chunks' format, so a checkpoint copies a spilled part's
//! bytes as they are, and an unchanged part is referenced, never rewritten.
//! The choice and its measurements are in docs/state.md.

mod file;
pub(crate) mod runs;
mod trim;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::execution::disk_manager::{DiskManager, DiskManagerMode};
use datafusion::execution::memory_pool::{FairSpillPool, MemoryConsumer, MemoryPool, MemoryReservation};

use crate::error::{EngineError, Result, ResultExt};

pub use file::{SpilledBytes, SpilledBytesWriter};

/// Where a job keeps its keyed state: in memory (Flink's `hashmap`, the
/// default), or in memory up to a budget and on local disk beyond it.
pub struct StateBackend {
    spill: Option<Spill>,
}

/// The spilling backend's shared parts.
struct Spill {
    budget: u64,
    pool: Arc<dyn MemoryPool>,
    disk: Arc<DiskManager>,
    dir: PathBuf,
    /// Freed memory goes back to the system every second while it lives.
    _trimming: trim::Trimming,
}

impl StateBackend {
    /// Every operator keeps its state in memory.
    pub fn memory() -> Arc<Self> {
        Arc::new(Self { spill: None })
    }

    /// State in memory up to `budget` bytes for the whole job, spilled to
    /// files under `dir` beyond it. Files a killed process left in `dir`
    /// (the job's own: a job runs in one process at a time) are removed.
    pub fn spilling(budget: u64, dir: &Path) -> Result<Arc<Self>> {
        let ctx = || format!("spill directory {}", dir.display());
        if dir.exists() {
            std::fs::remove_dir_all(dir).context(ctx)?;
        }
        std::fs::create_dir_all(dir).context(ctx)?;
        let disk = DiskManager::builder()
            .with_mode(DiskManagerMode::Directories(vec![dir.to_path_buf()]))
            .build()
            .context(ctx)?;
        let pool: Arc<dyn MemoryPool> = Arc::new(FairSpillPool::new(usize::try_from(budget).unwrap_or(usize::MAX)));
        Ok(Arc::new(Self {
            spill: Some(Spill {
                budget,
                pool,
                disk: Arc::new(disk),
                dir: dir.to_path_buf(),
                _trimming: trim::Trimming::start(),
            }),
        }))
    }

    /// A subtask's share of the budget, for an operator that can spill
    /// (`None`: its state stays in memory).
    pub fn share(&self, operator: &str, subtask: usize) -> Option<StateBudget> {
        let spill = self.spill.as_ref()?;
        Some(StateBudget {
            pool: Arc::clone(&spill.pool),
            small: usize::try_from(spill.budget / SMALL).unwrap_or(usize::MAX),
            reservation: None,
            disk: Arc::clone(&spill.disk),
            name: format!("{operator}[{subtask}]"),
            dir: spill.dir.clone(),
            spills: 0,
        })
    }
}

impl Drop for StateBackend {
    /// The spill files are gone once their last holder drops them (the
    /// disk manager's directory with them); the job's spill directory is
    /// removed when it is empty.
    fn drop(&mut self) {
        if let Some(spill) = self.spill.take() {
            let dir = spill.dir.clone();
            drop(spill);
            let _ = std::fs::remove_dir(dir);
        }
    }
}

impl std::fmt::Debug for StateBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.spill {
            None => f.write_str("StateBackend::Memory"),
            Some(s) => write!(f, "StateBackend::Spill({} bytes, {})", s.budget, s.dir.display()),
        }
    }
}

/// A subtask holding less than this part of the budget takes no share of
/// it: the pool divides the budget evenly among the subtasks that took
/// one, so a small operator (a GROUP BY over a few categories beside a
/// large window) would otherwise keep a share it never uses.
const SMALL: u64 = 64;

/// One subtask's share of the job's state budget, and where it spills.
pub struct StateBudget {
    pool: Arc<dyn MemoryPool>,
    /// Below this many bytes the subtask takes no share ([`SMALL`]).
    small: usize,
    /// Its share, once it held more than `small`.
    reservation: Option<MemoryReservation>,
    disk: Arc<DiskManager>,
    name: String,
    /// The job's spill directory, for errors.
    dir: PathBuf,
    /// Times the operator spilled.
    spills: u64,
}

impl StateBudget {
    /// Notes that the operator now holds `bytes` of state in memory;
    /// false when that is more than its share (then it should spill).
    pub fn fits(&mut self, bytes: usize) -> bool {
        let reservation = match &mut self.reservation {
            Some(r) => r,
            None if bytes <= self.small => return true,
            None => self
                .reservation
                .insert(MemoryConsumer::new(self.name.clone()).with_can_spill(true).register(&self.pool)),
        };
        reservation.try_resize(bytes).is_ok()
    }

    /// Notes that the operator spilled, from `held` bytes in memory down
    /// to `holds`, even if that is still over its share (what it cannot
    /// spill it must keep). The first spill is logged at info level, the
    /// next ones at debug level.
    pub fn spilled(&mut self, held: usize, holds: usize) {
        self.spills += 1;
        let used = self.disk.used_disk_space();
        if self.spills == 1 {
            tracing::info!(operator = %self.name, held, "state over its share of state.memory.budget: spilling to disk");
        } else {
            tracing::debug!(operator = %self.name, held, holds, spills = self.spills, disk_bytes = used, "spilled state");
        }
        if let Some(r) = &mut self.reservation {
            r.resize(holds);
        }
        trim::give_back_freed_memory();
    }

    /// Writes `bytes` to a new spill file; an error names the operator
    /// and the directory.
    pub fn spill(&self, bytes: &[u8]) -> Result<SpilledBytes> {
        self.target().spill(bytes)
    }

    /// A new spill file to write piece by piece, so that what is spilled
    /// need not be in memory whole (a join's run); an error names the
    /// operator and the directory.
    pub fn spill_writer(&self) -> Result<SpilledBytesWriter> {
        self.target().writer()
    }

    /// Where the subtask spills, for a snapshot's job off the task loop.
    pub fn target(&self) -> SpillTarget {
        SpillTarget {
            disk: Arc::clone(&self.disk),
            what: format!("{}: spilling state to {}", self.name, self.dir.display()),
        }
    }
}

/// Where a subtask spills, without its share of the budget: what an
/// asynchronous snapshot needs to write a large chunk to a spill file
/// instead of memory (the store then links the file).
#[derive(Clone)]
pub struct SpillTarget {
    disk: Arc<DiskManager>,
    /// Whose state and where, for errors.
    what: String,
}

impl SpillTarget {
    /// A new spill file to write piece by piece.
    pub fn writer(&self) -> Result<SpilledBytesWriter> {
        SpilledBytes::writer(&self.disk, &self.what)
    }

    /// Writes `bytes` to a new spill file.
    pub fn spill(&self, bytes: &[u8]) -> Result<SpilledBytes> {
        let mut w = self.writer()?;
        w.append(bytes)?;
        w.finish()
    }
}

/// The error of a spill file that cannot be written or read.
pub(crate) fn spill_error(what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::State(format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Subtasks that hold little take no share, so one large one gets the
    /// whole budget; two large ones get half each.
    #[test]
    fn only_subtasks_holding_state_share_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let backend = StateBackend::spilling(1 << 20, &dir.path().join("spill")).unwrap();
        let (mut large, mut small, mut other) =
            (backend.share("w", 0).unwrap(), backend.share("g", 0).unwrap(), backend.share("w", 1).unwrap());
        assert!(small.fits(1 << 10));
        assert!(large.fits(900 << 10), "a small operator kept a share");
        assert!(!large.fits(1100 << 10), "over the budget");
        // A window fired: the large subtask holds nothing, and grows again
        // once another one took a share.
        assert!(large.fits(0));
        assert!(other.fits(100 << 10));
        assert!(!large.fits(600 << 10), "two large subtasks get half each");
        assert!(large.fits(500 << 10));
        assert!(StateBackend::memory().share("w", 0).is_none());
    }
}
