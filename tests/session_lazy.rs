//! The lazily parsed session map: values stay as the cookie's JSON text until read, are
//! written back byte for byte when unchanged, and change detection still compares values.
//! Cookies here are made with the session's own codec from hand-written JSON text, as any
//! holder of the key could.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::*;
use cookie_session::{CookieAction, DecodeError, LoadOutcome, Mode, SessionError, Sessions};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

/// A browser holding a cookie whose payload is exactly `json`.
fn holding(sessions: &Sessions, json: &str) -> Browser {
    let raw = RawValue::from_string(json.to_owned()).unwrap();
    let value = sessions
        .codec()
        .encode(sessions.name(), &raw, &stamp())
        .unwrap();
    Browser {
        cookie: Some(format!("{}={value}", sessions.name())),
    }
}

/// The payload text of the browser's cookie.
fn payload(sessions: &Sessions, browser: &Browser) -> String {
    let cookie = browser.cookie.as_deref().unwrap();
    let value = cookie.split_once('=').unwrap().1;
    let opened = sessions
        .codec()
        .decode::<Box<RawValue>>(sessions.name(), value, at(T0 + 1))
        .unwrap();
    opened.value.get().to_owned()
}

#[test]
fn unchanged_values_are_written_back_byte_for_byte() {
    for mode in MODES {
        let sessions = sessions(mode);
        // Text a serializer would not produce: spacing, an exponent, a trailing zero.
        let mut browser = holding(&sessions, r#"{"b":[1, 2,  {"x" : 1.50}],"a":2.5e3}"#);
        browser.request(&sessions, T0 + 1, |s| {
            assert_eq!(s.get::<f64>("a").unwrap(), Some(2500.0));
            s.insert("c", &true).unwrap();
        });
        // Sorted keys, the untouched values exactly as they came.
        assert_eq!(
            payload(&sessions, &browser),
            r#"{"a":2.5e3,"b":[1, 2,  {"x" : 1.50}],"c":true}"#
        );
    }
}

#[test]
fn a_repeated_key_keeps_its_last_value_as_a_full_map_would() {
    let sessions = sessions(Mode::Signed);
    let json = r#"{"k":1,"z":0,"k":2}"#;
    let full = serde_json::from_str::<SessionMap>(json).unwrap();
    let mut browser = holding(&sessions, json);
    browser.request(&sessions, T0 + 1, |s| {
        assert_eq!(s.get::<Value>("k").unwrap().as_ref(), full.get("k"));
        assert_eq!(s.get::<u32>("k").unwrap(), Some(2));
        assert_eq!(s.len(), 2);
        s.insert("n", &1).unwrap();
    });
    assert_eq!(payload(&sessions, &browser), r#"{"k":2,"n":1,"z":0}"#);
}

#[test]
fn a_key_repeated_in_sorted_text_is_still_one_key() {
    // Sorted text is read without a sort; a repeat in it must still collapse to the last.
    let sessions = sessions(Mode::Signed);
    let mut browser = holding(&sessions, r#"{"a":0,"k":1,"k":2,"z":3}"#);
    browser.request(&sessions, T0 + 1, |s| {
        assert_eq!(s.get::<u32>("k").unwrap(), Some(2));
        assert_eq!(s.keys().collect::<Vec<_>>(), ["a", "k", "z"]);
        s.insert("n", &1).unwrap();
    });
    assert_eq!(payload(&sessions, &browser), r#"{"a":0,"k":2,"n":1,"z":3}"#);
}

#[test]
fn keys_with_escapes_are_found_by_their_text() {
    let sessions = sessions(Mode::Encrypted);
    let mut browser = holding(&sessions, r#"{"caf\u00e9":1,"a\"b":2,"plain":3}"#);
    browser.request(&sessions, T0 + 1, |s| {
        assert_eq!(s.get::<u32>("café").unwrap(), Some(1));
        assert_eq!(s.get::<u32>("a\"b").unwrap(), Some(2));
        assert_eq!(s.keys().collect::<Vec<_>>(), ["a\"b", "café", "plain"]);
        assert_eq!(s.remove("café"), Some(json!(1)));
    });
    assert_eq!(payload(&sessions, &browser), r#"{"a\"b":2,"plain":3}"#);
}

#[test]
fn a_payload_that_is_not_an_object_is_rejected_when_loaded() {
    for json in ["[1,2]", "42", r#""text""#, "null"] {
        let sessions = sessions(Mode::Signed);
        let mut browser = holding(&sessions, json);
        let decision = browser.request(&sessions, T0 + 1, |s| {
            assert_eq!(s.outcome(), LoadOutcome::Invalid, "{json}");
            assert!(
                matches!(s.rejection(), Some(DecodeError::Payload(_))),
                "{json}: {:?}",
                s.rejection()
            );
            assert!(s.is_empty());
        });
        assert!(matches!(decision.cookie, CookieAction::Remove(_)), "{json}");
    }
}

#[test]
fn a_value_of_the_wrong_type_is_an_error_and_the_session_is_kept() {
    let sessions = sessions(Mode::Signed);
    let mut browser = holding(&sessions, r#"{"n":"seven","m":[1]}"#);
    let before = browser.cookie.clone();
    let decision = browser.request(&sessions, T0 + 1, |s| {
        let error = s.get::<u32>("n").unwrap_err();
        assert!(matches!(&error, SessionError::Value { key, .. } if key == "n"));
        assert_eq!(s.get::<String>("n").unwrap().as_deref(), Some("seven"));
        assert_eq!(s.get::<Vec<u8>>("m").unwrap(), Some(vec![1]));
    });
    assert_eq!(decision.cookie, CookieAction::Keep);
    assert_eq!(browser.cookie, before);
}

#[derive(Serialize)]
struct Prefs {
    theme: &'static str,
    font: u32,
}

#[test]
fn writing_an_equal_value_in_another_order_is_not_a_change() {
    let sessions = sessions(Mode::Encrypted);
    let mut browser = Browser::default();
    browser.request(&sessions, T0, |s| {
        // Serialized in field order: {"theme":..,"font":..}
        s.insert(
            "prefs",
            &Prefs {
                theme: "dark",
                font: 12,
            },
        )
        .unwrap();
        s.insert("n", &1).unwrap();
    });
    // The same object as a map (sorted keys): equal as a value, not as text.
    let decision = browser.request(&sessions, T0 + 1, |s| {
        s.insert("prefs", &json!({"font": 12, "theme": "dark"}))
            .unwrap();
    });
    assert_eq!(decision.cookie, CookieAction::Keep);
    // A real change is one.
    let decision = browser.request(&sessions, T0 + 2, |s| {
        s.insert("prefs", &json!({"font": 13, "theme": "dark"}))
            .unwrap();
    });
    assert!(matches!(decision.cookie, CookieAction::Set(_)));
}

#[test]
fn clearing_and_restoring_every_value_is_not_a_change() {
    let sessions = sessions(Mode::Signed);
    let mut browser = holding(&sessions, r#"{"a":[1,{"b":null}],"c":"d"}"#);
    let decision = browser.request(&sessions, T0 + 1, |s| {
        let a = s.remove("a").unwrap();
        s.clear();
        assert!(s.is_empty());
        s.insert("c", "d").unwrap();
        s.insert("a", &a).unwrap();
    });
    assert_eq!(decision.cookie, CookieAction::Keep);
}

#[test]
fn values_taken_for_mutation_count_only_if_they_changed() {
    let sessions = sessions(Mode::Signed);
    let mut browser = holding(&sessions, r#"{"cart":[{"sku":"A","qty":1}],"user":7}"#);
    let decision = browser.request(&sessions, T0 + 1, |s| {
        let cart = s.get_mut("cart").unwrap();
        assert_eq!(cart[0]["qty"], 1);
    });
    assert_eq!(decision.cookie, CookieAction::Keep);
    let decision = browser.request(&sessions, T0 + 2, |s| {
        s.get_mut("cart").unwrap()[0]["qty"] = json!(2);
        // A later typed read sees the change.
        assert_eq!(s.get::<Value>("cart").unwrap().unwrap()[0]["qty"], 2);
    });
    assert!(matches!(decision.cookie, CookieAction::Set(_)));
    assert_eq!(
        payload(&sessions, &browser),
        r#"{"cart":[{"qty":2,"sku":"A"}],"user":7}"#
    );
}

#[test]
fn values_a_json_value_cannot_hold_are_kept_as_they_came() {
    let sessions = sessions(Mode::Signed);
    // Valid JSON, but beyond f64 and an unpaired surrogate: no `Value` holds them.
    let mut browser = holding(&sessions, r#"{"big":1e400,"n":1,"s":"\ud800"}"#);
    browser.request(&sessions, T0 + 1, |s| {
        assert_eq!(s.outcome(), LoadOutcome::Loaded);
        assert!(matches!(
            s.get::<Value>("big"),
            Err(SessionError::Value { .. })
        ));
        assert!(s.get_mut("big").is_none());
        assert!(s.contains_key("big"));
        s.insert("n", &2).unwrap();
    });
    assert_eq!(
        payload(&sessions, &browser),
        r#"{"big":1e400,"n":2,"s":"\ud800"}"#
    );
    // Writing over such a value is a change (it cannot be compared); removing it works.
    let decision = browser.request(&sessions, T0 + 2, |s| {
        s.insert("big", &1).unwrap();
        assert_eq!(s.remove("s"), None);
        assert!(!s.contains_key("s"));
    });
    assert!(matches!(decision.cookie, CookieAction::Set(_)));
    assert_eq!(payload(&sessions, &browser), r#"{"big":1,"n":2}"#);
}
