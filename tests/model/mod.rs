//! The session layer's model: random sequences of requests (insert, update, remove, clear,
//! regenerate, delete, read-only, flash, time passing, key rotation) run against a plain
//! map, through a browser cookie jar that follows RFC 6265's storage model (a cookie is
//! keyed by name, domain and path; the `Set-Cookie`s of a response are applied in order;
//! `Max-Age=0` removes; expired cookies are dropped), in every configuration: signed and
//! encrypted, compression on and off, 1 to 8 cookies, a session that began as a Beaker
//! cookie, and server-side on the memory store.
//!
//! Checked at every step: the session the next request sees equals the model; no response
//! sets or removes one cookie twice; a request that changes nothing sends no `Set-Cookie`
//! (unless a renewal or a re-issue under a rotated key is due). Shared by
//! `tests/session_model.rs` (proptest) and the fuzz target `session_model`.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::panic,
    clippy::expect_used,
    clippy::cast_possible_truncation
)]

use std::sync::Arc;

use cookie_session::beaker::{BeakerFormat, BeakerMigration};
use cookie_session::store::{DynStore, MemoryStore, block_on};
use cookie_session::time::OffsetDateTime;
use cookie_session::{
    CookieAction, FLASH_KEY, KeyRing, Mode, SessionConfig, SessionError, SessionHandle, Sessions,
};
use serde_json::{Map, Value, json};

mod fixtures;
mod jar;
use fixtures::{incompressible, key, named};
use jar::Jar;

/// Where sessions live in a run.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Cookie {
        mode: Mode,
        compress: bool,
        cookies: usize,
        /// The visitor arrives with a Beaker cookie (read, then written natively).
        beaker: bool,
    },
    ServerSide {
        mode: Mode,
    },
}

#[derive(Debug, Clone)]
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary))]
pub enum Op {
    /// A string of one of five sizes (3 bytes to several cookies) under one of four keys
    /// (both taken modulo, so that any bytes make an operation).
    Insert(u8, u8, u64),
    /// `update_or_default` of one of two counters.
    Increment(u8),
    Remove(u8),
    Clear,
    /// `regenerate()` (and a change, as at a login).
    Regenerate,
    Delete,
    Read,
    Flash(u8),
    TakeFlashes,
    /// 1 to 60 seconds pass (modulo), then a read-only request.
    Wait(u16),
    /// More than the session's lifetime passes, then a read-only request.
    Expire,
    /// A new current key; the old ones stay in the ring.
    Rotate,
}

const SIZES: [usize; 5] = [3, 300, 1_500, 3_500, 6_000];
const IDLE: i64 = 20 * 60;

/// One run: the configuration, the browser, the clock, the store.
struct Run {
    kind: Kind,
    keys: Vec<u8>,
    sessions: Sessions,
    store: Option<Arc<dyn DynStore>>,
    jar: Jar,
    now: i64,
    /// When the session cookie was last set (a renewal may come after half the idle time).
    last_set: i64,
    /// A re-issue is due without a change: after a key rotation, or for a Beaker cookie.
    reissue: bool,
    model: Map<String, Value>,
}

fn sessions_for(kind: Kind, keys: &[u8]) -> Sessions {
    let mut ring = KeyRing::new(key(*keys.last().unwrap()));
    for older in keys.iter().rev().skip(1) {
        ring = ring.with_older(key(*older)).unwrap();
    }
    let (mode, name) = match kind {
        Kind::Cookie { mode, .. } | Kind::ServerSide { mode } => (mode, "myproject"),
    };
    let mut config = SessionConfig::new(mode, ring).with_name(name);
    if let Kind::Cookie {
        compress,
        cookies,
        beaker,
        ..
    } = kind
    {
        config = config
            .with_max_cookies(cookies)
            .with_max_total_size(cookies * 4096);
        // Signed mode compresses when asked; encrypted mode only when the length leak is
        // accepted by name.
        config = match (compress, mode) {
            (false, _) => config,
            (true, Mode::Signed) => config.with_compression(),
            (true, _) => config.with_compression_leaking_length(),
        };
        if beaker {
            let format = BeakerFormat::signed(beaker_vector()["validate_key"].as_str().unwrap())
                .unwrap()
                .with_timeout(std::time::Duration::from_secs(3600));
            config = config.with_beaker(format, BeakerMigration::UpgradeToNative);
        }
    }
    config.build().unwrap()
}

fn beaker_vector() -> Value {
    serde_json::from_str(include_str!("../vectors/beaker.json")).unwrap()
}

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

impl Run {
    fn new(kind: Kind) -> Self {
        let keys = vec![1];
        let sessions = sessions_for(kind, &keys);
        let store: Option<Arc<dyn DynStore>> = match kind {
            Kind::ServerSide { .. } => Some(Arc::new(MemoryStore::new())),
            Kind::Cookie { .. } => None,
        };
        let mut run = Self {
            kind,
            keys,
            sessions,
            store,
            jar: Jar::default(),
            now: 1_767_225_600,
            last_set: 0,
            reissue: false,
            model: Map::new(),
        };
        if let Kind::Cookie { beaker: true, .. } = kind {
            let vectors = beaker_vector();
            let vector = named(&vectors, "signed-simple");
            run.now = vector["now"].as_f64().unwrap().ceil() as i64;
            run.jar.apply(
                &format!("myproject={}; Path=/", vector["value"].as_str().unwrap()),
                run.now,
            );
            run.model = vector["data"].as_object().unwrap().clone();
            run.reissue = true;
        }
        run
    }

    /// One request: the session it sees is checked against the model, then `op` runs.
    fn step(&mut self, op: &Op) {
        match op {
            Op::Wait(seconds) => self.now += 1 + i64::from(*seconds % 60),
            Op::Expire => {
                self.now += 15 * 86_400;
                self.model.clear();
            }
            // Up to four keys in the ring (the oldest stay valid throughout).
            Op::Rotate if self.keys.len() < 4 => {
                let next = self.keys.last().unwrap() + 1;
                self.keys.push(next);
                self.sessions = sessions_for(self.kind, &self.keys);
                if !self.model.is_empty() {
                    self.reissue = true;
                }
            }
            _ => {}
        }
        let header = self.jar.header(self.now);
        let session = match &self.store {
            None => self.sessions.load([header.as_str()], at(self.now)),
            Some(_) => self
                .sessions
                .load_server_side([header.as_bytes()], at(self.now)),
        };
        let handle = match &self.store {
            None => SessionHandle::new(session),
            Some(store) => SessionHandle::server_side(session, Arc::clone(store)),
        };
        block_on(handle.load()).unwrap();

        // What this request sees is what the model holds.
        let seen: Map<String, Value> = handle
            .keys()
            .unwrap()
            .into_iter()
            .map(|k| {
                let v = handle.get::<Value>(&k).unwrap().unwrap();
                (k, v)
            })
            .collect();
        assert_eq!(
            seen, self.model,
            "{:?} before {op:?} at {}",
            self.kind, self.now
        );

        let before = self.model.clone();
        let mut model = self.model.clone();
        let result = apply(&handle, op, &mut model);
        let decision = result.and_then(|()| block_on(handle.commit(at(self.now))));
        let decision = match decision {
            Ok(decision) => decision,
            // Too large for the cookies this configuration allows: refused, nothing sent,
            // the browser keeps the session as it was.
            Err(SessionError::Encode(_)) => return,
            Err(other) => panic!("{:?} {op:?}: {other}", self.kind),
        };
        self.model = model;

        // No cookie set or removed twice in one response.
        let names: Vec<&str> = decision
            .set_cookies()
            .map(|c| c.split('=').next().unwrap())
            .collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(
            unique.len(),
            names.len(),
            "{:?} {op:?}: {names:?}",
            self.kind
        );

        let sets_session = matches!(decision.cookie, CookieAction::Set(_));
        let unchanged = self.model == before
            && !matches!(op, Op::Regenerate | Op::Delete | Op::Expire | Op::Rotate);
        let renewal_due = matches!(self.kind, Kind::Cookie { .. })
            && (self.now - self.last_set) * 2 > IDLE
            && !self.model.is_empty();
        if unchanged && !renewal_due && !self.reissue {
            assert_eq!(
                decision.set_cookies().count(),
                0,
                "{:?}: {op:?} changed nothing and sends {names:?}",
                self.kind
            );
        }
        if sets_session {
            self.last_set = self.now;
            self.reissue = false;
        }
        if matches!(op, Op::Delete | Op::Clear) || self.model.is_empty() {
            self.reissue = false;
        }
        for set_cookie in decision.set_cookies() {
            self.jar.apply(set_cookie, self.now);
        }
    }
}

/// Runs `op` on the request's session and on the model alike.
fn apply(
    handle: &SessionHandle,
    op: &Op,
    model: &mut Map<String, Value>,
) -> Result<(), SessionError> {
    match op {
        Op::Insert(k, size, seed) => {
            let value = incompressible(SIZES[usize::from(*size) % SIZES.len()], *seed);
            handle.insert(&format!("k{}", k % 4), &value)?;
            model.insert(format!("k{}", k % 4), json!(value));
        }
        Op::Increment(c) => {
            let key = format!("count{}", c % 2);
            handle.update_or_default(&key, |n: &mut u64| *n += 1)?;
            let next = model.get(&key).and_then(Value::as_u64).unwrap_or(0) + 1;
            model.insert(key, json!(next));
        }
        Op::Remove(k) => {
            handle.remove(&format!("k{}", k % 4))?;
            model.remove(&format!("k{}", k % 4));
        }
        Op::Clear => {
            handle.clear()?;
            model.clear();
        }
        Op::Regenerate => {
            handle.regenerate()?;
            handle.insert("user", "ada")?;
            model.insert("user".into(), json!("ada"));
        }
        Op::Delete => {
            handle.delete()?;
            model.clear();
        }
        Op::Flash(n) => {
            handle.flash("info", &format!("message {n}"))?;
            let mut pending = model
                .get(FLASH_KEY)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            pending.push(json!({"level": "info", "message": format!("message {n}")}));
            model.insert(FLASH_KEY.into(), Value::Array(pending));
        }
        Op::TakeFlashes => {
            let taken = handle.take_flashes()?;
            let expected = model
                .remove(FLASH_KEY)
                .and_then(|v| v.as_array().cloned())
                .unwrap_or_default();
            assert_eq!(taken.len(), expected.len());
        }
        Op::Read | Op::Wait(_) | Op::Expire | Op::Rotate => {}
    }
    Ok(())
}

/// Runs `ops` from a new visitor, then one more read.
pub fn run_model(kind: Kind, ops: &[Op]) {
    let mut run = Run::new(kind);
    for op in ops {
        run.step(op);
    }
    run.step(&Op::Read);
}
