//! Knobs of the datagram transport (the session's own knobs stay in [`crate::Config`]).

use core::time::Duration;

use super::{CongestionControl, MAX_MTU, MIN_MTU};

/// Packets sent under one key before the sender moves to the next (the K bit): half the
/// AES-GCM confidentiality limit of 2^23 packets (RFC 9001 §6.6), so an update is always done
/// well before the limit even if the peer is slow to follow.
pub(crate) const KEY_UPDATE_INTERVAL: u64 = 1 << 22;

/// Transport settings of a datagram connection. Both sides may differ; the idle timeout in
/// effect is the smaller of the two advertised values.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TransportConfig {
    /// The congestion controller.
    pub congestion: CongestionControl,
    /// The connection ends silently when nothing authenticated arrives for this long
    /// (advertised; the smaller of both sides' values applies, never less than 3 PTOs).
    pub idle_timeout: Duration,
    /// The round-trip time assumed before the first sample (RFC 9002: 333 ms).
    pub initial_rtt: Duration,
    /// The longest this side delays an acknowledgement (advertised).
    pub max_ack_delay: Duration,
    /// Bytes of session stream the peer may send beyond what this side has consumed, at the
    /// start (flow-control credit; auto-tuned up to `max_window`).
    pub initial_window: u64,
    /// Upper bound of the auto-tuned receive window: the most received, unconsumed stream
    /// bytes this side ever buffers.
    pub max_window: u64,
    /// Send-side bound on session bytes buffered (written and not yet acknowledged).
    pub send_buffer: usize,
    /// Probe the path for datagrams larger than [`MIN_MTU`] (up to `max_mtu`).
    pub mtu_discovery: bool,
    /// The largest UDP payload to probe for.
    pub max_mtu: u16,
    /// Most datagrams one `poll_transmit` writes as a GSO batch (1: no batching).
    pub max_batch: usize,
    /// Unstable test hook (feature `testing`): packets per key phase.
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    pub _internal_key_update_interval: u64,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            congestion: CongestionControl::default(),
            idle_timeout: Duration::from_secs(30),
            initial_rtt: Duration::from_millis(333),
            max_ack_delay: Duration::from_millis(25),
            initial_window: 16 << 20,
            max_window: 64 << 20,
            send_buffer: 64 << 20,
            mtu_discovery: true,
            max_mtu: MAX_MTU,
            max_batch: 1,
            #[cfg(feature = "testing")]
            _internal_key_update_interval: KEY_UPDATE_INTERVAL,
        }
    }
}

impl TransportConfig {
    /// Packets per key phase: the protocol's 2^22 (tests may shorten it).
    pub(crate) fn key_update_interval(&self) -> u64 {
        #[cfg(feature = "testing")]
        return self._internal_key_update_interval.max(1);
        #[cfg(not(feature = "testing"))]
        KEY_UPDATE_INTERVAL
    }

    /// The values really used: limits clamped into sane ranges.
    pub(crate) fn clamped(&self) -> TransportConfig {
        let mut c = self.clone();
        c.max_mtu = c.max_mtu.clamp(MIN_MTU, MAX_MTU);
        c.max_window = c.max_window.max(64 * 1024);
        c.initial_window = c.initial_window.clamp(64 * 1024, c.max_window);
        c.send_buffer = c.send_buffer.max(256 * 1024);
        c.max_batch = c.max_batch.clamp(1, 64);
        c.idle_timeout = c.idle_timeout.max(Duration::from_millis(100));
        c.max_ack_delay = c.max_ack_delay.min(Duration::from_millis(500));
        c
    }
}
