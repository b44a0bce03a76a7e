//! Which compressor for session cookies: compressed size and time per call on the benchmark
//! payloads (compact JSON, as the codec writes it). Run with `cargo bench` here; the sizes are
//! printed before the timings. BENCHMARKS.md ("Compression: choosing the algorithm") has the
//! figures and the choice.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::Value;

type Compress = fn(&[u8]) -> Vec<u8>;
type Decompress = fn(&[u8], usize) -> Vec<u8>;

fn deflate(level: u8) -> Compress {
    match level {
        1 => |data| miniz_oxide::deflate::compress_to_vec(data, 1),
        6 => |data| miniz_oxide::deflate::compress_to_vec(data, 6),
        _ => |data| miniz_oxide::deflate::compress_to_vec(data, 9),
    }
}

fn inflate(data: &[u8], max: usize) -> Vec<u8> {
    miniz_oxide::inflate::decompress_to_vec_with_limit(data, max).expect("inflates")
}

thread_local! {
    static COMPRESSOR: std::cell::RefCell<Box<CompressorOxide>> =
        std::cell::RefCell::new(Box::default());
    static DECOMPRESSOR: std::cell::RefCell<Box<DecompressorOxide>> =
        std::cell::RefCell::new(Box::default());
}

use miniz_oxide::deflate::core::{CompressorOxide, TDEFLFlush, TDEFLStatus, compress};
use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::{DecompressorOxide, decompress, inflate_flags};

/// Raw deflate with the compressor state kept per thread (as the codec would): the state is
/// about 300 KB, so allocating it per call dominates the cost on small inputs.
fn deflate_reused(level: u8) -> Compress {
    fn run(data: &[u8], level: u8) -> Vec<u8> {
        COMPRESSOR.with(|c| {
            let mut c = c.borrow_mut();
            c.reset();
            c.set_format_and_level(miniz_oxide::DataFormat::Raw, level);
            let mut out = vec![0; data.len() + 64];
            let (status, _, n) = compress(&mut c, data, &mut out, TDEFLFlush::Finish);
            assert_eq!(status, TDEFLStatus::Done);
            out.truncate(n);
            out
        })
    }
    match level {
        1 => |data| run(data, 1),
        _ => |data| run(data, 6),
    }
}

/// Raw inflate into a buffer of the maximum size, with the state kept per thread.
fn inflate_reused(data: &[u8], max: usize) -> Vec<u8> {
    DECOMPRESSOR.with(|d| {
        let mut d = d.borrow_mut();
        d.init();
        let mut out = vec![0; max];
        let flags = inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
        let (status, _, n) = decompress(&mut d, data, &mut out, 0, flags);
        assert_eq!(status, TINFLStatus::Done);
        out.truncate(n);
        out
    })
}

thread_local! {
    static ZCOMPRESS: std::cell::RefCell<flate2::Compress> =
        std::cell::RefCell::new(flate2::Compress::new(flate2::Compression::new(1), false));
    static ZDECOMPRESS: std::cell::RefCell<flate2::Decompress> =
        std::cell::RefCell::new(flate2::Decompress::new(false));
}

/// Raw deflate by zlib-rs (through flate2), the state kept per thread.
fn zlib_rs(level: u8) -> Compress {
    fn run(data: &[u8], level: u8) -> Vec<u8> {
        ZCOMPRESS.with(|c| {
            let mut c = c.borrow_mut();
            c.reset();
            c.set_level(flate2::Compression::new(level.into()))
                .expect("level");
            let mut out = Vec::with_capacity(data.len() + 64);
            let status = c
                .compress_vec(data, &mut out, flate2::FlushCompress::Finish)
                .expect("compresses");
            assert_eq!(status, flate2::Status::StreamEnd);
            out
        })
    }
    match level {
        1 => |data| run(data, 1),
        2 => |data| run(data, 2),
        4 => |data| run(data, 4),
        _ => |data| run(data, 6),
    }
}

fn zlib_rs_inflate(data: &[u8], max: usize) -> Vec<u8> {
    ZDECOMPRESS.with(|d| {
        let mut d = d.borrow_mut();
        d.reset(false);
        let mut out = Vec::with_capacity(max);
        let status = d
            .decompress_vec(data, &mut out, flate2::FlushDecompress::Finish)
            .expect("inflates");
        assert_eq!(status, flate2::Status::StreamEnd);
        out
    })
}

fn lz4(data: &[u8]) -> Vec<u8> {
    lz4_flex::block::compress(data)
}

fn unlz4(data: &[u8], max: usize) -> Vec<u8> {
    lz4_flex::block::decompress(data, max).expect("decompresses")
}

fn zstd_3(data: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(data, 3).expect("compresses")
}

fn unzstd(data: &[u8], max: usize) -> Vec<u8> {
    zstd::bulk::decompress(data, max).expect("decompresses")
}

fn brotli_5(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams {
        quality: 5,
        lgwin: 16,
        ..Default::default()
    };
    brotli::BrotliCompress(&mut &data[..], &mut out, &params).expect("compresses");
    out
}

fn unbrotli(data: &[u8], _max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::BrotliDecompress(&mut &data[..], &mut out).expect("decompresses");
    out
}

fn payloads() -> Vec<(String, Vec<u8>)> {
    let all: Value =
        serde_json::from_str(include_str!("../../../benches/payloads.json")).expect("payloads");
    let mut out: Vec<(String, Vec<u8>)> = ["small", "medium", "large"]
        .iter()
        .map(|name| {
            (
                name.to_string(),
                serde_json::to_vec(&all[name]).expect("json"),
            )
        })
        .collect();
    // The size of a Beaker session that needs compression to fit one cookie: the large
    // payload with a further 16 cart lines (about 4.5 KB).
    let mut big = all["large"].clone();
    let cart = big["cart"].as_array().expect("cart").clone();
    big["cart"]
        .as_array_mut()
        .expect("cart")
        .extend(cart.into_iter().take(16));
    out.push(("4.5k".into(), serde_json::to_vec(&big).expect("json")));
    out
}

fn bench(c: &mut Criterion) {
    let candidates: [(&str, Compress, Decompress); 12] = [
        ("zlib-rs-1", zlib_rs(1), zlib_rs_inflate),
        ("zlib-rs-2", zlib_rs(2), zlib_rs_inflate),
        ("zlib-rs-4", zlib_rs(4), zlib_rs_inflate),
        ("zlib-rs-6", zlib_rs(6), zlib_rs_inflate),
        ("deflate-1-kept-state", deflate_reused(1), inflate_reused),
        ("deflate-6-kept-state", deflate_reused(6), inflate_reused),
        ("deflate-1", deflate(1), inflate),
        ("deflate-6", deflate(6), inflate),
        ("deflate-9", deflate(9), inflate),
        ("lz4", lz4, unlz4),
        ("zstd-3", zstd_3, unzstd),
        ("brotli-5", brotli_5, unbrotli),
    ];
    for (payload, json) in payloads() {
        for (name, compress, decompress) in candidates {
            let packed = compress(&json);
            assert_eq!(decompress(&packed, json.len()), json);
            eprintln!(
                "size {payload} {name}: {} -> {} bytes ({:.2}x)",
                json.len(),
                packed.len(),
                json.len() as f64 / packed.len() as f64
            );
        }
        let mut group = c.benchmark_group(format!("compression/{payload}"));
        for (name, compress, decompress) in candidates {
            let packed = compress(&json);
            group.bench_function(format!("{name}/compress"), |b| {
                b.iter(|| compress(black_box(&json)))
            });
            group.bench_function(format!("{name}/decompress"), |b| {
                b.iter(|| decompress(black_box(&packed), json.len()))
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
