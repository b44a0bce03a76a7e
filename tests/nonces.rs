//! 10^6 encryptions under one key never repeat a (derived key, GCM nonce) pair.
//!
//! In XAES-256-GCM the per-cookie AES key is derived from the first 12 bytes of the
//! 24-byte nonce and the GCM nonce is the last 12, so the pair repeats exactly when the
//! 24-byte nonce repeats. The test reads the nonces out of real cookies (FORMAT.md: bytes
//! 45..69 of the envelope) and also checks that no derived key was used twice.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use cookie_session::Mode;
use serde_json::json;

#[test]
fn a_million_encryptions_repeat_no_nonce_and_no_derived_key() {
    const N: usize = 1_000_000;
    let codec = codec(Mode::Encrypted);
    let stamp = stamp();
    let payload = json!({});
    let mut nonces: HashSet<[u8; 24]> = HashSet::with_capacity(N);
    let mut key_halves: HashSet<[u8; 12]> = HashSet::with_capacity(N);
    for _ in 0..N {
        let value = codec.encode("s", &payload, &stamp).unwrap();
        let raw = URL_SAFE_NO_PAD.decode(value).unwrap();
        let nonce: [u8; 24] = raw[45..69].try_into().unwrap();
        assert!(nonces.insert(nonce), "nonce repeated");
        assert!(
            key_halves.insert(nonce[..12].try_into().unwrap()),
            "derived key repeated"
        );
    }
    assert_eq!(nonces.len(), N);
}
