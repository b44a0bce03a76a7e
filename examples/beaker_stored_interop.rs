//! Prints Beaker server-side session values made by this crate, for every serializer and
//! cipher, as JSON for `tests/beaker/harness.py check-stored`, which has the real Beaker
//! read each (`.ci/run` runs both).

use cookie_session::beaker::{BeakerCipher, BeakerCookie, BeakerSerializer, BeakerStored};
use cookie_session::time::OffsetDateTime;
use serde_json::json;

/// The keys `tests/beaker/harness.py` configures.
const VALIDATE_KEY: &str = "8f0c6a52-5b1e-4f43-9a7e-2d3c4b5a6f70";
const ENCRYPT_KEY: &str = "my-encrypt-key";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let now = OffsetDateTime::now_utc();
    let data = json!({"user": "alice", "name": "Zoë 🍪 \"q\"", "cart": [{"sku": "A-1", "qty": 2}],
        "n": 1.5, "big": 9_007_199_254_740_993_u64, "ok": true, "none": null});
    let session = BeakerCookie::new(data.as_object().cloned().unwrap_or_default(), now);
    let mut out = Vec::new();
    for (serializer, name) in [
        (BeakerSerializer::Pickle, "pickle"),
        (BeakerSerializer::Json, "json"),
    ] {
        for cipher in [
            None,
            Some((BeakerCipher::Gcm, "gcm")),
            Some((BeakerCipher::Ctr, "ctr")),
        ] {
            let stored = match cipher {
                None => BeakerStored::new(serializer),
                Some((cipher, _)) => {
                    BeakerStored::encrypted(serializer, VALIDATE_KEY, ENCRYPT_KEY, cipher)?
                }
            };
            let value = String::from_utf8(stored.encode(&session)?)?;
            let label = cipher.map_or("plain", |(_, label)| label);
            out.push(json!({
                "name": format!("ours-{name}-{label}"), "serializer": name,
                "cipher": cipher.map(|(_, label)| label), "value": value, "data": data,
            }));
        }
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
