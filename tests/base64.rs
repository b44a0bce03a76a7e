//! Decoding accepts only canonical unpadded base64url: no padding, no `+` or `/`, no
//! whitespace, no non-zero trailing bits.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::*;
use cookie_session::{Codec, DecodeError, Mode};

fn malformed(codec: &Codec, value: &str) -> bool {
    matches!(open(codec, "session", value), Err(DecodeError::Malformed))
}

/// Encodes until the value's length leaves a partial final group, so trailing bits exist.
fn value_with_trailing_bits(codec: &Codec) -> String {
    for n in 0..3 {
        let mut map = small();
        map.insert("pad".into(), "x".repeat(n).into());
        let value = codec.encode("session", &map, &stamp()).unwrap();
        if !value.len().is_multiple_of(4) {
            return value;
        }
    }
    unreachable!("three consecutive lengths cannot all be multiples of 3 bytes")
}

#[test]
fn cookie_values_use_only_base64url_characters() {
    for mode in MODES {
        let value = codec(mode).encode("session", &small(), &stamp()).unwrap();
        assert!(
            value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }
}

#[test]
fn padding_is_rejected() {
    for mode in MODES {
        let codec = codec(mode);
        let value = value_with_trailing_bits(&codec);
        let padding = "=".repeat((4 - value.len() % 4) % 4);
        assert!(open(&codec, "session", &value).is_ok());
        assert!(malformed(&codec, &format!("{value}{padding}")));
    }
}

#[test]
fn the_standard_alphabet_is_rejected() {
    for mode in MODES {
        let codec = codec(mode);
        let raw = URL_SAFE_NO_PAD
            .decode(value_with_trailing_bits(&codec))
            .unwrap();
        let standard = STANDARD.encode(&raw).trim_end_matches('=').to_owned();
        // Force at least one of `+` `/` into the text by replacing a `-`/`_` equivalent.
        let url = URL_SAFE_NO_PAD.encode(&raw);
        if standard != url {
            assert!(malformed(&codec, &standard));
        }
        let with_plus = format!("+{}", &url[1..]);
        let with_slash = format!("{}/", &url[..url.len() - 1]);
        assert!(malformed(&codec, &with_plus));
        assert!(malformed(&codec, &with_slash));
    }
}

#[test]
fn whitespace_anywhere_is_rejected() {
    for mode in MODES {
        let codec = codec(mode);
        let value = value_with_trailing_bits(&codec);
        for ws in [" ", "\t", "\n", "\r\n"] {
            for at in [0, value.len() / 2, value.len()] {
                let spaced = format!("{}{ws}{}", &value[..at], &value[at..]);
                assert!(malformed(&codec, &spaced), "{mode}: {ws:?} at {at}");
            }
        }
    }
}

#[test]
fn non_zero_trailing_bits_are_rejected() {
    for mode in MODES {
        let codec = codec(mode);
        let value = value_with_trailing_bits(&codec);
        // The last character's low bits are padding bits that a canonical encoder zeroes.
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let last = value.as_bytes()[value.len() - 1];
        let index = alphabet.iter().position(|&c| c == last).unwrap();
        let unused_bits = if value.len() % 4 == 2 { 4 } else { 2 };
        let mut rejected = 0;
        for low in 1..(1 << unused_bits) {
            let other = char::from(alphabet[index | low]);
            let tweaked = format!("{}{other}", &value[..value.len() - 1]);
            assert!(malformed(&codec, &tweaked), "{mode}: {tweaked} accepted");
            rejected += 1;
        }
        assert!(rejected >= 3);
    }
}

#[test]
fn empty_and_garbage_values_are_malformed() {
    let codec = codec(Mode::Signed);
    for value in ["", "A", "AA", "!!!!", "é", "AAAA"] {
        assert!(
            open(&codec, "session", value).is_err(),
            "{value:?} accepted"
        );
    }
    assert!(malformed(&codec, "é"));
    assert!(malformed(&codec, "AQ"));
}
