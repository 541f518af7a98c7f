//! Giving freed memory back to the system.
//!
//! glibc's allocator keeps what a thread freed in that thread's arena, for
//! the thread's next allocations. A spill frees up to half an operator's
//! share at once, often from another thread than the one that allocated
//! it (a task moves between the runtime's workers, spill I/O runs under
//! `block_in_place`), so the freed pages stayed resident while new batches
//! came from other arenas: Nexmark q11 at 200M events under a 1 GB budget
//! peaked at 3.2 GB, 1.85 GB with one arena. One arena costs Nexmark q4
//! 40% at parallelism 2, so the freed memory is trimmed after each spill
//! instead: spills are seconds apart, and a trim takes milliseconds.
//!
//! Between spills the same happens on a smaller scale to what is freed
//! as the stream goes (batches of columns the query does not read,
//! checkpoints' encodings, spilled batches read back to fire): q11's
//! resident memory grew by 260 MB more than its state between two
//! spills, and dropped to its state plus 320 MB at each. So while a job
//! of the spilling backend runs, a thread of its own also trims every
//! second (19 ms a trim at a median, up to 120 ms: off the tasks' loops).

use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Time between two trims of the trimming thread.
const TRIM_EVERY: Duration = Duration::from_secs(1);

/// Returns the free memory of every arena to the system.
pub(super) fn give_back_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and releases the allocator's free
    // chunks; it takes the arenas' locks and has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Spilling backends alive: the trimming thread trims while there is one.
static ALIVE: AtomicUsize = AtomicUsize::new(0);

/// Keeps the trimming thread trimming while it lives: one per spilling
/// backend. The thread is started by the first and sleeps, without
/// trimming, while none is alive.
pub(super) struct Trimming(());

impl Trimming {
    pub(super) fn start() -> Self {
        static THREAD: Once = Once::new();
        THREAD.call_once(|| {
            let started = std::thread::Builder::new().name("weir-trim".into()).spawn(|| {
                loop {
                    std::thread::sleep(TRIM_EVERY);
                    if ALIVE.load(Ordering::Relaxed) > 0 {
                        give_back_freed_memory();
                    }
                }
            });
            // Without the thread, memory is still trimmed at each spill.
            if let Err(e) = started {
                tracing::warn!(error = %e, "cannot start the thread that gives freed memory back");
            }
        });
        ALIVE.fetch_add(1, Ordering::Relaxed);
        Self(())
    }
}

impl Drop for Trimming {
    fn drop(&mut self) {
        ALIVE.fetch_sub(1, Ordering::Relaxed);
    }
}
