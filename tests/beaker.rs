//! Beaker 1.14.1 interoperability: cookies made by the real Beaker (frozen in
//! `tests/vectors/beaker.json` by `tests/beaker/harness.py`) decode to the same data, and
//! ours round-trip. CI also has the real Beaker decode ours (`examples/beaker_interop.rs`).
#![allow(clippy::unwrap_used, clippy::panic, clippy::cast_possible_truncation)]

mod common;

use std::time::Duration;

use cookie_session::beaker::{BeakerCipher, BeakerCookie, BeakerFormat};
use cookie_session::time::OffsetDateTime;
use cookie_session::{Deadline, DecodeError, EncodeError, KeyError};
use serde_json::{Map, Value, json};

/// The frozen vectors, or (in CI) a file just made by the real Beaker: `BEAKER_VECTORS`.
fn vectors() -> Value {
    let text = match std::env::var("BEAKER_VECTORS") {
        Ok(path) => std::fs::read_to_string(path).unwrap(),
        Err(_) => include_str!("vectors/beaker.json").to_owned(),
    };
    serde_json::from_str(&text).unwrap()
}

fn format_for(file: &Value, v: &Value) -> BeakerFormat {
    let validate = file["validate_key"].as_str().unwrap();
    let format = match v["cipher"].as_str() {
        None => BeakerFormat::signed(validate).unwrap(),
        Some("gcm") => BeakerFormat::encrypted(
            validate,
            file["encrypt_key"].as_str().unwrap(),
            BeakerCipher::Gcm,
        )
        .unwrap(),
        Some("ctr") => BeakerFormat::encrypted(
            validate,
            file["encrypt_key"].as_str().unwrap(),
            BeakerCipher::Ctr,
        )
        .unwrap(),
        Some(other) => panic!("cipher {other}"),
    };
    match v["timeout"].as_u64() {
        Some(t) => format.with_timeout(Duration::from_secs(t)),
        None => format,
    }
}

fn at(unix: f64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos((unix * 1e9) as i128).unwrap()
}

#[test]
fn cookies_made_by_real_beaker_decode_to_the_same_data() {
    let file = vectors();
    let vectors = file["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 14);
    for v in vectors {
        let result = format_for(&file, v)
            .decode(v["value"].as_str().unwrap(), at(v["now"].as_f64().unwrap()));
        let outcome = match &result {
            Ok(_) => "ok",
            Err(DecodeError::Invalid) => "invalid",
            Err(DecodeError::Expired(Deadline::Idle)) => "expired",
            Err(other) => panic!("{}: {other:?}", v["name"]),
        };
        assert_eq!(outcome, v["expect"].as_str().unwrap(), "{}", v["name"]);
        if let Ok(cookie) = result {
            assert_eq!(
                Value::Object(cookie.data.clone()),
                v["data"],
                "{}",
                v["name"]
            );
            let internal = &v["internal"];
            assert_eq!(cookie.id, internal["_id"].as_str().unwrap());
            assert_eq!(
                cookie.creation_time,
                internal["_creation_time"].as_f64().unwrap()
            );
            assert_eq!(
                cookie.accessed_time,
                internal["_accessed_time"].as_f64().unwrap()
            );
            assert_eq!(cookie.path, "/");
            assert_eq!(cookie.domain, None);
        }
    }
}

#[test]
fn the_wrong_keys_or_cipher_reject_real_beaker_cookies() {
    let file = vectors();
    let find = |name: &str| common::named(&file, name);
    let now = at(1_767_225_630.25);
    let signed = find("signed-simple");
    let value = signed["value"].as_str().unwrap();
    let other = BeakerFormat::signed("00000000-0000-0000-0000-000000000000").unwrap();
    assert!(matches!(
        other.decode(value, now),
        Err(DecodeError::Invalid)
    ));

    let gcm = find("gcm-simple");
    let validate = file["validate_key"].as_str().unwrap();
    let wrong_key = BeakerFormat::encrypted(validate, "another-key", BeakerCipher::Gcm).unwrap();
    assert!(matches!(
        wrong_key.decode(gcm["value"].as_str().unwrap(), now),
        Err(DecodeError::Invalid)
    ));
    // A CTR reader of a GCM cookie gets garbage, which fails as zlib: never data.
    let ctr = BeakerFormat::encrypted(
        validate,
        file["encrypt_key"].as_str().unwrap(),
        BeakerCipher::Ctr,
    )
    .unwrap();
    assert!(ctr.decode(gcm["value"].as_str().unwrap(), now).is_err());
    // A signed-only reader of an encrypted cookie: the signature verifies, the body does not.
    let signed_only = BeakerFormat::signed(validate).unwrap();
    assert!(matches!(
        signed_only.decode(gcm["value"].as_str().unwrap(), now),
        Err(DecodeError::Malformed)
    ));
}

fn user_data() -> Map<String, Value> {
    json!({"user": "alice", "name": "Zoë 🍪", "cart": [{"sku": "A-1", "qty": 2}], "n": 1.5})
        .as_object()
        .cloned()
        .unwrap()
}

#[test]
fn our_cookies_round_trip_in_every_variant_and_keep_internal_keys() {
    let now = at(1_767_225_600.5);
    for format in [
        BeakerFormat::signed("vk").unwrap(),
        BeakerFormat::encrypted("vk", "ek", BeakerCipher::Gcm).unwrap(),
        BeakerFormat::encrypted("vk", "ek", BeakerCipher::Ctr).unwrap(),
    ] {
        let mut cookie = BeakerCookie::new(user_data(), now);
        cookie.domain = Some("example.com".into());
        let value = format.encode("myproject", &cookie).unwrap();
        assert_eq!(
            &value[..40],
            value[..40].to_lowercase(),
            "lowercase hex signature"
        );
        let back = format.decode(&value, now).unwrap();
        assert_eq!(back, cookie);
        let touched = back.touched(at(1_767_225_700.0));
        assert_eq!(
            (touched.id.as_str(), touched.creation_time),
            (cookie.id.as_str(), cookie.creation_time)
        );
        assert_eq!(touched.accessed_time, 1_767_225_700.0);
    }
}

#[test]
fn the_timeout_is_strict_and_measured_from_the_accessed_time() {
    let now = at(1_000_000.0);
    let format = BeakerFormat::signed("vk")
        .unwrap()
        .with_timeout(Duration::from_secs(600));
    let value = format
        .encode("s", &BeakerCookie::new(user_data(), now))
        .unwrap();
    assert!(
        format.decode(&value, at(1_000_600.0)).is_ok(),
        "exactly the timeout is valid"
    );
    assert!(matches!(
        format.decode(&value, at(1_000_600.5)),
        Err(DecodeError::Expired(Deadline::Idle))
    ));
    let no_timeout = BeakerFormat::signed("vk").unwrap();
    assert!(
        no_timeout.decode(&value, at(9_000_000_000.0)).is_ok(),
        "without a timeout, never"
    );
}

#[test]
fn cookies_beaker_or_a_browser_would_refuse_are_not_emitted() {
    let now = at(1_000_000.0);
    let format = BeakerFormat::signed("vk").unwrap();
    // Incompressible data: a deterministic pseudo-random string.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let noise: String = (0..4500)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                    [(x % 62) as usize],
            )
        })
        .collect();
    let mut data = Map::new();
    data.insert("blob".into(), Value::String(noise));
    match format.encode("myproject", &BeakerCookie::new(data, now)) {
        Err(EncodeError::TooLarge { size, limit }) => {
            assert!(size > limit);
            assert!(limit <= 4096);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_values_are_rejected_without_panicking() {
    let format = BeakerFormat::encrypted("vk", "ek", BeakerCipher::Gcm).unwrap();
    let now = at(1_000_000.0);
    for value in [
        "",
        "\"\"",
        "abc",
        &"0".repeat(40),
        &"é".repeat(30),
        &format!("{}x", "a".repeat(40)),
    ] {
        assert!(format.decode(value, now).is_err(), "{value:?}");
    }
    assert!(matches!(
        format.decode(&"a".repeat(5000), now),
        Err(DecodeError::TooLarge { .. })
    ));
}

#[test]
fn beaker_keys_are_checked_and_never_shown() {
    assert_eq!(BeakerFormat::signed("").unwrap_err(), KeyError::Empty);
    assert_eq!(
        BeakerFormat::encrypted("vk", "", BeakerCipher::Gcm).unwrap_err(),
        KeyError::Empty
    );
    assert_eq!(
        BeakerFormat::encrypted("vk", "clé", BeakerCipher::Gcm).unwrap_err(),
        KeyError::NotAscii
    );
    let format =
        BeakerFormat::encrypted("validate-secret", "encrypt-secret", BeakerCipher::Ctr).unwrap();
    let shown = format!("{format:?}");
    assert!(
        !shown.contains("validate-secret") && !shown.contains("encrypt-secret"),
        "{shown}"
    );
}
