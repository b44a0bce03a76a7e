//! A walk through the crate: encode a cookie, see tampering rejected, then follow one
//! visitor over several requests and print what each response sends.
//!
//! Run with `cargo run --example quickstart`.

use std::error::Error;
use std::time::Duration;

use cookie_session::time::OffsetDateTime;
use cookie_session::{
    Codec, CookieAction, Decision, Key, KeyRing, Mode, Session, SessionConfig, Sessions, Stamp,
    TouchPolicy, inspect,
};
use serde_json::{Map, Value, json};

fn main() -> Result<(), Box<dyn Error>> {
    // In production, load the key from a secret store: Key::from_base64url(&text)?.
    let ring = KeyRing::new(Key::generate()?);
    let now = OffsetDateTime::now_utc();
    codec_walkthrough(&ring, now)?;
    requests_walkthrough(ring, now)
}

/// The core: one value in, one cookie value out, and back.
fn codec_walkthrough(ring: &KeyRing, now: OffsetDateTime) -> Result<(), Box<dyn Error>> {
    let idle = Duration::from_secs(20 * 60); // TurboGears' visit.timeout
    let stamp = Stamp::new(now, idle, Duration::from_secs(14 * 86_400))?;
    let data = json!({"user_id": 1234567, "roles": ["user", "editor"]});

    for mode in [Mode::Signed, Mode::Encrypted] {
        let codec = Codec::new(mode, ring.clone());
        let value = codec.encode("session", &data, &stamp)?;
        println!("== {mode} cookie ==");
        println!("session={value}");
        println!(
            "({} of the 4096 bytes a browser keeps)",
            "session".len() + value.len()
        );
        let opened = codec.decode::<Map<String, Value>>("session", &value, now)?;
        println!("decoded: {}", Value::Object(opened.value));
        match inspect(&value)?.payload {
            Some(p) => println!(
                "without the key anyone reads: {}",
                String::from_utf8_lossy(&p)
            ),
            None => println!("without the key anyone reads: only the header"),
        }

        let mut tampered = value.into_bytes();
        let mid = tampered.len() / 2;
        tampered[mid] = if tampered[mid] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered)?;
        match codec.decode::<Map<String, Value>>("session", &tampered, now) {
            Ok(_) => return Err("a tampered cookie was accepted".into()),
            Err(e) => println!("one character changed: rejected ({e})\n"),
        }
    }
    Ok(())
}

/// The request layer: a visitor's requests and the decision each response carries.
fn requests_walkthrough(ring: KeyRing, start: OffsetDateTime) -> Result<(), Box<dyn Error>> {
    let sessions = SessionConfig::new(Mode::Encrypted, ring)
        .with_name("__Host-visit")
        .with_touch_policy(TouchPolicy::SLIDING) // renew after half the 20-minute window
        .build()?;
    let mut browser: Option<String> = None; // the cookie the browser holds, "name=value"
    let minutes = |m: u64| start + Duration::from_secs(m * 60);

    request(
        &sessions,
        &mut browser,
        minutes(0),
        "first visit, reads only",
        |s| {
            println!("   user: {:?}", s.get::<u64>("user_id")?);
            Ok(())
        },
    )?;
    request(
        &sessions,
        &mut browser,
        minutes(1),
        "log in: write and regenerate",
        |s| {
            s.insert("user_id", &42)?;
            s.regenerate()?;
            Ok(())
        },
    )?;
    request(
        &sessions,
        &mut browser,
        minutes(3),
        "read-only page view",
        |s| {
            println!("   user: {:?}", s.get::<u64>("user_id")?);
            Ok(())
        },
    )?;
    request(
        &sessions,
        &mut browser,
        minutes(4),
        "writes an equal value",
        |s| {
            s.insert("user_id", &42)?;
            Ok(())
        },
    )?;
    request(
        &sessions,
        &mut browser,
        minutes(5),
        "adds to the cart (nested change)",
        |s| {
            s.insert("cart", &Vec::<String>::new())?;
            s.update_or_default("cart", |cart: &mut Vec<String>| cart.push("SKU-100".into()))?;
            Ok(())
        },
    )?;
    request(
        &sessions,
        &mut browser,
        minutes(16),
        "reads after 11 idle minutes: renewal",
        |s| {
            println!("   cart: {:?}", s.get::<Vec<String>>("cart")?);
            Ok(())
        },
    )?;
    request(
        &sessions,
        &mut browser,
        minutes(17),
        "a request that never touches the session",
        |_| Ok(()),
    )?;
    request(&sessions, &mut browser, minutes(18), "log out", |s| {
        s.delete();
        Ok(())
    })?;
    Ok(())
}

fn request(
    sessions: &Sessions,
    browser: &mut Option<String>,
    now: OffsetDateTime,
    what: &str,
    handler: impl FnOnce(&mut Session) -> Result<(), Box<dyn Error>>,
) -> Result<(), Box<dyn Error>> {
    println!("-- {what}");
    let mut session = sessions.load(browser.as_deref(), now);
    handler(&mut session)?;
    let decision = session.finish(now)?;
    print_decision(&decision);
    match &decision.cookie {
        CookieAction::Set(header) => {
            *browser = header.split(';').next().map(str::to_owned);
        }
        CookieAction::Remove(_) => *browser = None,
        _ => {}
    }
    Ok(())
}

fn print_decision(decision: &Decision) {
    let headers: Vec<String> = decision
        .headers()
        .map(|(name, value)| {
            // Shorten the cookie value for the screen.
            let shown = match value.split_once(';') {
                Some((pair, attrs)) if pair.len() > 40 => format!("{}...;{attrs}", &pair[..40]),
                _ => value.to_owned(),
            };
            format!("{name}: {shown}")
        })
        .collect();
    if headers.is_empty() {
        println!("   (no session headers)");
    }
    for header in headers {
        println!("   {header}");
    }
}
