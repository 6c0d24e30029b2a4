//! A whole session past the handshake: a keyed server scripted by the input, application calls.
//! Body and invariants: `ferry_core::testing::fuzz::session_client`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_core::testing::fuzz::session_client(data));
