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

fn mode(path: &std::path::Path) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).unwrap().permissions())
        & 0o7777
}

/// The database and the `-wal` and `-shm` files SQLite makes beside it are 0600, for a new
/// file and for one that exists with the usual 0644.
#[test]
fn the_database_and_its_wal_and_shm_files_are_private() {
    for existing in [false, true] {
        let path = temp_db(if existing {
            "mode-existing"
        } else {
            "mode-new"
        });
        if existing {
            std::fs::write(&path, b"").unwrap();
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
                .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let now = t0();
        let key = StoreKey::from_bytes([5; 32]);
        block_on(store.create(&key, b"{}", now + Duration::minutes(5), now)).unwrap();
        assert!(block_on(store.load(&key, now)).unwrap().is_some());
        for suffix in ["", "-wal", "-shm"] {
            let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
    }
}

#[test]
fn a_database_another_user_owns_is_refused() {
    let path = temp_db("owner");
    std::fs::write(&path, b"").unwrap();
    let me = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&path).unwrap());
    if me != 0 {
        eprintln!("SKIPPED: changing a file's owner needs root");
        return;
    }
    std::os::unix::fs::chown(&path, Some(65_534), Some(65_534)).unwrap();
    let error = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(error, StoreError::Misconfigured(_)), "{error:?}");
}

/// Two stores on one file, as two processes: renames (a read, then a write) race creates,
/// saves and deletes of the other. Each read-then-write waits for the lock instead of
/// failing when the other commits between its read and its write.
#[test]
fn renames_racing_writes_of_another_store_on_the_file_never_fail() {
    let path = temp_db("rename-race");
    let a = std::sync::Arc::new(SqliteStore::open(&path).unwrap());
    let b = std::sync::Arc::new(SqliteStore::open(&path).unwrap());
    let now = t0();
    let later = now + Duration::minutes(20);
    let renamer = {
        let a = a.clone();
        std::thread::spawn(move || {
            let mut failures = Vec::new();
            for n in 0..600u32 {
                let mut from = [1u8; 32];
                from[..4].copy_from_slice(&n.to_be_bytes());
                let mut to = [2u8; 32];
                to[..4].copy_from_slice(&n.to_be_bytes());
                let (from, to) = (StoreKey::from_bytes(from), StoreKey::from_bytes(to));
                block_on(a.create(&from, b"{}", later, now)).unwrap();
                if let Err(e) = block_on(a.rename(&from, &to, now)) {
                    failures.push(e.to_string());
                }
            }
            failures
        })
    };
    let writer = std::thread::spawn(move || {
        let mut failures = Vec::new();
        for n in 0..600u32 {
            let mut key = [3u8; 32];
            key[..4].copy_from_slice(&n.to_be_bytes());
            let key = StoreKey::from_bytes(key);
            let result = block_on(b.create(&key, b"{}", later, now))
                .and_then(|v| block_on(b.save(&key, v, b"{\"n\":1}", later, now)))
                .and_then(|_| block_on(b.delete(&key, now)).map(drop));
            if let Err(e) = result {
                failures.push(e.to_string());
            }
        }
        failures
    });
    let (renames, writes) = (renamer.join().unwrap(), writer.join().unwrap());
    assert!(
        renames.is_empty(),
        "{} renames failed: {:?}",
        renames.len(),
        renames.first()
    );
    assert!(
        writes.is_empty(),
        "{} writes failed: {:?}",
        writes.len(),
        writes.first()
    );
}

/// Another process holds the write lock: this instance's writes wait for it, and its
/// loads do not wait behind those writes (WAL readers need no lock).
#[test]
fn loads_do_not_queue_behind_writes_waiting_for_another_process() {
    let path = temp_db("reads-pass");
    let store = std::sync::Arc::new(SqliteStore::open(&path).unwrap());
    let now = t0();
    let later = now + Duration::minutes(20);
    let key = StoreKey::from_bytes([8; 32]);
    let version = block_on(store.create(&key, b"{}", later, now)).unwrap();

    let mut other = rusqlite::Connection::open(&path).unwrap();
    let lock = other
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    let finished = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (store, finished) = (store.clone(), finished.clone());
        std::thread::spawn(move || {
            let saved = block_on(store.save(&key, version, b"{\"n\":2}", later, now));
            finished.store(true, std::sync::atomic::Ordering::SeqCst);
            saved
        })
    };
    // Give the write time to reach the store's writer and wait on the lock.
    std::thread::sleep(std::time::Duration::from_millis(200));
    for _ in 0..3 {
        let record = block_on(store.load(&key, now)).unwrap().unwrap();
        assert_eq!(record.data, b"{}");
    }
    assert!(
        !finished.load(std::sync::atomic::Ordering::SeqCst),
        "a load waited behind the write (it finished first)"
    );
    lock.commit().unwrap();
    writer.join().unwrap().unwrap();
    assert_eq!(
        block_on(store.load(&key, now)).unwrap().unwrap().data,
        b"{\"n\":2}"
    );
}
