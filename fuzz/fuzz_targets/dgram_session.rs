//! A whole datagram session over a network the input controls.
//! Body and invariants: `ferry_core::testing::fuzz::dgram_session`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_core::testing::fuzz::dgram_session(data));
