//! Datagram connections end to end in memory: a client and a server endpoint joined by a
//! scripted wire (fixed latency, per-datagram faults), on a virtual clock. The statistical and
//! performance scenarios live in the `ferry-sim` crate; these are the protocol's promises.

use std::net::SocketAddr;
use std::time::Duration;

use ferry_core::dgram::{Transmit, TransportConfig};
use ferry_core::testing::dgram::{DgramClient, DgramServer};
use ferry_core::testing::{MemApp, Outcome, TestRng};
use ferry_core::{Config, Event, Instant, Psk, SessionError};

/// What the wire does to one datagram.
enum Fate {
    Deliver,
    Drop,
    Duplicate,
}

type Fault = Box<dyn FnMut(bool, u64, &mut Vec<u8>) -> Fate>;

struct Net {
    client: DgramClient,
    server: DgramServer,
    now: Instant,
    latency: Duration,
    /// (deliver at, seq, to the server?, bytes)
    wire: Vec<(Instant, u64, bool, Vec<u8>)>,
    seq: u64,
    /// Datagrams sent per direction (0: client to server, 1: server to client).
    sent: [u64; 2],
    bytes: [u64; 2],
    /// Transmits (`poll_transmit` results: one datagram or a GSO batch) per direction.
    transmits: [u64; 2],
    /// Bytes that reached the other side, per direction.
    delivered: [u64; 2],
    fault: Fault,
    mtu: usize,
}

const CLIENT: &str = "10.0.0.1:5000";
const SERVER: &str = "10.0.0.2:4433";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn psk() -> Psk {
    Psk::from_key_bytes(&[9; 32])
}

fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = TestRng::new(seed);
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

fn sender(files: &[(&str, Vec<u8>)]) -> MemApp {
    let mut app = MemApp::new();
    for (p, d) in files {
        app = app.with_file(p, d.clone());
        app.to_send.push_back(p.to_string());
    }
    app.close_when_done = true;
    app
}

impl Net {
    fn new(client_app: MemApp, server_app: MemApp) -> Net {
        Self::with(
            client_app,
            server_app,
            &Config::default(),
            &TransportConfig::default(),
            &psk(),
        )
    }

    fn with(
        client_app: MemApp,
        server_app: MemApp,
        config: &Config,
        transport: &TransportConfig,
        client_psk: &Psk,
    ) -> Net {
        let now = Instant::from_micros(1_000_000);
        Net {
            client: DgramClient::new(
                config,
                transport,
                client_psk,
                [1; 32],
                now,
                addr(CLIENT),
                addr(SERVER),
                client_app,
            ),
            server: DgramServer::new(
                config,
                transport,
                &psk(),
                [2; 32],
                16,
                addr(SERVER),
                server_app,
            ),
            now,
            latency: Duration::from_millis(10),
            wire: Vec::new(),
            seq: 0,
            sent: [0; 2],
            bytes: [0; 2],
            transmits: [0; 2],
            delivered: [0; 2],
            fault: Box::new(|_, _, _| Fate::Deliver),
            mtu: 1452,
        }
    }

    fn push(&mut self, to_server: bool, t: Transmit, buf: &[u8]) {
        let seg = t.segment_size.unwrap_or(t.size);
        self.transmits[usize::from(!to_server)] += 1;
        for chunk in buf[..t.size].chunks(seg) {
            let dir = usize::from(!to_server);
            self.sent[dir] += 1;
            self.bytes[dir] += chunk.len() as u64;
            let mut d = chunk.to_vec();
            if d.len() > self.mtu {
                continue;
            }
            let n = self.sent[dir];
            let fate = (self.fault)(to_server, n, &mut d);
            let at = self.now + self.latency;
            match fate {
                Fate::Drop => {}
                Fate::Deliver => self.wire.push((at, self.seq, to_server, d)),
                Fate::Duplicate => {
                    self.wire.push((at, self.seq, to_server, d.clone()));
                    self.seq += 1;
                    self.wire
                        .push((at + Duration::from_millis(1), self.seq, to_server, d));
                }
            }
            self.seq += 1;
        }
    }

    /// One step: transmit everything, deliver what is due, fire timers, jump time.
    fn step(&mut self) {
        let mut buf = vec![0u8; 1452 * 64];
        while let Some(t) = self.client.poll_transmit(self.now, &mut buf) {
            let b = buf.clone();
            self.push(true, t, &b);
        }
        while let Some(t) = self.server.poll_transmit(self.now, &mut buf) {
            let b = buf.clone();
            self.push(false, t, &b);
        }
        self.client.check_invariants().unwrap();
        self.server.check_invariants().unwrap();
        self.wire.sort_by_key(|(at, seq, _, _)| (*at, *seq));
        let due: Vec<_> = {
            let n = self
                .wire
                .iter()
                .take_while(|(at, ..)| *at <= self.now)
                .count();
            self.wire.drain(..n).collect()
        };
        if !due.is_empty() {
            for (_, _, to_server, mut d) in due {
                self.delivered[usize::from(!to_server)] += d.len() as u64;
                if to_server {
                    self.server.handle_datagram(self.now, addr(CLIENT), &mut d);
                } else {
                    self.client.handle_datagram(self.now, addr(SERVER), &mut d);
                }
            }
            return;
        }
        let next = [
            self.wire.first().map(|w| w.0),
            self.client.poll_timeout(),
            self.server.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min();
        if let Some(t) = next {
            assert!(t >= self.now, "a deadline in the past");
            self.now = t;
        }
        self.client.handle_timeout(self.now);
        self.server.handle_timeout(self.now);
    }

    /// Run until `done`, within a step budget.
    fn run_until(&mut self, max_steps: usize, mut done: impl FnMut(&Net) -> bool) {
        for _ in 0..max_steps {
            if done(self) {
                return;
            }
            self.step();
        }
        panic!(
            "not done after {max_steps} steps, at {:?}\nclient: {}\nserver: {:?}",
            self.now,
            self.client.conn._internal_timers(),
            self.server
                .conns
                .values()
                .map(|(c, _)| c._internal_timers())
                .collect::<Vec<_>>()
        );
    }

    /// Until both sessions are over and both connections drained.
    fn run(&mut self) {
        self.run_until(200_000, |n| {
            n.client.conn.is_drained() && n.server.conns.is_empty() && !n.server.finished.is_empty()
        });
    }

    fn server_app(&self) -> &MemApp {
        &self.server.finished.first().expect("a connection ended").2
    }
}

fn clean(app: &MemApp) -> bool {
    app.log.contains(&Event::Closed { result: Ok(()) })
}

#[test]
fn put_round_trip_and_clean_close() {
    let files = [
        ("a.bin", data(1, 300_000)),
        ("dir/b", data(2, 5)),
        ("empty", vec![]),
    ];
    let mut net = Net::new(sender(&files), MemApp::new());
    net.run();
    let server = net.server_app();
    for (p, d) in &files {
        assert_eq!(server.files.get(*p), Some(d), "{p}");
        assert_eq!(net.client.app.outcomes.get(*p), Some(&Outcome::Delivered));
    }
    assert!(clean(&net.client.app) && clean(server));
    let stats = net.client.conn.stats();
    assert_eq!(stats.mtu, 1452, "the path MTU was discovered");
    assert_eq!(stats.stream_bytes_retransmitted, 0);
}

#[test]
fn get_and_list_over_datagrams() {
    let mut client = MemApp::new();
    client.to_get.push_back("x/y.bin".into());
    client.to_list.push_back(String::new());
    client.close_when_done = true;
    let server = MemApp::new().with_file("x/y.bin", data(3, 100_000));
    let mut net = Net::new(client, server);
    net.run();
    assert_eq!(net.client.app.files.get("x/y.bin"), Some(&data(3, 100_000)));
    assert_eq!(net.client.app.listings.len(), 1);
    assert!(clean(&net.client.app));
}

#[test]
fn lost_first_and_second_flights_recover() {
    for (to_server_lost, nth) in [(true, 1), (false, 1), (true, 2), (false, 2)] {
        let mut net = Net::new(sender(&[("f", data(4, 10_000))]), MemApp::new());
        net.fault = Box::new(move |to_server, n, _| {
            if to_server == to_server_lost && n == nth {
                Fate::Drop
            } else {
                Fate::Deliver
            }
        });
        net.run();
        assert_eq!(net.server_app().files.get("f"), Some(&data(4, 10_000)));
    }
}

#[test]
fn duplicated_and_replayed_datagrams_are_applied_once() {
    let mut net = Net::new(sender(&[("f", data(5, 200_000))]), MemApp::new());
    net.fault = Box::new(|_, _, _| Fate::Duplicate);
    net.run();
    assert_eq!(net.server_app().files.get("f"), Some(&data(5, 200_000)));
    let stats = net.client.conn.stats();
    assert!(stats.duplicates > 10, "{stats:?}");
}

#[test]
fn flipped_bits_are_dropped_and_resent() {
    let mut net = Net::new(sender(&[("f", data(6, 300_000))]), MemApp::new());
    let mut rng = TestRng::new(7);
    net.fault = Box::new(move |_, n, d| {
        if n > 3 && n % 7 == 0 {
            let i = rng.next_u64() as usize % d.len();
            d[i] ^= 1 << (rng.next_u64() % 8);
        }
        Fate::Deliver
    });
    net.run();
    assert_eq!(net.server_app().files.get("f"), Some(&data(6, 300_000)));
    let (c, s) = (net.client.conn.stats(), &net.server.finished[0].1.stats());
    assert!(c.auth_failures + s.auth_failures > 10);
    assert!(c.stream_bytes_retransmitted > 0);
}

#[test]
fn unvalidated_server_sends_at_most_three_times_what_it_received() {
    let mut net = Net::new(sender(&[("f", data(8, 1000))]), MemApp::new());
    // Everything after the client's first datagram is lost: the server only ever got 1 200
    // bytes from this address.
    net.fault = Box::new(|to_server, n, _| {
        if to_server && n > 1 {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    net.run_until(100_000, |n| n.client.conn.is_drained());
    assert_eq!(net.delivered[0], 1200, "the server got one padded datagram");
    assert!(net.bytes[1] > 0, "the server answered");
    assert!(
        net.bytes[1] <= 3 * net.delivered[0],
        "server sent {}",
        net.bytes[1]
    );
    assert!(
        matches!(
            net.client.app.log.last(),
            // The server's handshake timer ends it first (it never got `Start`), and its
            // CLOSE gets through within the amplification budget.
            Some(Event::Closed {
                result: Err(SessionError::ClosedByPeer(_) | SessionError::TimedOut)
            })
        ),
        "{:?}",
        net.client.app.log
    );
}

#[test]
fn wrong_key_gets_no_answer_and_times_out() {
    let other = Psk::from_key_bytes(&[1; 32]);
    let mut net = Net::with(
        sender(&[("f", vec![1])]),
        MemApp::new(),
        &Config::default(),
        &TransportConfig::default(),
        &other,
    );
    net.run_until(10_000, |n| n.client.conn.is_drained());
    assert_eq!(net.sent[1], 0, "the server never answers a wrong key");
    assert!(net.server.endpoint.stats().dropped_auth >= 1);
    assert!(net.server.conns.is_empty());
    assert!(matches!(
        net.client.app.log.last(),
        Some(Event::Closed {
            result: Err(SessionError::TimedOut)
        })
    ));
}

#[test]
fn keys_update_during_a_long_transfer() {
    let mut t = TransportConfig::default();
    t._internal_key_update_interval = 40;
    let mut net = Net::with(
        sender(&[("f", data(9, 400_000))]),
        MemApp::new(),
        &Config::default(),
        &t,
        &psk(),
    );
    net.run();
    assert_eq!(net.server_app().files.get("f"), Some(&data(9, 400_000)));
    assert!(net.client.conn.stats().key_updates >= 3);
}

#[test]
fn mtu_stays_minimal_when_the_path_is_small() {
    let mut net = Net::new(sender(&[("f", data(10, 100_000))]), MemApp::new());
    net.mtu = 1300;
    net.run();
    assert_eq!(net.server_app().files.get("f"), Some(&data(10, 100_000)));
    let mtu = net.client.conn.stats().mtu;
    assert!((1200..=1300).contains(&mtu), "{mtu}");
}

#[test]
fn total_loss_ends_both_sides_by_idle_timeout() {
    let mut t = TransportConfig::default();
    t.idle_timeout = Duration::from_secs(5);
    let mut net = Net::with(
        sender(&[("f", data(11, 1_000_000))]),
        MemApp::new(),
        &Config::default(),
        &t,
        &psk(),
    );
    net.run_until(10_000, |n| n.sent[0] > 50);
    let cut = net.now;
    net.fault = Box::new(|_, _, _| Fate::Drop);
    net.run_until(100_000, |n| {
        n.client.conn.is_drained() && n.server.conns.is_empty()
    });
    assert!(
        net.now - cut <= Duration::from_secs(6),
        "{:?}",
        net.now - cut
    );
    assert!(!net.server_app().files.contains_key("f"));
}

#[test]
fn full_server_refuses_with_busy_and_keeps_no_state() {
    let now = Instant::from_micros(1_000_000);
    let t = TransportConfig::default();
    let mut server = DgramServer::new(
        &Config::default(),
        &t,
        &psk(),
        [2; 32],
        1,
        addr(SERVER),
        MemApp::new(),
    );
    let mut buf = vec![0u8; 1452];
    let mut first = |seed: u8| {
        let mut c = DgramClient::new(
            &Config::default(),
            &t,
            &psk(),
            [seed; 32],
            now,
            addr(CLIENT),
            addr(SERVER),
            MemApp::new(),
        );
        let tx = c.poll_transmit(now, &mut buf).unwrap();
        (c, buf[..tx.size].to_vec())
    };
    let (_a, mut d1) = first(3);
    server.handle_datagram(now, addr(CLIENT), &mut d1);
    assert_eq!(server.conns.len(), 1);
    let (mut b, mut d2) = first(4);
    server.handle_datagram(now, addr(CLIENT), &mut d2);
    assert_eq!(server.conns.len(), 1, "no state for the refused client");
    assert_eq!(server.endpoint.stats().refused_busy, 1);
    // The first answer queued is the first client's reply; the refusal follows.
    let mut out = vec![0u8; 1452];
    let mut answers = Vec::new();
    while let Some(tx) = server.poll_transmit(now, &mut out) {
        answers.push(out[..tx.size].to_vec());
    }
    let refusal = answers
        .iter()
        .find(|a| a.len() < 200)
        .expect("a short refusal")
        .clone();
    let mut r = refusal;
    b.handle_datagram(now, addr(SERVER), &mut r);
    assert!(
        matches!(
            b.app.log.last(),
            Some(Event::Closed {
                result: Err(SessionError::Handshake(ferry_core::HandshakeError::Busy))
            })
        ),
        "{:?}",
        b.app.log
    );
}

#[test]
fn garbage_is_dropped_statelessly() {
    let now = Instant::from_micros(1_000_000);
    let t = TransportConfig::default();
    let mut server = DgramServer::new(
        &Config::default(),
        &t,
        &psk(),
        [2; 32],
        8,
        addr(SERVER),
        MemApp::new(),
    );
    let mut rng = TestRng::new(12);
    for len in [0usize, 1, 12, 13, 40, 600, 1199, 1200, 1452] {
        for first in [0x00u8, 0x40, 0xC0, 0xFF] {
            let mut d: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            if let Some(b) = d.first_mut() {
                *b = first;
            }
            server.handle_datagram(now, addr(CLIENT), &mut d);
        }
    }
    // A genuine first packet whose every byte after the header was flipped.
    let mut c = DgramClient::new(
        &Config::default(),
        &t,
        &psk(),
        [5; 32],
        now,
        addr(CLIENT),
        addr(SERVER),
        MemApp::new(),
    );
    let mut buf = vec![0u8; 1452];
    let tx = c.poll_transmit(now, &mut buf).unwrap();
    let mut forged = buf[..tx.size].to_vec();
    forged[40] ^= 1;
    server.handle_datagram(now, addr(CLIENT), &mut forged);
    assert!(server.conns.is_empty());
    let mut out = vec![0u8; 1452];
    assert!(
        server.poll_transmit(now, &mut out).is_none(),
        "garbage never draws an answer"
    );
    let stats = server.endpoint.stats();
    assert_eq!(stats.accepted, 0);
    assert!(
        stats.dropped_auth >= 1 && stats.dropped_header >= 30,
        "{stats:?}"
    );
    // The real packet still gets in.
    let mut real = buf[..tx.size].to_vec();
    server.handle_datagram(now, addr(CLIENT), &mut real);
    assert_eq!(server.conns.len(), 1);
}

#[test]
fn a_stalled_receiver_holds_the_sender_to_its_credit() {
    let size = 12 << 20;
    let mut paused = MemApp::new();
    paused.read_paused = true;
    let mut net = Net::new(sender(&[("big", data(13, size))]), paused);
    // Long enough for the sender to use all its credit and sit blocked.
    net.run_until(200_000, |n| n.now > Instant::from_micros(6_000_000));
    let sent = net.client.conn.stats().stream_bytes_sent;
    let credit = TransportConfig::default().initial_window;
    assert!(sent > credit / 2, "the sender used its credit: {sent}");
    assert!(
        sent <= credit + 512 * 1024,
        "sent {sent} past the credit {credit}"
    );
    assert!(net.server.finished.is_empty() && net.server.conns.len() == 1);
    // The disk comes back: everything arrives.
    for (_, app) in net.server.conns.values_mut() {
        app.read_paused = false;
    }
    net.run();
    assert_eq!(net.server_app().files.get("big").map(Vec::len), Some(size));
}

#[test]
fn gso_batches_never_hold_a_datagram_larger_than_their_segment() {
    // Batches of 4 while the path MTU is discovered (1 200 → 1 452): a probe larger than the
    // batch's segment size must go in a batch of its own, or GSO cuts it (and it is lost).
    let mut t = TransportConfig::default();
    t.max_batch = 4;
    let mut net = Net::with(
        sender(&[("f", data(12, 2_000_000))]),
        MemApp::new(),
        &Config::default(),
        &t,
        &psk(),
    );
    net.run();
    assert_eq!(net.server_app().files.get("f"), Some(&data(12, 2_000_000)));
    let stats = net.client.conn.stats();
    assert_eq!(stats.mtu, 1452);
    assert_eq!(
        (stats.packets_lost, stats.stream_bytes_retransmitted),
        (0, 0),
        "{stats:?}"
    );
}

#[test]
fn a_paced_sender_sends_whole_batches_not_one_datagram_per_wake() {
    // Each `poll_transmit` is a wake-up of the sender and a send call. The pacer must let a
    // whole batch go at once (it waits until it holds tokens for one), not release one
    // datagram per token (one every 11 µs at 1 Gbit/s: a wake-up per datagram).
    let mut t = TransportConfig::default();
    t.max_batch = 32;
    t.congestion = ferry_core::dgram::CongestionControl::Bbr;
    let mut net = Net::with(
        sender(&[("f", data(13, 8_000_000))]),
        MemApp::new(),
        &Config::default(),
        &t,
        &psk(),
    );
    net.run();
    assert_eq!(net.server_app().files.get("f"), Some(&data(13, 8_000_000)));
    let per_transmit = net.sent[0] as f64 / net.transmits[0] as f64;
    assert!(
        per_transmit >= 16.0,
        "{} datagrams in {} transmits ({per_transmit:.2} each)",
        net.sent[0],
        net.transmits[0]
    );
}

/// The three-message XX handshake (mode PINNED) and XXpsk3 (PINNED+PSK) ride in CRYPTO
/// frames like NNpsk0's two: a transfer completes and each side learns the other's key.
#[test]
fn pinned_modes_over_datagrams() {
    for mode in [ferry_core::Mode::Pinned, ferry_core::Mode::PinnedPsk] {
        let id = ferry_core::Identity::from_secret_bytes([5; 32]);
        let mut config = Config::default();
        config.mode = mode;
        config.identity = Some(id.clone());
        let files = [("a.bin", data(1, 200_000))];
        let mut net = Net::with(
            sender(&files),
            MemApp::new(),
            &config,
            &TransportConfig::default(),
            &psk(),
        );
        net.run();
        assert_eq!(
            net.server_app().files.get("a.bin"),
            Some(&files[0].1),
            "{mode:?}"
        );
        assert!(clean(&net.client.app), "{mode:?}");
        assert_eq!(
            net.client.conn.session().peer_static(),
            Some(id.public_key())
        );
        let (_, server_conn, _) = net.server.finished.first().unwrap();
        assert_eq!(server_conn.session().peer_static(), Some(id.public_key()));
    }
}

/// A client asking for another mode than the server's hears which one, over datagrams too
/// (a CLOSE with the mode code in a handshake packet), instead of waiting for a timeout.
#[test]
fn mismatched_mode_over_datagrams_names_the_required_mode() {
    let mut server_cfg = Config::default();
    server_cfg.mode = ferry_core::Mode::Pinned;
    server_cfg.identity = Some(ferry_core::Identity::from_secret_bytes([5; 32]));
    let now = Instant::from_micros(1_000_000);
    let mut net = Net::new(sender(&[("a", data(1, 10))]), MemApp::new());
    net.server = DgramServer::new(
        &server_cfg,
        &TransportConfig::default(),
        &psk(),
        [2; 32],
        16,
        addr(SERVER),
        MemApp::new(),
    );
    net.now = now;
    net.run_until(10_000, |n| n.client.conn.session().is_closed());
    assert_eq!(
        net.client.conn.session().error(),
        Some(SessionError::Handshake(
            ferry_core::HandshakeError::ModeRequired(0x03)
        ))
    );
    assert!(
        net.now < now + Duration::from_secs(2),
        "answered, not timed out"
    );
}

/// Mode CODE over datagrams: the SPAKE2 round trip fits the handshake packets and the
/// session works; a wrong code fails. Over datagrams a server never answers a failed
/// handshake (no burned-code refusal, as no answer to a wrong key): the client times out.
#[test]
fn short_code_over_datagrams() {
    let code = |s: &str| ferry_core::Code::parse(s).unwrap().psk();
    let server_with = |psk: &Psk| {
        DgramServer::new(
            &Config::default(),
            &TransportConfig::default(),
            psk,
            [2; 32],
            16,
            addr(SERVER),
            MemApp::new(),
        )
    };
    let files = [("f", data(12, 200_000))];
    let right = code("7-acid-acorn-acre-aged");
    let mut net = Net::with(
        sender(&files),
        MemApp::new(),
        &Config::default(),
        &TransportConfig::default(),
        &right,
    );
    net.server = server_with(&right);
    net.run();
    assert_eq!(net.server_app().files.get("f"), Some(&files[0].1));
    assert!(clean(&net.client.app));

    let mut net = Net::with(
        sender(&files),
        MemApp::new(),
        &Config::default(),
        &TransportConfig::default(),
        &code("7-acid-acorn-acre-ajar"),
    );
    net.server = server_with(&right);
    net.run_until(20_000, |n| n.client.conn.is_drained());
    assert!(
        net.client.app.log.iter().any(|e| matches!(
            e,
            Event::Closed {
                result: Err(SessionError::TimedOut)
            }
        )),
        "{:?}",
        net.client.app.log.last()
    );
    assert!(net.server.endpoint.stats().dropped_auth >= 1);
    assert!(
        net.server
            .finished
            .iter()
            .all(|(_, _, app)| app.files.is_empty())
    );
}
