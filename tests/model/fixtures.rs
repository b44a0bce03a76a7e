//! Fixtures the integration tests, the session model and its fuzz target share (this file
//! is also included by the fuzz crate, so it uses nothing but the library and serde_json).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::panic)]

use cookie_session::Key;
use serde_json::Value;

/// A key, reproducible from `seed`.
pub fn key(seed: u8) -> Key {
    // Distinct, non-repeating bytes: passes the weak-key checks, reproducible.
    let bytes: Vec<u8> = (0u8..32)
        .map(|i| i.wrapping_mul(37).wrapping_add(seed))
        .collect();
    Key::from_bytes(&bytes).unwrap()
}

/// The vector called `name` in a vectors file.
pub fn named(file: &Value, name: &str) -> Value {
    file["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no vector {name:?}"))
        .clone()
}

/// `n` characters that deflate cannot shrink much (hex of a counter's hash-like mix).
pub fn incompressible(n: usize, seed: u64) -> String {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(
                b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                    [(x % 62) as usize],
            )
        })
        .collect()
}
