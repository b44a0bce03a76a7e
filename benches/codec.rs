//! Encode and decode costs per mode and payload size, next to "floor" pipelines built from
//! the same primitives with nothing else (no header, no name binding, no limits):
//!
//! - `floor-signed`: serde_json + pre-keyed HMAC-SHA256 (cloned) + base64url;
//! - `floor-xaes`: the same with XAES-256-GCM and a random 192-bit nonce;
//! - `floor-aes-gcm`: serde_json + pre-keyed AES-256-GCM with a random 96-bit nonce (the
//!   scheme that is only safe for 2^32 cookies per key) + base64url.
//!
//! `encode/encrypted/small` over `encode/floor-aes-gcm/small` is the price of nonce safety
//! (XAES-256-GCM's per-cookie key derivation). Run: `cargo bench --bench codec`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cookie_session::time::OffsetDateTime;
use cookie_session::{Codec, Key, KeyRing, Mode, Stamp};
use criterion::{Criterion, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use rand::Rng as _;
use serde_json::{Map, Value};
use sha2::Sha256;

type Session = Map<String, Value>;
const SIZES: [&str; 3] = ["small", "medium", "large"];

fn payloads() -> Value {
    serde_json::from_str(include_str!("payloads.json")).unwrap()
}

fn bench(c: &mut Criterion) {
    let payloads = payloads();
    let ring = KeyRing::new(
        Key::from_bytes(&[
            7u8, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
            24, 25, 26, 27, 28, 29, 30, 31, 32,
        ])
        .unwrap(),
    );
    let now = OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap();
    let stamp = Stamp::new(now, Duration::from_secs(1200), Duration::from_secs(86_400)).unwrap();

    let mut encode = c.benchmark_group("encode");
    for size in SIZES {
        let data: Session = serde_json::from_value(payloads[size].clone()).unwrap();
        for mode in [Mode::Signed, Mode::Encrypted] {
            // The large payload does not fit in 4096 bytes in our format (FORMAT.md, Size);
            // it is measured with a raised limit so that the costs stay comparable.
            let codec = Codec::new(mode, ring.clone()).with_max_size(8192);
            encode.bench_function(format!("{mode}/{size}"), |b| {
                b.iter(|| codec.encode("session", black_box(&data), &stamp).unwrap())
            });
        }
        let mac = Hmac::<Sha256>::new_from_slice(&[9u8; 32]).unwrap();
        let (mut buf, mut out) = (Vec::with_capacity(4096), String::with_capacity(8192));
        encode.bench_function(format!("floor-signed/{size}"), |b| {
            b.iter(|| {
                buf.clear();
                out.clear();
                serde_json::to_writer(&mut buf, black_box(&data)).unwrap();
                let tag = mac.clone().chain_update(&buf).finalize().into_bytes();
                buf.extend_from_slice(&tag);
                URL_SAFE_NO_PAD.encode_string(&buf, &mut out);
                out.len()
            })
        });
        let aes = Aes256Gcm::new(&[9u8; 32].into());
        encode.bench_function(format!("floor-aes-gcm/{size}"), |b| {
            b.iter(|| {
                buf.clear();
                out.clear();
                let mut nonce = [0u8; 12];
                rand::rng().fill_bytes(&mut nonce);
                buf.extend_from_slice(&nonce);
                serde_json::to_writer(&mut buf, black_box(&data)).unwrap();
                let tag = aes
                    .encrypt_inout_detached(&Nonce::from(nonce), b"", (&mut buf[12..]).into())
                    .unwrap();
                buf.extend_from_slice(&tag);
                URL_SAFE_NO_PAD.encode_string(&buf, &mut out);
                out.len()
            })
        });
        // The same with XAES-256-GCM: the floor of the nonce-safe construction we use.
        let xaes = xaes_256_gcm::Xaes256Gcm::new(&[9u8; 32].into());
        encode.bench_function(format!("floor-xaes/{size}"), |b| {
            b.iter(|| {
                buf.clear();
                out.clear();
                let mut nonce = [0u8; 24];
                rand::rng().fill_bytes(&mut nonce);
                buf.extend_from_slice(&nonce);
                serde_json::to_writer(&mut buf, black_box(&data)).unwrap();
                let tag = xaes
                    .encrypt_inout_detached(&nonce.into(), b"", (&mut buf[24..]).into())
                    .unwrap();
                buf.extend_from_slice(&tag);
                URL_SAFE_NO_PAD.encode_string(&buf, &mut out);
                out.len()
            })
        });
    }
    encode.finish();

    let mut decode = c.benchmark_group("decode");
    for size in SIZES {
        for mode in [Mode::Signed, Mode::Encrypted] {
            let codec = Codec::new(mode, ring.clone()).with_max_size(8192);
            let value = codec.encode("session", &payloads[size], &stamp).unwrap();
            decode.bench_function(format!("{mode}/{size}"), |b| {
                b.iter(|| {
                    codec
                        .decode::<Session>("session", black_box(&value), now)
                        .unwrap()
                })
            });
        }
    }
    decode.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
