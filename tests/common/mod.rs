//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use cookie_session::{Codec, Key, KeyRing, Mode, Stamp};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

pub const MODES: [Mode; 2] = [Mode::Signed, Mode::Encrypted];
pub const IDLE: Duration = Duration::from_secs(20 * 60);
pub const LIFETIME: Duration = Duration::from_secs(14 * 86_400);
/// 2026-01-01T00:00:00Z: every test runs on this frozen clock.
pub const T0: i64 = 1_767_225_600;

pub type SessionMap = Map<String, Value>;

pub fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

pub fn key(seed: u8) -> Key {
    // Distinct, non-repeating bytes: passes the weak-key checks, reproducible.
    let bytes: Vec<u8> = (0u8..32)
        .map(|i| i.wrapping_mul(37).wrapping_add(seed))
        .collect();
    Key::from_bytes(&bytes).unwrap()
}

pub fn codec(mode: Mode) -> Codec {
    Codec::new(mode, KeyRing::new(key(1)))
}

pub fn stamp() -> Stamp {
    Stamp::new(at(T0), IDLE, LIFETIME).unwrap()
}

pub fn small() -> SessionMap {
    let Value::Object(map) =
        json!({"user_id": 1234567, "csrf": "q3Vb9XkL2mWn7Rt5Yp0Zs8Ac4Df6Gh1J", "roles": ["user"]})
    else {
        unreachable!()
    };
    map
}

/// Decodes as a session map at T0.
pub fn open(
    codec: &Codec,
    name: &str,
    value: &str,
) -> Result<SessionMap, cookie_session::DecodeError> {
    codec
        .decode::<SessionMap>(name, value, at(T0))
        .map(|o| o.value)
}
