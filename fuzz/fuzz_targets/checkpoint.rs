//! Arbitrary bytes as a stored operator or source state: restoring must
//! fail with an error (a damaged checkpoint, so recovery falls back to the
//! previous one), never panic. Input layout: `weir_engine::fuzzing::restore`.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// libfuzzer-sys makes every panic abort, even one Weir catches on
/// purpose (arrow's IPC reader panics on some damaged batches, which the
/// state decoder turns into an error): back to the default hook. A panic
/// that escapes still aborts, through libfuzzer-sys's own catch.
static DEFAULT_PANIC_HOOK: std::sync::Once = std::sync::Once::new();

fuzz_target!(|data: &[u8]| {
    DEFAULT_PANIC_HOOK.call_once(|| drop(std::panic::take_hook()));
    // Errors are the expected answer to damaged state; only panics (and
    // hangs, and runaway memory) are findings.
    let _ = weir_engine::fuzzing::restore(data);
});
