//! The ferry application: what an endpoint does with a session, written once for every adapter.
//!
//! - [`driver::Conn`] is the one loop body (input → session → agent → output) with the
//!   end-of-stream, input-error and last-records rules; adapters keep only their way of waiting.
//! - [`agent::Agent`] reacts to a session's events with bounded work from a
//!   [`Store`](ferry_disk::Store): as a server it answers offers, GETs, LISTs and records; as a
//!   client it runs one job (send, get, list, record).
//! - [`pool::CommitPool`] runs the agent's disk work off an event loop.
//! - [`records`] encodes and decodes records; [`admission`] decides which connections a server
//!   takes; [`clock`], [`dial`], [`daytime`], [`limits`] and [`error`] are the host services
//!   (gathered under [`host`] too).

pub mod access;
pub mod admission;
pub mod agent;
pub mod clock;
pub mod daytime;
pub mod dial;
pub mod driver;
pub mod error;
pub mod host;
pub mod limits;
mod offload;
pub mod pool;
pub mod records;
pub mod udp;

pub use admission::ServeOptions;
