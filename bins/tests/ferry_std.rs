//! `ferry-std` end to end: client and server are both the blocking-std binary.

mod common;

e2e_suite!("ferry-std");
