//! What every benchmark shares: the payloads of `../shared/bench/payloads.json` (copied to
//! `benches/payloads.json`; CI checks the copy), one key, one stamp.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::missing_panics_doc
)]

use std::time::Duration;

use cookie_session::time::OffsetDateTime;
use cookie_session::{Key, KeyRing, Stamp};
use serde_json::{Map, Value};

pub type Session = Map<String, Value>;
pub const SIZES: [&str; 3] = ["small", "medium", "large"];

pub fn payload(size: &str) -> Session {
    let all: Value = serde_json::from_str(include_str!("payloads.json")).unwrap();
    serde_json::from_value(all[size].clone()).unwrap()
}

pub fn ring() -> KeyRing {
    let bytes: Vec<u8> = (0u8..32)
        .map(|i| i.wrapping_mul(37).wrapping_add(7))
        .collect();
    KeyRing::new(Key::from_bytes(&bytes).unwrap())
}

pub fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap()
}

pub fn stamp() -> Stamp {
    Stamp::new(
        now(),
        Duration::from_secs(1200),
        Duration::from_secs(86_400),
    )
    .unwrap()
}

/// Short warm-up and measurement: the suite stays at a few minutes on two cores, and the
/// ratios (not the absolute times) are what we read.
pub fn criterion() -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
}
