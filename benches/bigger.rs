//! What bigger sessions cost: compression and splitting across cookies, per payload size,
//! next to the plain codec on the same data (BENCHMARKS.md, "Bigger sessions").
//!
//! Rows per mode: `plain` (one cookie, no compression; only where it fits), `compressed`
//! (one cookie), `chunked` (no compression, as many cookies as needed) and `both`. The
//! `xl` payload is the large one with its cart tripled (about 9 KB of JSON).

#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use cookie_session::{Codec, Mode};
use criterion::{Criterion, criterion_group, criterion_main};

mod common;
use common::*;

fn xl() -> Session {
    let mut data = payload("large");
    let cart = data["cart"].as_array().unwrap().clone();
    let all = data["cart"].as_array_mut().unwrap();
    all.extend(cart.iter().cloned());
    all.extend(cart);
    data
}

fn bench(c: &mut Criterion) {
    let (ring, now, stamp) = (ring(), now(), stamp());
    let sizes = [
        ("medium", payload("medium")),
        ("large", payload("large")),
        ("xl", xl()),
    ];
    for (size, data) in &sizes {
        let mut group = c.benchmark_group(format!("bigger/{size}"));
        for mode in [Mode::Signed, Mode::Encrypted] {
            let plain = Codec::new(mode, ring.clone());
            let chunked = plain
                .clone()
                .with_max_cookies(4)
                .with_max_total_size(16_384);
            let variants = [
                ("plain", plain.clone()),
                ("compressed", plain.with_compression_leaking_length()),
                ("chunked", chunked.clone()),
                ("both", chunked.with_compression_leaking_length()),
            ];
            for (name, codec) in variants {
                let Ok(pieces) = codec.encode_chunks("session", data, &stamp) else {
                    continue;
                };
                let length: usize = pieces.iter().map(String::len).sum();
                eprintln!(
                    "bigger/{size}/{mode}/{name}: {} cookie(s), {length} characters",
                    pieces.len()
                );
                group.bench_function(format!("{mode}/{name}/encode"), |b| {
                    b.iter(|| {
                        codec
                            .encode_chunks("session", black_box(data), &stamp)
                            .unwrap()
                    })
                });
                let values: Vec<&str> = pieces.iter().map(String::as_str).collect();
                group.bench_function(format!("{mode}/{name}/decode"), |b| {
                    b.iter(|| {
                        codec
                            .decode_chunks::<Session>("session", black_box(&values), now)
                            .unwrap()
                    })
                });
            }
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench
}
criterion_main!(benches);
