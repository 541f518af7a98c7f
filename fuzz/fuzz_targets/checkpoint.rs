//! Arbitrary bytes as a stored operator or source state: restoring must
//! fail with an error (a damaged checkpoint, so recovery falls back to the
//! previous one), never panic. Input layout: `weir_engine::fuzzing::restore`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Errors are the expected answer to damaged state; only panics (and
    // hangs, and runaway memory) are findings.
    let _ = weir_engine::fuzzing::restore(data);
});
