//! Visits and users: the observer sees each committed store operation, sessions linked to
//! a user are listed and ended together ("log out everywhere"), and what cannot work says
//! so.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};

use common::{Hooked, T0, at, key};
use cookie_session::events::{DeleteReason, SessionEvent};
use cookie_session::store::{
    DynStore, MemoryStore, SessionStore, StoreError, StoreKey, Sweeper, block_on,
};
use cookie_session::{
    CookieAction, KeyRing, LoadOutcome, Mode, SessionConfig, SessionError, SessionHandle, Sessions,
};

type Events = Arc<Mutex<Vec<SessionEvent>>>;

fn sessions(events: &Events) -> Sessions {
    let events = events.clone();
    SessionConfig::new(Mode::Signed, KeyRing::new(key(1)))
        .with_name("sid")
        .with_observer(move |e: &SessionEvent| events.lock().unwrap().push(e.clone()))
        .build()
        .unwrap()
}

/// One request: `f` runs on the loaded handle; returns the cookie a `Set-Cookie` carried
/// (or the one sent), and the handle's store key before the commit.
fn request(
    sessions: &Sessions,
    store: &Arc<dyn DynStore>,
    cookie: Option<&str>,
    t: i64,
    f: impl FnOnce(&SessionHandle),
) -> Option<String> {
    let handle = SessionHandle::server_side(
        sessions.load_server_side(cookie.map(str::as_bytes), at(t)),
        store.clone(),
    );
    block_on(handle.load()).unwrap();
    f(&handle);
    match block_on(handle.commit(at(t))).unwrap().cookie {
        CookieAction::Set(header) => Some(header.split(';').next().unwrap().to_owned()),
        CookieAction::Remove(_) => None,
        CookieAction::Keep => cookie.map(str::to_owned),
        other => panic!("{other:?}"),
    }
}

fn login(handle: &SessionHandle) {
    handle
        .with(|s| -> Result<(), SessionError> {
            s.regenerate()?;
            s.insert("user", "ada")?;
            s.attach_user("ada")
        })
        .unwrap()
        .unwrap();
}

fn store_key(sessions: &Sessions, cookie: &str) -> StoreKey {
    sessions
        .load_server_side([cookie.as_bytes()], at(T0))
        .store_key()
        .unwrap()
}

#[test]
fn logins_on_two_devices_are_listed_and_logged_out_everywhere_but_here() {
    let events: Events = Arc::default();
    let sessions = sessions(&events);
    let memory = Arc::new(MemoryStore::new());
    let store: Arc<dyn DynStore> = memory.clone();

    let laptop = request(&sessions, &store, None, T0, login).unwrap();
    let phone = request(&sessions, &store, None, T0 + 1, login).unwrap();
    let (k_laptop, k_phone) = (store_key(&sessions, &laptop), store_key(&sessions, &phone));
    assert_eq!(
        *events.lock().unwrap(),
        [
            SessionEvent::Created { key: k_laptop },
            SessionEvent::UserAttached {
                key: k_laptop,
                user: "ada".into()
            },
            SessionEvent::Created { key: k_phone },
            SessionEvent::UserAttached {
                key: k_phone,
                user: "ada".into()
            },
        ]
    );
    let mut listed = block_on(store.sessions_of("ada", at(T0 + 2))).unwrap();
    listed.sort();
    let mut expected = vec![k_laptop, k_phone];
    expected.sort();
    assert_eq!(listed, expected);

    // The laptop logs in again (a new id): the index follows.
    events.lock().unwrap().clear();
    let laptop = request(&sessions, &store, Some(&laptop), T0 + 3, |h| {
        h.with(|s| s.regenerate()).unwrap().unwrap();
    })
    .unwrap();
    let k_laptop2 = store_key(&sessions, &laptop);
    assert_eq!(
        *events.lock().unwrap(),
        [SessionEvent::Regenerated {
            old: k_laptop,
            new: k_laptop2
        }]
    );

    // From the phone: log out everywhere else.
    events.lock().unwrap().clear();
    let phone = request(&sessions, &store, Some(&phone), T0 + 4, |h| {
        assert_eq!(block_on(h.log_out_user("ada", true)).unwrap(), 1);
    })
    .unwrap();
    assert_eq!(
        *events.lock().unwrap(),
        [SessionEvent::Deleted {
            key: k_laptop2,
            reason: DeleteReason::LogoutEverywhere
        }]
    );
    // The laptop's cookie finds nothing; the phone is still logged in.
    let laptop_now = sessions.load_server_side([laptop.as_bytes()], at(T0 + 5));
    let handle = SessionHandle::server_side(laptop_now, store.clone());
    block_on(handle.load()).unwrap();
    assert_eq!(handle.with(|s| s.outcome()).unwrap(), LoadOutcome::Missing);
    request(&sessions, &store, Some(&phone), T0 + 5, |h| {
        assert_eq!(h.get::<String>("user").unwrap().as_deref(), Some("ada"));
    });

    // A plain logout on the phone.
    events.lock().unwrap().clear();
    request(&sessions, &store, Some(&phone), T0 + 6, |h| {
        h.delete().unwrap()
    });
    assert_eq!(
        *events.lock().unwrap(),
        [SessionEvent::Deleted {
            key: k_phone,
            reason: DeleteReason::Logout
        }]
    );
    assert!(
        block_on(store.sessions_of("ada", at(T0 + 7)))
            .unwrap()
            .is_empty()
    );
    assert!(memory.is_empty());
}

#[test]
fn the_sweeper_reports_expiries_and_the_index_forgets_them() {
    let events: Events = Arc::default();
    let sessions = sessions(&events);
    let memory = Arc::new(MemoryStore::new());
    let store: Arc<dyn DynStore> = memory.clone();
    for t in 0..3 {
        request(&sessions, &store, None, T0 + t, login);
    }
    let sweep_events = events.clone();
    let sweeper = Sweeper::new()
        .with_batch_size(2)
        .with_observer(move |e: &SessionEvent| sweep_events.lock().unwrap().push(e.clone()));
    events.lock().unwrap().clear();
    // Twenty minutes idle (the default) and then some.
    let removed = block_on(sweeper.sweep_once(&*memory, at(T0 + 3600))).unwrap();
    assert_eq!(removed, 3);
    assert_eq!(
        *events.lock().unwrap(),
        [
            SessionEvent::Expired { count: 2 },
            SessionEvent::Expired { count: 1 }
        ]
    );
    assert!(
        block_on(store.sessions_of("ada", at(T0)))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn users_need_server_side_sessions_and_a_store_with_an_index() {
    let events: Events = Arc::default();
    let sessions = sessions(&events);
    // A cookie session.
    let mut cookie_session = sessions.load([], at(T0));
    assert!(matches!(
        cookie_session.attach_user("ada"),
        Err(SessionError::NotServerSide)
    ));
    // Bad user keys.
    let mut server_side = sessions.load_server_side([], at(T0));
    for bad in [String::new(), "x".repeat(257)] {
        assert!(matches!(
            server_side.attach_user(&bad),
            Err(SessionError::Stored(StoreError::InvalidUser))
        ));
    }
    // A store without a user index: the data is saved, the link is refused, clearly.
    // (`Hooked` forwards only the basic operations: it has no user index.)
    struct Pass;
    impl common::Hook for Pass {
        fn before(&self, _: &'static str) -> Result<(), StoreError> {
            Ok(())
        }
    }
    let store: Arc<dyn DynStore> = Arc::new(Hooked {
        inner: MemoryStore::new(),
        hook: Pass,
    });
    let handle = SessionHandle::server_side(sessions.load_server_side([], at(T0)), store.clone());
    block_on(handle.load()).unwrap();
    login(&handle);
    let error = block_on(handle.commit(at(T0))).unwrap_err();
    assert!(
        matches!(error, SessionError::Stored(StoreError::Unsupported)),
        "{error:?}"
    );
    assert!(error.to_string().contains("store failed"));
    let message = StoreError::Unsupported.to_string();
    assert!(
        message.contains("no user index") && message.contains("with_revocation"),
        "{message}"
    );
}

#[test]
fn cookie_sessions_log_out_everywhere_with_a_per_user_generation() {
    use std::sync::atomic::{AtomicU64, Ordering};
    // The application's database: each user's current generation.
    let generation = Arc::new(AtomicU64::new(1));
    let current = generation.clone();
    let sessions = SessionConfig::new(Mode::Encrypted, KeyRing::new(key(2)))
        .with_name("sid")
        .with_revocation_check(move |session: &cookie_session::Revocable<'_>| {
            match (
                session.get::<String>("user"),
                session.get::<u64>("generation"),
            ) {
                (Some(_user), Some(g)) => g < current.load(Ordering::SeqCst),
                _ => false,
            }
        })
        .build()
        .unwrap();
    let log_in = |t: i64| {
        let mut session = sessions.load([], at(t));
        session.regenerate().unwrap();
        session.insert("user", "ada").unwrap();
        session
            .insert("generation", &generation.load(Ordering::SeqCst))
            .unwrap();
        let CookieAction::Set(header) = session.finish(at(t)).unwrap().cookie else {
            panic!("a login sets a cookie")
        };
        header.split(';').next().unwrap().to_owned()
    };
    let (laptop, phone) = (log_in(T0), log_in(T0 + 1));
    let outcome = |cookie: &str| sessions.load([cookie], at(T0 + 2)).outcome();
    assert_eq!(outcome(&laptop), LoadOutcome::Loaded);
    // "Log out everywhere": one increment in the database.
    generation.fetch_add(1, Ordering::SeqCst);
    assert_eq!(outcome(&laptop), LoadOutcome::Revoked);
    assert_eq!(outcome(&phone), LoadOutcome::Revoked);
    // A login after it is valid; an anonymous session is never revoked.
    assert_eq!(outcome(&log_in(T0 + 3)), LoadOutcome::Loaded);
    let mut anonymous = sessions.load([], at(T0));
    anonymous.insert("cart", &3).unwrap();
    let CookieAction::Set(header) = anonymous.finish(at(T0)).unwrap().cookie else {
        panic!()
    };
    assert_eq!(
        outcome(header.split(';').next().unwrap()),
        LoadOutcome::Loaded
    );
}
