//! Server-side sessions shared with a TurboGears 1 application's visit table (feature
//! `turbogears`): the Python side (`tests/turbogears/visit.py`, the TurboGears documents'
//! visit-sessions recipe with Python's own `pickle`, and TurboGears identity's
//! `visit_identity`) and a Rust page (`VisitStore`, the `tg-visit` cookie) share one
//! visitor's visit: values, changes, a concurrent change, users and "log out everywhere",
//! a new key at login, logout and expiry on either side.
//!
//! Needs `BEAKER_PYTHON` (a Python with psycopg2) and `DATABASE_URL`; `.ci/run` sets both.
//! Without them each test prints a loud skip line, and fails under `CI=true`.
#![cfg(feature = "turbogears")]
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod services;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use cookie_session::store::{DynStore, SessionStore as _, StoreKey, VisitStore};
use cookie_session::time::OffsetDateTime;
use cookie_session::{Decision, Key, KeyRing, Mode, SessionConfig, SessionHandle, Sessions};
use serde_json::{Value, json};

const NAME: &str = "tg-visit";
const TIMEOUT: u64 = 1200;

struct Python {
    python: String,
    config: String,
}

impl Python {
    fn run(&self, command: &str, key: &str, argument: &str) -> Value {
        let output = Command::new(&self.python)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/turbogears/visit.py"
            ))
            .args([&self.config, command, key, argument])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "visit.py {command} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }

    fn new_visit(&self, data: &Value) -> String {
        self.run("new", "", &data.to_string())["key"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn read(&self, key: &str) -> Value {
        self.run("read", key, "")
    }
}

/// Both applications on fresh tables, dropped at the end.
struct Site {
    python: Python,
    sessions: Sessions,
    store: VisitStore,
    client: tokio_postgres::Client,
    tables: (String, String),
}

impl Site {
    async fn new() -> Option<Self> {
        let url = services::url("DATABASE_URL")?;
        let python = services::url("BEAKER_PYTHON")?;
        let client = services::postgres_client(&url).await;
        let visit = services::unique_name("cs_visit");
        let identity = format!("{visit}_identity");
        client
            .batch_execute(&format!(
                "CREATE TABLE {visit} (visit_key VARCHAR(40) PRIMARY KEY, \
                 created TIMESTAMP NOT NULL DEFAULT now(), expiry TIMESTAMP, session_data BYTEA); \
                 CREATE TABLE {identity} (visit_key VARCHAR(40) PRIMARY KEY, user_id INTEGER)"
            ))
            .await
            .unwrap();
        let store = VisitStore::connect(&url)
            .unwrap()
            .with_tables(&visit, &identity)
            .unwrap();
        let sessions = SessionConfig::new(Mode::Signed, KeyRing::new(Key::generate().unwrap()))
            .with_name(NAME)
            .with_idle_timeout(Duration::from_secs(TIMEOUT))
            .with_turbogears_visits()
            .build()
            .unwrap();
        let config = json!({"dsn": url, "visit": visit, "identity": identity, "timeout": TIMEOUT});
        Some(Self {
            python: Python {
                python,
                config: config.to_string(),
            },
            sessions,
            store,
            client,
            tables: (visit, identity),
        })
    }

    async fn loaded(&self, cookie: Option<&str>, now: OffsetDateTime) -> SessionHandle {
        let header = cookie.map(|c| format!("{NAME}={c}"));
        let session = self
            .sessions
            .load_server_side(header.as_deref().map(str::as_bytes), now);
        let store: Arc<dyn DynStore> = Arc::new(self.store.clone());
        let handle = SessionHandle::server_side(session, store);
        handle.load().await.unwrap();
        handle
    }

    async fn drop_tables(self) {
        let (visit, identity) = &self.tables;
        self.client
            .batch_execute(&format!("DROP TABLE {visit}; DROP TABLE {identity}"))
            .await
            .unwrap();
    }
}

fn data(handle: &SessionHandle) -> Value {
    let mut map = serde_json::Map::new();
    for key in handle.keys().unwrap() {
        let value = handle.get::<Option<Value>>(&key).unwrap().unwrap();
        map.insert(key, value.unwrap_or(Value::Null));
    }
    Value::Object(map)
}

fn set_value(decision: &Decision) -> String {
    let header = decision.set_cookie().expect("a Set-Cookie");
    let pair = header.split(';').next().unwrap();
    pair.strip_prefix(&format!("{NAME}=")).unwrap().to_owned()
}

fn key_of(visit_key: &str) -> StoreKey {
    StoreKey::from_hex(visit_key).unwrap()
}

fn values() -> Value {
    json!({
        "user_name": "ada",
        "n": 1,
        "ratio": 2.5,
        "flags": [true, false, null],
        "cart": [{"sku": "A-1", "qty": 2}],
        "city": "Łódź 🍎",
        "big": 9_007_199_254_740_993_u64,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visit_is_one_session_on_both_sides() {
    let Some(site) = Site::new().await else {
        return;
    };
    let py = &site.python;
    let now = OffsetDateTime::now_utc;

    // Made there, read here with every value; the cookie is the visit key itself.
    let key = py.new_visit(&values());
    let handle = site.loaded(Some(&key), now()).await;
    assert_eq!(data(&handle), values());
    handle.insert("n", &2).unwrap();
    assert!(handle.commit(now()).await.unwrap().set_cookie().is_none());
    let mut expected = values();
    expected["n"] = json!(2);
    assert_eq!(py.read(&key)["data"], expected);

    // Changed there, read here; a change there between this side's read and write is kept.
    py.run("write", &key, &json!({"py": "x"}).to_string());
    expected["py"] = json!("x");
    let handle = site.loaded(Some(&key), now()).await;
    assert_eq!(data(&handle), expected);
    py.run("write", &key, &json!({"n": 10}).to_string());
    handle.insert("rust", "y").unwrap();
    handle.commit(now()).await.unwrap();
    expected["n"] = json!(10);
    expected["rust"] = json!("y");
    assert_eq!(py.read(&key)["data"], expected, "concurrent change");

    // Logged in there: the session's user here; the login follows a new key made here.
    py.run("login", &key, "42");
    assert_eq!(
        site.store.sessions_of("42", now()).await.unwrap(),
        vec![key_of(&key)]
    );
    let handle = site.loaded(Some(&key), now()).await;
    handle.regenerate().unwrap();
    let moved = set_value(&handle.commit(now()).await.unwrap());
    assert_eq!(moved.len(), 40);
    assert_ne!(moved, key);
    let seen = py.read(&moved);
    assert_eq!(
        (seen["data"].clone(), seen["user"].clone()),
        (expected.clone(), json!(42))
    );
    let old = py.read(&key);
    assert_eq!(
        (old["data"].clone(), old["user"].clone()),
        (json!({}), Value::Null)
    );

    // Log out everywhere here ends the Python visits of that user, not others'.
    let other = py.new_visit(&json!({"user_name": "ada on a phone"}));
    py.run("login", &other, "42");
    let stranger = py.new_visit(&json!({"user_name": "bob"}));
    py.run("login", &stranger, "43");
    let ended = site
        .store
        .delete_sessions_of("42", None, now())
        .await
        .unwrap();
    assert_eq!(ended.len(), 2, "{ended:?}");
    for gone in [&moved, &other] {
        let seen = py.read(gone);
        assert_eq!(
            (seen["data"].clone(), seen["user"].clone()),
            (json!({}), Value::Null)
        );
    }
    assert_eq!(py.read(&stranger)["user"], json!(43));

    // A user attached here is the visit's user there.
    let handle = site.loaded(None, now()).await;
    handle.insert("user_name", "eve").unwrap();
    handle.attach_user("7").unwrap();
    let fresh = set_value(&handle.commit(now()).await.unwrap());
    let seen = py.read(&fresh);
    assert_eq!(
        (seen["data"].clone(), seen["user"].clone()),
        (json!({"user_name": "eve"}), json!(7))
    );
    // A user id TurboGears cannot hold is refused at once.
    let handle = site.loaded(Some(&fresh), now()).await;
    assert!(handle.attach_user("not-a-number").is_ok());
    assert!(handle.commit(now()).await.is_err());

    // Logout there ends it here; logout here ends it there.
    py.run("logout", &fresh, "");
    let handle = site.loaded(Some(&fresh), now()).await;
    assert_eq!(data(&handle), json!({}));
    drop(handle);
    let handle = site.loaded(Some(&stranger), now()).await;
    assert_eq!(data(&handle), json!({"user_name": "bob"}));
    handle.delete().unwrap();
    handle.commit(now()).await.unwrap();
    let seen = py.read(&stranger);
    assert_eq!(
        (seen["data"].clone(), seen["user"].clone()),
        (json!({}), Value::Null)
    );

    site.drop_tables().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visit_without_a_session_keeps_its_key_and_user() {
    let Some(site) = Site::new().await else {
        return;
    };
    let py = &site.python;
    let now = OffsetDateTime::now_utc;
    // A visitor logged in there who never stored anything: no session here, but the first
    // value stored here stays on that visit (same key, same user).
    let key = py.new_visit(&json!({}));
    py.run("login", &key, "5");
    let handle = site.loaded(Some(&key), now()).await;
    assert_eq!(data(&handle), json!({}));
    handle.insert("theme", "dark").unwrap();
    let decision = handle.commit(now()).await.unwrap();
    assert!(decision.set_cookie().is_none(), "{decision:?}");
    let seen = py.read(&key);
    assert_eq!(
        (seen["data"].clone(), seen["user"].clone()),
        (json!({"theme": "dark"}), json!(5))
    );
    site.drop_tables().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_and_unreadable_values_hold_on_both_sides() {
    let Some(site) = Site::new().await else {
        return;
    };
    let py = &site.python;
    let now = OffsetDateTime::now_utc;
    let timeout = cookie_session::time::Duration::seconds(TIMEOUT.cast_signed());

    // Expired there: none here.
    let key = py.new_visit(&json!({"user_name": "ada"}));
    py.run("age", &key, "5");
    let handle = site.loaded(Some(&key), now()).await;
    assert_eq!(data(&handle), json!({}));
    drop(handle);
    // Live there: live here until its expiry.
    let key = py.new_visit(&json!({"user_name": "ada"}));
    let handle = site
        .loaded(
            Some(&key),
            now() + timeout - cookie_session::time::Duration::seconds(30),
        )
        .await;
    assert_eq!(data(&handle), json!({"user_name": "ada"}));
    drop(handle);
    let handle = site
        .loaded(
            Some(&key),
            now() + timeout + cookie_session::time::Duration::seconds(30),
        )
        .await;
    assert_eq!(data(&handle), json!({}));
    drop(handle);
    // Written here long ago: expired there.
    let past = now() - timeout - cookie_session::time::Duration::seconds(60);
    let handle = site.loaded(None, past).await;
    handle.insert("user_name", "bob").unwrap();
    let old = set_value(&handle.commit(past).await.unwrap());
    assert_eq!(py.read(&old)["live"], json!(false));

    // A datetime there: no session here, and the Python session is left intact when this
    // side stores data (under a new visit key).
    let key = py.new_visit(&json!({"user_name": "ada"}));
    py.run("datetime", &key, "");
    let handle = site.loaded(Some(&key), now()).await;
    assert_eq!(data(&handle), json!({}));
    handle.insert("rust", "y").unwrap();
    let other = set_value(&handle.commit(now()).await.unwrap());
    assert_ne!(other, key);
    assert_eq!(
        py.read(&key)["data"],
        json!({"user_name": "ada", "when": "2026-12-06 12:00:00"})
    );

    // A well-formed key no visit has (chosen by the client): data goes to a new key.
    let chosen = "0123456789abcdef0123456789abcdef01234567";
    let handle = site.loaded(Some(chosen), now()).await;
    assert_eq!(data(&handle), json!({}));
    handle.insert("rust", "z").unwrap();
    let given = set_value(&handle.commit(now()).await.unwrap());
    assert_ne!(given, chosen);
    assert_eq!(py.read(chosen)["live"], json!(false));

    // Keys that are not visit keys: refused before any query.
    let handle = site.loaded(Some(&key.to_uppercase()), now()).await;
    assert_eq!(data(&handle), json!({}));
    assert!(matches!(
        site.store.load(&StoreKey::from_bytes([7; 32]), now()).await,
        Err(cookie_session::store::StoreError::Misconfigured(_))
    ));
    site.drop_tables().await;
}
