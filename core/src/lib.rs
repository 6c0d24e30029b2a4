#![no_std]
#![forbid(unsafe_code)]
//! ferry-core (crate docs written later)
extern crate alloc;

mod compress;
mod crypto;
