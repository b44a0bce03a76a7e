//! Writes Beaker cookies made by this crate as JSON, for `tests/beaker/harness.py check`
//! to decode with the real Beaker (CI does this). Run with
//! `cargo run --features beaker --example beaker_interop > ours.json`.

use cookie_session::beaker::{BeakerCipher, BeakerCookie, BeakerFormat, BeakerMigration};
use cookie_session::time::OffsetDateTime;
use cookie_session::{Key, KeyRing, Mode, SessionConfig};
use serde_json::{Value, json};

/// The harness's keys (a TurboGears quickstart-style uuid4 and an encrypt key).
const VALIDATE_KEY: &str = "8f0c6a52-5b1e-4f43-9a7e-2d3c4b5a6f70";
const ENCRYPT_KEY: &str = "my-encrypt-key";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let now = OffsetDateTime::now_utc();
    let samples = [
        ("simple", json!({"user": "alice"})),
        (
            "unicode-nested",
            json!({"name": "Zoë 🍪 \"q\"", "cart": [{"sku": "A-1", "qty": 2}], "n": -1.5, "none": null}),
        ),
        ("empty", json!({})),
        ("near-limit", json!({"blob": "x".repeat(20_000)})), // compresses well: still fits
    ];
    let formats = [
        (None, BeakerFormat::signed(VALIDATE_KEY)?),
        (
            Some("gcm"),
            BeakerFormat::encrypted(VALIDATE_KEY, ENCRYPT_KEY, BeakerCipher::Gcm)?,
        ),
        (
            Some("ctr"),
            BeakerFormat::encrypted(VALIDATE_KEY, ENCRYPT_KEY, BeakerCipher::Ctr)?,
        ),
    ];
    let mut entries = Vec::new();
    for (cipher, format) in &formats {
        for (name, data) in &samples {
            let data = data.as_object().cloned().unwrap_or_default();
            let value = format.encode("myproject", &BeakerCookie::new(data.clone(), now))?;
            entries.push(json!({
                "name": format!("{}-{name}", cipher.unwrap_or("signed")),
                "cipher": cipher,
                "value": value,
                "data": Value::Object(data),
            }));
        }
    }
    // Through the session layer: a session configured to keep writing Beaker.
    let sessions = SessionConfig::new(Mode::Encrypted, KeyRing::new(Key::generate()?))
        .with_name("myproject")
        .with_beaker(
            BeakerFormat::signed(VALIDATE_KEY)?,
            BeakerMigration::KeepBeaker,
        )
        .build()?;
    let mut session = sessions.load([], now);
    session.insert("user", "frank")?;
    session.insert("tg_lang", "en")?;
    let decision = session.finish(now)?;
    let header = decision
        .set_cookie()
        .ok_or("a new session with data is set")?;
    let pair = header.split(';').next().unwrap_or_default();
    let value = pair.split_once('=').map(|(_, v)| v).unwrap_or_default();
    entries.push(json!({
        "name": "session-keep-beaker",
        "cipher": null,
        "value": value,
        "data": {"user": "frank", "tg_lang": "en"},
    }));
    println!("{}", serde_json::to_string_pretty(&entries)?);
    Ok(())
}
