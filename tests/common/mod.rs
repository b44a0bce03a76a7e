//! Helpers shared by the integration tests.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::time::Duration;

use cookie_session::{Codec, Key, KeyRing, Mode, Stamp};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

pub const MODES: [Mode; 2] = [Mode::Signed, Mode::Encrypted];
pub const IDLE: Duration = Duration::from_secs(20 * 60);
pub const LIFETIME: Duration = Duration::from_secs(14 * 86_400);
/// 2026-01-01T00:00:00Z: every test runs on this frozen clock.
pub const T0: i64 = 1_767_225_600;

pub type SessionMap = Map<String, Value>;

pub fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

pub fn key(seed: u8) -> Key {
    // Distinct, non-repeating bytes: passes the weak-key checks, reproducible.
    let bytes: Vec<u8> = (0u8..32)
        .map(|i| i.wrapping_mul(37).wrapping_add(seed))
        .collect();
    Key::from_bytes(&bytes).unwrap()
}

pub fn codec(mode: Mode) -> Codec {
    Codec::new(mode, KeyRing::new(key(1)))
}

pub fn stamp() -> Stamp {
    Stamp::new(at(T0), IDLE, LIFETIME).unwrap()
}

pub fn small() -> SessionMap {
    let Value::Object(map) =
        json!({"user_id": 1234567, "csrf": "q3Vb9XkL2mWn7Rt5Yp0Zs8Ac4Df6Gh1J", "roles": ["user"]})
    else {
        unreachable!()
    };
    map
}

/// Decodes as a session map at T0.
pub fn open(
    codec: &Codec,
    name: &str,
    value: &str,
) -> Result<SessionMap, cookie_session::DecodeError> {
    codec
        .decode::<SessionMap>(name, value, at(T0))
        .map(|o| o.value)
}

use cookie_session::{CookieAction, Decision, Session, SessionConfig, Sessions};

pub fn config(mode: Mode) -> SessionConfig {
    SessionConfig::new(mode, KeyRing::new(key(1))).with_name("sid")
}

pub fn sessions(mode: Mode) -> Sessions {
    config(mode).build().unwrap()
}

/// A minimal browser for one cookie: stores what `Set-Cookie` says, sends it back.
#[derive(Debug, Default, Clone)]
pub struct Browser {
    /// `name=value`, as the browser would send it.
    pub cookie: Option<String>,
}

impl Browser {
    /// One request at `now`: load, let `handler` use the session, finish, apply.
    pub fn request(
        &mut self,
        sessions: &Sessions,
        now: i64,
        handler: impl FnOnce(&mut Session),
    ) -> Decision {
        let headers: Vec<&str> = self.cookie.iter().map(String::as_str).collect();
        let mut session = sessions.load(headers, at(now));
        handler(&mut session);
        let decision = session.finish(at(now)).unwrap();
        match &decision.cookie {
            CookieAction::Keep => {}
            CookieAction::Set(header) => {
                let pair = header.split(';').next().unwrap();
                assert!(
                    pair.starts_with(&format!("{}=", sessions.name())),
                    "{header}"
                );
                self.cookie = Some(pair.to_owned());
            }
            CookieAction::Remove(header) => {
                assert!(header.contains("Max-Age=0"), "{header}");
                self.cookie = None;
            }
            other => panic!("unknown action {other:?}"),
        }
        decision
    }

    /// A browser that already holds a session with `data`, issued at `now`.
    pub fn with_session(sessions: &Sessions, now: i64, data: &SessionMap) -> Self {
        let mut browser = Self::default();
        let decision = browser.request(sessions, now, |s| {
            for (k, v) in data {
                s.insert(k, v).unwrap();
            }
        });
        assert!(matches!(decision.cookie, CookieAction::Set(_)));
        browser
    }
}

pub fn is_keep(d: &Decision) -> bool {
    d.cookie == CookieAction::Keep
}

pub fn is_set(d: &Decision) -> bool {
    matches!(d.cookie, CookieAction::Set(_))
}

pub fn is_remove(d: &Decision) -> bool {
    matches!(d.cookie, CookieAction::Remove(_))
}

/// The vector called `name` in a vectors file (`{"vectors": [{"name": ..}, ..]}`).
pub fn named(file: &Value, name: &str) -> Value {
    file["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no vector {name:?}"))
        .clone()
}
