//! Giving memory a spill freed back to the system.
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

/// Returns the free memory of every arena to the system.
pub(super) fn give_back_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and releases the allocator's free
    // chunks; it takes the arenas' locks and has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}
