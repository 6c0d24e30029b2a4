//! A client's whole byte stream, from the preamble on, into a server session.
//! Body and invariants: `ferry_core::testing::fuzz::handshake_server`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_core::testing::fuzz::handshake_server(data));
