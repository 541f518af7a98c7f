//! Arbitrary bytes as the records of a JSON or CSV file or Kafka topic:
//! decoding must give rows or decode errors, never panic, and account for
//! every record. Input layout: `weir_connectors::fuzzing::decode`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A decode error is the expected answer to a bad record.
    let _ = weir_connectors::fuzzing::decode(data);
});
