//! Hostile datagrams into a datagram connection or endpoint in a chosen state.
//! Body and invariants: `ferry_core::testing::fuzz::dgram_datagram`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_core::testing::fuzz::dgram_datagram(data));
