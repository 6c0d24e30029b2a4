//! Record protection. The stream record layer is used over TCP; a datagram record layer
//! (explicit packet numbers, replay window) will sit beside it and carry the same frames.

pub(crate) mod keys;
pub(crate) mod stream;
