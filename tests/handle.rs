//! `SessionHandle`: no guard to hold, no deadlock for a helper that takes the handle, one
//! closure for consistent changes, typed errors after the response, testable without a
//! server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::*;
use cookie_session::{LoadOutcome, Mode, SessionError, SessionHandle};

fn handle() -> SessionHandle {
    SessionHandle::new(sessions(Mode::Signed).load([], at(T0)))
}

/// A helper a handler calls, which uses the handle itself.
fn bump(session: &SessionHandle) -> Result<u64, SessionError> {
    let n = session.get::<u64>("n")?.unwrap_or(0) + 1;
    session.insert("n", &n)?;
    Ok(n)
}

/// Runs `f` on another thread and fails the test instead of hanging if it deadlocks.
fn completes<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = mpsc::channel();
    std::thread::spawn(move || done.send(f()).unwrap());
    result
        .recv_timeout(Duration::from_secs(10))
        .expect("deadlocked: the call did not complete in 10 s")
}

#[test]
fn a_handler_and_its_helpers_use_the_handle_in_turn_without_deadlock() {
    let session = handle();
    let n = completes(move || {
        session.insert("user", "ada")?;
        let first = bump(&session)?;
        // The handler still uses the session while the helper has it too.
        let user = session.get::<String>("user")?;
        let second = bump(&session.clone())?;
        Ok::<_, SessionError>((first, second, user))
    })
    .unwrap();
    assert_eq!(n, (1, 2, Some("ada".to_owned())));
}

#[test]
fn re_entering_the_handle_inside_with_is_an_error_not_a_deadlock() {
    let session = handle();
    let inner = completes(move || {
        session
            .with(|s| {
                s.insert("a", &1).unwrap();
                // A helper that takes the handle, called with the lock held.
                bump(&session)
            })
            .unwrap()
    });
    assert!(matches!(inner, Err(SessionError::InUse)), "{inner:?}");
    assert!(inner.unwrap_err().to_string().contains("&mut Session"));

    // Only this handle on this thread is in use: another handle works inside the closure,
    // and the handle works again after it.
    let (a, b) = (handle(), handle());
    a.with(|s| {
        s.insert("x", &1).unwrap();
        bump(&b).unwrap();
    })
    .unwrap();
    assert_eq!(bump(&a).unwrap(), 1);
}

#[test]
fn a_panic_inside_with_leaves_the_handle_usable() {
    let session = handle();
    let clone = session.clone();
    let panicked = std::thread::spawn(move || {
        clone
            .with(|s| {
                s.insert("before", &1).unwrap();
                panic!("handler bug");
            })
            .unwrap();
    })
    .join();
    assert!(panicked.is_err());
    assert_eq!(session.get::<u64>("before").unwrap(), Some(1));
    assert_eq!(bump(&session).unwrap(), 1);
}

#[test]
fn every_method_says_finished_after_the_response() {
    let session = handle();
    session.insert("a", &1).unwrap();
    let decision = session.finish(at(T0)).unwrap();
    assert!(decision.set_cookie().is_some());
    assert!(matches!(
        session.get::<u64>("a"),
        Err(SessionError::Finished)
    ));
    assert!(matches!(
        session.insert("a", &2),
        Err(SessionError::Finished)
    ));
    assert!(matches!(session.delete(), Err(SessionError::Finished)));
    assert!(matches!(session.with(|_| ()), Err(SessionError::Finished)));
    assert!(matches!(
        session.finish(at(T0)),
        Err(SessionError::Finished)
    ));
}

/// The test helper: a handler written against the handle, driven with a request's cookie.
#[test]
fn handlers_can_be_unit_tested_with_a_handle_and_a_cookie() {
    let sessions = sessions(Mode::Encrypted);
    let browser = Browser::with_session(&sessions, T0, &small());
    let cookie = browser.cookie.unwrap();
    let session = SessionHandle::new(sessions.load([cookie.as_str()], at(T0 + 1)));
    assert_eq!(session.outcome().unwrap(), LoadOutcome::Loaded);
    assert_eq!(session.get::<u64>("user_id").unwrap(), Some(1_234_567));
    assert_eq!(session.keys().unwrap().len(), small().len());
    let decision = session.finish(at(T0 + 1)).unwrap();
    assert!(is_keep(&decision), "a read sends nothing");
}

#[test]
fn flash_messages_show_once() {
    let sessions = sessions(Mode::Signed);
    let mut browser = Browser::default();
    browser.request(&sessions, T0, |s| {
        s.flash("info", "Saved.").unwrap();
        s.flash("error", "But the title was too long.").unwrap();
    });
    // A page that does not show flashes keeps them.
    let d = browser.request(&sessions, T0 + 1, |s| {
        assert!(s.contains_key(cookie_session::FLASH_KEY));
    });
    assert!(is_keep(&d));
    browser.request(&sessions, T0 + 2, |s| {
        let shown: Vec<_> = s
            .take_flashes()
            .into_iter()
            .map(|f| (f.level, f.message))
            .collect();
        assert_eq!(
            shown,
            [
                ("info".to_owned(), "Saved.".to_owned()),
                ("error".to_owned(), "But the title was too long.".to_owned())
            ]
        );
    });
    let d = browser.request(&sessions, T0 + 3, |s| assert!(s.take_flashes().is_empty()));
    assert!(is_keep(&d), "nothing left to take, nothing changed");
    // A key the application misused is an error, not a lost message.
    let mut session = sessions.load([], at(T0));
    session.insert(cookie_session::FLASH_KEY, "oops").unwrap();
    assert!(session.flash("info", "x").is_err());
    assert_eq!(
        session
            .get::<String>(cookie_session::FLASH_KEY)
            .unwrap()
            .as_deref(),
        Some("oops")
    );
}

/// "Remember me" per session: carried in the cookie, kept by re-issues, forgotten by delete.
#[test]
fn persistence_is_chosen_per_session_and_survives_re_issues() {
    let sessions = config(Mode::Encrypted)
        .with_touch_policy(cookie_session::TouchPolicy::Always)
        .build()
        .unwrap();
    let mut remembered = Browser::default();
    let d = remembered.request(&sessions, T0, |s| {
        s.insert("user", "ada").unwrap();
        s.set_persistence(cookie_session::Persistence::Persistent);
    });
    assert!(d.set_cookie().unwrap().contains("Max-Age=1200"));
    // Re-issued under the touch policy: still persistent, and the stamp says why.
    let d = remembered.request(&sessions, T0 + 60, |s| {
        assert_eq!(
            s.stamp().unwrap().persistence(),
            Some(cookie_session::Persistence::Persistent)
        );
    });
    assert!(d.set_cookie().unwrap().contains("Max-Age=1200"));
    // Switching back is a change that re-issues even without data changes.
    let onchange = config(Mode::Encrypted)
        .with_touch_policy(cookie_session::TouchPolicy::OnChange)
        .build()
        .unwrap();
    let d = remembered.request(&onchange, T0 + 120, |s| {
        s.set_persistence(cookie_session::Persistence::BrowserSession)
    });
    let set = d.set_cookie().unwrap();
    assert!(!set.contains("Max-Age"), "{set}");
    // Setting the same choice again is not a change.
    let d = remembered.request(&onchange, T0 + 180, |s| {
        s.set_persistence(cookie_session::Persistence::BrowserSession)
    });
    assert!(is_keep(&d));
    // Logout forgets it: data written afterwards is an ordinary session.
    let d = remembered.request(&onchange, T0 + 240, |s| {
        s.set_persistence(cookie_session::Persistence::Persistent);
        s.delete();
        s.insert("flash", "bye").unwrap();
    });
    assert!(!d.set_cookie().unwrap().contains("Max-Age"));
}
