//! `transfer`: one 256 MiB file from client to server through two in-memory sessions.
//!
//! Included, per iteration: both sessions' creation and handshake; the offer, accept and
//! start; the client `write`s the file (copy into the send buffer, BLAKE3 of the sender's
//! whole-file hash), `poll_transmit` frames 64 KiB DATA chunks and seals each record
//! straight into the pipe; the server's `handle_input` opens records in place, decodes
//! frames and copies payloads into its receive window; `read` copies each chunk into the
//! application's buffer and hashes it (BLAKE3, checked against `FileEnd`); `Received`,
//! `committed`, `Ack`, `Delivered`, and both `Close`s. Compression is off (the default).
//!
//! Not included: sockets, files, the disk layer. The pipes between the sessions are plain
//! buffers (see `ferry_bench::Pipe`), so the only copies are the sessions' own. The file is
//! a 1 MiB block of random bytes written 256 times, so reading the source costs little: the
//! figure is the core's ceiling on one core for both ends together.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use ferry_bench::{Duplex, random_bytes};
use proto::{CHUNK, CloseCode, Event, FileHasher, FileMeta, SendId};

const FILE: u64 = 256 << 20;
const BLOCK: usize = 1 << 20;

/// Send `total` bytes (`block` repeated) from a client to a server; returns the bytes the
/// server read.
fn transfer(block: &[u8], total: u64, chunk: &mut [u8]) -> u64 {
    let mut d = Duplex::new();
    let mut sending: Option<SendId> = None;
    let (mut offered, mut started, mut finished) = (false, false, false);
    let (mut written, mut received) = (0u64, 0u64);
    d.drive(|d| {
        let mut acted = false;
        // The server's application: read chunks, accept the offer, commit the file.
        while let Some(c) = d.server.read(chunk).expect("server reads") {
            black_box(&chunk[..c.len]);
            received += c.len as u64;
            acted = true;
        }
        while let Some(ev) = d.server.poll_event() {
            match ev {
                Event::Offered { id, .. } => d.server.accept(id, None).expect("accept"),
                Event::Verified { id, .. } => d.server.committed(id).expect("commit"),
                _ => {}
            }
            acted = true;
        }
        // The client's application: offer, start, write, finish, close.
        if !offered && d.client.is_connected() {
            sending = Some(
                d.client
                    .offer(FileMeta::new("big.bin", Some(total)))
                    .expect("offer"),
            );
            offered = true;
            acted = true;
        }
        while let Some(ev) = d.client.poll_event() {
            match ev {
                Event::Accepted { id, resume_from } => {
                    assert_eq!((Some(id), resume_from), (sending, 0));
                    d.client.start(id, FileHasher::new()).expect("start");
                    started = true;
                }
                Event::Delivered { .. } => d.client.close(d.now, CloseCode::Done),
                _ => {}
            }
            acted = true;
        }
        if let (Some(id), true, false) = (sending, started, finished) {
            while written < total {
                let at = (written % block.len() as u64) as usize;
                let end = block.len().min(at + (total - written) as usize);
                let n = d.client.write(id, &block[at..end]).expect("write");
                if n == 0 {
                    break;
                }
                written += n as u64;
                acted = true;
            }
            if written == total {
                d.client.finish(id).expect("finish");
                finished = true;
                acted = true;
            }
        }
        acted
    });
    assert!(d.client.error().is_none() && d.server.error().is_none());
    received
}

fn bench(c: &mut Criterion) {
    let block = random_bytes(BLOCK, 4);
    let mut chunk = vec![0u8; CHUNK];
    assert_eq!(
        transfer(&block, 3 * CHUNK as u64 + 5, &mut chunk),
        3 * CHUNK as u64 + 5
    );

    let mut g = c.benchmark_group("transfer");
    g.throughput(Throughput::Bytes(FILE))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    g.bench_function("256MiB", |b| {
        b.iter(|| assert_eq!(transfer(&block, FILE, &mut chunk), FILE));
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
