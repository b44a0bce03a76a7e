//! The whole request path: load a session from a `Cookie` header, read one key (or write
//! one), finish; next to `request/floor-full-decode/SIZE`, the primitives alone (base64url +
//! pre-keyed HMAC-SHA256 + serde_json into a full map), in the same run.
//! Run: `cargo bench --bench request`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "common.rs"]
mod common;

use std::hint::black_box;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{SIZES, Session, now, payload, ring};
use cookie_session::{CookieAction, Mode, SessionConfig};
use criterion::{Criterion, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

fn bench(c: &mut Criterion) {
    let now = now();
    let mut group = c.benchmark_group("request");
    let mac = Hmac::<Sha256>::new_from_slice(&[9u8; 32]).unwrap();
    let mut buf = Vec::with_capacity(8192);
    for size in SIZES {
        let json = serde_json::to_vec(&payload(size)).unwrap();
        let tag = mac.clone().chain_update(&json).finalize().into_bytes();
        let value = URL_SAFE_NO_PAD.encode([&json[..], &tag[..]].concat());
        group.bench_function(format!("floor-full-decode/{size}"), |b| {
            b.iter(|| {
                buf.clear();
                URL_SAFE_NO_PAD
                    .decode_vec(black_box(&value), &mut buf)
                    .unwrap();
                let (json, tag) = buf.split_at(buf.len() - 32);
                mac.clone().chain_update(json).verify_slice(tag).unwrap();
                serde_json::from_slice::<Session>(json).unwrap()
            })
        });
    }
    for mode in [Mode::Signed, Mode::Encrypted] {
        let sessions = SessionConfig::new(mode, ring())
            .with_name("sid")
            .with_max_size(8192)
            .build()
            .unwrap();
        for size in SIZES {
            let data: Session = payload(size);
            let mut session = sessions.load([], now);
            for (k, v) in &data {
                session.insert(k, v).unwrap();
            }
            let header = session
                .finish(now)
                .unwrap()
                .set_cookie()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned();
            let header = format!("theme=dark; {header}; _ga=GA1.2.3");

            group.bench_function(format!("read-one-key/{mode}/{size}"), |b| {
                b.iter(|| {
                    let session = sessions.load([black_box(header.as_str())], now);
                    let user: Option<u64> = session.get("user_id").unwrap();
                    let decision = session.finish(now).unwrap();
                    assert_eq!(decision.cookie, CookieAction::Keep);
                    user
                })
            });
            group.bench_function(format!("write/{mode}/{size}"), |b| {
                let mut n = 0u64;
                b.iter(|| {
                    n += 1;
                    let mut session = sessions.load([black_box(header.as_str())], now);
                    session.insert("n", &n).unwrap();
                    session.finish(now).unwrap()
                })
            });
            group.bench_function(format!("untouched/{mode}/{size}"), |b| {
                b.iter(|| {
                    sessions
                        .load([black_box(header.as_str())], now)
                        .finish(now)
                        .unwrap()
                })
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench
}
criterion_main!(benches);
