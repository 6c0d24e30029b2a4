//! Congestion controllers: NewReno (RFC 9002 §7), CUBIC (RFC 9438) and a BBR-style model.

use alloc::boxed::Box;
use core::time::Duration;

use super::rtt::RttEstimator;
use crate::dgram::CongestionControl;
use crate::time::Instant;

mod bbr;
mod cubic;
mod newreno;

pub(crate) use bbr::Bbr;
pub(crate) use cubic::Cubic;
pub(crate) use newreno::NewReno;

/// One delivery-rate sample (draft-cheng-iccrg-delivery-rate-estimation), taken once per ACK
/// frame from the most recently sent packet it newly acknowledges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeliverySample {
    /// Bytes delivered (acknowledged) over the connection's lifetime, this ACK included.
    pub(crate) delivered: u64,
    /// `delivered` when the sampled packet was sent.
    pub(crate) prior_delivered: u64,
    /// Bytes delivered over the sample's interval.
    pub(crate) delivered_in_interval: u64,
    /// The sample's interval: the longer of its send and ACK phases.
    pub(crate) interval: Duration,
    /// Bytes per second over the interval; zero when the interval is shorter than the minimum
    /// RTT (ACK compression) or empty.
    pub(crate) delivery_rate: u64,
    /// The sampled packet was sent while the sender was application-limited: the rate
    /// underestimates the path.
    pub(crate) is_app_limited: bool,
    /// Time from sending the sampled packet to this ACK (no ACK-delay correction).
    pub(crate) rtt: Duration,
    /// Bytes newly acknowledged by this ACK frame.
    pub(crate) newly_acked: u64,
    /// Bytes in flight after this ACK, before loss detection.
    pub(crate) bytes_in_flight: u64,
}

/// A congestion controller: a pure state machine fed with send, ACK and loss events.
pub(crate) trait Controller: core::fmt::Debug + Send {
    /// An in-flight packet of `bytes` left; `in_flight` is bytes in flight including it.
    fn on_sent(&mut self, now: Instant, bytes: u64, in_flight: u64);

    /// One newly acknowledged in-flight packet, sent at `sent_time`. `app_limited`: the
    /// connection is application-limited (window-based controllers do not grow then). The
    /// packets of one ACK frame come in order of sending; the last carries the frame's
    /// delivery-rate `sample`, the others `None`.
    fn on_ack(
        &mut self,
        now: Instant,
        sent_time: Instant,
        bytes: u64,
        app_limited: bool,
        rtt: &RttEstimator,
        sample: Option<&DeliverySample>,
    );

    /// In-flight packets of `lost_bytes` were declared lost (every loss, including those
    /// inside a recovery period and lost MTU probes). Default: nothing.
    fn on_loss(&mut self, _now: Instant, _lost_bytes: u64) {}

    /// A congestion event: `sent_time` is the send time of the newest lost packet. The
    /// controller reduces its window unless already in a recovery period that started after
    /// `sent_time`; `persistent` (RFC 9002 §7.6) resets it to the minimum window regardless.
    fn on_congestion_event(
        &mut self,
        now: Instant,
        sent_time: Instant,
        persistent: bool,
        lost_bytes: u64,
    );

    /// The maximum datagram size changed.
    fn on_mtu_update(&mut self, mtu: u16);

    /// The congestion window, in bytes.
    fn window(&self) -> u64;

    /// The controller's own pacing rate in bytes per second, or `None` for the default
    /// (1.25 × window / srtt).
    fn pacing_rate(&self, rtt: &RttEstimator) -> Option<u64>;

    /// The window the controller started with.
    fn initial_window(&self) -> u64;
}

/// RFC 9002 §7.2: min(10 × mtu, max(14 720, 2 × mtu)).
pub(crate) fn initial_window(mtu: u16) -> u64 {
    let mtu = u64::from(mtu);
    (10 * mtu).min(14_720.max(2 * mtu))
}

/// RFC 9002 §7.2: 2 × mtu.
pub(crate) fn minimum_window(mtu: u16) -> u64 {
    2 * u64::from(mtu)
}

/// The controller of kind `kind` for datagrams of `mtu` bytes.
pub(crate) fn new_controller(
    kind: CongestionControl,
    mtu: u16,
    now: Instant,
) -> Box<dyn Controller> {
    match kind {
        CongestionControl::NewReno => Box::new(NewReno::new(mtu)),
        CongestionControl::Cubic => Box::new(Cubic::new(mtu)),
        CongestionControl::Bbr => Box::new(Bbr::new(mtu, now)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_window_follows_rfc_9002() {
        assert_eq!(initial_window(1200), 12_000);
        assert_eq!(initial_window(1452), 14_520);
        assert_eq!(initial_window(9000), 18_000);
        assert_eq!(minimum_window(1200), 2400);
        for kind in [
            CongestionControl::NewReno,
            CongestionControl::Cubic,
            CongestionControl::Bbr,
        ] {
            let cc = new_controller(kind, 1200, Instant::ZERO);
            assert_eq!(cc.window(), 12_000, "{kind:?}");
            assert_eq!(cc.initial_window(), 12_000, "{kind:?}");
        }
    }
}
