//! Deflate streams with a declared plain length (the lazy inflate of DATA bodies).
//! Body and invariants: `ferry_core::testing::fuzz::inflate`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_core::testing::fuzz::inflate(data));
