//! Sealed files (ferry header + C2SP chunks) into the header decoder and the streaming opener.
//! Body and invariants: `ferry_core::testing::fuzz::seal_open`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_core::testing::fuzz::seal_open(data));
