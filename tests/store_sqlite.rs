//! `SqliteStore`: the conformance suite (in memory and on a file), persistence across
//! reopening, two stores sharing one file, and the runtime's threads never blocked.
#![allow(clippy::unwrap_used, clippy::panic)]

use cookie_session::store::conformance::block_on;
use cookie_session::store::{SessionStore, SqliteStore, StoreError, StoreKey, Sweeper};
use time::{Duration, OffsetDateTime};

cookie_session::store_conformance!(SqliteStore::open_in_memory().unwrap());

mod on_a_file {
    //! One database file shared by every check (as several app instances would share it).
    use std::sync::OnceLock;

    use cookie_session::store::SqliteStore;

    fn path() -> &'static std::path::Path {
        static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
        DIR.get_or_init(|| {
            let dir =
                std::env::temp_dir().join(format!("cookie-session-sqlite-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            dir.join("sessions.db")
        })
    }

    cookie_session::store_conformance!(
        SqliteStore::open_with_table(path(), "visit_sessions").unwrap()
    );
}

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap()
}

fn temp_db(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cookie-session-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("sessions.db")
}

#[test]
fn records_survive_reopening_and_are_shared_between_stores() {
    let path = temp_db("reopen");
    let now = t0();
    let key = StoreKey::from_bytes([3; 32]);
    {
        let store = SqliteStore::open(&path).unwrap();
        block_on(store.create(&key, b"kept", now + Duration::minutes(20), now)).unwrap();
    }
    let a = SqliteStore::open(&path).unwrap();
    let b = SqliteStore::open(&path).unwrap();
    assert_eq!(block_on(a.load(&key, now)).unwrap().unwrap().data, b"kept");
    // A write through one store is what the other sees next: no cache in between.
    let v = block_on(a.load(&key, now)).unwrap().unwrap().version;
    block_on(b.save(&key, v, b"changed by b", now + Duration::minutes(20), now)).unwrap();
    assert_eq!(
        block_on(a.load(&key, now)).unwrap().unwrap().data,
        b"changed by b"
    );
    let stale = block_on(a.save(&key, v, b"stale", now + Duration::minutes(20), now));
    assert!(matches!(stale, Err(StoreError::Conflict)));
    assert!(block_on(b.delete(&key, now)).unwrap());
    assert!(block_on(a.load(&key, now)).unwrap().is_none());
}

#[test]
fn the_schema_has_an_expiry_index_a_version_column_and_a_user_key() {
    let path = temp_db("schema");
    drop(SqliteStore::open_with_table(&path, "my_sessions").unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('my_sessions')")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(columns, ["key", "data", "expires", "version", "user_key"]);
    let plan: String = conn
        .query_row(
            "EXPLAIN QUERY PLAN SELECT key FROM my_sessions WHERE expires <= 0 ORDER BY expires LIMIT 10",
            [],
            |row| row.get(3),
        )
        .unwrap();
    assert!(
        plan.contains("my_sessions_expires"),
        "the sweep uses the index: {plan}"
    );
}

#[test]
fn a_table_from_before_the_user_index_gains_its_column_and_keeps_its_rows() {
    let path = temp_db("upgrade");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE sessions (key BLOB PRIMARY KEY, data BLOB NOT NULL,
                                expires INTEGER NOT NULL, version INTEGER NOT NULL);
         INSERT INTO sessions VALUES (x'0707070707070707070707070707070707070707070707070707070707070707',
                                      '{\"a\":1}', 4102444800, 3);",
    )
    .unwrap();
    drop(conn);
    let store = SqliteStore::open(&path).unwrap();
    let now = OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap();
    let key = StoreKey::from_bytes([7; 32]);
    let record = block_on(store.load(&key, now)).unwrap().unwrap();
    assert_eq!(
        (record.data.as_slice(), record.version.0),
        (&b"{\"a\":1}"[..], 3)
    );
    block_on(store.set_user(&key, "ada", now)).unwrap();
    assert_eq!(block_on(store.sessions_of("ada", now)).unwrap(), [key]);
}

#[test]
fn bad_table_names_and_unopenable_files_are_errors() {
    for table in ["", "1abc", "a;DROP TABLE x", "a b", "naïve"] {
        assert!(
            matches!(
                SqliteStore::open_with_table(temp_db("names"), table),
                Err(StoreError::Unavailable(_))
            ),
            "{table:?}"
        );
    }
    let error = SqliteStore::open("/nonexistent-dir/for/sure/sessions.db").unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
}

#[test]
fn sweeping_a_backlog_drains_it_in_batches() {
    let store = SqliteStore::open_in_memory().unwrap();
    let now = t0();
    for n in 0..2500u32 {
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(&n.to_be_bytes());
        let ttl = if n % 5 == 0 { 86_400 } else { 60 };
        block_on(store.create(
            &StoreKey::from_bytes(key),
            b"x",
            now + Duration::seconds(ttl),
            now,
        ))
        .unwrap();
    }
    let later = now + Duration::minutes(5);
    let removed = block_on(
        Sweeper::new()
            .with_batch_size(300)
            .sweep_once(&store, later),
    )
    .unwrap();
    assert_eq!(removed, 2000);
    assert_eq!(block_on(store.sweep(later, 300)).unwrap(), 0);
}

/// The store's work runs on its own thread: a caller on a single-threaded executor is
/// never the thread that runs SQLite.
#[test]
fn statements_run_on_the_stores_own_thread() {
    let store = SqliteStore::open_in_memory().unwrap();
    let now = t0();
    let caller = std::thread::current().id();
    let key = StoreKey::from_bytes([9; 32]);
    // A pending future does no work until polled, and the answer wakes the caller.
    let create = store.create(&key, b"x", now + Duration::minutes(1), now);
    assert!(block_on(create).is_ok());
    assert_eq!(std::thread::current().id(), caller);
    assert!(block_on(store.load(&key, now)).unwrap().is_some());
}
