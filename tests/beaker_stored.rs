//! Beaker's server-side session values (features `beaker` and `pickle`): values made by the
//! real Beaker 1.14.1 (`tests/vectors/beaker-stored.json`, or in CI a file just made:
//! `BEAKER_STORED_VECTORS`) for both serializers, plain and encrypted with both AES modes,
//! read with every value and Beaker's internal keys intact; a pickled Python object
//! refused; a changed GCM value refused; and every configuration round-trips here. (The
//! other direction, Beaker reading ours, is `.ci/run`'s `check-stored` step over
//! `examples/beaker_stored_interop.rs`.)
#![allow(clippy::unwrap_used, clippy::panic)]

use cookie_session::beaker::{
    BeakerCipher, BeakerCookie, BeakerSerializer, BeakerStored, StoredError,
};
use cookie_session::pickle::PickleError;
use cookie_session::time::OffsetDateTime;
use serde_json::Value;

fn vectors() -> Value {
    let text = match std::env::var("BEAKER_STORED_VECTORS") {
        Ok(path) => std::fs::read_to_string(path).unwrap(),
        Err(_) => include_str!("vectors/beaker-stored.json").to_owned(),
    };
    serde_json::from_str(&text).unwrap()
}

fn stored_for(file: &Value, v: &Value) -> BeakerStored {
    let serializer = match v["serializer"].as_str().unwrap() {
        "pickle" => BeakerSerializer::Pickle,
        "json" => BeakerSerializer::Json,
        other => panic!("serializer {other}"),
    };
    let cipher = match v["cipher"].as_str() {
        None => return BeakerStored::new(serializer),
        Some("gcm") => BeakerCipher::Gcm,
        Some("ctr") => BeakerCipher::Ctr,
        Some(other) => panic!("cipher {other}"),
    };
    BeakerStored::encrypted(
        serializer,
        file["validate_key"].as_str().unwrap(),
        file["encrypt_key"].as_str().unwrap(),
        cipher,
    )
    .unwrap()
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_767_225_700).unwrap()
}

#[test]
fn values_made_by_real_beaker_decode_to_the_same_session() {
    let file = vectors();
    let vectors = file["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 8);
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let id = v["id"].as_str().unwrap();
        let result =
            stored_for(&file, v).decode(v["value"].as_str().unwrap().as_bytes(), id, now());
        match v["expect"].as_str().unwrap() {
            "ok" => {
                let session = result.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(Value::Object(session.data.clone()), v["data"], "{name}");
                let internal = &v["internal"];
                assert_eq!(
                    session.creation_time,
                    internal["_creation_time"].as_f64().unwrap()
                );
                assert_eq!(
                    session.accessed_time,
                    internal["_accessed_time"].as_f64().unwrap()
                );
                assert_eq!(session.path, internal["_path"].as_str().unwrap());
                assert_eq!(session.domain.as_deref(), internal["_domain"].as_str());
                assert_eq!(session.id, id, "{name}: the id is the namespace's");
            }
            "refused" => assert!(
                matches!(
                    result,
                    Err(StoredError::Pickle(PickleError::Refused { .. }))
                ),
                "{name}: {result:?}"
            ),
            "invalid" => assert!(
                matches!(result, Err(StoredError::Invalid)),
                "{name}: {result:?}"
            ),
            other => panic!("{name}: expect {other}"),
        }
    }
}

#[test]
fn every_configuration_round_trips_and_refuses_what_is_not_its_own() {
    let data = serde_json::json!({"user": "ada", "cart": [1, 2.5, null], "t": true});
    let session = BeakerCookie::new(data.as_object().unwrap().clone(), now());
    let configurations = |serializer| {
        [
            BeakerStored::new(serializer),
            BeakerStored::encrypted(serializer, "v", "e", BeakerCipher::Gcm).unwrap(),
            BeakerStored::encrypted(serializer, "v", "e", BeakerCipher::Ctr).unwrap(),
        ]
    };
    for serializer in [BeakerSerializer::Pickle, BeakerSerializer::Json] {
        for stored in configurations(serializer) {
            let value = stored.encode(&session).unwrap();
            let back = stored.decode(&value, &session.id, now()).unwrap();
            assert_eq!(back, session, "{stored:?}");
            // Two encodings of one session differ (a fresh nonce), but for plain ones.
            let again = stored.encode(&session).unwrap();
            assert_eq!(
                value == again,
                format!("{stored:?}").contains("cipher: None")
            );
            // Truncated or not base64: refused, never a panic.
            for cut in [0, 10, value.len() / 2, value.len() - 1] {
                assert!(stored.decode(&value[..cut], &session.id, now()).is_err());
            }
        }
    }
    // The GCM value under another key does not verify.
    let gcm =
        BeakerStored::encrypted(BeakerSerializer::Pickle, "v", "e", BeakerCipher::Gcm).unwrap();
    let other =
        BeakerStored::encrypted(BeakerSerializer::Pickle, "v", "x", BeakerCipher::Gcm).unwrap();
    let value = gcm.encode(&session).unwrap();
    assert_eq!(
        other.decode(&value, &session.id, now()),
        Err(StoredError::Invalid)
    );
    // Empty or non-ASCII keys are refused, as Beaker cannot use them.
    assert!(BeakerStored::encrypted(BeakerSerializer::Json, "", "e", BeakerCipher::Gcm).is_err());
    assert!(BeakerStored::encrypted(BeakerSerializer::Json, "v", "é", BeakerCipher::Gcm).is_err());
}
