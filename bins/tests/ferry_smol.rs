//! `ferry-smol` end to end: client and server are both the smol binary.

mod common;

e2e_suite!("ferry-smol");
