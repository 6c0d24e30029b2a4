//! `handshake`: a whole connection with nothing to transfer, in memory.
//!
//! Per iteration: both sessions are created (seed expansion, ephemeral keys), run the Noise
//! `NNpsk0` handshake (two messages, X25519, HKDF), the client sends `Start` and closes at
//! once, and the server answers with its own `Close`: four records sealed and opened in all.
//! Throughput is in handshakes. One bench per handshake mode: `psk` (NNpsk0: 2 messages,
//! 2 X25519 operations a side), `pinned` (XX: 3 messages, 5 a side with the static keys) and
//! `pinned+psk` (XXpsk3: XX with the PSK mixed in).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ferry_bench::Duplex;
use proto::{CloseCode, Config, Identity, Mode};

fn config(mode: Mode, id: u8) -> Config {
    let mut c = Config::default();
    c.mode = mode;
    if mode != Mode::Psk {
        c.identity = Some(Identity::from_secret_bytes([id; 32]));
    }
    c
}

/// One connection from creation to both sides closed.
fn connect_and_close(client: &Config, server: &Config) -> Duplex {
    let mut d = Duplex::with_configs(client, server);
    let mut closing = false;
    d.drive(|d| {
        let mut acted = false;
        while d.server.poll_event().is_some() {
            acted = true;
        }
        while d.client.poll_event().is_some() {
            acted = true;
        }
        if !closing && d.client.is_connected() {
            d.client.close(d.now, CloseCode::Done);
            closing = true;
            acted = true;
        }
        acted
    });
    assert!(d.client.error().is_none() && d.server.error().is_none());
    d
}

fn handshake(c: &mut Criterion) {
    let mut g = c.benchmark_group("handshake");
    g.throughput(Throughput::Elements(1))
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (name, mode) in [
        ("psk", Mode::Psk),
        ("pinned", Mode::Pinned),
        ("pinned+psk", Mode::PinnedPsk),
    ] {
        // The identities are loaded once, as a server and a client do.
        let (client, server) = (config(mode, 1), config(mode, 2));
        g.bench_function(format!("connect+close/{name}"), |b| {
            b.iter(|| black_box(connect_and_close(&client, &server)))
        });
    }
    g.finish();
}

criterion_group!(benches, handshake);
criterion_main!(benches);
