//! Any change to a valid cookie is rejected: bit flips, truncation, appended bytes, another
//! cookie name, the other mode.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use cookie_session::{Codec, DecodeError, KeyRing, Mode};

fn valid(codec: &Codec) -> String {
    let value = codec.encode("session", &small(), &stamp()).unwrap();
    assert_eq!(open(codec, "session", &value).unwrap(), small());
    value
}

#[test]
fn every_single_bit_flip_of_the_envelope_is_rejected() {
    for mode in MODES {
        let codec = codec(mode);
        let raw = URL_SAFE_NO_PAD.decode(valid(&codec)).unwrap();
        for i in 0..raw.len() * 8 {
            let mut flipped = raw.clone();
            flipped[i / 8] ^= 1 << (i % 8);
            let value = URL_SAFE_NO_PAD.encode(&flipped);
            assert!(
                open(&codec, "session", &value).is_err(),
                "{mode}: bit {i} accepted"
            );
        }
    }
}

#[test]
fn every_single_bit_flip_of_the_text_is_rejected() {
    for mode in MODES {
        let codec = codec(mode);
        let value = valid(&codec);
        for i in 0..value.len() {
            for bit in 0..8 {
                let mut bytes = value.clone().into_bytes();
                bytes[i] ^= 1 << bit;
                // Flips that leave UTF-8 cannot be a &str, so cannot reach decode at all.
                let Ok(text) = String::from_utf8(bytes) else {
                    continue;
                };
                assert!(
                    open(&codec, "session", &text).is_err(),
                    "{mode}: char {i} bit {bit} accepted"
                );
            }
        }
    }
}

#[test]
fn truncation_at_every_length_and_appended_bytes_are_rejected() {
    for mode in MODES {
        let codec = codec(mode);
        let value = valid(&codec);
        for len in 0..value.len() {
            assert!(
                open(&codec, "session", &value[..len]).is_err(),
                "{mode}: prefix {len} accepted"
            );
        }
        for suffix in ["A", "AA", "AAA", "AAAA", "_", "=", " ", ";"] {
            let longer = format!("{value}{suffix}");
            assert!(
                open(&codec, "session", &longer).is_err(),
                "{mode}: +{suffix:?} accepted"
            );
        }
        // Appending whole bytes to the envelope (so the base64 stays canonical).
        let mut raw = URL_SAFE_NO_PAD.decode(&value).unwrap();
        for _ in 0..3 {
            raw.push(0);
            let longer = URL_SAFE_NO_PAD.encode(&raw);
            assert!(matches!(
                open(&codec, "session", &longer),
                Err(DecodeError::Invalid)
            ));
        }
    }
}

#[test]
fn a_value_moved_to_another_cookie_name_is_rejected() {
    for mode in MODES {
        let codec = codec(mode);
        let value = codec.encode("user", &small(), &stamp()).unwrap();
        assert!(open(&codec, "user", &value).is_ok());
        for other in ["admin", "User", "user2", "use", "__Host-user"] {
            assert!(
                matches!(open(&codec, other, &value), Err(DecodeError::Invalid)),
                "{mode}: accepted under {other}"
            );
        }
    }
}

#[test]
fn signed_and_encrypted_cookies_are_not_interchangeable() {
    let ring = KeyRing::new(key(1));
    let signed = Codec::new(Mode::Signed, ring.clone());
    let encrypted = Codec::new(Mode::Encrypted, ring);
    let s = valid(&signed);
    let e = valid(&encrypted);
    assert!(matches!(
        open(&encrypted, "session", &s),
        Err(DecodeError::WrongMode {
            found: Mode::Signed,
            expected: Mode::Encrypted
        })
    ));
    assert!(matches!(
        open(&signed, "session", &e),
        Err(DecodeError::WrongMode {
            found: Mode::Encrypted,
            expected: Mode::Signed
        })
    ));
    // Relabelling the mode byte does not help: each mode has its own key and layout.
    for (value, codec) in [(&s, &encrypted), (&e, &signed)] {
        let mut raw = URL_SAFE_NO_PAD.decode(value).unwrap();
        raw[0] = if raw[0] == 3 { 4 } else { 3 };
        let relabelled = URL_SAFE_NO_PAD.encode(&raw);
        assert!(matches!(
            open(codec, "session", &relabelled),
            Err(DecodeError::Invalid)
        ));
    }
}

#[test]
fn unknown_format_versions_are_rejected() {
    let codec = codec(Mode::Signed);
    let mut raw = URL_SAFE_NO_PAD.decode(valid(&codec)).unwrap();
    for version in [0u8, 5, 0x7f, 0xff] {
        raw[0] = version;
        let value = URL_SAFE_NO_PAD.encode(&raw);
        assert!(matches!(
            open(&codec, "session", &value),
            Err(DecodeError::UnsupportedVersion(v)) if v == version
        ));
    }
}

#[test]
fn the_authentication_error_carries_no_detail() {
    let codec = codec(Mode::Encrypted);
    let value = valid(&codec);
    let err = open(&codec, "admin", &value).unwrap_err();
    assert_eq!(err.to_string(), "cookie failed authentication");
    assert!(std::error::Error::source(&err).is_none());
}
