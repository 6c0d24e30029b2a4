//! `ferry-mio` end to end: client and server are both the mio event-loop binary.

mod common;

e2e_suite!("ferry-mio");
