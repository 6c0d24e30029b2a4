//! `compress`: per-chunk deflate and inflate of one 64 KiB chunk through the core's
//! compressor, with its state kept across chunks as a session keeps it.
//!
//! - `deflate/text`, `inflate/text`: English-like text (about 2.1:1 at level 1).
//! - `deflate/random`: incompressible bytes. Deflate runs until its output would not be
//!   shorter than the input, then gives up: the chunk goes out stored. This is what
//!   `Compression::On` costs on data that does not compress.
//! - `inflate/random`: a level-1 raw-deflate stream of the same random chunk, made with
//!   miniz_oxide directly (dynamic-Huffman blocks of literals, 56 bytes longer than the
//!   chunk). A session never sends one (it does not pay, and it is longer than a chunk); this
//!   is the inflater's speed on incompressible data.
//!
//! Throughput counts plaintext bytes (the chunk), both ways.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ferry_bench::{english_text, random_bytes};
use proto::CHUNK;
use proto::testing::bench::{ChunkDeflater, ChunkInflater};

fn compress(c: &mut Criterion) {
    let text = english_text(CHUNK, 1);
    let random = random_bytes(CHUNK, 2);

    let mut deflater = ChunkDeflater::new();
    let mut inflater = ChunkInflater::new();
    let mut packed = vec![0u8; CHUNK];
    let text_len = deflater
        .compress(&text, &mut packed)
        .expect("text compresses");
    let text_packed = packed[..text_len].to_vec();
    assert_eq!(
        deflater.compress(&random, &mut packed),
        None,
        "random bytes do not compress"
    );
    let random_packed = miniz_oxide::deflate::compress_to_vec(&random, 1);
    let mut out = vec![0u8; CHUNK];
    inflater
        .inflate(&random_packed, &mut out)
        .expect("inflates");
    assert_eq!(out, random);
    eprintln!(
        "compress: text chunk deflates to {text_len} bytes ({:.2}:1); random stream is {} bytes",
        CHUNK as f64 / text_len as f64,
        random_packed.len()
    );

    let mut g = c.benchmark_group("compress");
    g.throughput(Throughput::Bytes(CHUNK as u64))
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (name, input) in [("text", &text), ("random", &random)] {
        g.bench_function(format!("deflate/{name}"), |b| {
            b.iter(|| black_box(deflater.compress(black_box(input), &mut packed)));
        });
    }
    for (name, stream) in [("text", &text_packed), ("random", &random_packed)] {
        g.bench_function(format!("inflate/{name}"), |b| {
            b.iter(|| {
                inflater
                    .inflate(black_box(stream), &mut out)
                    .expect("inflates");
                black_box(&out);
            });
        });
    }
    g.finish();
}

criterion_group!(benches, compress);
criterion_main!(benches);
