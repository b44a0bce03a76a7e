//! Model test: any sequence of session operations, over several requests, leaves the
//! session equal to a `BTreeMap` that applied the same operations, and each response's
//! decision is exactly what the change warrants (nothing for no change).
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::*;
use cookie_session::{CookieAction, Session};
use proptest::prelude::*;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
enum Op {
    Insert(String, Value),
    Remove(String),
    Clear,
    /// Append to an array value in place through `get_mut` (if it is an array).
    Push(String, i64),
    /// Increment a number through the typed `update` (if it is a number).
    Increment(String),
    Read(String),
    Len,
    Delete,
    Regenerate,
}

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "c", "cart"]).prop_map(String::from)
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0i64..4).prop_map(|n| json!(n)),
        "[a-c]{0,3}".prop_map(Value::String),
        prop::collection::vec(0i64..3, 0..3).prop_map(|v| json!(v)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (key(), value()).prop_map(|(k, v)| Op::Insert(k, v)),
        2 => key().prop_map(Op::Remove),
        1 => Just(Op::Clear),
        2 => (key(), 0i64..3).prop_map(|(k, n)| Op::Push(k, n)),
        2 => key().prop_map(Op::Increment),
        3 => key().prop_map(Op::Read),
        1 => Just(Op::Len),
        1 => Just(Op::Delete),
        1 => Just(Op::Regenerate),
    ]
}

type Model = BTreeMap<String, Value>;

/// Applies `op` to both; returns whether the session's identity changed.
fn apply(op: &Op, session: &mut Session, model: &mut Model) -> bool {
    match op {
        Op::Insert(k, v) => {
            session.insert(k, v).unwrap();
            model.insert(k.clone(), v.clone());
        }
        Op::Remove(k) => assert_eq!(session.remove(k), model.remove(k)),
        Op::Clear => {
            session.clear();
            model.clear();
        }
        Op::Push(k, n) => {
            if let Some(Value::Array(items)) = session.get_mut(k) {
                items.push(json!(n));
            }
            if let Some(Value::Array(items)) = model.get_mut(k) {
                items.push(json!(n));
            }
        }
        Op::Increment(k) => {
            let is_int = model.get(k).is_some_and(Value::is_i64);
            let result = session.update(k, |n: &mut i64| *n += 1);
            match model.get_mut(k) {
                Some(v) if is_int => {
                    *v = json!(v.as_i64().unwrap() + 1);
                    assert_eq!(result.unwrap(), cookie_session::Updated::Changed);
                }
                Some(_) => assert!(result.is_err(), "wrong type is an error"),
                None => assert_eq!(result.unwrap(), cookie_session::Updated::Missing),
            }
        }
        Op::Read(k) => assert_eq!(session.get::<Value>(k).unwrap().as_ref(), model.get(k)),
        Op::Len => assert_eq!(session.len(), model.len()),
        Op::Delete => {
            session.delete();
            model.clear();
            return true;
        }
        Op::Regenerate => {
            session.regenerate().unwrap();
            return true;
        }
    }
    false
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn sessions_follow_the_model_and_send_exactly_what_changed(
        requests in prop::collection::vec(prop::collection::vec(op(), 0..8), 1..6),
        mode in prop::sample::select(MODES.to_vec()),
    ) {
        let sessions = sessions(mode);
        let mut browser = Browser::default();
        let mut model = Model::new();
        for (i, ops) in requests.iter().enumerate() {
            let now = T0 + i as i64;
            let before = model.clone();
            let mut identity_changed = false;
            let decision = browser.request(&sessions, now, |s| {
                for op in ops {
                    identity_changed |= apply(op, s, &mut model);
                }
            });
            let expected = match (before.is_empty(), model.is_empty()) {
                (_, false) if identity_changed || before != model => "set",
                (false, true) => "remove",
                _ => "keep",
            };
            let actual = match decision.cookie {
                CookieAction::Keep => "keep",
                CookieAction::Set(_) => "set",
                CookieAction::Remove(_) => "remove",
                _ => "other",
            };
            prop_assert_eq!(actual, expected, "request {} ops {:?}", i, ops);
            prop_assert_eq!(decision.vary_cookie, !ops.is_empty());
        }
        // A final reload sees exactly the model.
        let headers: Vec<&str> = browser.cookie.iter().map(String::as_str).collect();
        let session = sessions.load(headers, at(T0 + 10));
        let keys: Vec<String> = session.keys().map(String::from).collect();
        prop_assert_eq!(keys, model.keys().cloned().collect::<Vec<_>>());
        for (k, v) in &model {
            prop_assert_eq!(&session.get::<Value>(k).unwrap().unwrap(), v);
        }
    }

    #[test]
    fn read_only_requests_never_send_a_cookie_under_on_change(
        reads in prop::collection::vec(prop_oneof![key().prop_map(Op::Read), Just(Op::Len)], 0..10),
        mode in prop::sample::select(MODES.to_vec()),
    ) {
        let sessions = sessions(mode);
        let mut browser = Browser::with_session(&sessions, T0, &small());
        let mut model: Model = small().into_iter().collect();
        let decision = browser.request(&sessions, T0 + 30, |s| {
            for op in &reads {
                apply(op, s, &mut model);
            }
        });
        prop_assert!(is_keep(&decision));
        prop_assert!(!decision.cache_private);
    }
}
