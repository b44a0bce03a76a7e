//! Helpers shared by the integration tests.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::time::Duration;

use cookie_session::{Codec, KeyRing, Mode, Stamp};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

pub const MODES: [Mode; 2] = [Mode::Signed, Mode::Encrypted];
pub const IDLE: Duration = Duration::from_secs(20 * 60);
pub const LIFETIME: Duration = Duration::from_secs(14 * 86_400);
/// 2026-01-01T00:00:00Z: every test runs on this frozen clock.
pub const T0: i64 = 1_767_225_600;

pub type SessionMap = Map<String, Value>;

pub mod faulty;
#[path = "../model/fixtures.rs"]
mod fixtures;
#[allow(unused_imports)]
pub use fixtures::{incompressible, key, named};

pub fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap()
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
use cookie_session::store::{MemoryStore, Record, SessionStore, StoreError, StoreKey, Version};

/// What a test store does before each operation (by name: "load", "save", ...): count it,
/// park it, or fail it.
pub trait Hook: Send + Sync + 'static {
    fn before(&self, op: &'static str) -> Result<(), StoreError>;
}

/// A memory store with a hook in front of every operation: the one wrapper the tests
/// build their counting, parking and failing stores from.
#[derive(Default)]
pub struct Hooked<H> {
    pub inner: MemoryStore,
    pub hook: H,
}

impl<H: Hook> Hooked<H> {
    /// The hook first, then (only if it lets it) the operation: the memory store does its
    /// work when called, not when polled, so `call` must not be called before the hook.
    fn run<T: Send, F: std::future::Future<Output = Result<T, StoreError>>>(
        &self,
        op: &'static str,
        call: impl FnOnce() -> F,
    ) -> std::future::Ready<Result<T, StoreError>> {
        let result = self
            .hook
            .before(op)
            .and_then(|()| cookie_session::store::block_on(call()));
        std::future::ready(result)
    }
}

impl<H: Hook> SessionStore for Hooked<H> {
    fn load(
        &self,
        k: &StoreKey,
        now: OffsetDateTime,
    ) -> impl std::future::Future<Output = Result<Option<Record>, StoreError>> + Send {
        self.run("load", || self.inner.load(k, now))
    }
    fn create(
        &self,
        k: &StoreKey,
        d: &[u8],
        e: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl std::future::Future<Output = Result<Version, StoreError>> + Send {
        self.run("create", || self.inner.create(k, d, e, now))
    }
    fn save(
        &self,
        k: &StoreKey,
        v: Version,
        d: &[u8],
        e: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl std::future::Future<Output = Result<Version, StoreError>> + Send {
        self.run("save", || self.inner.save(k, v, d, e, now))
    }
    fn touch(
        &self,
        k: &StoreKey,
        e: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send {
        self.run("touch", || self.inner.touch(k, e, now))
    }
    fn rename(
        &self,
        a: &StoreKey,
        b: &StoreKey,
        now: OffsetDateTime,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send {
        self.run("rename", || self.inner.rename(a, b, now))
    }
    fn delete(
        &self,
        k: &StoreKey,
        now: OffsetDateTime,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send {
        self.run("delete", || self.inner.delete(k, now))
    }
    fn sweep(
        &self,
        now: OffsetDateTime,
        max: usize,
    ) -> impl std::future::Future<Output = Result<usize, StoreError>> + Send {
        self.run("sweep", || self.inner.sweep(now, max))
    }
}

/// The `name=value` of a response's (first) `Set-Cookie`, as a browser sends it back.
pub fn cookie_pair<B>(response: &axum::http::Response<B>) -> String {
    response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// Another application instance's handle on the same backend: a store object of its own
/// (so its commits do not take turns with this instance's, as in two processes) that
/// passes every operation to `S`.
pub struct Instance<S>(pub std::sync::Arc<S>);

impl<S: SessionStore> SessionStore for Instance<S> {
    fn load(
        &self,
        k: &StoreKey,
        now: OffsetDateTime,
    ) -> impl std::future::Future<Output = Result<Option<Record>, StoreError>> + Send {
        self.0.load(k, now)
    }
    fn create(
        &self,
        k: &StoreKey,
        d: &[u8],
        e: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl std::future::Future<Output = Result<Version, StoreError>> + Send {
        self.0.create(k, d, e, now)
    }
    fn save(
        &self,
        k: &StoreKey,
        v: Version,
        d: &[u8],
        e: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl std::future::Future<Output = Result<Version, StoreError>> + Send {
        self.0.save(k, v, d, e, now)
    }
    fn touch(
        &self,
        k: &StoreKey,
        e: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send {
        self.0.touch(k, e, now)
    }
    fn rename(
        &self,
        from: &StoreKey,
        to: &StoreKey,
        now: OffsetDateTime,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send {
        self.0.rename(from, to, now)
    }
    fn delete(
        &self,
        k: &StoreKey,
        now: OffsetDateTime,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send {
        self.0.delete(k, now)
    }
    fn sweep(
        &self,
        now: OffsetDateTime,
        max: usize,
    ) -> impl std::future::Future<Output = Result<usize, StoreError>> + Send {
        self.0.sweep(now, max)
    }
    fn set_user(
        &self,
        k: &StoreKey,
        user: &str,
        now: OffsetDateTime,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send {
        self.0.set_user(k, user, now)
    }
    fn sessions_of(
        &self,
        user: &str,
        now: OffsetDateTime,
    ) -> impl std::future::Future<Output = Result<Vec<StoreKey>, StoreError>> + Send {
        self.0.sessions_of(user, now)
    }
    fn delete_sessions_of(
        &self,
        user: &str,
        except: Option<&StoreKey>,
        now: OffsetDateTime,
    ) -> impl std::future::Future<Output = Result<Vec<StoreKey>, StoreError>> + Send {
        self.0.delete_sessions_of(user, except, now)
    }
}
