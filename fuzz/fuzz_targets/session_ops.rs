//! Arbitrary sequences of session operations against a model map, over several requests:
//! the reloaded session equals the model, and a request that only reads never sends a
//! `Set-Cookie` (the default on-change policy).
#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use cookie_session::time::OffsetDateTime;
use cookie_session::{CookieAction, Session, Sessions};
use cookie_session_fuzz::{Json, NAME, NOW, SESSIONS};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

#[derive(Debug, Arbitrary)]
enum Op {
    Insert(u8, Json),
    Remove(u8),
    Clear,
    Push(u8, i64),
    Increment(u8),
    Read(u8),
    Len,
    Delete,
    Regenerate,
}

const KEYS: [&str; 4] = ["a", "b", "c", "cart"];

fn key(k: u8) -> &'static str {
    KEYS[usize::from(k) % KEYS.len()]
}

type Model = BTreeMap<String, Value>;

/// Applies `op` to both; returns whether it may change what is stored.
fn apply(op: &Op, s: &mut Session, model: &mut Model) -> bool {
    match op {
        Op::Insert(k, j) => {
            let v = j.to_value();
            s.insert(key(*k), &v).expect("JSON");
            model.insert(key(*k).to_owned(), v);
        }
        Op::Remove(k) => assert_eq!(s.remove(key(*k)), model.remove(key(*k))),
        Op::Clear => {
            s.clear();
            model.clear();
        }
        Op::Push(k, n) => {
            if let Some(Value::Array(items)) = s.get_mut(key(*k)) {
                items.push(json!(n));
            }
            if let Some(Value::Array(items)) = model.get_mut(key(*k)) {
                items.push(json!(n));
            }
        }
        Op::Increment(k) => {
            let before = model.get(key(*k)).cloned();
            let result = s.update(key(*k), |n: &mut i64| *n = n.saturating_add(1));
            match before.map(|v| v.as_i64()) {
                None => assert_eq!(
                    result.expect("a missing key is not an error"),
                    cookie_session::Updated::Missing
                ),
                Some(Some(n)) => {
                    assert_eq!(
                        result.expect("an i64 updates"),
                        cookie_session::Updated::Changed
                    );
                    model.insert(key(*k).to_owned(), json!(n.saturating_add(1)));
                }
                // Floats, strings, u64 above i64::MAX...: not an i64, a typed error.
                Some(None) => assert!(result.is_err()),
            }
        }
        Op::Read(k) => {
            assert_eq!(
                s.get::<Value>(key(*k)).expect("JSON").as_ref(),
                model.get(key(*k))
            );
            return false;
        }
        Op::Len => {
            assert_eq!(s.len(), model.len());
            return false;
        }
        Op::Delete => {
            s.delete();
            model.clear();
        }
        Op::Regenerate => s.regenerate().expect("valid time"),
    }
    true
}

fuzz_target!(|input: (bool, Vec<Vec<Op>>)| {
    let (encrypted, requests) = input;
    let sessions = &SESSIONS[usize::from(encrypted)];
    let mut cookie: Option<String> = None;
    let mut model = Model::new();
    for (i, ops) in requests.iter().take(8).enumerate() {
        let now = OffsetDateTime::from_unix_timestamp(NOW + i as i64).expect("valid");
        let mut session = load(sessions, cookie.as_deref(), now);
        let mut may_change = false;
        for op in ops.iter().take(32) {
            may_change |= apply(op, &mut session, &mut model);
        }
        let Ok(decision) = session.finish(now) else {
            // Too large: nothing is sent, the browser keeps its cookie, and so does the model.
            model = snapshot(&mut load(sessions, cookie.as_deref(), now));
            continue;
        };
        if !may_change {
            assert_eq!(
                decision.cookie,
                CookieAction::Keep,
                "a read-only request sent a cookie"
            );
        }
        match decision.cookie {
            CookieAction::Set(h) => {
                let pair = h.split(';').next().expect("pair");
                cookie = Some(pair.split_once('=').expect("=").1.to_owned());
            }
            CookieAction::Remove(_) => cookie = None,
            _ => {}
        }
    }
    let now = OffsetDateTime::from_unix_timestamp(NOW + 10).expect("valid");
    assert_eq!(snapshot(&mut load(sessions, cookie.as_deref(), now)), model);
});

fn load(sessions: &Sessions, cookie: Option<&str>, now: OffsetDateTime) -> Session {
    let header = cookie.map(|c| format!("{NAME}={c}"));
    sessions.load(header.as_deref(), now)
}

fn snapshot(session: &mut Session) -> Model {
    let keys: Vec<String> = session.keys().map(String::from).collect();
    keys.into_iter()
        .map(|k| {
            let v = session.get::<Value>(&k).expect("JSON").expect("present");
            (k, v)
        })
        .collect()
}
