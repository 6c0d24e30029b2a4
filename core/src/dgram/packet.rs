#![allow(dead_code)]
//! Packet headers: one packet per datagram, header in clear (it is the AEAD's associated
//! data), then the sealed frames and a 16-byte tag.
//!
//! ```text
//! long  (handshake): 0xC0 | version u32 | dcid[8] | scid[8] | pn u32   (25 bytes)
//! short (data):      0x40 | K << 2 | dcid[8] | pn u32                  (13 bytes)
//! ```
//!
//! Byte 0: 0x80 is the form bit (long), 0x40 the fixed bit (always set), 0x04 in a short
//! header the key phase; every other bit is zero. `pn` is the low 32 bits of the packet number
//! ([`truncate_pn`], [`expand_pn`]).

pub(crate) use crate::crypto::aead::TAG_LEN;

/// Connection ID length: every connection ID is 8 bytes.
pub(crate) const CID_LEN: usize = 8;
/// A connection ID.
pub(crate) type Cid = [u8; CID_LEN];
/// The version in long headers: "FRY" v1.
pub(crate) const VERSION: u32 = 0x4652_5901;
/// Long header length: byte 0, version, dcid, scid, packet number.
pub(crate) const LONG_HEADER_LEN: usize = 1 + 4 + CID_LEN + CID_LEN + 4;
/// Short header length: byte 0, dcid, packet number.
pub(crate) const SHORT_HEADER_LEN: usize = 1 + CID_LEN + 4;

const FORM_LONG: u8 = 0x80;
const FIXED: u8 = 0x40;
const KEY_PHASE: u8 = 0x04;

/// A packet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Header {
    /// A handshake packet.
    Long { dcid: Cid, scid: Cid, pn: u32 },
    /// A data packet; `key_phase` is the K bit (key update).
    Short { key_phase: bool, dcid: Cid, pn: u32 },
}

impl Header {
    /// The destination connection ID.
    pub(crate) fn dcid(&self) -> Cid {
        match *self {
            Header::Long { dcid, .. } | Header::Short { dcid, .. } => dcid,
        }
    }

    /// The truncated packet number.
    pub(crate) fn pn(&self) -> u32 {
        match *self {
            Header::Long { pn, .. } | Header::Short { pn, .. } => pn,
        }
    }

    /// Encoded length: [`LONG_HEADER_LEN`] or [`SHORT_HEADER_LEN`].
    pub(crate) fn len(&self) -> usize {
        match self {
            Header::Long { .. } => LONG_HEADER_LEN,
            Header::Short { .. } => SHORT_HEADER_LEN,
        }
    }

    /// Write the header at the start of `out`; its length, or `None` if `out` is too short.
    pub(crate) fn write(&self, out: &mut [u8]) -> Option<usize> {
        let out = out.get_mut(..self.len())?;
        match self {
            Header::Long { dcid, scid, pn } => {
                out[0] = FORM_LONG | FIXED;
                out[1..5].copy_from_slice(&VERSION.to_be_bytes());
                out[5..13].copy_from_slice(dcid);
                out[13..21].copy_from_slice(scid);
                out[21..25].copy_from_slice(&pn.to_be_bytes());
            }
            Header::Short {
                key_phase,
                dcid,
                pn,
            } => {
                out[0] = FIXED | if *key_phase { KEY_PHASE } else { 0 };
                out[1..9].copy_from_slice(dcid);
                out[9..13].copy_from_slice(&pn.to_be_bytes());
            }
        }
        Some(out.len())
    }
}

/// Why a datagram is not a ferry packet (dropped before any AEAD work).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PacketError {
    /// Shorter than its header, a tag and one byte of payload.
    TooShort,
    /// Fixed bit clear or a reserved bit set.
    NotFerry,
    /// A long header with another version.
    UnknownVersion(u32),
}

fn cid(b: &[u8]) -> Cid {
    let mut c = [0; CID_LEN];
    c.copy_from_slice(b);
    c
}

fn u32_at(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Parse the header of `datagram`, checking only what is cheap: the fixed and reserved bits,
/// the version, and that a tag and at least one payload byte follow the header.
pub(crate) fn parse_header(datagram: &[u8]) -> Result<Header, PacketError> {
    let &b0 = datagram.first().ok_or(PacketError::TooShort)?;
    if b0 & FORM_LONG != 0 {
        if b0 != FORM_LONG | FIXED {
            return Err(PacketError::NotFerry);
        }
        let version = datagram
            .get(1..5)
            .map(u32_at)
            .ok_or(PacketError::TooShort)?;
        if version != VERSION {
            return Err(PacketError::UnknownVersion(version));
        }
        if datagram.len() < LONG_HEADER_LEN + TAG_LEN + 1 {
            return Err(PacketError::TooShort);
        }
        Ok(Header::Long {
            dcid: cid(&datagram[5..13]),
            scid: cid(&datagram[13..21]),
            pn: u32_at(&datagram[21..25]),
        })
    } else {
        if b0 & !KEY_PHASE != FIXED {
            return Err(PacketError::NotFerry);
        }
        if datagram.len() < SHORT_HEADER_LEN + TAG_LEN + 1 {
            return Err(PacketError::TooShort);
        }
        Ok(Header::Short {
            key_phase: b0 & KEY_PHASE != 0,
            dcid: cid(&datagram[1..9]),
            pn: u32_at(&datagram[9..13]),
        })
    }
}

/// The low 32 bits of a packet number, as sent.
pub(crate) fn truncate_pn(pn: u64) -> u32 {
    pn as u32
}

/// The full packet number closest to the next expected one (`largest_received + 1`, or 0)
/// whose low 32 bits are `truncated` (RFC 9000 appendix A.3 with 32-bit packet numbers).
/// Exact when the sender keeps fewer than 2^31 packets in flight.
pub(crate) fn expand_pn(largest_received: Option<u64>, truncated: u32) -> u64 {
    const WIN: u64 = 1 << 32;
    const HWIN: u64 = WIN / 2;
    const MASK: u64 = WIN - 1;
    let expected = largest_received.map_or(0, |l| l.saturating_add(1));
    let candidate = (expected & !MASK) | u64::from(truncated);
    if candidate.saturating_add(HWIN) <= expected && candidate < (1 << 62) - WIN {
        candidate + WIN
    } else if candidate > expected.saturating_add(HWIN) && candidate >= WIN {
        candidate - WIN
    } else {
        candidate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DCID: Cid = [1, 2, 3, 4, 5, 6, 7, 8];
    const SCID: Cid = [9, 10, 11, 12, 13, 14, 15, 16];

    fn datagram(h: &Header, payload: usize) -> alloc::vec::Vec<u8> {
        let mut d = alloc::vec![0xee; h.len() + payload + TAG_LEN];
        assert_eq!(h.write(&mut d), Some(h.len()));
        d
    }

    #[test]
    fn headers_round_trip_with_exact_bytes() {
        let long = Header::Long {
            dcid: DCID,
            scid: SCID,
            pn: 0x0102_0304,
        };
        let d = datagram(&long, 1);
        assert_eq!(
            hex::encode(&d[..LONG_HEADER_LEN]),
            "c046525901\
             0102030405060708\
             090a0b0c0d0e0f10\
             01020304"
        );
        assert_eq!(parse_header(&d), Ok(long));
        assert_eq!(long.dcid(), DCID);

        for key_phase in [false, true] {
            let short = Header::Short {
                key_phase,
                dcid: DCID,
                pn: 0xfffe_fdfc,
            };
            let d = datagram(&short, 1);
            let b0 = if key_phase { "44" } else { "40" };
            assert_eq!(
                hex::encode(&d[..SHORT_HEADER_LEN]),
                alloc::format!("{b0}0102030405060708fffefdfc")
            );
            assert_eq!(parse_header(&d), Ok(short));
            assert_eq!(short.pn(), 0xfffe_fdfc);
        }
        let mut small = [0u8; SHORT_HEADER_LEN - 1];
        assert_eq!(long.write(&mut small), None);
        assert_eq!(
            Header::Short {
                key_phase: false,
                dcid: DCID,
                pn: 0
            }
            .write(&mut small),
            None
        );
    }

    #[test]
    fn parse_rejects_garbage_cheaply() {
        let short = Header::Short {
            key_phase: false,
            dcid: DCID,
            pn: 5,
        };
        let long = Header::Long {
            dcid: DCID,
            scid: SCID,
            pn: 5,
        };
        assert_eq!(parse_header(&[]), Err(PacketError::TooShort));
        // Header + tag with no payload byte is too short; one more byte is enough.
        let d = datagram(&short, 0);
        assert_eq!(parse_header(&d), Err(PacketError::TooShort));
        let d = datagram(&long, 0);
        assert_eq!(parse_header(&d), Err(PacketError::TooShort));
        assert_eq!(parse_header(&d[..3]), Err(PacketError::TooShort));

        // Any bit other than form, fixed and (short) key phase set, or fixed bit clear.
        for bit in 0..8 {
            let mut d = datagram(&short, 1);
            d[0] ^= 1 << bit;
            let expect_ok = 1 << bit == KEY_PHASE;
            if 1 << bit == FORM_LONG {
                // Now a long header with a garbage version.
                assert!(matches!(
                    parse_header(&d),
                    Err(PacketError::UnknownVersion(_))
                ));
            } else {
                assert_eq!(parse_header(&d).is_ok(), expect_ok, "short, bit {bit}");
            }
            let mut d = datagram(&long, 1);
            d[0] ^= 1 << bit;
            if 1 << bit != FORM_LONG {
                assert_eq!(
                    parse_header(&d),
                    Err(PacketError::NotFerry),
                    "long, bit {bit}"
                );
            }
        }
        let mut d = datagram(&long, 1);
        d[4] = 2;
        assert_eq!(
            parse_header(&d),
            Err(PacketError::UnknownVersion(0x4652_5902))
        );
    }

    /// RFC 9000 appendix A.3's example (16-bit), scaled to 32 bits, plus wraps both ways.
    #[test]
    fn expand_examples() {
        assert_eq!(
            expand_pn(Some(0xa82f_30ea_0000), 0x9b32_0000),
            0xa82f_9b32_0000
        );
        assert_eq!(expand_pn(Some(0xffff_fffe), 1), 0x1_0000_0001);
        assert_eq!(expand_pn(Some(0x1_0000_0005), 0xffff_fff0), 0xffff_fff0);
        assert_eq!(expand_pn(None, 0), 0);
        assert_eq!(expand_pn(None, 0x7fff_ffff), 0x7fff_ffff);
        assert_eq!(truncate_pn(0x1234_5678_9abc), 0x5678_9abc);
        // No overflow panic at the extreme.
        assert_eq!(expand_pn(Some(u64::MAX), 0), 0xffff_ffff_0000_0000);
    }

    proptest! {
        #[test]
        fn expand_inverts_truncate(
            largest in proptest::option::of(0..crate::dgram::varint::MAX),
            delta in -(1i64 << 31) + 1..(1i64 << 31),
        ) {
            let expected = largest.map_or(0, |l| l + 1) as i128;
            let pn = expected + i128::from(delta);
            prop_assume!(pn >= 0 && pn <= i128::from(crate::dgram::varint::MAX));
            let pn = pn as u64;
            prop_assert_eq!(expand_pn(largest, truncate_pn(pn)), pn);
        }

        #[test]
        fn parse_never_panics(d in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(h) = parse_header(&d) {
                prop_assert!(d.len() > h.len() + TAG_LEN);
                let mut again = [0u8; LONG_HEADER_LEN];
                let n = h.write(&mut again).unwrap();
                prop_assert_eq!(&again[..n], &d[..n]);
            }
        }
    }
}
