//! Transport parameters: the block each side puts at the start of its CRYPTO stream, before its
//! handshake message. Handshake packets are sealed with keys derived from the PSK, so the block
//! is authenticated as much as the handshake packets are.

use core::time::Duration;

/// `idle_timeout_ms u32 | max_ack_delay_ms u16 | initial_max_data u64`, big-endian.
pub(crate) const PARAMS_LEN: usize = 4 + 2 + 8;

/// What one side advertises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Params {
    pub(crate) idle_timeout: Duration,
    pub(crate) max_ack_delay: Duration,
    pub(crate) initial_max_data: u64,
}

/// The peer's parameters are out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadParams;

impl Params {
    pub(crate) fn encode(&self) -> [u8; PARAMS_LEN] {
        let mut b = [0u8; PARAMS_LEN];
        let idle = u32::try_from(self.idle_timeout.as_millis()).unwrap_or(u32::MAX);
        let delay = u16::try_from(self.max_ack_delay.as_millis()).unwrap_or(u16::MAX);
        b[..4].copy_from_slice(&idle.to_be_bytes());
        b[4..6].copy_from_slice(&delay.to_be_bytes());
        b[6..].copy_from_slice(&self.initial_max_data.to_be_bytes());
        b
    }

    /// Parse and bound-check: an idle timeout of at least 100 ms, an ACK delay of at most
    /// 16 s (RFC 9000 §18.2 caps it at 2^14 ms), some initial credit.
    pub(crate) fn decode(b: &[u8; PARAMS_LEN]) -> Result<Params, BadParams> {
        let idle = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let delay = u16::from_be_bytes([b[4], b[5]]);
        let mut d = [0u8; 8];
        d.copy_from_slice(&b[6..]);
        let initial_max_data = u64::from_be_bytes(d);
        if idle < 100 || delay >= 1 << 14 || initial_max_data < 1024 {
            return Err(BadParams);
        }
        Ok(Params {
            idle_timeout: Duration::from_millis(u64::from(idle)),
            max_ack_delay: Duration::from_millis(u64::from(delay)),
            initial_max_data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bounds() {
        let p = Params {
            idle_timeout: Duration::from_secs(30),
            max_ack_delay: Duration::from_millis(25),
            initial_max_data: 4 << 20,
        };
        assert_eq!(Params::decode(&p.encode()), Ok(p));
        let mut b = p.encode();
        b[..4].copy_from_slice(&50u32.to_be_bytes());
        assert_eq!(Params::decode(&b), Err(BadParams));
        let mut b = p.encode();
        b[4..6].copy_from_slice(&(1u16 << 14).to_be_bytes());
        assert_eq!(Params::decode(&b), Err(BadParams));
        let mut b = p.encode();
        b[6..].copy_from_slice(&0u64.to_be_bytes());
        assert_eq!(Params::decode(&b), Err(BadParams));
    }
}
