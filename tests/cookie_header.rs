//! Reading the session from real-world `Cookie` headers: several headers, other cookies,
//! quoted values, the same name twice, a token for cookieless clients, garbage.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::*;
use cookie_session::{LoadOutcome, Mode, Sessions};
use proptest::prelude::*;

fn value_for(sessions: &Sessions, user: u64, now: i64) -> String {
    let mut session = sessions.load([], at(now));
    session.insert("user_id", &user).unwrap();
    let header = session
        .finish(at(now))
        .unwrap()
        .set_cookie()
        .unwrap()
        .to_owned();
    header
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned()
}

fn user(sessions: &Sessions, headers: &[&str]) -> (LoadOutcome, Option<u64>) {
    let session = sessions.load(headers.iter().copied(), at(T0));
    (session.outcome(), session.get("user_id").unwrap())
}

#[test]
fn the_session_cookie_is_found_among_others_and_across_headers() {
    let sessions = sessions(Mode::Signed);
    let v = value_for(&sessions, 1, T0);
    let among = format!("theme=dark; sid={v}; _ga=GA1.2.3");
    assert_eq!(user(&sessions, &[&among]), (LoadOutcome::Loaded, Some(1)));
    assert_eq!(
        user(&sessions, &["theme=dark", &format!("sid={v}")]),
        (LoadOutcome::Loaded, Some(1))
    );
    let spaced = format!("  theme=dark ;sid={v}  ;  ");
    assert_eq!(user(&sessions, &[&spaced]), (LoadOutcome::Loaded, Some(1)));
    assert_eq!(
        user(&sessions, &["theme=dark; sidx=1; xsid=2"]),
        (LoadOutcome::New, None)
    );
}

#[test]
fn quoted_values_are_unquoted() {
    let sessions = sessions(Mode::Encrypted);
    let v = value_for(&sessions, 2, T0);
    assert_eq!(
        user(&sessions, &[&format!("sid=\"{v}\"")]),
        (LoadOutcome::Loaded, Some(2))
    );
}

#[test]
fn with_the_same_name_twice_the_first_that_verifies_wins() {
    let sessions = sessions(Mode::Signed);
    let (a, b) = (value_for(&sessions, 1, T0), value_for(&sessions, 2, T0));
    assert_eq!(
        user(&sessions, &[&format!("sid={a}; sid={b}")]),
        (LoadOutcome::Loaded, Some(1))
    );
    assert_eq!(
        user(&sessions, &[&format!("sid={b}"), &format!("sid={a}")]),
        (LoadOutcome::Loaded, Some(2))
    );
    // A forged or tossed cookie in front does not hide the genuine one.
    assert_eq!(
        user(&sessions, &[&format!("sid=forged; sid={b}")]),
        (LoadOutcome::Loaded, Some(2))
    );
    // An expired one in front neither.
    let old = value_for(&sessions, 3, T0 - 7200);
    assert_eq!(
        user(&sessions, &[&format!("sid={old}; sid={a}")]),
        (LoadOutcome::Loaded, Some(1))
    );
    // Only failures: the authentic-but-expired outcome is reported over the forged one.
    let (outcome, _) = user(&sessions, &[&format!("sid=forged; sid={old}")]);
    assert!(matches!(outcome, LoadOutcome::Expired(_)), "{outcome:?}");
}

#[test]
fn at_most_eight_same_named_cookies_are_tried() {
    let sessions = sessions(Mode::Signed);
    let v = value_for(&sessions, 1, T0);
    let mut header = "sid=x; ".repeat(8);
    header.push_str(&format!("sid={v}"));
    assert_eq!(user(&sessions, &[&header]).0, LoadOutcome::Invalid);
    let header = format!("{}sid={v}", "sid=x; ".repeat(7));
    assert_eq!(user(&sessions, &[&header]), (LoadOutcome::Loaded, Some(1)));
}

#[test]
fn a_token_is_used_only_when_the_token_source_is_enabled() {
    let off = sessions(Mode::Encrypted);
    let on = config(Mode::Encrypted)
        .with_token_parameter("sid")
        .build()
        .unwrap();
    let v = value_for(&on, 5, T0);

    let session = off.load_with_token([], Some(&v), at(T0));
    assert_eq!(session.outcome(), LoadOutcome::New, "ignored by default");

    let session = on.load_with_token([], Some(&v), at(T0));
    assert_eq!(session.get::<u64>("user_id").unwrap(), Some(5));

    // The cookie comes first: a token cannot override a valid cookie session.
    let cookie = format!("sid={}", value_for(&on, 6, T0));
    let session = on.load_with_token([cookie.as_str()], Some(&v), at(T0));
    assert_eq!(session.get::<u64>("user_id").unwrap(), Some(6));
}

#[test]
fn garbage_cookie_headers_load_as_new_or_invalid() {
    let sessions = sessions(Mode::Signed);
    for header in [
        "",
        ";;;",
        "=",
        "sid",
        "sid=",
        "sid==",
        "=sid",
        "sid=\"",
        "sid=\u{0}",
        "sid=é; ;=;",
    ] {
        let session = sessions.load([header], at(T0));
        let outcome = session.outcome();
        assert!(
            matches!(outcome, LoadOutcome::New | LoadOutcome::Invalid),
            "{header:?}: {outcome:?}"
        );
        assert!(session.is_empty());
        let _ = session.finish(at(T0)).unwrap();
    }
}

proptest! {
    #[test]
    fn arbitrary_cookie_headers_never_panic(headers in prop::collection::vec(".{0,200}", 0..4)) {
        for mode in MODES {
            let sessions = sessions(mode);
            let mut session = sessions.load(headers.iter().map(String::as_str), at(T0));
            let _ = session.outcome();
            session.insert("k", &1).unwrap();
            let decision = session.finish(at(T0)).unwrap();
            // Whatever came in, the decision is well-formed and parses back.
            let header = decision.set_cookie().unwrap();
            prop_assert!(cookie::Cookie::parse(header).is_ok());
        }
    }

    #[test]
    fn arbitrary_sid_values_never_panic_and_never_load(value in "[ -~]{0,300}") {
        let sessions = sessions(Mode::Encrypted);
        let header = format!("sid={value}");
        let session = sessions.load([header.as_str()], at(T0));
        prop_assert!(session.outcome() != LoadOutcome::Loaded);
        prop_assert!(session.finish(at(T0)).is_ok());
    }
}

/// Security review, item 4a: only SP and HTAB are trimmed, and names compare byte for byte,
/// so a cookie the browser does not treat as `__Host-` is not read as one.
#[test]
fn names_are_trimmed_of_sp_and_htab_only() {
    let sessions = config(Mode::Signed)
        .with_name("__Host-session")
        .build()
        .unwrap();
    let value = value_for(&sessions, 7, T0);
    for lookalike in [
        "\u{a0}__Host-session",
        "__Host-session\u{3000}",
        "\u{feff}__Host-session",
    ] {
        let header = format!("{lookalike}={value}");
        assert_eq!(
            user(&sessions, &[header.as_str()]),
            (LoadOutcome::New, None),
            "{lookalike:?}"
        );
    }
    let header = format!(" \t__Host-session \t= \t{value}\t ");
    assert_eq!(
        user(&sessions, &[header.as_str()]),
        (LoadOutcome::Loaded, Some(7))
    );
}
