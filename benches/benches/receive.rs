//! `receive`: what a receiver does with one 64 KiB record of file data, in the order a session
//! does it: open the record (AES-256-GCM) out of place into a reused buffer, as the session's
//! `open_into` does, inflate the chunk when it was sent compressed, and feed the plaintext to
//! the whole-file BLAKE3 hash. Sealing and compressing are criterion's setup, outside the
//! timing.
//!
//! - `text`: English-like text, sent compressed (about 2.1:1): open + inflate + hash.
//! - `random`: incompressible bytes, sent stored: open + hash.
//! - `random_in_place`: the same with the record opened in place (the path before sessions
//!   decrypted out of place), to read the two against each other.
//! - `hash`: BLAKE3 alone on the 64 KiB plaintext, to read the others against.
//!
//! Throughput counts plaintext bytes (the chunk).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ferry_bench::{RECORD_BUF, english_text, random_bytes};
use proto::testing::bench::{
    ChunkDeflater, ChunkInflater, RECORD_HEADER_LEN, RecordOpener, RecordSealer,
};
use proto::{CHUNK, FileHasher};

const SECRET: [u8; 32] = [0x5a; 32];

/// A sealed record whose body is `body`; the opener to use on it comes from a fresh pair, so
/// every iteration opens record number 0.
fn sealed(body: &[u8]) -> Vec<u8> {
    let mut sealer = RecordSealer::new(SECRET);
    let mut buf = vec![0u8; RECORD_BUF];
    buf[RECORD_HEADER_LEN..RECORD_HEADER_LEN + body.len()].copy_from_slice(body);
    let n = sealer.seal(&mut buf, body.len());
    buf.truncate(n);
    buf
}

fn receive(c: &mut Criterion) {
    let text = english_text(CHUNK, 3);
    let random = random_bytes(CHUNK, 4);
    let mut packed = vec![0u8; CHUNK];
    let packed_len = ChunkDeflater::new()
        .compress(&text, &mut packed)
        .expect("text compresses");
    let text_record = sealed(&packed[..packed_len]);
    let random_record = sealed(&random);

    let mut g = c.benchmark_group("receive");
    g.throughput(Throughput::Bytes(CHUNK as u64))
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    let mut inflater = ChunkInflater::new();
    let mut plain = vec![0u8; CHUNK];
    let mut opened = Vec::new();
    g.bench_function("text", |b| {
        b.iter_batched_ref(
            || RecordOpener::new(SECRET),
            |opener| {
                let (n, _) = opener
                    .open_into(&text_record, &mut opened)
                    .expect("valid")
                    .expect("whole record");
                inflater
                    .inflate(&opened[..n], &mut plain)
                    .expect("chunk inflates to its length");
                let mut hasher = FileHasher::new();
                hasher.update(&plain);
                black_box(hasher.finalize());
            },
            BatchSize::SmallInput,
        );
    });
    assert_eq!(plain, text, "the bench must round-trip the text");

    g.bench_function("random", |b| {
        b.iter_batched_ref(
            || RecordOpener::new(SECRET),
            |opener| {
                let (n, _) = opener
                    .open_into(&random_record, &mut opened)
                    .expect("valid")
                    .expect("whole record");
                let mut hasher = FileHasher::new();
                hasher.update(&opened[..n]);
                black_box(hasher.finalize());
            },
            BatchSize::SmallInput,
        );
    });
    assert_eq!(
        opened[..CHUNK],
        random[..],
        "the bench must round-trip the data"
    );

    g.bench_function("random_in_place", |b| {
        b.iter_batched_ref(
            || (random_record.clone(), RecordOpener::new(SECRET)),
            |(record, opener)| {
                let (body, _) = opener.open(record).expect("valid").expect("whole record");
                let mut hasher = FileHasher::new();
                hasher.update(&record[body]);
                black_box(hasher.finalize());
            },
            BatchSize::SmallInput,
        );
    });

    g.bench_function("hash", |b| {
        b.iter(|| {
            let mut hasher = FileHasher::new();
            hasher.update(&random);
            black_box(hasher.finalize());
        });
    });
    g.finish();
}

criterion_group!(benches, receive);
criterion_main!(benches);
