//! Size and nesting limits, on the exact bytes that would be sent.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::*;
use cookie_session::{Codec, DecodeError, EncodeError, Mode};
use serde_json::{Value, json};

/// A map whose encoded cookie is exactly `target` bytes (name + value) under `codec`,
/// found by growing one string field a byte at a time.
fn map_of_size(codec: &Codec, name: &str, target: usize) -> Option<SessionMap> {
    let mut map = small();
    let base = codec.encode(name, &map, &stamp()).unwrap().len() + name.len();
    // Each JSON byte adds 4/3 of a character; start a little below the estimate.
    for extra in ((target - base) * 3 / 4).saturating_sub(24)..=target {
        map.insert("fill".into(), "x".repeat(extra).into());
        match codec.encode(name, &map, &stamp()) {
            Ok(v) if v.len() + name.len() == target => return Some(map),
            Ok(_) => {}
            Err(EncodeError::TooLarge { .. }) => return None,
            Err(e) => panic!("{e}"),
        }
    }
    None
}

#[test]
fn a_cookie_of_exactly_the_limit_is_accepted_and_one_byte_more_is_refused() {
    // Unpadded base64 never has a length of 1 mod 4, so use an 8-byte name: a 4088-character
    // value makes exactly 4096.
    let name = "session_";
    for mode in MODES {
        let codec = codec(mode);
        let map = map_of_size(&codec, name, 4096).unwrap();
        let value = codec.encode(name, &map, &stamp()).unwrap();
        assert_eq!(name.len() + value.len(), 4096);
        assert_eq!(open(&codec, name, &value).unwrap(), map);

        let tighter = codec.clone().with_max_size(4095);
        let err = tighter.encode(name, &map, &stamp()).unwrap_err();
        assert!(
            matches!(
                err,
                EncodeError::TooLarge {
                    size: 4096,
                    limit: 4095
                }
            ),
            "{err}"
        );
        assert!(matches!(
            open(&tighter, name, &value),
            Err(DecodeError::TooLarge {
                size: 4096,
                limit: 4095
            })
        ));

        // One more JSON byte crosses the default limit.
        let mut bigger = map.clone();
        bigger.insert("z".into(), Value::Null);
        assert!(matches!(
            codec.encode(name, &bigger, &stamp()),
            Err(EncodeError::TooLarge { limit: 4096, .. })
        ));
    }
}

#[test]
fn over_limit_encoding_reports_size_and_limit_and_emits_nothing() {
    for mode in MODES {
        let codec = codec(mode);
        let mut map = small();
        map.insert("blob".into(), "y".repeat(5000).into());
        match codec.encode("session", &map, &stamp()) {
            Err(EncodeError::TooLarge { size, limit }) => {
                assert_eq!(limit, 4096);
                assert!(size > 4096);
                // The reported size is the exact size the cookie would have had.
                let roomy = codec.clone().with_max_size(usize::MAX);
                let value = roomy.encode("session", &map, &stamp()).unwrap();
                assert_eq!(size, "session".len() + value.len());
            }
            other => panic!("{mode}: {other:?}"),
        }
    }
}

#[test]
fn the_name_counts_towards_the_limit() {
    for mode in MODES {
        let codec = codec(mode);
        let value = codec.encode("s", &small(), &stamp()).unwrap();
        let limit = 1 + value.len();
        let tight = codec.clone().with_max_size(limit);
        assert!(tight.encode("s", &small(), &stamp()).is_ok());
        assert!(matches!(
            tight.encode("ss", &small(), &stamp()),
            Err(EncodeError::TooLarge { size, .. }) if size == limit + 1
        ));
    }
}

#[test]
fn over_limit_input_is_refused_before_decoding() {
    for mode in MODES {
        let codec = codec(mode);
        // Not even base64: refused for its size, so no decoding was attempted.
        let huge = "!".repeat(5000);
        assert!(matches!(
            open(&codec, "session", &huge),
            Err(DecodeError::TooLarge {
                size: 5007,
                limit: 4096
            })
        ));
        let value = codec.encode("session", &small(), &stamp()).unwrap();
        let tight = codec.clone().with_max_size(value.len() + 6);
        assert!(matches!(
            open(&tight, "session", &value),
            Err(DecodeError::TooLarge { .. })
        ));
    }
}

/// `depth` arrays around a number.
fn nested(depth: usize) -> Value {
    (0..depth).fold(json!(1), |inner, _| json!([inner]))
}

#[test]
fn nesting_is_bounded_on_encode_and_decode() {
    for mode in MODES {
        let codec = codec(mode).with_max_depth(8);
        let ok = json!({"a": nested(7)});
        let value = codec.encode("session", &ok, &stamp()).unwrap();
        assert!(open(&codec, "session", &value).is_ok());

        let deep = json!({"a": nested(8)});
        assert!(matches!(
            codec.encode("session", &deep, &stamp()),
            Err(EncodeError::TooDeep { limit: 8 })
        ));

        // Issued by a codec with a laxer limit: authentic, but refused on decode.
        let lax = codec.clone().with_max_depth(64);
        let value = lax.encode("session", &deep, &stamp()).unwrap();
        assert!(matches!(
            open(&codec, "session", &value),
            Err(DecodeError::TooDeep { limit: 8 })
        ));
    }
}

#[test]
fn the_default_depth_limit_stops_a_deep_payload_that_fits_in_a_cookie() {
    let codec = codec(Mode::Encrypted).with_max_depth(2000);
    let deep = nested(1000); // 2 KB of brackets
    let value = codec.encode("session", &deep, &stamp()).unwrap();
    let strict = codec
        .clone()
        .with_max_depth(cookie_session::DEFAULT_MAX_DEPTH);
    assert!(matches!(
        strict.decode::<Value>("session", &value, at(T0)),
        Err(DecodeError::TooDeep { limit: 32 })
    ));
}

#[test]
fn a_non_object_payload_is_refused_where_a_map_is_expected() {
    for mode in MODES {
        let codec = codec(mode);
        for payload in [json!([1, 2]), json!("text"), json!(5), json!(null)] {
            let value = codec.encode("session", &payload, &stamp()).unwrap();
            let err = open(&codec, "session", &value).unwrap_err();
            assert!(matches!(err, DecodeError::Payload(_)), "{err:?}");
            assert!(
                std::error::Error::source(&err)
                    .unwrap()
                    .to_string()
                    .contains("expected a map")
            );
            // The same cookie decodes fine as what it is.
            assert_eq!(
                codec
                    .decode::<Value>("session", &value, at(T0))
                    .unwrap()
                    .value,
                payload
            );
        }
    }
}

#[test]
fn invalid_cookie_names_are_refused() {
    for mode in MODES {
        let codec = codec(mode);
        let value = codec.encode("session", &small(), &stamp()).unwrap();
        for name in ["", "a b", "a=b", "a;b", "sé", "a\"b", "a\tb"] {
            assert!(
                matches!(
                    codec.encode(name, &small(), &stamp()),
                    Err(EncodeError::InvalidName)
                ),
                "{name:?}"
            );
            assert!(
                matches!(open(&codec, name, &value), Err(DecodeError::InvalidName)),
                "{name:?}"
            );
        }
    }
}

#[test]
fn a_cookie_name_is_exactly_an_rfc_7230_token() {
    // tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`"
    //       / "|" / "~" / DIGIT / ALPHA
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    let codec = codec(Mode::Signed);
    for byte in 0..=u8::MAX {
        let Ok(name) = std::str::from_utf8(&[byte]).map(|n| format!("a{n}")) else {
            continue;
        };
        let accepted = codec.encode(&name, &small(), &stamp()).is_ok();
        assert_eq!(accepted, tchar(byte), "{name:?}");
    }
}
