//! The known-answer vectors of `tests/vectors/v1.json` and `v2.json`, produced by an
//! independent Python implementation of FORMAT.md (`tests/vectors/generate.py`): both
//! versions decode to their expected outcomes, and version 2 (what is written today)
//! reproduces exactly.
#![allow(clippy::unwrap_used, clippy::panic)]

use cookie_session::{Codec, Deadline, DecodeError, Key, KeyRing, Mode, Persistence, inspect};
use serde_json::{Map, Value};
use time::OffsetDateTime;

/// Every vector of both versions, each tagged with its version.
fn vectors() -> Vec<Value> {
    [
        (1, include_str!("vectors/v1.json")),
        (2, include_str!("vectors/v2.json")),
    ]
    .into_iter()
    .flat_map(|(version, text)| {
        let file: Value = serde_json::from_str(text).unwrap();
        file["vectors"]
            .as_array()
            .unwrap()
            .iter()
            .map(move |v| {
                let mut v = v.clone();
                v["version"] = version.into();
                v
            })
            .collect::<Vec<_>>()
    })
    .collect()
}

/// The session's own persistence a vector carries.
fn persistence(v: &Value) -> Option<Persistence> {
    match v["persistence"].as_str() {
        None => None,
        Some("persistent") => Some(Persistence::Persistent),
        Some("browser-session") => Some(Persistence::BrowserSession),
        Some(other) => panic!("unknown persistence {other}"),
    }
}

fn field<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("vector {} lacks {name}", v["name"]))
}

fn codec_for(v: &Value) -> Codec {
    let mode = match field(v, "mode") {
        "signed" => Mode::Signed,
        "encrypted" => Mode::Encrypted,
        other => panic!("unknown mode {other}"),
    };
    let codec = Codec::new(
        mode,
        KeyRing::new(Key::from_base64url(field(v, "key")).unwrap()),
    );
    let codec = match v["max_cookies"].as_u64() {
        Some(n) => codec.with_max_cookies(usize::try_from(n).unwrap()),
        None => codec,
    };
    match v["max_total"].as_u64() {
        Some(n) => codec.with_max_total_size(usize::try_from(n).unwrap()),
        None => codec,
    }
}

/// The vector's value: its pieces when it is split across cookies.
fn pieces(v: &Value) -> Vec<&str> {
    match v["values"].as_array() {
        Some(values) => values.iter().map(|p| p.as_str().unwrap()).collect(),
        None => vec![field(v, "value")],
    }
}

fn decode<T: serde::de::DeserializeOwned>(
    v: &Value,
    codec: &Codec,
    now: OffsetDateTime,
) -> Result<cookie_session::Opened<T>, DecodeError> {
    codec.decode_chunks(field(v, "cookie_name"), &pieces(v), now)
}

fn outcome(
    result: &Result<cookie_session::Opened<Map<String, Value>>, DecodeError>,
) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(DecodeError::Invalid) => "invalid",
        Err(DecodeError::UnknownKey(_)) => "unknown-key",
        Err(DecodeError::Expired(Deadline::Idle)) => "expired-idle",
        Err(DecodeError::Expired(Deadline::Absolute)) => "expired-absolute",
        Err(DecodeError::IssuedInFuture) => "issued-in-future",
        Err(DecodeError::Malformed) => "malformed",
        Err(DecodeError::WrongMode { .. }) => "wrong-mode",
        Err(DecodeError::UnsupportedVersion(_)) => "unsupported-version",
        Err(DecodeError::CorruptCompression) => "corrupt-compression",
        Err(DecodeError::SessionTooLarge { .. }) => "session-too-large",
        Err(DecodeError::MissingChunk { .. }) => "missing-chunk",
        Err(DecodeError::TooManyChunks { .. }) => "too-many-chunks",
        Err(DecodeError::TooLarge { .. }) => "too-large",
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

#[test]
fn every_vector_decodes_to_its_expected_outcome() {
    let vectors = vectors();
    assert!(vectors.iter().filter(|v| v["version"] == 1).count() >= 20);
    assert!(vectors.iter().filter(|v| v["version"] == 2).count() >= 25);
    for v in &vectors {
        let now = OffsetDateTime::from_unix_timestamp(v["now"].as_i64().unwrap()).unwrap();
        let result = decode(v, &codec_for(v), now);
        // A value in one piece decodes the same through the single-cookie entry point.
        if v["values"].is_null() {
            let single = codec_for(v).decode(field(v, "cookie_name"), field(v, "value"), now);
            assert_eq!(outcome(&single), outcome(&result), "vector {}", v["name"]);
        }
        assert_eq!(outcome(&result), field(v, "expect"), "vector {}", v["name"]);
        if let Ok(opened) = result {
            let payload: Map<String, Value> = serde_json::from_str(field(v, "payload")).unwrap();
            assert_eq!(opened.value, payload, "vector {}", v["name"]);
            assert_eq!(opened.stamp.id().to_string(), field(v, "session_id"));
            assert_eq!(
                opened.stamp.issued_at().unix_timestamp(),
                v["issued_at"].as_i64().unwrap()
            );
            assert_eq!(
                opened.stamp.idle_deadline().unix_timestamp(),
                v["idle_deadline"].as_i64().unwrap()
            );
            assert_eq!(
                opened.stamp.absolute_deadline().unix_timestamp(),
                v["absolute_deadline"].as_i64().unwrap()
            );
            assert!(!opened.opened_with_older_key());
            assert_eq!(
                opened.stamp.persistence(),
                persistence(v),
                "vector {}",
                v["name"]
            );
        }
    }
}

#[test]
fn signed_vectors_reencode_byte_for_byte() {
    // Signed mode is deterministic, so re-encoding the decoded value under the decoded
    // stamp must give the vector's exact bytes. (Encrypted vectors are reproduced by a
    // unit test in `src/codec.rs`, the one place that can choose a nonce.)
    let mut checked = 0;
    for v in vectors()
        .iter()
        // Compressed vectors are only read: any valid deflate stream is a correct encoding,
        // and Python's zlib and zlib-rs need not choose the same one.
        .filter(|v| {
            v["expect"] == "ok"
                && v["mode"] == "signed"
                && v["version"] == 2
                && v["compressed"] != true
        })
    {
        let codec = codec_for(v);
        let now = OffsetDateTime::from_unix_timestamp(v["now"].as_i64().unwrap()).unwrap();
        let opened = decode::<Value>(v, &codec, now).unwrap();
        let again = codec
            .encode_chunks(field(v, "cookie_name"), &opened.value, &opened.stamp)
            .unwrap();
        assert_eq!(again, pieces(v), "vector {}", v["name"]);
        checked += 1;
    }
    assert!(checked >= 4);
}

#[test]
fn version_1_cookies_still_read_and_are_re_issued_as_version_2() {
    let mut checked = 0;
    for v in vectors()
        .iter()
        .filter(|v| v["expect"] == "ok" && v["version"] == 1)
    {
        let codec = codec_for(v);
        let now = OffsetDateTime::from_unix_timestamp(v["now"].as_i64().unwrap()).unwrap();
        let opened = codec
            .decode::<Value>(field(v, "cookie_name"), field(v, "value"), now)
            .unwrap();
        assert_eq!(opened.stamp.persistence(), None);
        let again = codec
            .encode(field(v, "cookie_name"), &opened.value, &opened.stamp)
            .unwrap();
        let seen = inspect(&again).unwrap();
        assert_eq!(seen.version, 2);
        assert_eq!(seen.session_id, opened.stamp.id());
        checked += 1;
    }
    assert!(checked >= 4);
}

#[test]
fn inspect_reads_vector_headers_without_a_key() {
    for v in vectors().iter().filter(|v| v["expect"] == "ok") {
        let seen = inspect(pieces(v)[0]).unwrap();
        assert_eq!(seen.chunks, pieces(v).len());
        assert_eq!(seen.compressed, v["compressed"] == true);
        assert_eq!(u64::from(seen.version), v["version"].as_u64().unwrap());
        assert_eq!(seen.persistence, persistence(v));
        assert_eq!(seen.session_id.to_string(), field(v, "session_id"));
        assert_eq!(seen.issued_at, v["issued_at"].as_u64().unwrap());
        assert_eq!(
            seen.key_id,
            Key::from_base64url(field(v, "key")).unwrap().id()
        );
        match seen.mode {
            Mode::Signed if seen.chunks > 1 => assert!(seen.payload.is_none()),
            Mode::Signed if seen.compressed => {
                let mut json = Vec::new();
                let packed = seen.payload.unwrap();
                std::io::Read::read_to_end(
                    &mut flate2::read::DeflateDecoder::new(&packed[..]),
                    &mut json,
                )
                .unwrap();
                assert_eq!(json, field(v, "payload").as_bytes());
            }
            Mode::Signed => assert_eq!(seen.payload.unwrap(), field(v, "payload").as_bytes()),
            _ => assert!(seen.payload.is_none()),
        }
    }
}
