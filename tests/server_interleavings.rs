//! Races scripted inside a commit: a store wrapper parks one chosen operation of one
//! request until the test lets it go, while another request runs to the end.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use common::{T0, at, key};
use cookie_session::store::{DynStore, StoreError, block_on};
use cookie_session::{
    CookieAction, KeyRing, LoadOutcome, Mode, SessionConfig, SessionHandle, Sessions,
};

/// The operation to park, where to say it is parked, and what releases it.
type Trap = (&'static str, Sender<()>, Receiver<()>);

/// Parks the next call of one operation (on its caller's thread) until released.
type Parking = common::Hooked<Parked>;

#[derive(Default)]
struct Parked(Mutex<Option<Trap>>);

impl common::Hook for Parked {
    fn before(&self, op: &'static str) -> Result<(), StoreError> {
        let trap = {
            let mut trap = self.0.lock().unwrap();
            match &*trap {
                Some((name, _, _)) if *name == op => trap.take(),
                _ => None,
            }
        };
        if let Some((_, parked, release)) = trap {
            parked.send(()).unwrap();
            release.recv().unwrap();
        }
        Ok(())
    }
}

impl Parked {
    /// The next `op` call tells `parked` and waits for `release`.
    fn park_next(&self, op: &'static str) -> (Receiver<()>, Sender<()>) {
        let (parked_tx, parked_rx) = channel();
        let (release_tx, release_rx) = channel();
        *self.0.lock().unwrap() = Some((op, parked_tx, release_rx));
        (parked_rx, release_tx)
    }
}

fn sessions() -> Sessions {
    SessionConfig::new(Mode::Encrypted, KeyRing::new(key(1)))
        .with_name("sid")
        .build()
        .unwrap()
}

fn handle(
    sessions: &Sessions,
    store: &Arc<Parking>,
    cookie: Option<&str>,
    now: i64,
) -> SessionHandle {
    handle_on(sessions, store.clone(), cookie, now)
}

/// A request served by another instance of the application: its own handle on the same
/// store. (Commits through one handle take turns per record, so the races below, which
/// park one commit while another runs, happen between instances.)
fn elsewhere(
    sessions: &Sessions,
    store: &Arc<Parking>,
    cookie: Option<&str>,
    now: i64,
) -> SessionHandle {
    handle_on(
        sessions,
        Arc::new(common::Instance(Arc::clone(store))),
        cookie,
        now,
    )
}

fn handle_on(
    sessions: &Sessions,
    store: Arc<dyn DynStore>,
    cookie: Option<&str>,
    now: i64,
) -> SessionHandle {
    let h = SessionHandle::server_side(
        sessions.load_server_side(cookie.map(str::as_bytes), at(now)),
        store,
    );
    block_on(h.load()).unwrap();
    h
}

fn set_cookie(d: &cookie_session::Decision) -> String {
    match &d.cookie {
        CookieAction::Set(h) => h.split(';').next().unwrap().to_owned(),
        other => panic!("{other:?}"),
    }
}

fn new_session(sessions: &Sessions, store: &Arc<Parking>) -> String {
    let h = handle(sessions, store, None, T0);
    h.insert("user", "ada").unwrap();
    set_cookie(&block_on(h.commit(at(T0))).unwrap())
}

/// Two requests load the same version; the first to save parks *inside* its commit while
/// the second saves, then resumes: it meets the newer version, reloads and re-applies.
#[test]
fn a_save_parked_inside_its_commit_is_rebased_after_the_other_commits() {
    let (sessions, store) = (sessions(), Arc::new(Parking::default()));
    let cookie = new_session(&sessions, &store);
    let a = handle(&sessions, &store, Some(&cookie), T0 + 1);
    let b = elsewhere(&sessions, &store, Some(&cookie), T0 + 1);
    a.insert("a", &1).unwrap();
    b.insert("b", &2).unwrap();
    let (parked, release) = store.hook.park_next("save");
    std::thread::scope(|scope| {
        let slow = scope.spawn(|| block_on(a.commit(at(T0 + 2))).unwrap());
        parked.recv().unwrap(); // a is inside its save
        block_on(b.commit(at(T0 + 2))).unwrap();
        release.send(()).unwrap();
        assert_eq!(slow.join().unwrap().cookie, CookieAction::Keep);
    });
    let check = handle(&sessions, &store, Some(&cookie), T0 + 3);
    assert_eq!(check.get::<u64>("a").unwrap(), Some(1));
    assert_eq!(check.get::<u64>("b").unwrap(), Some(2));
}

/// A login regenerates the id: parked between its rename and its save, a parallel write
/// on the old id finds it gone; the login then completes, and nothing of the parallel
/// write reaches the new session.
#[test]
fn a_write_between_a_regenerates_rename_and_save_is_dropped() {
    let (sessions, store) = (sessions(), Arc::new(Parking::default()));
    let cookie = new_session(&sessions, &store);
    let login = handle(&sessions, &store, Some(&cookie), T0 + 1);
    let write = elsewhere(&sessions, &store, Some(&cookie), T0 + 1);
    login
        .with(|s| {
            s.regenerate().unwrap();
            s.insert("role", "admin").unwrap();
        })
        .unwrap();
    write.insert("late", &true).unwrap();
    let (parked, release) = store.hook.park_next("save");
    let new_cookie = std::thread::scope(|scope| {
        let slow = scope.spawn(|| block_on(login.commit(at(T0 + 2))).unwrap());
        parked.recv().unwrap(); // renamed, not yet saved
        let d = block_on(write.commit(at(T0 + 2))).unwrap();
        assert_eq!(
            d.cookie,
            CookieAction::Keep,
            "no Set-Cookie to overtake the login's"
        );
        release.send(()).unwrap();
        set_cookie(&slow.join().unwrap())
    });
    let check = handle(&sessions, &store, Some(&new_cookie), T0 + 3);
    assert_eq!(
        check.get::<String>("role").unwrap().as_deref(),
        Some("admin")
    );
    assert_eq!(check.get::<bool>("late").unwrap(), None);
    let old = handle(&sessions, &store, Some(&cookie), T0 + 3);
    assert_eq!(old.outcome().unwrap(), LoadOutcome::Missing);
}

/// A logout lands while a slow request is parked in the reload of its conflict retry: the
/// retry finds nothing and gives up; nothing is recreated.
#[test]
fn a_logout_during_a_conflict_retry_is_final() {
    let (sessions, store) = (sessions(), Arc::new(Parking::default()));
    let cookie = new_session(&sessions, &store);
    let slow = handle(&sessions, &store, Some(&cookie), T0 + 1);
    let other = handle(&sessions, &store, Some(&cookie), T0 + 1);
    slow.insert("x", &1).unwrap();
    other.insert("y", &2).unwrap();
    block_on(other.commit(at(T0 + 2))).unwrap(); // slow's save will now conflict
    let (parked, release) = store.hook.park_next("load"); // ...and park in its reload
    std::thread::scope(|scope| {
        let running = scope.spawn(|| block_on(slow.commit(at(T0 + 3))).unwrap());
        parked.recv().unwrap();
        // Through the same handle: a logout does not wait for the parked save's turn.
        let logout = handle(&sessions, &store, Some(&cookie), T0 + 3);
        logout.delete().unwrap();
        block_on(logout.commit(at(T0 + 3))).unwrap();
        release.send(()).unwrap();
        assert_eq!(running.join().unwrap().cookie, CookieAction::Keep);
    });
    assert!(
        store.inner.is_empty(),
        "the logged-out session was not recreated"
    );
}
