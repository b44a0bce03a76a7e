//! Encode and decode costs per mode and payload size, in one run next to:
//!
//! - anchors, the `cookie` crate's jars on the same data: `anchor-cookie-signed` (SignedJar,
//!   value = base64url of the JSON, the like-for-like variant) and `anchor-cookie-private`
//!   (PrivateJar, value = the JSON);
//! - floors, the same primitives with nothing else (no header, no name binding, no limits,
//!   buffers reused): `floor-signed` (serde_json + pre-keyed HMAC-SHA256 + base64url),
//!   `floor-aes-gcm` (serde_json + pre-keyed AES-256-GCM with a random 96-bit nonce, the
//!   scheme that is only safe for 2^32 cookies per key) and `floor-xaes` (the same with
//!   XAES-256-GCM, the nonce-safe construction we use).
//!
//! Run: `cargo bench --bench codec`. The large payload does not fit in 4096 bytes in our
//! format (FORMAT.md, Size), so our codec runs with a raised limit for comparable figures.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "common.rs"]
mod common;

use std::hint::black_box;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{SIZES, Session, now, payload, ring, stamp};
use cookie::{Cookie, CookieJar};
use cookie_session::{Codec, Mode};
use criterion::{Criterion, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use rand::Rng as _;
use sha2::Sha256;

const KEY: [u8; 32] = [9; 32];

struct Floors {
    mac: Hmac<Sha256>,
    aes: Aes256Gcm,
    xaes: xaes_256_gcm::Xaes256Gcm,
    buf: Vec<u8>,
    out: String,
}

impl Floors {
    fn new() -> Self {
        Self {
            mac: Hmac::<Sha256>::new_from_slice(&KEY).unwrap(),
            aes: Aes256Gcm::new(&KEY.into()),
            xaes: xaes_256_gcm::Xaes256Gcm::new(&KEY.into()),
            buf: Vec::with_capacity(8192),
            out: String::with_capacity(8192),
        }
    }

    fn signed(&mut self, data: &Session) -> usize {
        self.buf.clear();
        self.out.clear();
        serde_json::to_writer(&mut self.buf, data).unwrap();
        let tag = self
            .mac
            .clone()
            .chain_update(&self.buf)
            .finalize()
            .into_bytes();
        self.buf.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode_string(&self.buf, &mut self.out);
        self.out.len()
    }

    fn signed_decode(&mut self, value: &str) -> Session {
        self.buf.clear();
        URL_SAFE_NO_PAD.decode_vec(value, &mut self.buf).unwrap();
        let (json, tag) = self.buf.split_at(self.buf.len() - 32);
        self.mac
            .clone()
            .chain_update(json)
            .verify_slice(tag)
            .unwrap();
        serde_json::from_slice(json).unwrap()
    }

    fn aes_gcm(&mut self, data: &Session) -> usize {
        self.buf.clear();
        self.out.clear();
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        self.buf.extend_from_slice(&nonce);
        serde_json::to_writer(&mut self.buf, data).unwrap();
        let tag = self
            .aes
            .encrypt_inout_detached(&Nonce::from(nonce), b"", (&mut self.buf[12..]).into())
            .unwrap();
        self.buf.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode_string(&self.buf, &mut self.out);
        self.out.len()
    }

    fn aes_gcm_decode(&mut self, value: &str) -> Session {
        self.buf.clear();
        URL_SAFE_NO_PAD.decode_vec(value, &mut self.buf).unwrap();
        let (nonce, rest) = self.buf.split_at_mut(12);
        let (ct, tag) = rest.split_at_mut(rest.len() - 16);
        let nonce = Nonce::try_from(&*nonce).unwrap();
        let tag = aes_gcm::Tag::try_from(&*tag).unwrap();
        self.aes
            .decrypt_inout_detached(&nonce, b"", ct.into(), &tag)
            .unwrap();
        serde_json::from_slice(ct).unwrap()
    }

    fn xaes(&mut self, data: &Session) -> usize {
        self.buf.clear();
        self.out.clear();
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut nonce);
        self.buf.extend_from_slice(&nonce);
        serde_json::to_writer(&mut self.buf, data).unwrap();
        let tag = self
            .xaes
            .encrypt_inout_detached(&nonce.into(), b"", (&mut self.buf[24..]).into())
            .unwrap();
        self.buf.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode_string(&self.buf, &mut self.out);
        self.out.len()
    }
}

fn jar_key() -> cookie::Key {
    cookie::Key::from(&[7u8; 64])
}

fn anchor_signed(key: &cookie::Key, data: &Session) -> String {
    let mut jar = CookieJar::new();
    let value = URL_SAFE_NO_PAD.encode(serde_json::to_vec(data).unwrap());
    jar.signed_mut(key).add(Cookie::new("session", value));
    jar.get("session").unwrap().value().to_owned()
}

fn anchor_signed_decode(key: &cookie::Key, value: &str) -> Session {
    let jar = CookieJar::new();
    let cookie = jar
        .signed(key)
        .verify(Cookie::new("session", value.to_owned()))
        .unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(cookie.value()).unwrap()).unwrap()
}

fn anchor_private(key: &cookie::Key, data: &Session) -> String {
    let mut jar = CookieJar::new();
    jar.private_mut(key)
        .add(Cookie::new("session", serde_json::to_string(data).unwrap()));
    jar.get("session").unwrap().value().to_owned()
}

fn anchor_private_decode(key: &cookie::Key, value: &str) -> Session {
    let jar = CookieJar::new();
    let cookie = jar
        .private(key)
        .decrypt(Cookie::new("session", value.to_owned()))
        .unwrap();
    serde_json::from_str(cookie.value()).unwrap()
}

fn bench(c: &mut Criterion) {
    let (ring, now, stamp) = (ring(), now(), stamp());
    let key = jar_key();
    let mut floors = Floors::new();

    let mut encode = c.benchmark_group("encode");
    for size in SIZES {
        let data = payload(size);
        for mode in [Mode::Signed, Mode::Encrypted] {
            let codec = Codec::new(mode, ring.clone()).with_max_size(8192);
            encode.bench_function(format!("{mode}/{size}"), |b| {
                b.iter(|| codec.encode("session", black_box(&data), &stamp).unwrap())
            });
        }
        encode.bench_function(format!("anchor-cookie-signed/{size}"), |b| {
            b.iter(|| anchor_signed(&key, black_box(&data)))
        });
        encode.bench_function(format!("anchor-cookie-private/{size}"), |b| {
            b.iter(|| anchor_private(&key, black_box(&data)))
        });
        encode.bench_function(format!("floor-signed/{size}"), |b| {
            b.iter(|| floors.signed(black_box(&data)))
        });
        encode.bench_function(format!("floor-aes-gcm/{size}"), |b| {
            b.iter(|| floors.aes_gcm(black_box(&data)))
        });
        encode.bench_function(format!("floor-xaes/{size}"), |b| {
            b.iter(|| floors.xaes(black_box(&data)))
        });
    }
    encode.finish();

    let mut decode = c.benchmark_group("decode");
    for size in SIZES {
        let data = payload(size);
        for mode in [Mode::Signed, Mode::Encrypted] {
            let codec = Codec::new(mode, ring.clone()).with_max_size(8192);
            let value = codec.encode("session", &data, &stamp).unwrap();
            decode.bench_function(format!("{mode}/{size}"), |b| {
                b.iter(|| {
                    codec
                        .decode::<Session>("session", black_box(&value), now)
                        .unwrap()
                })
            });
        }
        let signed = anchor_signed(&key, &data);
        decode.bench_function(format!("anchor-cookie-signed/{size}"), |b| {
            b.iter(|| anchor_signed_decode(&key, black_box(&signed)))
        });
        let private = anchor_private(&key, &data);
        decode.bench_function(format!("anchor-cookie-private/{size}"), |b| {
            b.iter(|| anchor_private_decode(&key, black_box(&private)))
        });
        floors.signed(&data);
        let value = floors.out.clone();
        decode.bench_function(format!("floor-signed/{size}"), |b| {
            b.iter(|| floors.signed_decode(black_box(&value)))
        });
        floors.aes_gcm(&data);
        let value = floors.out.clone();
        decode.bench_function(format!("floor-aes-gcm/{size}"), |b| {
            b.iter(|| floors.aes_gcm_decode(black_box(&value)))
        });
    }
    decode.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench
}
criterion_main!(benches);
