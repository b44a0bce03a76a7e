//! When a response sends `Set-Cookie`, under each touch policy, asserting absence as
//! carefully as presence.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::*;
use cookie_session::{Decision, LoadOutcome, Mode, Session, Sessions, TouchPolicy};
use serde_json::json;

const IDLE_S: i64 = IDLE.as_secs() as i64;

fn with_policy(policy: TouchPolicy) -> Sessions {
    config(Mode::Encrypted)
        .with_touch_policy(policy)
        .build()
        .unwrap()
}

fn read_user(s: &mut Session) {
    assert_eq!(s.get::<u64>("user_id").unwrap(), Some(1234567));
}

#[test]
fn a_read_only_request_sends_nothing_under_on_change() {
    let sessions = with_policy(TouchPolicy::OnChange);
    let mut browser = Browser::with_session(&sessions, T0, &small());
    let before = browser.cookie.clone();
    let d = browser.request(&sessions, T0 + 60, read_user);
    assert!(is_keep(&d));
    assert!(d.vary_cookie, "the response still depends on the cookie");
    assert!(!d.cache_private);
    assert_eq!(browser.cookie, before);
}

#[test]
fn a_read_only_request_re_issues_under_always() {
    let sessions = with_policy(TouchPolicy::Always);
    let mut browser = Browser::with_session(&sessions, T0, &small());
    let d = browser.request(&sessions, T0 + 60, read_user);
    assert!(is_set(&d));
    // The idle deadline slid: still valid IDLE after the read, not after the first issue.
    let d = browser.request(&sessions, T0 + 60 + IDLE_S - 1, read_user);
    assert!(is_set(&d));
}

#[test]
fn a_write_sends_the_new_cookie_under_every_policy() {
    for policy in [
        TouchPolicy::Always,
        TouchPolicy::OnChange,
        TouchPolicy::SLIDING,
    ] {
        let sessions = with_policy(policy);
        let mut browser = Browser::with_session(&sessions, T0, &small());
        let d = browser.request(&sessions, T0 + 10, |s| s.insert("theme", "dark").unwrap());
        assert!(is_set(&d), "{policy:?}");
        assert!(d.vary_cookie && d.cache_private);
        browser.request(&sessions, T0 + 20, |s| {
            assert_eq!(s.get::<String>("theme").unwrap().as_deref(), Some("dark"));
        });
    }
}

#[test]
fn writing_an_equal_value_is_not_a_change() {
    let sessions = with_policy(TouchPolicy::OnChange);
    let mut browser = Browser::with_session(&sessions, T0, &small());
    let d = browser.request(&sessions, T0 + 10, |s| {
        s.insert("user_id", &1234567).unwrap();
        s.insert("roles", &["user"]).unwrap();
        s.remove("missing");
        let _ = s.get_mut("csrf"); // taken, not changed
    });
    assert!(is_keep(&d));
}

#[test]
fn a_change_then_undo_within_one_request_is_not_a_change() {
    let sessions = with_policy(TouchPolicy::OnChange);
    let mut browser = Browser::with_session(&sessions, T0, &small());
    let d = browser.request(&sessions, T0 + 10, |s| {
        s.insert("tmp", &1).unwrap();
        s.remove("tmp");
    });
    assert!(is_keep(&d));
}

#[test]
fn a_nested_in_place_change_is_a_change() {
    let sessions = with_policy(TouchPolicy::OnChange);
    let mut browser = Browser::with_session(&sessions, T0, &small());
    let d = browser.request(&sessions, T0 + 10, |s| {
        s.get_mut("roles")
            .unwrap()
            .as_array_mut()
            .unwrap()
            .push(json!("admin"));
    });
    assert!(is_set(&d));
    let d = browser.request(&sessions, T0 + 20, |s| {
        assert_eq!(
            s.update("roles", |roles: &mut Vec<String>| roles
                .retain(|r| r != "admin"))
                .unwrap(),
            cookie_session::Updated::Changed
        );
    });
    assert!(is_set(&d));
    browser.request(&sessions, T0 + 30, |s| {
        assert_eq!(s.get::<Vec<String>>("roles").unwrap().unwrap(), ["user"]);
    });
}

#[test]
fn renewal_happens_just_after_the_threshold_and_not_before() {
    let sessions = with_policy(TouchPolicy::SLIDING);
    let half = IDLE_S / 2;
    let mut browser = Browser::with_session(&sessions, T0, &small());
    // At exactly half the idle window: not "more than half" yet.
    assert!(is_keep(&browser.request(&sessions, T0 + half, read_user)));
    let first_absolute = stamp_of(&sessions, &browser, T0 + half).absolute_deadline();

    let d = browser.request(&sessions, T0 + half + 1, read_user);
    assert!(is_set(&d), "one Set-Cookie after the threshold");
    let renewed = stamp_of(&sessions, &browser, T0 + half + 1);
    assert_eq!(
        renewed.idle_deadline(),
        at(T0 + half + 1 + IDLE_S),
        "idle deadline refreshed"
    );
    assert_eq!(
        renewed.absolute_deadline(),
        first_absolute,
        "absolute deadline unchanged"
    );

    // Right after the renewal, reads send nothing again.
    assert!(is_keep(&browser.request(
        &sessions,
        T0 + half + 2,
        read_user
    )));
    assert!(is_keep(&browser.request(
        &sessions,
        T0 + 2 * half + 1,
        read_user
    )));
    // An active reader outlives the original idle deadline.
    assert!(is_set(&browser.request(
        &sessions,
        T0 + 2 * half + 2,
        read_user
    )));
    assert!(is_keep(&browser.request(
        &sessions,
        T0 + IDLE_S + 5,
        read_user
    )));
}

fn stamp_of(sessions: &Sessions, browser: &Browser, now: i64) -> cookie_session::Stamp {
    let headers: Vec<&str> = browser.cookie.iter().map(String::as_str).collect();
    sessions.load(headers, at(now)).stamp().unwrap()
}

#[test]
fn an_expired_session_is_removed_unless_the_request_writes_a_new_one() {
    let sessions = with_policy(TouchPolicy::OnChange);
    let mut browser = Browser::with_session(&sessions, T0, &small());
    let d = browser.request(&sessions, T0 + IDLE_S, |s| {
        assert_eq!(
            s.outcome(),
            LoadOutcome::Expired(cookie_session::Deadline::Idle)
        );
        assert!(s.is_empty());
    });
    assert!(is_remove(&d));
    assert!(d.vary_cookie && d.cache_private);

    let mut browser = Browser::with_session(&sessions, T0, &small());
    let old_id = stamp_of(&sessions, &browser, T0).id();
    let d = browser.request(&sessions, T0 + IDLE_S + 5, |s| {
        s.insert("user_id", &7).unwrap()
    });
    assert!(is_set(&d));
    let new = stamp_of(&sessions, &browser, T0 + IDLE_S + 5);
    assert_ne!(new.id(), old_id, "a new session, not a revived one");
}

#[test]
fn an_invalid_cookie_is_removed_when_the_session_is_accessed() {
    let sessions = with_policy(TouchPolicy::OnChange);
    let mut browser = Browser {
        cookie: Some("sid=AAAAtampered".into()),
    };
    let d = browser.request(&sessions, T0, |s| {
        assert_eq!(s.outcome(), LoadOutcome::Invalid);
        assert!(s.rejection().is_some());
        assert_eq!(s.get::<u64>("user_id").unwrap(), None);
    });
    assert!(is_remove(&d));
    assert_eq!(browser.cookie, None);
}

#[test]
fn a_never_touched_session_sends_nothing_and_does_not_vary() {
    let sessions = with_policy(TouchPolicy::Always);
    let mut browser = Browser::with_session(&sessions, T0, &small());
    let d = browser.request(&sessions, T0 + 10, |_| {});
    assert_eq!(d, untouched());
    // Not even an invalid cookie is looked at (no decoding work at all).
    let mut junk = Browser {
        cookie: Some("sid=junk".into()),
    };
    assert_eq!(junk.request(&sessions, T0, |_| {}), untouched());
}

fn untouched() -> Decision {
    let sessions = sessions(Mode::Signed);
    sessions.load([], at(T0)).finish(at(T0)).unwrap()
}

#[test]
fn a_new_session_that_nobody_wrote_to_sends_nothing() {
    for policy in [
        TouchPolicy::Always,
        TouchPolicy::OnChange,
        TouchPolicy::SLIDING,
    ] {
        let sessions = with_policy(policy);
        let mut browser = Browser::default();
        let d = browser.request(&sessions, T0, |s| {
            assert_eq!(s.outcome(), LoadOutcome::New);
            assert_eq!(s.get::<u64>("user_id").unwrap(), None);
            assert_eq!(s.id(), None);
        });
        assert!(is_keep(&d), "{policy:?}");
        assert!(d.vary_cookie);
        assert!(!d.cache_private);
    }
}

#[test]
fn delete_removes_a_loaded_session_and_does_nothing_for_an_absent_one() {
    let sessions = with_policy(TouchPolicy::OnChange);
    let mut browser = Browser::with_session(&sessions, T0, &small());
    let d = browser.request(&sessions, T0 + 10, Session::delete);
    assert!(is_remove(&d));
    assert_eq!(browser.cookie, None);

    let mut nobody = Browser::default();
    let d = nobody.request(&sessions, T0, Session::delete);
    assert!(is_keep(&d));
}

#[test]
fn clearing_a_session_removes_its_cookie() {
    let sessions = with_policy(TouchPolicy::OnChange);
    let mut browser = Browser::with_session(&sessions, T0, &small());
    assert!(is_remove(&browser.request(
        &sessions,
        T0 + 10,
        Session::clear
    )));
}

#[test]
fn data_written_after_delete_starts_a_new_session() {
    let sessions = with_policy(TouchPolicy::OnChange);
    let mut browser = Browser::with_session(&sessions, T0, &small());
    let old = stamp_of(&sessions, &browser, T0).id();
    let d = browser.request(&sessions, T0 + 10, |s| {
        s.delete();
        s.insert("flash", "logged out").unwrap();
    });
    assert!(is_set(&d));
    browser.request(&sessions, T0 + 20, |s| {
        assert_eq!(s.len(), 1);
        assert_ne!(s.id().unwrap(), old);
    });
}

#[test]
fn regenerate_issues_a_new_identity_with_the_same_data() {
    let sessions = with_policy(TouchPolicy::OnChange);
    let mut browser = Browser::with_session(&sessions, T0, &small());
    let old = stamp_of(&sessions, &browser, T0);
    let d = browser.request(&sessions, T0 + 600, |s| s.regenerate().unwrap());
    assert!(is_set(&d));
    let new = stamp_of(&sessions, &browser, T0 + 600);
    assert_ne!(new.id(), old.id());
    assert_eq!(new.issued_at(), at(T0 + 600));
    assert_eq!(
        new.absolute_deadline(),
        at(T0 + 600 + LIFETIME.as_secs() as i64),
        "restarts"
    );
    browser.request(&sessions, T0 + 601, |s| assert_eq!(s.len(), small().len()));
}

#[test]
fn an_older_key_is_re_issued_under_the_current_key_unless_turned_off() {
    let old_sessions = with_policy(TouchPolicy::OnChange);
    let browser = Browser::with_session(&old_sessions, T0, &small());
    let rotated_ring = cookie_session::KeyRing::new(key(2))
        .with_older(key(1))
        .unwrap();
    for reissue in [true, false] {
        let rotated = cookie_session::SessionConfig::new(Mode::Encrypted, rotated_ring.clone())
            .with_name("sid")
            .with_reissue_older_keys(reissue)
            .build()
            .unwrap();
        let mut b = browser.clone();
        let d = b.request(&rotated, T0 + 10, |s| {
            assert_eq!(s.outcome(), LoadOutcome::LoadedOlderKey);
            read_user(s);
        });
        assert_eq!(is_set(&d), reissue);
        if reissue {
            b.request(&rotated, T0 + 20, |s| {
                assert_eq!(s.outcome(), LoadOutcome::Loaded)
            });
        }
    }
}

#[test]
fn a_revoked_session_loads_as_new_and_its_cookie_is_removed() {
    let revoked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let list = revoked.clone();
    let sessions = config(Mode::Signed)
        .with_revocation(move |id, _issued_at| list.lock().unwrap().contains(&id))
        .build()
        .unwrap();
    let browser = Browser::with_session(&sessions, T0, &small());
    let replay = browser.clone();
    let id = stamp_of(&sessions, &browser, T0).id();

    // Logout: revoke the id, and the replayed pre-logout cookie no longer works.
    revoked.lock().unwrap().push(id);
    let mut attacker = replay;
    let d = attacker.request(&sessions, T0 + 60, |s| {
        assert_eq!(s.outcome(), LoadOutcome::Revoked);
        assert!(s.is_empty());
    });
    assert!(is_remove(&d));
}

#[test]
fn a_request_that_outlives_the_absolute_deadline_removes_the_session() {
    let sessions = with_policy(TouchPolicy::OnChange);
    let browser = Browser::with_session(&sessions, T0, &small());
    let end = T0 + LIFETIME.as_secs() as i64;
    // Keep the session alive until just before its end, then a slow request crosses it.
    let mut late = browser.clone();
    let mut t = T0;
    while t + IDLE_S / 2 < end - 1 {
        t += IDLE_S / 2;
        late.request(&sessions, t, |s| s.insert("t", &t).unwrap());
    }
    let cookie = late.cookie.clone().unwrap();
    let mut session = sessions.load([cookie.as_str()], at(end - 1));
    session.insert("user_id", &99).unwrap();
    let decision = session.finish(at(end + 1)).unwrap();
    assert!(is_remove(&decision), "{decision:?}");
}

/// Security review, item 7: "no limit" durations are capped at the last representable
/// second, never an error on every request.
#[test]
fn duration_max_timeouts_work_and_sessions_near_year_9999_renew() {
    let sessions = config(Mode::Encrypted)
        .with_idle_timeout(std::time::Duration::MAX)
        .with_lifetime(std::time::Duration::MAX)
        .with_touch_policy(TouchPolicy::Always)
        .build()
        .unwrap();
    let mut browser = Browser::with_session(&sessions, T0, &small());
    let last_second = at(253_402_300_799);
    assert_eq!(
        stamp_of(&sessions, &browser, T0).absolute_deadline(),
        last_second
    );
    assert_eq!(
        stamp_of(&sessions, &browser, T0).idle_deadline(),
        last_second
    );
    // Renewed (touch policy Always) and changed, years later.
    let later = T0 + 50 * 365 * 86_400;
    let d = browser.request(&sessions, later, |s| {
        assert_eq!(s.outcome(), LoadOutcome::Loaded);
        s.insert("n", &1).unwrap();
    });
    assert!(is_set(&d));
    let d = browser.request(&sessions, later + 1, read_user);
    assert!(is_set(&d), "renewed under Always");
    assert_eq!(
        stamp_of(&sessions, &browser, later + 1).absolute_deadline(),
        last_second
    );
}

/// Security review, also-fix: a renewal never outlives the absolute deadline.
#[test]
fn a_stamp_cannot_be_renewed_at_or_past_its_absolute_deadline() {
    let stamp = stamp();
    let end = T0 + LIFETIME.as_secs() as i64;
    let renewed = stamp.renewed(at(end - 1), IDLE).unwrap();
    assert_eq!(renewed.idle_deadline(), at(end));
    assert_eq!(renewed.absolute_deadline(), at(end));
    for t in [end, end + 1, end + 86_400] {
        assert!(
            matches!(
                stamp.renewed(at(t), IDLE),
                Err(cookie_session::EncodeError::LifetimeOver)
            ),
            "{t}"
        );
    }
}

/// Security review, also-fix: `rejection()` and `outcome()` always agree.
#[test]
fn rejection_and_outcome_agree_whatever_the_order_of_duplicates() {
    let sessions = sessions(Mode::Signed);
    let good = Browser::with_session(&sessions, T0, &small())
        .cookie
        .unwrap();
    let expired = Browser::with_session(&sessions, T0 - 2 * IDLE_S, &small())
        .cookie
        .unwrap();
    let bad =
        "sid=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let load = |headers: &[&str]| {
        let s = sessions.load(headers.iter().copied(), at(T0));
        let outcome = s.outcome();
        let rejection = s.rejection().map(ToString::to_string);
        (outcome, rejection)
    };
    // A rejected cookie before a good one: the session loads, and nothing is "rejected".
    assert_eq!(load(&[bad, good.as_str()]), (LoadOutcome::Loaded, None));
    assert_eq!(
        load(&[expired.as_str(), good.as_str()]),
        (LoadOutcome::Loaded, None)
    );
    // Invalid then expired: the outcome is Expired, and so is the reason.
    let (outcome, reason) = load(&[bad, expired.as_str()]);
    assert_eq!(
        outcome,
        LoadOutcome::Expired(cookie_session::Deadline::Idle)
    );
    assert!(reason.unwrap().contains("expired"));
    let (outcome, reason) = load(&[expired.as_str(), bad]);
    assert_eq!(
        outcome,
        LoadOutcome::Expired(cookie_session::Deadline::Idle)
    );
    assert!(reason.unwrap().contains("expired"));
    let (outcome, reason) = load(&[bad]);
    assert_eq!(outcome, LoadOutcome::Invalid);
    assert!(reason.is_some());
    assert_eq!(load(&[]), (LoadOutcome::New, None));
}

/// The default policy keeps a visitor who only reads logged in while active (TurboGears'
/// expectation), with a `Set-Cookie` only once per half idle window.
#[test]
fn with_the_defaults_a_reading_visitor_stays_logged_in_with_few_set_cookies() {
    let sessions = config(Mode::Signed).build().unwrap();
    assert_eq!(sessions.config().touch_policy(), TouchPolicy::SLIDING);
    let mut browser = Browser::with_session(&sessions, T0, &small());
    let mut renewals = 0;
    // Reads every 5 minutes for an hour, three times the 20-minute idle timeout.
    for minute in (5..=60).step_by(5) {
        let d = browser.request(&sessions, T0 + minute * 60, |s| {
            assert_eq!(
                s.outcome(),
                LoadOutcome::Loaded,
                "logged out at minute {minute}"
            );
            read_user(s);
        });
        renewals += usize::from(is_set(&d));
    }
    // A renewal when more than 10 minutes passed since the last issue: minutes 15, 30, 45, 60.
    assert_eq!(renewals, 4);
}

/// A login (`regenerate()`) late in the idle window issues a cookie whose idle window
/// starts at the login, not at the old cookie's issue: the visitor who logs in at minute
/// 19 is still in at minute 21 (the lifetime stays the session's).
#[test]
fn regenerate_starts_a_new_idle_window() {
    for mode in MODES {
        let sessions = config(mode).build().unwrap();
        let mut browser = Browser::default();
        browser.request(&sessions, T0, |s| s.insert("cart", &1).unwrap());
        browser.request(&sessions, T0 + 19 * 60, |s| {
            s.regenerate().unwrap();
            s.insert("user", "ada").unwrap();
        });
        browser.request(&sessions, T0 + 21 * 60, |s| {
            assert_eq!(s.outcome(), LoadOutcome::Loaded, "{mode}");
            assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("ada"));
        });
    }
}
