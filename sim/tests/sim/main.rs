//! ferry-sim's own tests, over toy nodes (one test binary).

mod common;
mod driver;
mod faults;
mod links;
