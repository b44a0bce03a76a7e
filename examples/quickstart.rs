//! Encode a session into a cookie, decode it, and watch tampered or misused cookies fail.
//!
//! Run with `cargo run --example quickstart`.

use std::error::Error;
use std::time::Duration;

use cookie_session::time::OffsetDateTime;
use cookie_session::{Codec, Key, KeyRing, Mode, Stamp, inspect};
use serde_json::{Map, Value, json};

type Session = Map<String, Value>;

fn main() -> Result<(), Box<dyn Error>> {
    // In production, load the key from a secret store: Key::from_base64url(&text)?.
    let key = Key::generate()?;
    println!("key id: {}", key.id());
    let ring = KeyRing::new(key);

    let now = OffsetDateTime::now_utc();
    let idle = Duration::from_secs(20 * 60); // TurboGears' visit.timeout
    let lifetime = Duration::from_secs(14 * 86_400);
    let stamp = Stamp::new(now, idle, lifetime)?;
    let data = json!({"user_id": 1234567, "roles": ["user", "editor"], "csrf": "q3Vb9XkL2mWn7Rt5"});

    for mode in [Mode::Signed, Mode::Encrypted] {
        let codec = Codec::new(mode, ring.clone());
        let value = codec.encode("session", &data, &stamp)?;
        println!("\n== {mode} ==");
        println!("Set-Cookie: session={value}");
        println!(
            "({} bytes of the 4096 a browser keeps)",
            "session".len() + value.len()
        );

        let opened = codec.decode::<Session>("session", &value, now)?;
        println!("decoded:    {}", Value::Object(opened.value));
        println!(
            "session id: {}, idle deadline: {}",
            opened.stamp.id(),
            opened.stamp.idle_deadline()
        );

        let seen = inspect(&value)?;
        match &seen.payload {
            Some(p) => println!(
                "without the key anyone reads: {}",
                String::from_utf8_lossy(p)
            ),
            None => println!(
                "without the key anyone reads: the header only (key id {})",
                seen.key_id
            ),
        }

        // Change one character: the cookie no longer authenticates.
        let mut tampered = value.clone().into_bytes();
        let mid = tampered.len() / 2;
        tampered[mid] = if tampered[mid] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered)?;
        match codec.decode::<Session>("session", &tampered, now) {
            Ok(_) => return Err("a tampered cookie was accepted".into()),
            Err(e) => println!("tampered:   rejected ({e})"),
        }
        // The same value presented as another cookie.
        match codec.decode::<Session>("admin", &value, now) {
            Ok(_) => return Err("a cookie was accepted under another name".into()),
            Err(e) => println!("as `admin`: rejected ({e})"),
        }
        // Twenty-one minutes later without a visit: the idle timeout has passed.
        match codec.decode::<Session>("session", &value, now + Duration::from_secs(21 * 60)) {
            Ok(_) => return Err("an idle-expired cookie was accepted".into()),
            Err(e) => println!("21 min later: rejected ({e})"),
        }
    }
    Ok(())
}
