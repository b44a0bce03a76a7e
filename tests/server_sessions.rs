//! Server-side sessions through the public API: the exact store operations of each kind of
//! request (a counting wrapper around the memory store), keyed store keys, no store I/O for
//! forged cookies, logout that is final, and concurrent requests that lose no update.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};

use common::{T0, at, key};
use cookie_session::store::{DynStore, SessionStore, StoreError, StoreKey, block_on};
use cookie_session::{
    CookieAction, Decision, KeyRing, LoadOutcome, Mode, SessionConfig, SessionHandle, Sessions,
    TouchPolicy,
};

/// A memory store that logs every operation by name.
type Counting = common::Hooked<Log>;

#[derive(Default)]
struct Log(Mutex<Vec<&'static str>>);

impl common::Hook for Log {
    fn before(&self, op: &'static str) -> Result<(), StoreError> {
        self.0.lock().unwrap().push(op);
        Ok(())
    }
}

impl Log {
    fn take(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn config() -> SessionConfig {
    SessionConfig::new(Mode::Encrypted, KeyRing::new(key(1))).with_name("sid")
}

/// A browser and an app instance that share one store.
struct Site {
    sessions: Sessions,
    store: Arc<Counting>,
}

impl Site {
    fn new(sessions: Sessions) -> Self {
        Self {
            sessions,
            store: Arc::new(Counting::default()),
        }
    }

    /// One request as the tower layer runs it: load only if the handler takes the session
    /// (`handler` is `None` for a route that never does), then commit.
    fn request(
        &self,
        cookie: Option<&str>,
        now: i64,
        handler: Option<&dyn Fn(&SessionHandle)>,
    ) -> (Decision, Vec<&'static str>) {
        let session = self
            .sessions
            .load_server_side(cookie.map(str::as_bytes), at(now));
        let store: Arc<dyn DynStore> = self.store.clone();
        let handle = SessionHandle::server_side(session, store);
        if let Some(handler) = handler {
            block_on(handle.load()).unwrap();
            handler(&handle);
        }
        let decision = block_on(handle.commit(at(now))).unwrap();
        (decision, self.store.hook.take())
    }

    /// A request with `cookie` at `now`, its session loaded and not yet committed (to
    /// interleave with other requests).
    fn loaded(&self, cookie: &str, now: i64) -> SessionHandle {
        let session = self.sessions.load_server_side([cookie.as_bytes()], at(now));
        let store: Arc<dyn DynStore> = self.store.clone();
        let handle = SessionHandle::server_side(session, store);
        block_on(handle.load()).unwrap();
        handle
    }
}

/// The `name=value` a browser would send back after this decision.
fn cookie_of(d: &Decision) -> String {
    match &d.cookie {
        CookieAction::Set(h) => h.split(';').next().unwrap().to_owned(),
        other => panic!("expected a Set-Cookie, got {other:?}"),
    }
}

#[test]
fn each_kind_of_request_makes_exactly_the_store_operations_of_the_table() {
    let site = Site::new(
        config()
            .with_touch_policy(TouchPolicy::SLIDING)
            .build()
            .unwrap(),
    );
    // Never touches the session: nothing at all.
    let (d, ops) = site.request(None, T0, None);
    assert!(ops.is_empty() && d.cookie == CookieAction::Keep && !d.vary_cookie);

    // A new session written: create, and a cookie.
    let (d, ops) = site.request(None, T0, Some(&|s| s.insert("user", "ada").unwrap()));
    assert_eq!(ops, ["create"]);
    let cookie = cookie_of(&d);
    assert!(
        cookie.len() < 160,
        "the cookie carries only the id: {cookie}"
    );

    // Reads, renewal not due: one load, no Set-Cookie.
    let (d, ops) = site.request(
        Some(&cookie),
        T0 + 60,
        Some(&|s| {
            assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("ada"));
        }),
    );
    assert_eq!((ops, &d.cookie), (vec!["load"], &CookieAction::Keep));

    // A cookie that comes but is never used: no store I/O.
    let (_, ops) = site.request(Some(&cookie), T0 + 70, None);
    assert!(ops.is_empty());

    // Reads, renewal due (over half the 20-minute idle window): load + touch, no cookie.
    let (d, ops) = site.request(
        Some(&cookie),
        T0 + 11 * 60,
        Some(&|s| {
            s.get::<String>("user").unwrap();
        }),
    );
    assert_eq!(
        (ops, &d.cookie),
        (vec!["load", "touch"], &CookieAction::Keep)
    );
    // The touch moved the record's expiry: 25 minutes after the start (past the first
    // 20-minute expiry) it is still there, and 14 minutes after that touch, renewal is due
    // again.
    let (_, ops) = site.request(
        Some(&cookie),
        T0 + 25 * 60,
        Some(&|s| {
            assert_eq!(s.outcome().unwrap(), LoadOutcome::Loaded);
        }),
    );
    assert_eq!(ops, ["load", "touch"]);
    // Idle for the whole window: gone, however valid the cookie.
    let idle = Site {
        sessions: site.sessions.clone(),
        store: Arc::new(Counting::default()),
    };
    let (d, _) = idle.request(None, T0, Some(&|s| s.insert("user", "bob").unwrap()));
    let (d, ops) = idle.request(
        Some(&cookie_of(&d)),
        T0 + 20 * 60,
        Some(&|s| assert_eq!(s.outcome().unwrap(), LoadOutcome::Missing)),
    );
    assert_eq!(ops, ["load"]);
    assert!(matches!(d.cookie, CookieAction::Remove(_)));

    // Changes data: load + save, no cookie.
    let (d, ops) = site.request(
        Some(&cookie),
        T0 + 26 * 60,
        Some(&|s| s.insert("n", &1).unwrap()),
    );
    assert_eq!(
        (ops, &d.cookie),
        (vec!["load", "save"], &CookieAction::Keep)
    );

    // regenerate(): rename, and a new cookie (with a change: rename + save).
    let (d, ops) = site.request(
        Some(&cookie),
        T0 + 27 * 60,
        Some(&|s| s.regenerate().unwrap()),
    );
    assert_eq!(ops, ["load", "rename"]);
    let new_cookie = cookie_of(&d);
    assert_ne!(new_cookie, cookie);
    let (d, ops) = site.request(
        Some(&new_cookie),
        T0 + 28 * 60,
        Some(&|s| {
            s.regenerate().unwrap();
            s.insert("role", "admin").unwrap();
        }),
    );
    assert_eq!(ops, ["load", "rename", "save"]);
    let newer = cookie_of(&d);
    // The old ids are gone: replaying them finds nothing.
    for old in [&cookie, &new_cookie] {
        let (d, _) = site.request(
            Some(old),
            T0 + 29 * 60,
            Some(&|s| {
                assert_eq!(s.outcome().unwrap(), LoadOutcome::Missing);
                assert!(s.is_empty().unwrap());
            }),
        );
        assert!(matches!(d.cookie, CookieAction::Remove(_)), "{d:?}");
    }

    // delete(): delete, and the cookie removed.
    let (d, ops) = site.request(Some(&newer), T0 + 30 * 60, Some(&|s| s.delete().unwrap()));
    assert_eq!(ops, ["load", "delete"]);
    assert!(matches!(d.cookie, CookieAction::Remove(_)));
    // After logout, replaying the cookie finds no session: what only server-side gives.
    let (d, ops) = site.request(
        Some(&newer),
        T0 + 31 * 60,
        Some(&|s| {
            assert_eq!(s.outcome().unwrap(), LoadOutcome::Missing);
            assert_eq!(s.get::<String>("user").unwrap(), None);
        }),
    );
    assert_eq!(ops, ["load"]);
    assert!(matches!(d.cookie, CookieAction::Remove(_)));
}

#[test]
fn a_cookie_under_an_older_key_moves_its_record_and_is_re_issued() {
    let old = Site::new(config().build().unwrap());
    let (d, _) = old.request(None, T0, Some(&|s| s.insert("user", "ada").unwrap()));
    let cookie = cookie_of(&d);
    let rotated = Site {
        sessions: SessionConfig::new(
            Mode::Encrypted,
            KeyRing::new(key(2)).with_older(key(1)).unwrap(),
        )
        .with_name("sid")
        .build()
        .unwrap(),
        store: old.store.clone(),
    };
    let (d, ops) = rotated.request(
        Some(&cookie),
        T0 + 60,
        Some(&|s| {
            assert_eq!(s.outcome().unwrap(), LoadOutcome::LoadedOlderKey);
            assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("ada"));
        }),
    );
    assert_eq!(ops, ["load", "rename"]);
    let moved = cookie_of(&d);
    let (_, ops) = rotated.request(
        Some(&moved),
        T0 + 120,
        Some(&|s| {
            assert_eq!(s.outcome().unwrap(), LoadOutcome::Loaded);
            assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("ada"));
        }),
    );
    assert_eq!(ops, ["load"]);
}

#[test]
fn forged_and_garbage_cookies_cost_no_store_io() {
    let site = Site::new(config().build().unwrap());
    let (d, _) = site.request(None, T0, Some(&|s| s.insert("user", "ada").unwrap()));
    let cookie = cookie_of(&d);
    let (name, value) = cookie.split_once('=').unwrap();
    let mut forged = value.as_bytes().to_vec();
    let last = forged.len() - 2;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = format!("{name}={}", String::from_utf8(forged).unwrap());
    for bad in [forged.as_str(), "sid=garbage", "sid="] {
        let (d, ops) = site.request(
            Some(bad),
            T0 + 1,
            Some(&|s| {
                assert!(s.is_empty().unwrap());
            }),
        );
        assert!(ops.is_empty(), "{bad}: {ops:?}");
        assert!(matches!(d.cookie, CookieAction::Remove(_)), "{bad}");
    }
}

#[test]
fn store_keys_are_keyed_hashes_never_the_session_id() {
    let site = Site::new(config().build().unwrap());
    let (d, _) = site.request(None, T0, Some(&|s| s.insert("user", "ada").unwrap()));
    let cookie = cookie_of(&d);
    let session = site.sessions.load_server_side([cookie.as_bytes()], at(T0));
    let id = session.id().unwrap();
    let store_key = session.store_key().unwrap();
    assert!(!store_key.to_string().contains(&id.to_string()));
    assert_ne!(&store_key.to_bytes()[..16], &id.to_bytes());
    // Another key ring gives another store key for the same id: a dump of one deployment's
    // store keys says nothing about another's.
    let other = SessionConfig::new(Mode::Encrypted, KeyRing::new(key(9)))
        .with_name("sid")
        .build()
        .unwrap();
    assert_ne!(
        other
            .load_server_side([cookie.as_bytes()], at(T0))
            .store_key(),
        Some(store_key)
    );
}

#[test]
fn concurrent_writes_of_different_keys_both_survive() {
    let site = Site::new(config().build().unwrap());
    let (d, _) = site.request(None, T0, Some(&|s| s.insert("user", "ada").unwrap()));
    let cookie = cookie_of(&d);
    let store: Arc<dyn DynStore> = site.store.clone();
    // Two requests load the same version...
    let a = SessionHandle::server_side(
        site.sessions
            .load_server_side([cookie.as_bytes()], at(T0 + 1)),
        store.clone(),
    );
    let b = SessionHandle::server_side(
        site.sessions
            .load_server_side([cookie.as_bytes()], at(T0 + 1)),
        store.clone(),
    );
    block_on(a.load()).unwrap();
    block_on(b.load()).unwrap();
    a.insert("cart", &["apple"]).unwrap();
    b.insert("theme", "dark").unwrap();
    b.insert("user", "ada (edited by b)").unwrap();
    a.insert("user", "ada (edited by a)").unwrap();
    // ...and save in turn: the second meets a newer version, reloads and re-applies.
    assert_eq!(
        block_on(a.commit(at(T0 + 2))).unwrap().cookie,
        CookieAction::Keep
    );
    site.store.hook.take();
    assert_eq!(
        block_on(b.commit(at(T0 + 2))).unwrap().cookie,
        CookieAction::Keep
    );
    assert_eq!(site.store.hook.take(), ["save", "load", "save"]);
    let (_, _) = site.request(
        Some(&cookie),
        T0 + 3,
        Some(&|s| {
            assert_eq!(s.get::<Vec<String>>("cart").unwrap().unwrap(), ["apple"]);
            assert_eq!(s.get::<String>("theme").unwrap().as_deref(), Some("dark"));
            // The same key changed by both: the last commit wins.
            assert_eq!(
                s.get::<String>("user").unwrap().as_deref(),
                Some("ada (edited by b)")
            );
        }),
    );
}

#[test]
fn a_logout_during_a_slow_request_is_never_undone() {
    let site = Site::new(config().build().unwrap());
    let (d, _) = site.request(None, T0, Some(&|s| s.insert("user", "ada").unwrap()));
    let cookie = cookie_of(&d);
    let store: Arc<dyn DynStore> = site.store.clone();
    let slow = SessionHandle::server_side(
        site.sessions
            .load_server_side([cookie.as_bytes()], at(T0 + 1)),
        store.clone(),
    );
    block_on(slow.load()).unwrap();
    slow.insert("cart", &["apple"]).unwrap();
    // Meanwhile the user logs out in another tab.
    let (d, _) = site.request(Some(&cookie), T0 + 2, Some(&|s| s.delete().unwrap()));
    assert!(matches!(d.cookie, CookieAction::Remove(_)));
    // The slow request's save finds the session gone: nothing is recreated, and it sends no
    // cookie (the logout's response removed it; a stale copy is removed on its next use).
    let d = block_on(slow.commit(at(T0 + 3))).unwrap();
    assert_eq!(d.cookie, CookieAction::Keep, "{d:?}");
    let (d, _) = site.request(
        Some(&cookie),
        T0 + 4,
        Some(&|s| {
            assert_eq!(s.outcome().unwrap(), LoadOutcome::Missing);
        }),
    );
    assert!(matches!(d.cookie, CookieAction::Remove(_)));
    assert!(
        site.store.inner.is_empty(),
        "the deleted session was not resurrected"
    );
    // A slow read-only request that renews (touch) does not bring it back either.
    let touching = Site {
        sessions: config()
            .with_touch_policy(TouchPolicy::Always)
            .build()
            .unwrap(),
        store: site.store.clone(),
    };
    let (d, _) = touching.request(None, T0 + 10, Some(&|s| s.insert("user", "bob").unwrap()));
    let bob = cookie_of(&d);
    let reader = SessionHandle::server_side(
        touching
            .sessions
            .load_server_side([bob.as_bytes()], at(T0 + 11)),
        store,
    );
    block_on(reader.load()).unwrap();
    reader.get::<String>("user").unwrap();
    touching.request(Some(&bob), T0 + 12, Some(&|s| s.delete().unwrap()));
    let d = block_on(reader.commit(at(T0 + 13))).unwrap();
    assert_eq!(d.cookie, CookieAction::Keep, "{d:?}");
    assert!(site.store.inner.is_empty());
}

/// A login (`regenerate()`) while another request of the same visitor is writing: the slow
/// request neither writes into the new session (its data belongs to the pre-login one, and
/// could be an attacker's who planted that id) nor removes the new cookie.
#[test]
fn a_write_racing_a_regenerate_neither_leaks_in_nor_logs_out() {
    let site = Site::new(config().build().unwrap());
    let (d, _) = site.request(None, T0, Some(&|s| s.insert("theme", "dark").unwrap()));
    let before_login = cookie_of(&d);
    let store: Arc<dyn DynStore> = site.store.clone();
    let slow = SessionHandle::server_side(
        site.sessions
            .load_server_side([before_login.as_bytes()], at(T0 + 1)),
        store,
    );
    block_on(slow.load()).unwrap();
    site.store.hook.take();
    slow.insert("planted", "by the old id").unwrap();
    // The login regenerates the id and stores the user.
    let (d, ops) = site.request(
        Some(&before_login),
        T0 + 2,
        Some(&|s| {
            s.regenerate().unwrap();
            s.insert("user", "ada").unwrap();
        }),
    );
    assert_eq!(ops, ["load", "rename", "save"]);
    let after_login = cookie_of(&d);
    // The slow request ends: no write anywhere, no Set-Cookie to overtake the login's.
    let d = block_on(slow.commit(at(T0 + 3))).unwrap();
    assert_eq!(d.cookie, CookieAction::Keep, "{d:?}");
    assert_eq!(
        site.store.hook.take(),
        ["save"],
        "one refused save, nothing else"
    );
    site.request(
        Some(&after_login),
        T0 + 4,
        Some(&|s| {
            assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("ada"));
            assert_eq!(s.get::<String>("theme").unwrap().as_deref(), Some("dark"));
            assert_eq!(s.get::<String>("planted").unwrap(), None);
        }),
    );
}

#[test]
fn a_server_side_session_cannot_be_finished_as_a_cookie() {
    let sessions = config().build().unwrap();
    let mut session = sessions.load_server_side([], at(T0));
    session.insert("secret", "data").unwrap();
    assert!(matches!(
        session.finish(at(T0)),
        Err(cookie_session::SessionError::ServerSide)
    ));
}

#[test]
fn sealed_records_hide_the_data_and_are_bound_to_their_session() {
    let site = Site::new(config().with_sealed_store(true).build().unwrap());
    let (d, _) = site.request(None, T0, Some(&|s| s.insert("card", "4111-1111").unwrap()));
    let ada = cookie_of(&d);
    let (d, _) = site.request(None, T0, Some(&|s| s.insert("card", "5500-0000").unwrap()));
    let bob = cookie_of(&d);
    let key_of = |cookie: &str| {
        site.sessions
            .load_server_side([cookie.as_bytes()], at(T0))
            .store_key()
            .unwrap()
    };
    let record = block_on(site.store.inner.load(&key_of(&ada), at(T0)))
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&record.data);
    assert!(
        !text.contains("4111") && !text.contains("card"),
        "sealed: {text}"
    );
    // Read back, changed, regenerated (re-sealed under the new id), read back again.
    let (d, ops) = site.request(
        Some(&ada),
        T0 + 1,
        Some(&|s| {
            assert_eq!(
                s.get::<String>("card").unwrap().as_deref(),
                Some("4111-1111")
            );
            s.regenerate().unwrap();
        }),
    );
    assert_eq!(ops, ["load", "rename", "save"]);
    let ada = cookie_of(&d);
    site.request(
        Some(&ada),
        T0 + 2,
        Some(&|s| {
            assert_eq!(
                s.get::<String>("card").unwrap().as_deref(),
                Some("4111-1111")
            );
        }),
    );
    // Someone with write access to the store copies bob's record over ada's: it does not
    // open for ada (a new, empty session), and bob's data does not leak to her.
    let bobs = block_on(site.store.inner.load(&key_of(&bob), at(T0 + 3)))
        .unwrap()
        .unwrap();
    let adas = block_on(site.store.inner.load(&key_of(&ada), at(T0 + 3)))
        .unwrap()
        .unwrap();
    block_on(site.store.inner.save(
        &key_of(&ada),
        adas.version,
        &bobs.data,
        adas.expires,
        at(T0 + 3),
    ))
    .unwrap();
    site.request(
        Some(&ada),
        T0 + 4,
        Some(&|s| {
            assert_eq!(s.outcome().unwrap(), LoadOutcome::Missing);
            assert_eq!(s.get::<String>("card").unwrap(), None);
        }),
    );
}

/// Someone who can write the store but has no key plants a plain JSON record over a live
/// sealed one: a sealed store refuses it (no session), without a migration switch.
#[test]
fn a_sealed_store_refuses_plain_records() {
    let site = Site::new(config().with_sealed_store(true).build().unwrap());
    let (d, _) = site.request(None, T0, Some(&|s| s.insert("user", "ada").unwrap()));
    let ada = cookie_of(&d);
    let key = key_of_with(&site.sessions, &ada);
    let live = block_on(site.store.inner.load(&key, at(T0 + 1)))
        .unwrap()
        .unwrap();
    for planted in [
        &br#"{"user":"admin"}"#[..],
        b"{}",
        br#"{ "user": "admin" }"#,
    ] {
        let version = block_on(site.store.inner.load(&key, at(T0 + 1)))
            .unwrap()
            .unwrap()
            .version;
        block_on(
            site.store
                .inner
                .save(&key, version, planted, live.expires, at(T0 + 1)),
        )
        .unwrap();
        site.request(
            Some(&ada),
            T0 + 2,
            Some(&|s| {
                assert_eq!(s.outcome().unwrap(), LoadOutcome::Missing);
                assert_eq!(s.get::<String>("user").unwrap(), None);
            }),
        );
    }
}

/// A store of plain records moves to sealing through the migration switch: plain records
/// read, and each is sealed on the request that reads it (a read-only one too); once the
/// switch is off again, what is left plain is refused.
#[test]
fn the_sealing_migration_reads_plain_records_and_seals_them() {
    let plain = Site::new(config().build().unwrap());
    let (d, _) = plain.request(None, T0, Some(&|s| s.insert("n", &1).unwrap()));
    let reader = cookie_of(&d);
    let (d, _) = plain.request(None, T0, Some(&|s| s.insert("n", &7).unwrap()));
    let idle = cookie_of(&d);
    let record_of = |site: &Site, cookie: &str| {
        block_on(
            site.store
                .inner
                .load(&key_of_with(&site.sessions, cookie), at(T0 + 1)),
        )
        .unwrap()
        .unwrap()
    };
    let migrating = Site {
        sessions: config()
            .with_sealed_store(true)
            .with_sealing_migration(true)
            .build()
            .unwrap(),
        store: plain.store.clone(),
    };
    let (_, ops) = migrating.request(
        Some(&reader),
        T0 + 1,
        Some(&|s| assert_eq!(s.get::<u64>("n").unwrap(), Some(1))),
    );
    assert_eq!(ops, ["load", "save"], "a read seals the plain record");
    let record = record_of(&migrating, &reader);
    assert_ne!(record.data.first(), Some(&b'{'));
    assert!(!String::from_utf8_lossy(&record.data).contains("\"n\""));
    // Sealed already: the next read writes nothing.
    let (_, ops) = migrating.request(
        Some(&reader),
        T0 + 2,
        Some(&|s| assert_eq!(s.get::<u64>("n").unwrap(), Some(1))),
    );
    assert_eq!(ops, ["load"]);

    // The switch is off again: the sealed record reads, the one left plain is refused.
    let sealed = Site {
        sessions: config().with_sealed_store(true).build().unwrap(),
        store: plain.store.clone(),
    };
    sealed.request(
        Some(&reader),
        T0 + 3,
        Some(&|s| assert_eq!(s.get::<u64>("n").unwrap(), Some(1))),
    );
    sealed.request(
        Some(&idle),
        T0 + 3,
        Some(&|s| {
            assert_eq!(s.outcome().unwrap(), LoadOutcome::Missing);
            assert_eq!(s.get::<u64>("n").unwrap(), None);
        }),
    );
    // Sealing turned off reads sealed records still.
    plain.request(
        Some(&reader),
        T0 + 4,
        Some(&|s| assert_eq!(s.get::<u64>("n").unwrap(), Some(1))),
    );
}

fn key_of_with(sessions: &Sessions, cookie: &str) -> StoreKey {
    sessions
        .load_server_side([cookie.as_bytes()], at(T0))
        .store_key()
        .unwrap()
}

/// The opt-in policy: a request fails rather than overwrite a key another request changed
/// meanwhile; changes to different keys still merge.
#[test]
fn with_fail_on_same_key_a_lost_update_of_one_key_is_an_error() {
    let site = Site::new(
        config()
            .with_conflict_policy(cookie_session::ConflictPolicy::FailOnSameKey)
            .build()
            .unwrap(),
    );
    let (d, _) = site.request(None, T0, Some(&|s| s.insert("balance", &100).unwrap()));
    let cookie = cookie_of(&d);
    let store: Arc<dyn DynStore> = site.store.clone();
    let open = |now| {
        let h = SessionHandle::server_side(
            site.sessions.load_server_side([cookie.as_bytes()], at(now)),
            store.clone(),
        );
        block_on(h.load()).unwrap();
        h
    };
    let (a, b, c) = (open(T0 + 1), open(T0 + 1), open(T0 + 1));
    a.insert("balance", &90).unwrap();
    b.insert("balance", &80).unwrap();
    c.insert("theme", "dark").unwrap();
    block_on(a.commit(at(T0 + 2))).unwrap();
    let refused = block_on(b.commit(at(T0 + 2)));
    assert!(
        matches!(
            refused,
            Err(cookie_session::SessionError::Stored(StoreError::Conflict))
        ),
        "{refused:?}"
    );
    block_on(c.commit(at(T0 + 2))).unwrap();
    site.request(
        Some(&cookie),
        T0 + 3,
        Some(&|s| {
            assert_eq!(
                s.get::<u64>("balance").unwrap(),
                Some(90),
                "b's write was refused, not lost silently"
            );
            assert_eq!(s.get::<String>("theme").unwrap().as_deref(), Some("dark"));
        }),
    );
}

/// An app moved from cookie sessions to server-side with the same key and cookie name: an
/// old cookie session decodes, finds no record, and starts empty; nothing of it is stored,
/// on a read-only request or a writing one.
#[test]
fn a_cookie_sessions_data_is_not_adopted_by_a_server_side_session() {
    let cookie_sessions = config().build().unwrap();
    let mut old = cookie_sessions.load([""], at(T0));
    old.insert("user", "admin").unwrap();
    let old_cookie = cookie_of(&old.finish(at(T0)).unwrap());

    let site = Site::new(config().build().unwrap());
    let (d, ops) = site.request(
        Some(&old_cookie),
        T0 + 1,
        Some(&|s| {
            assert_eq!(s.outcome().unwrap(), LoadOutcome::Missing);
            assert_eq!(s.get::<String>("user").unwrap(), None);
            assert!(s.keys().unwrap().is_empty());
        }),
    );
    assert_eq!(ops, ["load"], "a read-only request stores nothing");
    assert!(
        matches!(d.cookie, CookieAction::Remove(_)),
        "{:?}",
        d.cookie
    );
    // A request that writes gets a new, empty session with only its own change.
    let (d, ops) = site.request(
        Some(&old_cookie),
        T0 + 2,
        Some(&|s| {
            assert_eq!(s.get::<String>("user").unwrap(), None);
            s.insert("theme", "dark").unwrap();
        }),
    );
    assert_eq!(ops, ["load", "create"]);
    let (_, _) = site.request(
        Some(&cookie_of(&d)),
        T0 + 3,
        Some(&|s| {
            assert_eq!(s.get::<String>("user").unwrap(), None);
            assert_eq!(s.get::<String>("theme").unwrap().as_deref(), Some("dark"));
        }),
    );
}

/// Two requests of one visitor, loaded before either commits: what each kind of change
/// keeps when the second commit meets the first one's record.
#[test]
fn concurrent_changes_replay_and_plain_values_are_last_writer_wins() {
    let site = Site::new(config().build().unwrap());
    let (d, _) = site.request(
        None,
        T0,
        Some(&|s| {
            s.insert("cart", &vec!["apple"]).unwrap();
            s.insert("count", &1_u64).unwrap();
            s.insert("theme", "light").unwrap();
            s.insert("prefs", &serde_json::json!({"a": 1})).unwrap();
        }),
    );
    let cookie = cookie_of(&d);
    let (first, second) = (site.loaded(&cookie, T0 + 1), site.loaded(&cookie, T0 + 1));
    first
        .update_or_default("cart", |c: &mut Vec<String>| c.push("pear".into()))
        .unwrap();
    first
        .update_or_default("count", |n: &mut u64| *n += 1)
        .unwrap();
    first.insert("theme", "dark").unwrap();
    first
        .update_or_default("prefs", |p: &mut serde_json::Value| p["b"] = 2.into())
        .unwrap();
    second
        .update_or_default("cart", |c: &mut Vec<String>| c.push("plum".into()))
        .unwrap();
    second
        .update_or_default("count", |n: &mut u64| *n += 10)
        .unwrap();
    second.insert("theme", "blue").unwrap();
    second
        .update_or_default("prefs", |p: &mut serde_json::Value| p["c"] = 3.into())
        .unwrap();
    // A plain insert, then a change on top: the inserted value is fixed, so it is written
    // as it is (last writer wins for that key).
    second.insert("note", "x").unwrap();
    assert_eq!(
        second.update("note", |n: &mut String| n.push('y')).unwrap(),
        cookie_session::Updated::Changed
    );
    site.store.hook.take();
    block_on(first.commit(at(T0 + 1))).unwrap();
    block_on(second.commit(at(T0 + 1))).unwrap();
    assert_eq!(
        site.store.hook.take(),
        ["save", "save", "load", "save"],
        "the second save conflicts, reloads and saves once more"
    );
    site.request(
        Some(&cookie),
        T0 + 2,
        Some(&|s| {
            assert_eq!(
                s.get::<Vec<String>>("cart").unwrap().unwrap(),
                ["apple", "pear", "plum"]
            );
            assert_eq!(s.get::<u64>("count").unwrap(), Some(12));
            assert_eq!(s.get::<String>("theme").unwrap().as_deref(), Some("blue"));
            assert_eq!(
                s.get::<serde_json::Value>("prefs").unwrap().unwrap(),
                serde_json::json!({"a": 1, "b": 2, "c": 3})
            );
            assert_eq!(s.get::<String>("note").unwrap().as_deref(), Some("xy"));
        }),
    );
}

/// A key written by a plain `insert` in one request and changed by a replaying update in
/// the other: whichever commits second decides, by its own kind: a replay builds on the
/// first's value, a plain value replaces it.
#[test]
fn a_replay_builds_on_a_concurrent_insert_and_an_insert_replaces_a_concurrent_replay() {
    for replay_second in [true, false] {
        let site = Site::new(config().build().unwrap());
        let (d, _) = site.request(None, T0, Some(&|s| s.insert("list", &vec![0]).unwrap()));
        let cookie = cookie_of(&d);
        let (inserts, replays) = (site.loaded(&cookie, T0 + 1), site.loaded(&cookie, T0 + 1));
        inserts.insert("list", &vec![7]).unwrap();
        replays
            .update_or_default("list", |l: &mut Vec<u32>| l.push(1))
            .unwrap();
        let (first, second) = if replay_second {
            (&inserts, &replays)
        } else {
            (&replays, &inserts)
        };
        block_on(first.commit(at(T0 + 1))).unwrap();
        block_on(second.commit(at(T0 + 1))).unwrap();
        let expected = if replay_second { vec![7, 1] } else { vec![7] };
        site.request(
            Some(&cookie),
            T0 + 2,
            Some(&|s| {
                assert_eq!(s.get::<Vec<u32>>("list").unwrap().unwrap(), expected);
            }),
        );
    }
}

/// Every handle on one store names that store, so that commits through two layers or two
/// frameworks sharing it take turns together (one turn domain per handle made 16 writers
/// through axum and actix-web on one SQLite store fail a request now and then under load).
#[test]
fn handles_on_one_store_share_its_identity() {
    use cookie_session::store::MemoryStore;
    let store = Arc::new(MemoryStore::new());
    let shared: Arc<dyn DynStore> = store.clone();
    let wrapped = Arc::new(shared.clone());
    let boxed: Arc<dyn DynStore> = Arc::new(Arc::clone(&shared));
    assert_eq!(shared.identity(), store.identity());
    assert_eq!(wrapped.identity(), store.identity());
    assert_eq!(boxed.identity_dyn(), store.identity());
    assert_eq!(SessionStore::identity(&*store), store.identity());
    assert_ne!(Arc::new(MemoryStore::new()).identity(), store.identity());
}
