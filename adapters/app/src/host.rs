//! What every adapter needs from the host besides its loop, under one name: the clock and seeds
//! ([`crate::clock`]), dialing ([`crate::dial`]), the daytime client ([`crate::daytime`]),
//! process limits ([`crate::limits`]) and [`RunError`] ([`crate::error`]).

pub use crate::clock::{Clock, fresh_seed, unix_now};
pub use crate::daytime::query as daytime_query;
pub use crate::dial::{
    KEEPALIVE_COUNT, KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, UNACKED_TIMEOUT, connect, keepalive,
};
pub use crate::error::{RunError, is_busy};
pub use crate::limits::raise_open_file_limit;
