//! Counts heap allocations per encode, per decode and per request, with a counting global
//! allocator (stats_alloc). Run: `cargo run --release --example allocations`.

use std::alloc::System;
use std::time::Duration;

use cookie_session::time::OffsetDateTime;
use cookie_session::{Codec, Key, KeyRing, Mode, SessionConfig, Stamp};
use serde_json::{Map, Value};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

type Session = Map<String, Value>;

/// Allocations made by `f`, the median over a few runs (the first run warms caches).
fn count<R>(mut f: impl FnMut() -> R) -> usize {
    let mut counts: Vec<usize> = (0..5)
        .map(|_| {
            let region = Region::new(GLOBAL);
            std::hint::black_box(f());
            region.change().allocations
        })
        .collect();
    counts.sort_unstable();
    counts[2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let payloads: Value = serde_json::from_str(include_str!("../benches/payloads.json"))?;
    let ring = KeyRing::new(Key::generate()?);
    let now = OffsetDateTime::from_unix_timestamp(1_767_225_600)?;
    let stamp = Stamp::new(now, Duration::from_secs(1200), Duration::from_secs(86_400))?;
    println!(
        "{:<10} {:<10} {:>7} {:>7} {:>15} {:>10}",
        "mode", "payload", "encode", "decode", "read-one-key", "untouched"
    );
    for mode in [Mode::Signed, Mode::Encrypted] {
        let codec = Codec::new(mode, ring.clone()).with_max_size(8192);
        let sessions = SessionConfig::new(mode, ring.clone())
            .with_name("sid")
            .with_max_size(8192)
            .build()?;
        for size in ["small", "medium", "large"] {
            let data: Session = serde_json::from_value(payloads[size].clone())?;
            let value = codec.encode("sid", &data, &stamp)?;
            let encode = count(|| codec.encode("sid", &data, &stamp));
            let decode = count(|| codec.decode::<Session>("sid", &value, now));
            let header = format!("sid={value}");
            let read = count(|| {
                let session = sessions.load([header.as_str()], now);
                let user: Option<u64> = session.get("user_id").ok().flatten();
                (user, session.finish(now))
            });
            let untouched = count(|| sessions.load([header.as_str()], now).finish(now));
            println!("{mode:<10} {size:<10} {encode:>7} {decode:>7} {read:>15} {untouched:>10}");
        }
    }
    Ok(())
}
