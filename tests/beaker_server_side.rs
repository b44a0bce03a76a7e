//! Server-side sessions shared with the real Beaker 1.14.1 (features `beaker`, `pickle`,
//! `redis`, `files`): a Python page (Beaker's own `Session`, driven by
//! `tests/beaker/server_side.py`) and a Rust page (`BeakerStore` with Beaker's id cookie)
//! share one visitor's session on Beaker's `ext:redis`, `ext:memcached`, `ext:database`
//! (PostgreSQL) and `file` backends, in both
//! directions: values, changes, concurrent changes, a new id at login, logout on either
//! side, expiry on either side, a forged id.
//!
//! Needs `BEAKER_PYTHON` (a Python with beaker 1.14.1, redis, python-memcached,
//! SQLAlchemy, psycopg2, cryptography), `REDIS_URL`, `MEMCACHED_URL` and `DATABASE_URL`;
//! `.ci/run` sets them. Without them each test prints a loud skip line, and
//! fails under `CI=true`.
#![cfg(all(
    feature = "beaker",
    feature = "pickle",
    feature = "redis",
    feature = "files",
    feature = "memcached",
    feature = "postgres"
))]
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use cookie_session::beaker::{BeakerCipher, BeakerIds, BeakerSerializer, BeakerStored};
use cookie_session::store::{BeakerStore, DynStore};
use cookie_session::time::OffsetDateTime;
use cookie_session::{Decision, Key, KeyRing, Mode, SessionConfig, SessionHandle, Sessions};
use serde_json::{Value, json};

const NAME: &str = "beaker.session.id";
const TIMEOUT: u64 = 1200;

fn env(name: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Some(value),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{name} is not set, and CI=true: the Beaker server-side tests must run")
        }
        _ => {
            eprintln!(
                "!!!!!!!! SKIPPED: {name} is not set; the Beaker server-side tests did not run !!!!!!!!"
            );
            None
        }
    }
}

/// One side's settings: Beaker's, and the matching ones here.
#[derive(Clone, Copy, Debug)]
enum Settings {
    /// No `secret` (plain ids), `data_serializer = pickle`, no encryption: Beaker's
    /// defaults.
    Plain,
    /// `secret` (signed ids), `data_serializer = json`, `encrypt_key` (AES-GCM).
    Signed,
}

const SECRET: &str = "a secret shared by both applications";
const VALIDATE: &str = "validate key shared";
const ENCRYPT: &str = "encrypt key shared";

impl Settings {
    fn beaker(self, backend: &Backend) -> Value {
        let mut config = json!({"key": NAME, "timeout": TIMEOUT});
        match backend {
            Backend::Redis(url) => {
                config["type"] = json!("ext:redis");
                config["url"] = json!(url);
            }
            Backend::Memcached(address) => {
                config["type"] = json!("ext:memcached");
                config["url"] = json!(address);
            }
            Backend::Database { url, table } => {
                // SQLAlchemy's name for the same database, through psycopg2.
                let (_, rest) = url.split_once("://").unwrap();
                config["type"] = json!("ext:database");
                config["url"] = json!(format!("postgresql+psycopg2://{rest}"));
                config["table_name"] = json!(table);
            }
            Backend::Files(dir) => {
                config["type"] = json!("file");
                config["data_dir"] = json!(dir.path().to_str().unwrap());
            }
        }
        if let Self::Signed = self {
            config["secret"] = json!(SECRET);
            config["data_serializer"] = json!("json");
            config["validate_key"] = json!(VALIDATE);
            config["encrypt_key"] = json!(ENCRYPT);
            config["crypto_type"] = json!("cryptography");
        }
        config
    }

    fn ids(self) -> BeakerIds {
        match self {
            Self::Plain => BeakerIds::plain(),
            Self::Signed => BeakerIds::signed(SECRET).unwrap(),
        }
    }

    fn value(self) -> BeakerStored {
        match self {
            Self::Plain => BeakerStored::new(BeakerSerializer::Pickle),
            Self::Signed => BeakerStored::encrypted(
                BeakerSerializer::Json,
                VALIDATE,
                ENCRYPT,
                BeakerCipher::Gcm,
            )
            .unwrap(),
        }
    }
}

enum Backend {
    Redis(String),
    Memcached(String),
    /// Beaker creates the table on its first write; dropped when the test ends.
    Database {
        url: String,
        table: String,
    },
    Files(Scratch),
}

/// A directory of its own for one test, removed with it.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "cookie-session-beaker-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
            .create(&dir)
            .unwrap();
        Self(dir)
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The Python application.
struct Python {
    python: String,
    config: String,
}

/// What a Python request saw.
#[derive(Debug)]
struct Seen {
    cookie: Option<String>,
    new: bool,
    data: Value,
}

impl Python {
    fn run(&self, command: &str, cookie: Option<&str>, extra: &str) -> Seen {
        let output = Command::new(&self.python)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/beaker/server_side.py"
            ))
            .args([&self.config, command, cookie.unwrap_or(""), extra])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "server_side.py {command} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let out: Value = serde_json::from_slice(&output.stdout).unwrap();
        Seen {
            cookie: out["cookie"].as_str().map(str::to_owned),
            new: out["new"].as_bool().unwrap(),
            data: out["data"].clone(),
        }
    }

    fn write(&self, cookie: Option<&str>, changes: &Value) -> Seen {
        self.run("write", cookie, &changes.to_string())
    }

    fn read(&self, cookie: &str) -> Seen {
        self.run("read", Some(cookie), "")
    }
}

/// The Rust application.
struct Rust {
    sessions: Sessions,
    store: Arc<dyn DynStore>,
}

impl Rust {
    /// A request with `cookie`, loaded, for the caller to work on and commit.
    async fn loaded(&self, cookie: Option<&str>, now: OffsetDateTime) -> SessionHandle {
        let header = cookie.map(|c| format!("{NAME}={c}"));
        let session = self
            .sessions
            .load_server_side(header.as_deref().map(str::as_bytes), now);
        let handle = SessionHandle::server_side(session, Arc::clone(&self.store));
        handle.load().await.unwrap();
        handle
    }

    /// The session's data as a JSON object.
    fn data(handle: &SessionHandle) -> Value {
        let mut map = serde_json::Map::new();
        for key in handle.keys().unwrap() {
            // `Option<Value>`: a stored `null` is a value too.
            let value = handle.get::<Option<Value>>(&key).unwrap().unwrap();
            map.insert(key.clone(), value.unwrap_or(Value::Null));
        }
        Value::Object(map)
    }
}

/// The cookie value a decision sets.
fn set_value(decision: &Decision) -> String {
    let header = decision.set_cookie().expect("a Set-Cookie");
    let pair = header.split(';').next().unwrap();
    pair.strip_prefix(&format!("{NAME}=")).unwrap().to_owned()
}

async fn pair(backend: Backend, settings: Settings) -> Option<(Python, Rust, Backend)> {
    let python = env("BEAKER_PYTHON")?;
    let store = match &backend {
        Backend::Redis(url) => {
            BeakerStore::redis(url, settings.value(), Duration::from_secs(TIMEOUT))
                .await
                .unwrap()
        }
        Backend::Memcached(address) => {
            BeakerStore::memcached(address, settings.value(), Duration::from_secs(TIMEOUT))
        }
        Backend::Database { url, table } => {
            BeakerStore::database(url, table, settings.value(), Duration::from_secs(TIMEOUT))
                .unwrap()
        }
        Backend::Files(dir) => {
            BeakerStore::files(dir.path(), settings.value(), Duration::from_secs(TIMEOUT)).unwrap()
        }
    };
    let sessions = SessionConfig::new(Mode::Signed, KeyRing::new(Key::generate().unwrap()))
        .with_name(NAME)
        .with_idle_timeout(Duration::from_secs(TIMEOUT))
        .with_beaker_ids(settings.ids())
        .build()
        .unwrap();
    let python = Python {
        python,
        config: settings.beaker(&backend).to_string(),
    };
    let rust = Rust {
        sessions,
        store: Arc::new(store),
    };
    Some((python, rust, backend))
}

async fn redis() -> Option<Backend> {
    env("REDIS_URL").map(Backend::Redis)
}

fn memcached() -> Option<Backend> {
    let url = env("MEMCACHED_URL")?;
    let address = url.split("://").last().unwrap().trim_end_matches('/');
    Some(Backend::Memcached(address.to_owned()))
}

fn database() -> Option<Backend> {
    let url = env("DATABASE_URL")?;
    let table = format!("cs_beaker_{:016x}", rand::random::<u64>());
    Some(Backend::Database { url, table })
}

impl Backend {
    /// Removes what the test made where a drop does not (the database table).
    async fn clean_up(self) {
        if let Self::Database { url, table } = self {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            client
                .batch_execute(&format!("DROP TABLE IF EXISTS {table}"))
                .await
                .unwrap();
        }
    }
}

fn files() -> Backend {
    Backend::Files(Scratch::new())
}

fn values() -> Value {
    json!({
        "user": "ada",
        "n": 1,
        "ratio": 2.5,
        "admin": false,
        "nothing": [null],
        "cart": ["apple", {"qty": 2, "tags": ["a", "b"]}],
        "city": "Łódź 🍎 \"quoted\"",
        "big": 9_007_199_254_740_993_u64,
    })
}

/// Both directions, changes on each side, a concurrent change, login and logout.
async fn shares_one_session(backend: Backend, settings: Settings) {
    let Some((py, rs, backend)) = pair(backend, settings).await else {
        return;
    };
    let now = OffsetDateTime::now_utc;

    // Written by Beaker, read here with every value intact.
    let written = py.write(None, &values());
    let cookie = written.cookie.unwrap();
    let handle = rs.loaded(Some(&cookie), now()).await;
    assert_eq!(
        Rust::data(&handle),
        values(),
        "{settings:?}: Beaker -> here"
    );
    // Changed here, seen there; no new cookie (the id stays).
    handle.insert("n", &2).unwrap();
    let decision = handle.commit(now()).await.unwrap();
    assert!(
        decision.set_cookie().is_none(),
        "{settings:?}: {decision:?}"
    );
    let seen = py.read(&cookie);
    assert!(!seen.new);
    let mut expected = values();
    expected["n"] = json!(2);
    assert_eq!(seen.data, expected, "{settings:?}: here -> Beaker");

    // Changed there (after Beaker's own access-time save), seen here.
    py.write(Some(&cookie), &json!({"py": "x"}));
    expected["py"] = json!("x");
    let handle = rs.loaded(Some(&cookie), now()).await;
    assert_eq!(Rust::data(&handle), expected);
    drop(handle);

    // A change there between this side's read and write is not lost.
    let handle = rs.loaded(Some(&cookie), now()).await;
    py.write(Some(&cookie), &json!({"n": 10}));
    handle.insert("rust", "y").unwrap();
    handle.commit(now()).await.unwrap();
    expected["n"] = json!(10);
    expected["rust"] = json!("y");
    assert_eq!(
        py.read(&cookie).data,
        expected,
        "{settings:?}: concurrent change"
    );

    // Login here: a new id, the data follows; the old id is nothing there.
    let handle = rs.loaded(Some(&cookie), now()).await;
    handle.regenerate().unwrap();
    let moved = set_value(&handle.commit(now()).await.unwrap());
    assert_ne!(moved, cookie);
    assert_eq!(py.read(&moved).data, expected, "{settings:?}: after login");
    let old = py.read(&cookie);
    assert!(old.new && old.data == json!({}), "{old:?}");

    // Logout here ends it there.
    let handle = rs.loaded(Some(&moved), now()).await;
    handle.delete().unwrap();
    let decision = handle.commit(now()).await.unwrap();
    assert!(
        decision
            .set_cookie()
            .is_some_and(|c| c.contains("Max-Age=0"))
    );
    let after = py.read(&moved);
    assert!(
        after.new && after.data == json!({}),
        "{settings:?}: {after:?}"
    );

    // A session begun here is read there.
    let handle = rs.loaded(None, now()).await;
    handle.insert("user", "bob").unwrap();
    let fresh = set_value(&handle.commit(now()).await.unwrap());
    assert_eq!(py.read(&fresh).data, json!({"user": "bob"}));
    // Logout there ends it here.
    py.run("delete", Some(&fresh), "");
    let handle = rs.loaded(Some(&fresh), now()).await;
    assert_eq!(Rust::data(&handle), json!({}), "{settings:?}: logout there");
    // Data written after that starts a new session under a new id: the logged-out id is
    // never used again.
    handle.insert("user", "eve").unwrap();
    let next = set_value(&handle.commit(now()).await.unwrap());
    assert_ne!(next, fresh, "{settings:?}: a logged-out id was reused");
    assert_eq!(py.read(&next).data, json!({"user": "eve"}));
    // (Beaker's logout keeps the id with an empty dict: empty there, not "new".)
    let gone = py.read(&fresh);
    assert_eq!(gone.data, json!({}), "{settings:?}: {gone:?}");
    backend.clean_up().await;
}

/// Beaker's timeout holds on both sides.
async fn expires_on_both_sides(backend: Backend, settings: Settings) {
    let Some((py, rs, backend)) = pair(backend, settings).await else {
        return;
    };
    let now = OffsetDateTime::now_utc;
    let timeout = cookie_session::time::Duration::seconds(TIMEOUT.cast_signed());

    // Idle longer than the timeout there: expired here.
    let cookie = py.write(None, &json!({"user": "ada"})).cookie.unwrap();
    py.run("age", Some(&cookie), &(TIMEOUT + 5).to_string());
    let handle = rs.loaded(Some(&cookie), now()).await;
    assert_eq!(Rust::data(&handle), json!({}), "{settings:?}: aged there");
    // Used within the timeout there: live here until the timeout passes.
    let cookie = py.write(None, &json!({"user": "ada"})).cookie.unwrap();
    let handle = rs
        .loaded(
            Some(&cookie),
            now() + timeout - cookie_session::time::Duration::seconds(5),
        )
        .await;
    assert_eq!(Rust::data(&handle), json!({"user": "ada"}));
    drop(handle);
    let handle = rs
        .loaded(
            Some(&cookie),
            now() + timeout + cookie_session::time::Duration::seconds(1),
        )
        .await;
    assert_eq!(
        Rust::data(&handle),
        json!({}),
        "{settings:?}: past the timeout"
    );
    drop(handle);

    // Written here longer ago than the timeout: expired there.
    let past = now() - timeout - cookie_session::time::Duration::seconds(30);
    let handle = rs.loaded(None, past).await;
    handle.insert("user", "bob").unwrap();
    let cookie = set_value(&handle.commit(past).await.unwrap());
    let seen = py.read(&cookie);
    assert!(seen.new && seen.data == json!({}), "{settings:?}: {seen:?}");
    backend.clean_up().await;
}

/// A forged or foreign id is no session on either side, and a Python value this side
/// cannot represent is left alone.
async fn refuses_what_is_not_a_session(backend: Backend, settings: Settings) {
    let Some((py, rs, backend)) = pair(backend, settings).await else {
        return;
    };
    let now = OffsetDateTime::now_utc;
    let cookie = py.write(None, &json!({"user": "ada"})).cookie.unwrap();
    if let Settings::Signed = settings {
        // Another id under the same signature, and a changed signature.
        let mut forged = cookie.clone().into_bytes();
        let last = forged.len() - 1;
        forged[last] = if forged[last] == b'0' { b'1' } else { b'0' };
        let forged = String::from_utf8(forged).unwrap();
        let mut resigned = cookie.clone().into_bytes();
        resigned[0] = if resigned[0] == b'0' { b'1' } else { b'0' };
        let resigned = String::from_utf8(resigned).unwrap();
        for bad in [forged, resigned, cookie[40..].to_owned()] {
            let handle = rs.loaded(Some(&bad), now()).await;
            assert_eq!(Rust::data(&handle), json!({}), "{bad}");
            assert!(py.read(&bad).new, "Beaker also refuses {bad}");
        }
    }
    // An id Beaker never writes (not 32 lowercase hex digits) is no session here.
    let upper = match settings {
        Settings::Plain => cookie.to_uppercase(),
        Settings::Signed => format!("{}{}", &cookie[..40], cookie[40..].to_uppercase()),
    };
    let handle = rs.loaded(Some(&upper), now()).await;
    assert_eq!(Rust::data(&handle), json!({}));
    drop(handle);
    // The genuine cookie still works.
    let handle = rs.loaded(Some(&cookie), now()).await;
    assert_eq!(Rust::data(&handle), json!({"user": "ada"}));
    drop(handle);
    if let Settings::Plain = settings {
        // A value JSON cannot hold (a pickled datetime) makes it no session here; data
        // written here then goes to a new id, and the Python side keeps its session intact.
        py.run("datetime", Some(&cookie), "");
        let handle = rs.loaded(Some(&cookie), now()).await;
        assert_eq!(Rust::data(&handle), json!({}));
        handle.insert("rust", "y").unwrap();
        let other = set_value(&handle.commit(now()).await.unwrap());
        assert_ne!(other, cookie);
        let kept = py.read(&cookie);
        assert_eq!(
            kept.data,
            json!({"user": "ada", "when": "2026-12-06 12:00:00"})
        );
        assert_eq!(py.read(&other).data, json!({"rust": "y"}));
    }
    backend.clean_up().await;
}

#[tokio::test]
async fn redis_plain_shares_one_session() {
    let Some(backend) = redis().await else { return };
    shares_one_session(backend, Settings::Plain).await;
}

#[tokio::test]
async fn redis_signed_shares_one_session() {
    let Some(backend) = redis().await else { return };
    shares_one_session(backend, Settings::Signed).await;
}

#[tokio::test]
async fn files_plain_shares_one_session() {
    shares_one_session(files(), Settings::Plain).await;
}

#[tokio::test]
async fn files_signed_shares_one_session() {
    shares_one_session(files(), Settings::Signed).await;
}

#[tokio::test]
async fn redis_expires_on_both_sides() {
    let Some(backend) = redis().await else { return };
    expires_on_both_sides(backend, Settings::Signed).await;
}

#[tokio::test]
async fn files_expire_on_both_sides() {
    expires_on_both_sides(files(), Settings::Plain).await;
}

#[tokio::test]
async fn redis_refuses_what_is_not_a_session() {
    let Some(backend) = redis().await else { return };
    refuses_what_is_not_a_session(backend, Settings::Signed).await;
    let Some(backend) = redis().await else { return };
    refuses_what_is_not_a_session(backend, Settings::Plain).await;
}

#[tokio::test]
async fn files_refuse_what_is_not_a_session() {
    refuses_what_is_not_a_session(files(), Settings::Plain).await;
    refuses_what_is_not_a_session(files(), Settings::Signed).await;
}

#[tokio::test]
async fn memcached_plain_shares_one_session() {
    let Some(backend) = memcached() else { return };
    shares_one_session(backend, Settings::Plain).await;
}

#[tokio::test]
async fn memcached_signed_shares_one_session() {
    let Some(backend) = memcached() else { return };
    shares_one_session(backend, Settings::Signed).await;
}

#[tokio::test]
async fn memcached_expires_on_both_sides() {
    let Some(backend) = memcached() else { return };
    expires_on_both_sides(backend, Settings::Plain).await;
}

#[tokio::test]
async fn memcached_refuses_what_is_not_a_session() {
    let Some(backend) = memcached() else { return };
    refuses_what_is_not_a_session(backend, Settings::Signed).await;
    let Some(backend) = memcached() else { return };
    refuses_what_is_not_a_session(backend, Settings::Plain).await;
}

#[tokio::test]
async fn database_plain_shares_one_session() {
    let Some(backend) = database() else { return };
    shares_one_session(backend, Settings::Plain).await;
}

#[tokio::test]
async fn database_signed_shares_one_session() {
    let Some(backend) = database() else { return };
    shares_one_session(backend, Settings::Signed).await;
}

#[tokio::test]
async fn database_expires_on_both_sides() {
    let Some(backend) = database() else { return };
    expires_on_both_sides(backend, Settings::Signed).await;
}

#[tokio::test]
async fn database_refuses_what_is_not_a_session() {
    let Some(backend) = database() else { return };
    refuses_what_is_not_a_session(backend, Settings::Plain).await;
    let Some(backend) = database() else { return };
    refuses_what_is_not_a_session(backend, Settings::Signed).await;
}
