//! Property tests: arbitrary JSON maps round-trip; arbitrary input never panics decode.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::*;
use cookie_session::{DecodeError, EncodeError};
use proptest::prelude::*;
use serde_json::{Map, Number, Value};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| Value::Number(n.into())),
        any::<u64>().prop_map(|n| Value::Number(n.into())),
        (-1e15f64..1e15).prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        ".{0,24}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn json_map() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(".{0,16}", json_value(), 0..10)
        .prop_map(|m| m.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn maps_round_trip_or_are_too_large(map in json_map()) {
        for mode in MODES {
            let codec = codec(mode);
            match codec.encode("session", &map, &stamp()) {
                Ok(value) => prop_assert_eq!(open(&codec, "session", &value).unwrap(), map.clone()),
                Err(EncodeError::TooLarge { size, limit }) => prop_assert!(size > limit),
                Err(e) => prop_assert!(false, "{mode}: {e}"),
            }
        }
    }

    #[test]
    fn arbitrary_strings_never_panic_decode(value in ".{0,600}", name in "[!-~]{0,12}") {
        for mode in MODES {
            let _ = open(&codec(mode), &name, &value);
        }
    }

    #[test]
    fn arbitrary_base64url_is_rejected_not_accepted(value in "[A-Za-z0-9_-]{0,700}") {
        for mode in MODES {
            // No random string forges a cookie; each is a typed rejection. (A random flags
            // byte may announce pieces that are not there: refused before authentication.)
            let err = open(&codec(mode), "session", &value).unwrap_err();
            prop_assert!(matches!(
                err,
                DecodeError::Malformed | DecodeError::UnsupportedVersion(_)
                    | DecodeError::WrongMode { .. } | DecodeError::UnknownKey(_)
                    | DecodeError::TooManyChunks { .. }
            ), "{:?}", err);
        }
    }

    #[test]
    fn a_valid_header_with_random_body_fails_authentication(body in prop::collection::vec(any::<u8>(), 0..300)) {
        use base64::Engine as _;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        for mode in MODES {
            let codec = codec(mode);
            let genuine = URL_SAFE_NO_PAD.decode(codec.encode("session", &small(), &stamp()).unwrap()).unwrap();
            let mut forged = genuine[..45].to_vec();
            forged.extend_from_slice(&body);
            let result = open(&codec, "session", &URL_SAFE_NO_PAD.encode(&forged));
            // A random flags byte may announce pieces that are not there: also refused
            // before authentication, on the sender's own bytes.
            prop_assert!(matches!(
                result,
                Err(DecodeError::Invalid
                    | DecodeError::Malformed
                    | DecodeError::TooManyChunks { .. }
                    | DecodeError::MissingChunk { .. })
            ), "{:?}", result);
        }
    }
}
