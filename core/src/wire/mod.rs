//! Frames: the unit the transfer layer speaks, carried inside records.
//!
//! Two frame kinds, both with lengths that are checked from the fixed header before the body is
//! looked at:
//!
//! ```text
//! DATA    = 0x01 | codec u8 | file_id u32 | offset u64 | plain_len u32 | body_len u32 | body
//! CONTROL = 0x02 | len u16 | postcard(Control)
//! ```
//!
//! All integers are big-endian. The DATA header has a fixed size ([`DATA_HEADER_LEN`]) so that
//! file bytes land at a fixed place in the record buffer. CONTROL bodies are postcard-encoded
//! [`Control`] messages of at most [`MAX_CONTROL_LEN`] bytes that must be consumed exactly.
//!
//! Public under the unstable `testing` feature only (for tests, benches and fuzz targets); the
//! types applications need are re-exported at the crate root.

mod control;
mod frame;

pub use control::{
    BoundedVec, CloseCode, Control, ListEntry, MAX_DETAIL_LEN, MAX_LIST_ENTRIES, MAX_PATH_LEN,
    MAX_RECORD_BODY, Mtime, Offer, Problem, Reason, RecordBody, RecordFormat, RequestKind,
};
pub use frame::{
    CHUNK, CONTROL_HEADER_LEN, Codec, DATA_HEADER_LEN, DataFrame, Frame, MAX_CONTROL_LEN,
    decode_frame, encode_control, encode_data_header,
};
#[cfg(feature = "testing")]
pub use frame::{FRAME_CONTROL, FRAME_DATA};
