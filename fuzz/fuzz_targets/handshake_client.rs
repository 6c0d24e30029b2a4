//! A server's whole byte stream, from message 2 on, into a client session.
//! Body and invariants: `ferry_core::testing::fuzz::handshake_client`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_core::testing::fuzz::handshake_client(data));
