//! Arbitrary `Cookie` header text (and token) through loading and `finish`: never panics,
//! and the decision is well-formed: a `Set-Cookie` parses back with the configured name and
//! attributes, and a removal is exactly the configured removal.
#![no_main]

use arbitrary::Arbitrary;
use cookie_session::{CookieAction, Session};
use cookie_session_fuzz::{NAME, SESSIONS, now};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    headers: Vec<String>,
    token: Option<String>,
    encrypted: bool,
    read: bool,
    write: Option<String>,
    delete: bool,
}

fuzz_target!(|input: Input| {
    let sessions = &SESSIONS[usize::from(input.encrypted)];
    let headers = input.headers.iter().map(String::as_str);
    let mut session = sessions.load_with_token(headers, input.token.as_deref(), now());
    if input.read {
        let _ = session.outcome();
        let _ = session.keys().count();
    }
    if let Some(value) = &input.write {
        session.insert("k", value).expect("a string is JSON");
    }
    if input.delete {
        session.delete();
    }
    let Ok(decision) = session.finish(now()) else {
        return; // too large: a typed error, no header
    };
    assert_eq!(
        decision.cache_private,
        decision.cookie != CookieAction::Keep
    );
    if decision.cookie != CookieAction::Keep {
        assert!(decision.vary_cookie);
    }
    match &decision.cookie {
        CookieAction::Keep => {}
        CookieAction::Set(header) => {
            let cookie = cookie::Cookie::parse(header.as_str()).expect("Set-Cookie parses back");
            assert_eq!(cookie.name(), NAME);
            assert_eq!(cookie.domain(), Some("example.com"));
            assert_eq!(cookie.path(), Some("/"));
            assert_eq!(cookie.secure(), Some(true));
            assert_eq!(cookie.http_only(), Some(true));
            assert_eq!(cookie.partitioned(), Some(true));
            // It loads back, with what was written.
            let pair = format!("{NAME}={}", cookie.value());
            let again: Session = sessions.load([pair.as_str()], now());
            assert!(matches!(
                again.outcome(),
                cookie_session::LoadOutcome::Loaded
            ));
            if let (Some(written), false) = (&input.write, input.delete) {
                assert_eq!(
                    again.get::<String>("k").expect("a string").as_ref(),
                    Some(written)
                );
            }
        }
        CookieAction::Remove(header) => assert_eq!(header, &expected_removal(input.encrypted)),
        _ => unreachable!("no other actions exist"),
    }
});

/// The removal a loaded session produces on `delete()`, computed from a genuine cookie.
fn expected_removal(encrypted: bool) -> String {
    let sessions = &SESSIONS[usize::from(encrypted)];
    let mut session = sessions.load([], now());
    session.insert("k", "v").expect("JSON");
    let set = session
        .finish(now())
        .expect("small")
        .set_cookie()
        .expect("set")
        .to_owned();
    let pair = set.split(';').next().expect("name=value").to_owned();
    let mut session = sessions.load([pair.as_str()], now());
    session.delete();
    session
        .finish(now())
        .expect("removal")
        .set_cookie()
        .expect("remove")
        .to_owned()
}
