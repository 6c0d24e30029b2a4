//! `dgram`: the datagram transport's packet protection and a whole in-memory datagram
//! transfer.
//!
//! - `dgram/packet`: protect + unprotect of one 1 400-byte data packet (13-byte short header,
//!   1 371 bytes of frames, 16-byte tag) through the connection's packet key
//!   (`ferry/protect+unprotect`: header written, nonce from the packet number, seal in place,
//!   tag appended; then header parsed, id checked, packet number expanded, opened in place),
//!   next to bare `aes-gcm` sealing and opening the same 1 371 bytes in place with the same
//!   13 bytes of associated data (`aes-gcm/seal+open`). Both key schedules are done once.
//!   Throughput is counted as 1 400 bytes for both, so the ratio of the two rates is the
//!   packet layer's efficiency (target ≥ 0.85). Both are timed by the thread's CPU clock
//!   (Unix), so that a busy machine slows neither side more than the other.
//! - `dgram/transfer`: a 64 MiB file from client to server over two datagram connections
//!   (client `Connection`, server `Endpoint` + `Connection`) with no rate limit, no loss and
//!   no latency, on one thread: see [`transfer`]. Target ≥ 2 Gbit/s of goodput (printed in
//!   Gb/s). `64MiB` is timed by the wall clock, `64MiB/cpu` (Unix) by the thread's CPU
//!   clock, which does not count the time the thread waits for a core on a busy machine.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit};
use criterion::{Bencher, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use ferry_bench::random_bytes;
use proto::dgram::{Connection, DatagramEvent, Endpoint, MAX_MTU, TransportConfig};
use proto::testing::bench::{DGRAM_HEADER_LEN, DGRAM_OVERHEAD, DgramPacketKey};
use proto::{CHUNK, CloseCode, Config, Event, FileHasher, FileMeta, Instant, Psk, SendId};

const PACKET: usize = 1400;
const PAYLOAD: usize = PACKET - DGRAM_OVERHEAD;
const SECRET: [u8; 32] = [0x55; 32];
const DCID: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

fn packet(c: &mut Criterion) {
    let frames = random_bytes(PAYLOAD, 2);
    let mut g = c.benchmark_group("dgram/packet");
    g.throughput(Throughput::Bytes(PACKET as u64))
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    {
        let (mut sealer, mut opener) = (
            DgramPacketKey::new(SECRET, DCID),
            DgramPacketKey::new(SECRET, DCID),
        );
        let mut buf = vec![0u8; PACKET];
        buf[DGRAM_HEADER_LEN..DGRAM_HEADER_LEN + PAYLOAD].copy_from_slice(&frames);
        g.bench_function("ferry/protect+unprotect", |b| {
            cpu_timed(b, || {
                let n = sealer.seal(&mut buf, PAYLOAD);
                black_box(opener.open(&mut buf[..n]).expect("packet opens"));
            });
        });
    }
    {
        let cipher = Aes256Gcm::new(&[0x44; 32].into());
        let nonce = [7u8; 12];
        let aad = [0x40u8; DGRAM_HEADER_LEN];
        let mut buf = frames.clone();
        g.bench_function("aes-gcm/seal+open", |b| {
            cpu_timed(b, || {
                let tag = cipher
                    .encrypt_inout_detached(&nonce.into(), &aad, buf.as_mut_slice().into())
                    .expect("seals");
                cipher
                    .decrypt_inout_detached(&nonce.into(), &aad, buf.as_mut_slice().into(), &tag)
                    .expect("opens");
                black_box(&buf);
            });
        });
    }
    g.finish();
}

const FILE: u64 = 64 << 20;
const BLOCK: usize = 1 << 20;
/// Virtual time per round of the driver: a round trip costs this much of the clock.
const TICK: Duration = Duration::from_micros(20);
/// Rounds after which a transfer that has not ended is a stall (a bug, not a slow run).
const MAX_ROUNDS: u64 = 10_000_000;

/// Send `total` bytes (`block` repeated) from a client to a server over two datagram
/// connections; returns the bytes the server's application read.
///
/// The driver passes every datagram straight from `poll_transmit`'s buffer to the peer's
/// `handle_datagram` (opened in place there): one 1 452-byte buffer per direction, no queue,
/// no copy, no loss, nothing delayed. Each round the client's application writes, the client
/// transmits everything it may, and after each of its datagrams the server's application
/// reads and the server transmits what it owes (ACKs, credit) back; then the virtual clock
/// moves on by [`TICK`], or, when nothing moved (no datagram, no read, no event), jumps to
/// the next timer.
/// Included, per iteration: both connections' creation and handshake, the offer, accept and
/// start, the client's `write`s (copy into the send buffer, BLAKE3 of the file), packet
/// building and sealing, opening, ACK and loss processing, congestion control and pacing,
/// the server's `read`s (copy out, BLAKE3 check), `Delivered` and both closes.
fn transfer(block: &[u8], total: u64, chunk: &mut [u8]) -> u64 {
    let (config, transport) = (Config::default(), TransportConfig::default());
    let psk = Psk::from_key_bytes(&[0x42; 32]);
    let client_addr: SocketAddr = "10.0.0.1:5000".parse().expect("address");
    let server_addr: SocketAddr = "10.0.0.2:4433".parse().expect("address");
    let start = Instant::from_micros(1_000_000);
    let mut now = start;
    let mut client = Connection::client(&config, &transport, &psk, [1; 32], now, server_addr);
    let mut endpoint = Endpoint::new(&config, &transport, &psk, [2; 32], 1);
    let mut server: Option<Connection> = None;
    let (mut c2s, mut s2c) = (vec![0u8; MAX_MTU.into()], vec![0u8; MAX_MTU.into()]);
    let mut response = vec![0u8; MAX_MTU.into()];

    let mut sending: Option<SendId> = None;
    let (mut offered, mut started, mut finished) = (false, false, false);
    let (mut written, mut received) = (0u64, 0u64);
    for _ in 0..MAX_ROUNDS {
        let mut moved = false;
        // The client's application: offer, start, write, finish, close.
        let cs = client.session_mut();
        if !offered && cs.is_connected() {
            sending = Some(
                cs.offer(FileMeta::new("big.bin", Some(total)))
                    .expect("offer"),
            );
            offered = true;
        }
        while let Some(ev) = cs.poll_event() {
            moved = true;
            match ev {
                Event::Accepted { id, resume_from } => {
                    assert_eq!((Some(id), resume_from), (sending, 0));
                    cs.start(id, FileHasher::new()).expect("start");
                    started = true;
                }
                Event::Delivered { .. } => cs.close(now, CloseCode::Done),
                _ => {}
            }
        }
        if let (Some(id), true, false) = (sending, started, finished) {
            while written < total {
                let at = (written % block.len() as u64) as usize;
                let end = block.len().min(at + (total - written) as usize);
                let n = cs.write(id, &block[at..end]).expect("write");
                if n == 0 {
                    break;
                }
                written += n as u64;
                moved = true;
            }
            if written == total {
                cs.finish(id).expect("finish");
                finished = true;
                moved = true;
            }
        }
        // Client to server, each datagram straight into the server; after each, the server
        // transmits what it owes (an ACK every second packet) straight into the client.
        while let Some(t) = client.poll_transmit(now, &mut c2s) {
            moved = true;
            let d = &mut c2s[..t.size];
            let s = match &mut server {
                Some(s) => {
                    s.handle_datagram(now, client_addr, d);
                    s
                }
                None => match endpoint.handle(now, client_addr, d, &mut response) {
                    DatagramEvent::New(_, c) => server.insert(*c),
                    other => panic!("the first datagram makes a connection: {other:?}"),
                },
            };
            server_app(s, chunk, &mut received);
            while let Some(t) = s.poll_transmit(now, &mut s2c) {
                client.handle_datagram(now, server_addr, &mut s2c[..t.size]);
            }
        }
        let Some(s) = &mut server else { continue };
        moved |= server_app(s, chunk, &mut received);
        while let Some(t) = s.poll_transmit(now, &mut s2c) {
            moved = true;
            client.handle_datagram(now, server_addr, &mut s2c[..t.size]);
        }
        if client.session().is_closed() && s.session().is_closed() {
            assert_eq!(client.stats().packets_lost, 0, "nothing is lost in memory");
            // On a perfect link nothing waits for a timer: 64 MiB take a few virtual ms.
            assert!(
                now - start < Duration::from_secs(1),
                "the transfer idled on timers: {:?} of virtual time",
                now - start
            );
            return received;
        }
        if moved {
            now = now + TICK;
        } else {
            // Nothing could move: the next timer (pacing, delayed ACK) is what is due.
            let next = [client.poll_timeout(), s.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .expect("a live connection has a timer");
            now = now.max(next);
            client.handle_timeout(now);
            s.handle_timeout(now);
        }
    }
    panic!("the transfer stalled: {written} bytes written, {received} read");
}

/// Time `f` by the thread's CPU clock (Unix; elsewhere the wall clock, as `iter`).
fn cpu_timed(b: &mut Bencher<'_>, mut f: impl FnMut()) {
    #[cfg(unix)]
    b.iter_custom(|iters| {
        let start = thread_cpu();
        for _ in 0..iters {
            f();
        }
        thread_cpu() - start
    });
    #[cfg(not(unix))]
    b.iter(&mut f);
}

/// CPU time this thread has used.
#[cfg(unix)]
fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// The server's application: read chunks, accept the offer, commit the file. Whether it did
/// anything.
fn server_app(s: &mut Connection, chunk: &mut [u8], received: &mut u64) -> bool {
    let ss = s.session_mut();
    let mut acted = false;
    while let Some(c) = ss.read(chunk).expect("server reads") {
        black_box(&chunk[..c.len]);
        *received += c.len as u64;
        acted = true;
    }
    while let Some(ev) = ss.poll_event() {
        acted = true;
        match ev {
            Event::Offered { id, .. } => ss.accept(id, None).expect("accept"),
            Event::Verified { id, .. } => ss.committed(id).expect("commit"),
            _ => {}
        }
    }
    acted
}

fn bench_transfer(c: &mut Criterion) {
    let block = random_bytes(BLOCK, 4);
    let mut chunk = vec![0u8; CHUNK];
    let small = 3 * CHUNK as u64 + 5;
    assert_eq!(transfer(&block, small, &mut chunk), small);

    let mut g = c.benchmark_group("dgram/transfer");
    g.throughput(Throughput::Bits(FILE * 8))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    g.bench_function("64MiB", |b| {
        b.iter(|| assert_eq!(transfer(&block, FILE, &mut chunk), FILE));
    });
    // The same, timed by the thread's CPU clock: what one core does when it is not shared.
    g.bench_function("64MiB/cpu", |b| {
        cpu_timed(b, || assert_eq!(transfer(&block, FILE, &mut chunk), FILE));
    });
    g.finish();
}

criterion_group!(benches, packet, bench_transfer);
criterion_main!(benches);
