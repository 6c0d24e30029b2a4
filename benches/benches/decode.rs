//! `decode`: `wire::decode_frame` on the two kinds of frame a record carries.
//!
//! - `data-64k`: a DATA frame with a full 64 KiB stored body. Decoding checks the 22-byte
//!   header and borrows the body, so the figure is large: the body is never touched.
//! - `control-offer`: a CONTROL `Offer` as a client sends it for a file (path, size, mode,
//!   mtime, hash), decoded by postcard into owned values (the path is allocated).
//!
//! Throughput counts the whole frame.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ferry_bench::random_bytes;
use proto::wire::{
    CONTROL_HEADER_LEN, Codec, Control, DATA_HEADER_LEN, MAX_CONTROL_LEN, Mtime, Offer,
    decode_frame, encode_control, encode_data_header,
};
use proto::{CHUNK, hash};

fn data_frame() -> Vec<u8> {
    let body = random_bytes(CHUNK, 3);
    let mut f = vec![0u8; DATA_HEADER_LEN];
    encode_data_header(
        &mut f,
        3,
        42 * CHUNK as u64,
        Codec::Stored,
        CHUNK as u32,
        CHUNK as u32,
    )
    .expect("the header fits");
    f.extend_from_slice(&body);
    f
}

fn offer_frame() -> Vec<u8> {
    let msg = Control::Offer(Offer {
        id: 3,
        path: "photos/2025/summer/IMG_20250714_183205.jpg".into(),
        size: Some(4_718_592),
        mode: Some(0o644),
        mtime: Some(Mtime {
            secs: 1_752_511_925,
            nanos: 123_456_789,
        }),
        request: None,
        hash: Some(hash(b"the file's bytes")),
        overwrite: false,
    });
    let mut f = vec![0u8; CONTROL_HEADER_LEN + MAX_CONTROL_LEN];
    let n = encode_control(&msg, &mut f).expect("an Offer fits");
    f.truncate(n);
    f
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (name, frame) in [("data-64k", data_frame()), ("control-offer", offer_frame())] {
        let (_, used) = decode_frame(&frame)
            .expect("frame decodes")
            .expect("frame is complete");
        assert_eq!(used, frame.len());
        g.throughput(Throughput::Bytes(frame.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| black_box(decode_frame(black_box(&frame))));
        });
    }
    g.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
