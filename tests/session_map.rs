//! The session as a map: typed access, every mutator, and what counts as an access.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::*;
use cookie_session::{Mode, Session, SessionError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
}

#[test]
fn typed_values_round_trip_across_requests() {
    let sessions = sessions(Mode::Encrypted);
    let mut browser = Browser::default();
    browser.request(&sessions, T0, |s| {
        s.insert(
            "user",
            &User {
                id: 7,
                name: "Ada".into(),
            },
        )
        .unwrap();
        s.insert("visits", &3u32).unwrap();
        s.insert("str", "text").unwrap();
    });
    browser.request(&sessions, T0 + 1, |s| {
        assert_eq!(
            s.get::<User>("user").unwrap().unwrap(),
            User {
                id: 7,
                name: "Ada".into()
            }
        );
        assert_eq!(s.get::<u32>("visits").unwrap(), Some(3));
        assert_eq!(s.get::<String>("str").unwrap().as_deref(), Some("text"));
        assert_eq!(s.get::<u32>("absent").unwrap(), None);
        assert!(s.contains_key("user") && !s.contains_key("absent"));
        assert_eq!(s.len(), 3);
        assert_eq!(s.keys().collect::<Vec<_>>(), ["str", "user", "visits"]);
    });
}

#[test]
fn a_value_of_the_wrong_type_is_a_typed_error_naming_the_key() {
    let sessions = sessions(Mode::Signed);
    let mut session = sessions.load([], at(T0));
    session.insert("visits", "three").unwrap();
    match session.get::<u32>("visits") {
        Err(SessionError::Value { key, source }) => {
            assert_eq!(key, "visits");
            assert!(source.to_string().contains("invalid type"));
        }
        other => panic!("{other:?}"),
    }
    assert!(session.update("visits", |n: &mut u32| *n += 1).is_err());
    assert_eq!(
        session.get::<String>("visits").unwrap().as_deref(),
        Some("three"),
        "unchanged"
    );
}

#[test]
fn values_that_are_not_json_are_refused_and_change_nothing() {
    let sessions = sessions(Mode::Signed);
    let mut browser = Browser::default();
    let d = browser.request(&sessions, T0, |s| {
        let mut bad = BTreeMap::new();
        bad.insert((1, 2), "tuple keys are not JSON object keys");
        assert!(matches!(
            s.insert("bad", &bad),
            Err(SessionError::Value { .. })
        ));
        assert!(s.is_empty());
    });
    assert!(is_keep(&d));
}

#[test]
fn update_reports_a_missing_key() {
    let sessions = sessions(Mode::Signed);
    let mut session = sessions.load([], at(T0));
    assert_eq!(
        session.update("missing", |n: &mut u32| *n += 1).unwrap(),
        cookie_session::Updated::Missing
    );
    assert!(session.is_empty());
    // The entry-style form starts a missing key from its default: a cart's first item.
    for item in ["apple", "pear"] {
        session
            .update_or_default("cart", |cart: &mut Vec<String>| cart.push(item.into()))
            .unwrap();
    }
    assert_eq!(
        session.get::<Vec<String>>("cart").unwrap().unwrap(),
        ["apple", "pear"]
    );
    session
        .update_or_default("visits", |n: &mut u32| *n += 1)
        .unwrap();
    assert_eq!(session.get::<u32>("visits").unwrap(), Some(1));
    // A value of another type is an error, and stays.
    assert!(
        session
            .update_or_default("cart", |n: &mut u32| *n += 1)
            .is_err()
    );
    assert_eq!(
        session.get::<Vec<String>>("cart").unwrap().unwrap().len(),
        2
    );
}

type Mutator = fn(&mut Session);

/// Every mutator, applied to a session holding `small()`, changes what is stored.
#[test]
fn every_mutator_is_detected_as_a_change() {
    let mutators: [(&str, Mutator); 8] = [
        ("insert new key", |s| s.insert("new", &1).unwrap()),
        ("insert other value", |s| s.insert("user_id", &2).unwrap()),
        ("remove", |s| {
            let _ = s.remove("csrf");
        }),
        ("clear", Session::clear),
        ("get_mut nested", |s| {
            s.get_mut("roles").unwrap()[0] = json!("root")
        }),
        ("get_mut replace", |s| {
            *s.get_mut("user_id").unwrap() = Value::Null
        }),
        ("update", |s| {
            assert_eq!(
                s.update("user_id", |n: &mut u64| *n += 1).unwrap(),
                cookie_session::Updated::Changed
            );
        }),
        ("delete", Session::delete),
    ];
    for mode in MODES {
        let sessions = sessions(mode);
        for (name, mutate) in mutators {
            let mut browser = Browser::with_session(&sessions, T0, &small());
            let before = browser.cookie.clone();
            let d = browser.request(&sessions, T0 + 5, mutate);
            assert!(!is_keep(&d), "{mode} {name}: no Set-Cookie");
            assert_ne!(browser.cookie, before, "{mode} {name}");
        }
    }
}

type Reader = fn(&mut Session);

#[test]
fn every_read_counts_as_an_access() {
    let readers: [(&str, Reader); 8] = [
        ("get", |s| {
            let _ = s.get::<u64>("user_id").unwrap();
        }),
        ("contains_key", |s| {
            let _ = s.contains_key("x");
        }),
        ("len", |s| {
            let _ = s.len();
        }),
        ("is_empty", |s| {
            let _ = s.is_empty();
        }),
        ("keys", |s| {
            let _ = s.keys().count();
        }),
        ("outcome", |s| {
            let _ = s.outcome();
        }),
        ("id", |s| {
            let _ = s.id();
        }),
        ("stamp", |s| {
            let _ = s.stamp();
        }),
    ];
    let sessions = sessions(Mode::Signed);
    for (name, read) in readers {
        let mut browser = Browser::with_session(&sessions, T0, &small());
        let d = browser.request(&sessions, T0 + 5, read);
        assert!(is_keep(&d), "{name}");
        assert!(d.vary_cookie, "{name} must count as an access");
        assert!(!d.cache_private, "{name}");
    }
}

#[test]
fn decision_headers_carry_vary_and_cache_advice_only_when_needed() {
    let sessions = sessions(Mode::Signed);
    let mut browser = Browser::default();
    let untouched = browser.request(&sessions, T0, |_| {});
    assert_eq!(untouched.headers().count(), 0);

    let write = browser.request(&sessions, T0, |s| s.insert("a", &1).unwrap());
    let headers: Vec<_> = write.headers().collect();
    assert_eq!(headers.len(), 3);
    assert_eq!(headers[0].0, "set-cookie");
    assert!(headers[0].1.starts_with("sid="));
    assert_eq!(headers[1], ("vary", "Cookie"));
    assert_eq!(headers[2], ("cache-control", "private"));

    let read = browser.request(&sessions, T0 + 1, |s| {
        let _ = s.len();
    });
    assert_eq!(read.headers().collect::<Vec<_>>(), [("vary", "Cookie")]);

    let remove = browser.request(&sessions, T0 + 2, Session::delete);
    let names: Vec<_> = remove.headers().map(|(n, _)| n).collect();
    assert_eq!(names, ["set-cookie", "vary", "cache-control"]);
}

#[test]
fn debug_shows_neither_data_nor_cookie_values() {
    let sessions = sessions(Mode::Signed);
    let browser = Browser::with_session(&sessions, T0, &small());
    let cookie = browser.cookie.clone().unwrap();
    let session = sessions.load([cookie.as_str()], at(T0));
    assert_eq!(session.len(), 3);
    let shown = format!("{session:?} {sessions:?}");
    assert!(!shown.contains("q3Vb9XkL2m"), "{shown}");
    assert!(
        !shown.contains(cookie.split('=').nth(1).unwrap()),
        "{shown}"
    );
}

#[test]
fn a_session_too_large_to_store_is_an_error_at_finish_with_no_header() {
    let sessions = sessions(Mode::Encrypted);
    let mut session = sessions.load([], at(T0));
    session.insert("blob", &"x".repeat(5000)).unwrap();
    match session.finish(at(T0)) {
        Err(SessionError::Encode(cookie_session::EncodeError::TooLarge { size, limit: 4096 })) => {
            assert!(size > 4096)
        }
        other => panic!("{other:?}"),
    }
}

/// Every message in an error's `Display`, `Debug` and `source()` chain.
fn error_texts(error: &(dyn std::error::Error + 'static)) -> String {
    let mut texts = format!("{error} {error:?}");
    let mut source = error.source();
    while let Some(e) = source {
        texts.push_str(&format!(" | {e} {e:?}"));
        source = e.source();
    }
    texts
}

/// Security review, also-fix: serde_json quotes the value it failed on; none of that may
/// reach a log through our errors.
#[test]
fn errors_never_carry_session_values() {
    const SECRET: &str = "hunter2-card-4111111111111111";
    let sessions = sessions(Mode::Signed);
    let mut browser = Browser::default();
    browser.request(&sessions, T0, |s| {
        s.insert("password_hint", SECRET).unwrap();
        s.insert("pin", &9_876_543_210_u64).unwrap();
        s.insert("nested", &serde_json::json!({"deep": [SECRET]}))
            .unwrap();
    });
    browser.request(&sessions, T0 + 1, |s| {
        let error = s.get::<u64>("password_hint").unwrap_err();
        let texts = error_texts(&error);
        assert!(!texts.contains("hunter2"), "{texts}");
        assert!(
            texts.contains("password_hint"),
            "key names are fine: {texts}"
        );
        assert!(
            texts.contains("expected u64"),
            "still says what went wrong: {texts}"
        );

        let error = s.get::<String>("pin").unwrap_err();
        let texts = error_texts(&error);
        assert!(!texts.contains("9876543210"), "{texts}");

        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        enum Role {
            Admin,
        }
        let error = s.get::<Vec<Role>>("nested").unwrap_err();
        assert!(!error_texts(&error).contains("hunter2"));
        let error = s
            .get::<std::collections::HashMap<String, Vec<Role>>>("nested")
            .unwrap_err();
        assert!(
            !error_texts(&error).contains("hunter2"),
            "{}",
            error_texts(&error)
        );
    });

    // A custom `Serialize` that puts the value in its error message.
    struct Leaky;
    impl serde::Serialize for Leaky {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom(format!("cannot store {SECRET}")))
        }
    }
    let mut session = sessions.load([], at(T0));
    let error = session.insert("card", &Leaky).unwrap_err();
    assert!(
        !error_texts(&error).contains("hunter2"),
        "{}",
        error_texts(&error)
    );
    let error = common::codec(Mode::Signed)
        .encode("sid", &Leaky, &common::stamp())
        .unwrap_err();
    assert!(!error_texts(&error).contains("hunter2"));

    // The codec's typed decode reports a payload that does not fit without quoting it.
    let value = common::codec(Mode::Signed)
        .encode("sid", &serde_json::json!({"pin": SECRET}), &common::stamp())
        .unwrap();
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Pin {
        pin: u64,
    }
    let error = common::codec(Mode::Signed)
        .decode::<Pin>("sid", &value, at(T0))
        .unwrap_err();
    let texts = error_texts(&error);
    assert!(
        !texts.contains("hunter2") && texts.contains("expected u64"),
        "{texts}"
    );
}
