//! Raw bytes into the frame decoder (DATA and CONTROL frames back to back).
//! Body and invariants: `ferry_core::testing::fuzz::decode_frame`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_core::testing::fuzz::decode_frame(data));
