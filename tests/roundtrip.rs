//! Values round-trip in both modes: session maps and any serde type.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::*;
use cookie_session::{KeyAge, Stamp};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Visit {
    user: Option<u64>,
    flash: Vec<String>,
    theme: Theme,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Theme {
    Light,
    Dark { contrast: u8 },
}

#[test]
fn session_maps_round_trip_with_their_stamp() {
    for mode in MODES {
        let codec = codec(mode);
        let stamp = stamp();
        let value = codec.encode("session", &small(), &stamp).unwrap();
        let opened = codec
            .decode::<SessionMap>("session", &value, at(T0))
            .unwrap();
        assert_eq!(opened.value, small());
        assert_eq!(opened.stamp, stamp);
        assert_eq!(opened.key_age, KeyAge::Current);
        assert_eq!(opened.key_id, key(1).id());
    }
}

#[test]
fn any_serde_type_round_trips() {
    for mode in MODES {
        let codec = codec(mode);
        let visit = Visit {
            user: Some(42),
            flash: vec!["Saved.".into(), "ünïcödé \u{1F36A} \"quoted\"\n".into()],
            theme: Theme::Dark { contrast: 3 },
        };
        let value = codec.encode("visit", &visit, &stamp()).unwrap();
        assert_eq!(
            codec
                .decode::<Visit>("visit", &value, at(T0))
                .unwrap()
                .value,
            visit
        );

        let value = codec
            .encode("n", &(1u8, "two", [3.5f64]), &stamp())
            .unwrap();
        let (a, b, c): (u8, String, [f64; 1]) = codec.decode("n", &value, at(T0)).unwrap().value;
        assert_eq!((a, b.as_str(), c), (1, "two", [3.5]));
    }
}

#[test]
fn an_empty_session_round_trips() {
    for mode in MODES {
        let codec = codec(mode);
        let value = codec
            .encode("session", &SessionMap::new(), &stamp())
            .unwrap();
        assert!(open(&codec, "session", &value).unwrap().is_empty());
    }
}

#[test]
fn signed_data_is_readable_and_encrypted_data_is_not() {
    let secret = "hunter2-is-my-password";
    let map = json!({"note": secret});
    let signed = codec(cookie_session::Mode::Signed)
        .encode("session", &map, &stamp())
        .unwrap();
    let encrypted = codec(cookie_session::Mode::Encrypted)
        .encode("session", &map, &stamp())
        .unwrap();
    let readable = |v: &str| {
        cookie_session::inspect(v)
            .unwrap()
            .payload
            .is_some_and(|p| String::from_utf8_lossy(&p).contains(secret))
    };
    assert!(
        readable(&signed),
        "signed mode only authenticates; the client can read it"
    );
    assert!(!readable(&encrypted));
    let raw = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        &encrypted,
    )
    .unwrap();
    assert!(!raw.windows(secret.len()).any(|w| w == secret.as_bytes()));
}

#[test]
fn re_issuing_keeps_the_session_id_and_regenerating_changes_it() {
    for mode in MODES {
        let codec = codec(mode);
        let first = stamp();
        let renewed = first.renewed(at(T0 + 60), IDLE).unwrap();
        let regenerated = first.regenerated();
        assert_eq!(renewed.id(), first.id());
        assert_ne!(regenerated.id(), first.id());
        assert_eq!(regenerated.absolute_deadline(), first.absolute_deadline());
        for s in [renewed, regenerated] {
            let value = codec.encode("session", &small(), &s).unwrap();
            let opened = codec
                .decode::<SessionMap>("session", &value, at(T0 + 60))
                .unwrap();
            assert_eq!(opened.stamp.id(), s.id());
        }
        // Fresh sessions get fresh ids.
        let a = Stamp::new(at(T0), IDLE, LIFETIME).unwrap();
        let b = Stamp::new(at(T0), IDLE, LIFETIME).unwrap();
        assert_ne!(a.id(), b.id());
        assert_eq!(a.id().to_string().len(), 32);
    }
}

#[test]
fn encrypting_the_same_session_twice_gives_different_cookies() {
    let codec = codec(cookie_session::Mode::Encrypted);
    let a = codec.encode("session", &small(), &stamp()).unwrap();
    let b = codec.encode("session", &small(), &stamp()).unwrap();
    assert_ne!(a, b);
    assert_eq!(
        open(&codec, "session", &a).unwrap(),
        open(&codec, "session", &b).unwrap()
    );
}

#[test]
fn floats_round_trip_bit_for_bit() {
    // Found by proptest: without serde_json's `float_roundtrip` this came back 1 ulp off.
    for mode in MODES {
        let codec = codec(mode);
        for f in [
            133_272_328_341_923.12_f64,
            0.1,
            1e-300,
            f64::MAX,
            f64::MIN_POSITIVE,
            -2.5e17,
        ] {
            let value = codec
                .encode("session", &json!({ "f": f }), &stamp())
                .unwrap();
            let back = open(&codec, "session", &value).unwrap()["f"]
                .as_f64()
                .unwrap();
            assert_eq!(back.to_bits(), f.to_bits(), "{f}");
        }
    }
}

/// A value whose serialization encodes another cookie (a cookie inside a cookie).
struct Wrapped<'a>(&'a cookie_session::Codec);

impl Serialize for Wrapped<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let inner = self
            .0
            .encode("inner", &json!({"x": 1}), &stamp())
            .map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(&inner)
    }
}

#[test]
fn encoding_inside_serialization_works() {
    // The codec reuses a per-thread buffer; re-entrant use must fall back, not panic.
    for mode in MODES {
        let codec = codec(mode);
        let outer = codec.encode("outer", &Wrapped(&codec), &stamp()).unwrap();
        let inner: String = codec.decode("outer", &outer, at(T0)).unwrap().value;
        let value: serde_json::Value = codec.decode("inner", &inner, at(T0)).unwrap().value;
        assert_eq!(value, json!({"x": 1}));
    }
}
