//! `record`: the stream record layer on a 64 KiB record, next to bare `aes-gcm`.
//!
//! Both sides of each pair do the same cryptographic work on the same buffer: AES-256-GCM in
//! place with a detached tag over 64 KiB of plaintext and 4 bytes of associated data (the
//! record header). The ferry side adds what a session adds per record: writing the header,
//! the counter nonce, copying the tag behind the ciphertext, the header checks on open and
//! advancing the sequence number. `ferry/*` divided by `aes-gcm/*` is the record layer's
//! overhead.
//!
//! - `seal+open`: seal a record, then open it in place (the buffer round-trips, so no copy).
//! - `seal`: seal in place, over and over (the buffer is re-encrypted each time).
//! - `open`: open a freshly sealed record in place; sealing it (and the bare side's
//!   encryption) happens in criterion's setup, outside the timing.

use std::hint::black_box;
use std::time::Duration;

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ferry_bench::{RECORD_BUF, RECORD_PLAIN, random_bytes};
use proto::testing::bench::{RECORD_HEADER_LEN, RecordOpener, RecordSealer};

const SECRET: [u8; 32] = [0x33; 32];

/// Bare AES-256-GCM with the same shape of input as a record: 64 KiB in place, 4 bytes AAD.
struct Bare {
    cipher: Aes256Gcm,
    nonce: [u8; 12],
    aad: [u8; RECORD_HEADER_LEN],
}

impl Bare {
    fn new() -> Self {
        Bare {
            cipher: Aes256Gcm::new(&[0x44; 32].into()),
            nonce: [7; 12],
            aad: [0x17, 0x01, 0x00, 0x10],
        }
    }

    fn seal(&self, buf: &mut [u8]) -> [u8; 16] {
        self.cipher
            .encrypt_inout_detached(&self.nonce.into(), &self.aad, buf.into())
            .expect("64 KiB is far below GCM's limit")
            .into()
    }

    fn open(&self, buf: &mut [u8], tag: &[u8; 16]) {
        self.cipher
            .decrypt_inout_detached(&self.nonce.into(), &self.aad, buf.into(), tag.into())
            .expect("the tag was just computed");
    }
}

fn record(c: &mut Criterion) {
    let plain = random_bytes(RECORD_PLAIN, 1);
    let mut g = c.benchmark_group("record");
    g.throughput(Throughput::Bytes(RECORD_PLAIN as u64))
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    // seal + open: the round trip both ends of a connection pay per record.
    {
        let (mut sealer, mut opener) = (RecordSealer::new(SECRET), RecordOpener::new(SECRET));
        let mut buf = vec![0u8; RECORD_BUF];
        buf[RECORD_HEADER_LEN..RECORD_HEADER_LEN + RECORD_PLAIN].copy_from_slice(&plain);
        g.bench_function("ferry/seal+open", |b| {
            b.iter(|| {
                let n = sealer.seal(&mut buf, RECORD_PLAIN);
                let opened = opener.open(&mut buf[..n]).expect("record opens");
                black_box(opened);
            });
        });
    }
    {
        let bare = Bare::new();
        let mut buf = plain.clone();
        g.bench_function("aes-gcm/seal+open", |b| {
            b.iter(|| {
                let tag = bare.seal(&mut buf);
                bare.open(&mut buf, &tag);
                black_box(&buf);
            });
        });
    }

    // seal alone.
    {
        let mut sealer = RecordSealer::new(SECRET);
        let mut buf = vec![0u8; RECORD_BUF];
        buf[RECORD_HEADER_LEN..RECORD_HEADER_LEN + RECORD_PLAIN].copy_from_slice(&plain);
        g.bench_function("ferry/seal", |b| {
            b.iter(|| black_box(sealer.seal(&mut buf, RECORD_PLAIN)));
        });
    }
    {
        let bare = Bare::new();
        let mut buf = plain.clone();
        g.bench_function("aes-gcm/seal", |b| {
            b.iter(|| black_box(bare.seal(&mut buf)));
        });
    }

    // open alone: each iteration gets the next record in sequence, sealed in the setup.
    {
        let (mut sealer, mut opener) = (RecordSealer::new(SECRET), RecordOpener::new(SECRET));
        let mut fresh = vec![0u8; RECORD_BUF];
        g.bench_function("ferry/open", |b| {
            b.iter_batched_ref(
                || {
                    fresh[RECORD_HEADER_LEN..RECORD_HEADER_LEN + RECORD_PLAIN]
                        .copy_from_slice(&plain);
                    sealer.seal(&mut fresh, RECORD_PLAIN);
                    fresh.clone()
                },
                |rec| black_box(opener.open(rec).expect("record opens")),
                BatchSize::PerIteration,
            );
        });
    }
    {
        let bare = Bare::new();
        g.bench_function("aes-gcm/open", |b| {
            b.iter_batched_ref(
                || {
                    let mut ct = plain.clone();
                    let tag = bare.seal(&mut ct);
                    (ct, tag)
                },
                |(ct, tag)| {
                    bare.open(ct, tag);
                    black_box(ct);
                },
                BatchSize::PerIteration,
            );
        });
    }
    g.finish();
}

criterion_group!(benches, record);
criterion_main!(benches);
