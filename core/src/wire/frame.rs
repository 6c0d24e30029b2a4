//! Frame encoding and the pure, panic-free frame decoder.

use crate::error::{BufferTooSmall, DecodeError};
use crate::wire::Control;

/// Type byte of a DATA frame.
pub const FRAME_DATA: u8 = 0x01;
/// Type byte of a CONTROL frame.
pub const FRAME_CONTROL: u8 = 0x02;
/// Size of the fixed DATA frame header.
pub const DATA_HEADER_LEN: usize = 22;
/// Size of the CONTROL frame header (type + u16 length).
pub const CONTROL_HEADER_LEN: usize = 3;
/// Largest postcard body of a CONTROL frame.
pub const MAX_CONTROL_LEN: usize = 16 * 1024;
/// Largest plaintext chunk of a file in one DATA frame (64 KiB), the bound on a DATA frame's
/// `plain_len` and `body_len`: a `read` buffer of this size always suffices.
pub const CHUNK: usize = 65536;

/// How the body of a DATA frame is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// The body is the plaintext.
    Stored,
    /// The body is one independent raw-deflate stream of exactly `plain_len` bytes.
    Deflate,
}

impl Codec {
    /// Wire value.
    pub const fn to_u8(self) -> u8 {
        match self {
            Codec::Stored => 0,
            Codec::Deflate => 1,
        }
    }

    fn from_u8(b: u8) -> Result<Self, DecodeError> {
        match b {
            0 => Ok(Codec::Stored),
            1 => Ok(Codec::Deflate),
            other => Err(DecodeError::UnknownCodec(other)),
        }
    }
}

/// A DATA frame: a borrowed view over its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataFrame<'a> {
    /// The sender's file id (from its `Offer`).
    pub file_id: u32,
    /// Byte offset of this chunk in the file.
    pub offset: u64,
    /// Body encoding.
    pub codec: Codec,
    /// Length of the chunk once decoded, `1..=CHUNK`.
    pub plain_len: u32,
    /// The encoded body (stored bytes or a deflate stream).
    pub body: &'a [u8],
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    /// File bytes.
    Data(DataFrame<'a>),
    /// A control message.
    Control(Control),
}

fn be_u16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}
fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}
fn be_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

/// Decode one frame from the front of `buf`.
///
/// `Ok(None)` means `buf` holds the beginning of a valid frame and more bytes are needed;
/// `Ok(Some((frame, used)))` returns one complete frame and the number of bytes it took.
/// Lengths are validated from the header alone, before the body is waited for, and nothing is
/// allocated from an unchecked length. Never panics.
///
/// # Errors
/// [`DecodeError`] when the bytes cannot start a valid frame.
pub fn decode_frame(buf: &[u8]) -> Result<Option<(Frame<'_>, usize)>, DecodeError> {
    let Some(&kind) = buf.first() else {
        return Ok(None);
    };
    match kind {
        FRAME_DATA => {
            if buf.len() < DATA_HEADER_LEN {
                return Ok(None);
            }
            let codec = Codec::from_u8(buf[1])?;
            let file_id = be_u32(&buf[2..6]);
            let offset = be_u64(&buf[6..14]);
            let plain_len = be_u32(&buf[14..18]);
            let body_len = be_u32(&buf[18..22]);
            if plain_len == 0 || plain_len as usize > CHUNK {
                return Err(DecodeError::BadChunkLength(plain_len));
            }
            if body_len == 0 || body_len as usize > CHUNK {
                return Err(DecodeError::BadBodyLength(body_len));
            }
            if codec == Codec::Stored && body_len != plain_len {
                return Err(DecodeError::BadBodyLength(body_len));
            }
            if offset.checked_add(u64::from(plain_len)).is_none() {
                return Err(DecodeError::OffsetOverflow);
            }
            let end = DATA_HEADER_LEN + body_len as usize;
            if buf.len() < end {
                return Ok(None);
            }
            let frame = DataFrame {
                file_id,
                offset,
                codec,
                plain_len,
                body: &buf[DATA_HEADER_LEN..end],
            };
            Ok(Some((Frame::Data(frame), end)))
        }
        FRAME_CONTROL => {
            if buf.len() < CONTROL_HEADER_LEN {
                return Ok(None);
            }
            let len = usize::from(be_u16(&buf[1..3]));
            if len == 0 || len > MAX_CONTROL_LEN {
                return Err(DecodeError::BadControlLength(len));
            }
            let end = CONTROL_HEADER_LEN + len;
            if buf.len() < end {
                return Ok(None);
            }
            let body = &buf[CONTROL_HEADER_LEN..end];
            let (msg, rest) =
                postcard::take_from_bytes::<Control>(body).map_err(|_| DecodeError::Malformed)?;
            if !rest.is_empty() {
                return Err(DecodeError::TrailingBytes);
            }
            Ok(Some((Frame::Control(msg), end)))
        }
        other => Err(DecodeError::UnknownFrame(other)),
    }
}

/// Write a DATA frame header into `out[..DATA_HEADER_LEN]`; the body follows it.
///
/// # Errors
/// [`BufferTooSmall`] if `out` is shorter than the header.
pub fn encode_data_header(
    out: &mut [u8],
    file_id: u32,
    offset: u64,
    codec: Codec,
    plain_len: u32,
    body_len: u32,
) -> Result<usize, BufferTooSmall> {
    let Some(h) = out.get_mut(..DATA_HEADER_LEN) else {
        return Err(BufferTooSmall {
            needed: DATA_HEADER_LEN,
        });
    };
    h[0] = FRAME_DATA;
    h[1] = codec.to_u8();
    h[2..6].copy_from_slice(&file_id.to_be_bytes());
    h[6..14].copy_from_slice(&offset.to_be_bytes());
    h[14..18].copy_from_slice(&plain_len.to_be_bytes());
    h[18..22].copy_from_slice(&body_len.to_be_bytes());
    Ok(DATA_HEADER_LEN)
}

/// Encode a CONTROL frame into `out`, returning its length. Nothing is committed on failure.
///
/// # Errors
/// [`BufferTooSmall`] if the frame does not fit in `out` (or exceeds [`MAX_CONTROL_LEN`], in
/// which case `needed` is larger than any buffer may offer).
pub fn encode_control(msg: &Control, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    let too_small = BufferTooSmall {
        needed: CONTROL_HEADER_LEN + MAX_CONTROL_LEN + 1,
    };
    if out.len() <= CONTROL_HEADER_LEN {
        return Err(too_small);
    }
    let room = (out.len() - CONTROL_HEADER_LEN).min(MAX_CONTROL_LEN);
    let len = {
        let (_, body) = out.split_at_mut(CONTROL_HEADER_LEN);
        match postcard::to_slice(msg, &mut body[..room]) {
            Ok(used) => used.len(),
            Err(_) => return Err(too_small),
        }
    };
    out[0] = FRAME_CONTROL;
    // `len <= MAX_CONTROL_LEN` fits in u16.
    out[1..3].copy_from_slice(&(len as u16).to_be_bytes());
    Ok(CONTROL_HEADER_LEN + len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec;

    #[test]
    fn data_roundtrip_and_partial() {
        let body = [7u8; 10];
        let mut buf = vec![0u8; DATA_HEADER_LEN + body.len()];
        encode_data_header(&mut buf, 9, 1 << 40, Codec::Stored, 10, 10).unwrap();
        buf[DATA_HEADER_LEN..].copy_from_slice(&body);
        for cut in 0..buf.len() {
            assert_eq!(decode_frame(&buf[..cut]), Ok(None), "cut at {cut}");
        }
        let (frame, used) = decode_frame(&buf).unwrap().unwrap();
        assert_eq!(used, buf.len());
        let Frame::Data(d) = frame else {
            panic!("not data")
        };
        assert_eq!(
            (d.file_id, d.offset, d.plain_len, d.body),
            (9, 1 << 40, 10, &body[..])
        );
    }

    #[test]
    fn header_lengths_rejected_before_body() {
        let mut h = [0u8; DATA_HEADER_LEN];
        encode_data_header(&mut h, 1, 0, Codec::Stored, CHUNK as u32 + 1, 1).unwrap();
        assert_eq!(
            decode_frame(&h),
            Err(DecodeError::BadChunkLength(CHUNK as u32 + 1))
        );
        encode_data_header(&mut h, 1, 0, Codec::Stored, 5, 6).unwrap();
        assert_eq!(decode_frame(&h), Err(DecodeError::BadBodyLength(6)));
        encode_data_header(&mut h, 1, 0, Codec::Deflate, 5, u32::MAX).unwrap();
        assert_eq!(decode_frame(&h), Err(DecodeError::BadBodyLength(u32::MAX)));
        encode_data_header(&mut h, 1, u64::MAX, Codec::Stored, 5, 5).unwrap();
        assert_eq!(decode_frame(&h), Err(DecodeError::OffsetOverflow));
        h[1] = 9;
        assert_eq!(decode_frame(&h), Err(DecodeError::UnknownCodec(9)));
        assert_eq!(
            decode_frame(&[0x02, 0xff, 0xff]),
            Err(DecodeError::BadControlLength(0xffff))
        );
        assert_eq!(
            decode_frame(&[0x02, 0, 0]),
            Err(DecodeError::BadControlLength(0))
        );
        assert_eq!(decode_frame(&[0x33]), Err(DecodeError::UnknownFrame(0x33)));
    }

    #[test]
    fn control_roundtrip_rejects_trailing() {
        let msg = Control::Request {
            req: 4,
            kind: crate::wire::RequestKind::Get {
                path: String::from("a/b.txt"),
            },
        };
        let mut buf = [0u8; 64];
        let n = encode_control(&msg, &mut buf).unwrap();
        let (f, used) = decode_frame(&buf[..n]).unwrap().unwrap();
        assert_eq!((f, used), (Frame::Control(msg), n));
        // Grow the declared length by one: the extra byte inside the frame is rejected.
        let len = u16::from_be_bytes([buf[1], buf[2]]) + 1;
        buf[1..3].copy_from_slice(&len.to_be_bytes());
        assert_eq!(decode_frame(&buf[..n + 1]), Err(DecodeError::TrailingBytes));
    }

    #[test]
    fn encode_control_too_small_commits_nothing() {
        let msg = Control::Ping;
        let mut tiny = [0xAAu8; 3];
        assert!(encode_control(&msg, &mut tiny).is_err());
        assert_eq!(tiny, [0xAA; 3]);
    }
}
