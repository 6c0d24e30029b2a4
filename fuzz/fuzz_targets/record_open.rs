//! Raw records into the record opener with a fixed key: header checks, length bounds, tags.
//! Body and invariants: `ferry_core::testing::fuzz::record_open`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_core::testing::fuzz::record_open(data));
