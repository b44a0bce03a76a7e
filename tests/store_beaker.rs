//! `BeakerStore` on its own (no Python needed): the store contract as far as Beaker's
//! layout lets it hold, on the `file` backend and (with `REDIS_URL`, `MEMCACHED_URL`,
//! `DATABASE_URL`) `ext:redis`, `ext:memcached` and `ext:database`: versions
//! that compare and set, concurrent writers with one winner, touch that never shortens,
//! rename onto live, expired and emptied targets, delete that is final, Beaker's expiry,
//! values this side cannot read left alone, and keys that are not raw ids refused.
#![cfg(all(
    feature = "beaker",
    feature = "pickle",
    feature = "redis",
    feature = "files",
    feature = "memcached",
    feature = "postgres"
))]
#![allow(clippy::unwrap_used, clippy::panic)]

mod services;

use std::time::Duration;

use cookie_session::beaker::{BeakerCipher, BeakerSerializer, BeakerStored};
use cookie_session::store::{BeakerStore, SessionStore, StoreError, StoreKey, Version};
use time::OffsetDateTime;

const TIMEOUT: Duration = Duration::from_secs(1200);

/// A raw-id key (what `with_beaker_ids` gives the store): 16 random bytes, then zeros.
fn raw_key() -> (StoreKey, String) {
    let id: [u8; 16] = rand::random();
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(&id);
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    (StoreKey::from_bytes(key), hex)
}

fn scratch() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "cookie-session-beaker-store-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
        .create(&dir)
        .unwrap();
    dir
}

fn values() -> [BeakerStored; 2] {
    [
        BeakerStored::new(BeakerSerializer::Pickle),
        BeakerStored::encrypted(BeakerSerializer::Json, "v", "e", BeakerCipher::Gcm).unwrap(),
    ]
}

fn json(data: &[u8]) -> serde_json::Value {
    serde_json::from_slice(data).unwrap()
}

async fn contract(store: &BeakerStore) {
    let now = OffsetDateTime::now_utc();
    let expires = now + TIMEOUT;
    let (a, _) = raw_key();
    let (b, _) = raw_key();

    assert!(store.load(&a, now).await.unwrap().is_none());
    let v1 = store
        .create(&a, br#"{"user":"ada","n":1}"#, expires, now)
        .await
        .unwrap();
    let record = store.load(&a, now).await.unwrap().unwrap();
    assert_eq!(
        json(&record.data),
        serde_json::json!({"user": "ada", "n": 1})
    );
    assert_eq!(record.version, v1);
    assert!((record.expires - expires).abs() < time::Duration::milliseconds(1));
    assert!(matches!(
        store.create(&a, b"{\"x\":1}", expires, now).await,
        Err(StoreError::Duplicate)
    ));

    // Compare-and-set: a stale or made-up version changes nothing.
    assert!(matches!(
        store
            .save(&a, Version(v1.0 ^ 1), b"{\"n\":9}", expires, now)
            .await,
        Err(StoreError::Conflict)
    ));
    let v2 = store
        .save(&a, v1, b"{\"n\":2}", expires, now)
        .await
        .unwrap();
    assert_ne!(v2, v1);
    assert!(matches!(
        store.save(&a, v1, b"{\"n\":3}", expires, now).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        json(&store.load(&a, now).await.unwrap().unwrap().data),
        serde_json::json!({"n": 2})
    );

    // Writers with one expected version, all at once: exactly one wins.
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let data = format!("{{\"w\":{w}}}");
                store.save(&a, v2, data.as_bytes(), expires, now).await
            })
        })
        .collect();
    let mut won = Vec::new();
    for (w, writer) in writers.into_iter().enumerate() {
        match writer.await.unwrap() {
            Ok(_) => won.push(w),
            Err(StoreError::Conflict) => {}
            Err(other) => panic!("writer {w}: {other:?}"),
        }
    }
    assert_eq!(won.len(), 1, "winners: {won:?}");
    let winner = store.load(&a, now).await.unwrap().unwrap();
    assert_eq!(json(&winner.data), serde_json::json!({"w": won[0]}));

    // Touch moves the expiry later, never earlier, and keeps the version.
    let later = expires + time::Duration::minutes(5);
    store.touch(&a, later, now).await.unwrap();
    store.touch(&a, expires, now).await.unwrap();
    let touched = store.load(&a, now).await.unwrap().unwrap();
    assert!((touched.expires - later).abs() < time::Duration::milliseconds(1));
    assert_eq!(touched.version, winner.version);

    // Rename: onto a live record refused, nothing moves; onto a free id moves everything.
    store
        .create(&b, b"{\"other\":true}", expires, now)
        .await
        .unwrap();
    assert!(matches!(
        store.rename(&a, &b, now).await,
        Err(StoreError::Duplicate)
    ));
    assert!(matches!(
        store.rename(&a, &a, now).await,
        Err(StoreError::Duplicate)
    ));
    assert_eq!(
        json(&store.load(&b, now).await.unwrap().unwrap().data),
        serde_json::json!({"other": true})
    );
    let (c, _) = raw_key();
    store.rename(&a, &c, now).await.unwrap();
    assert!(store.load(&a, now).await.unwrap().is_none());
    let moved = store.load(&c, now).await.unwrap().unwrap();
    assert_eq!(moved.version, winner.version);
    assert!(matches!(
        store.rename(&a, &c, now).await,
        Err(StoreError::Gone)
    ));

    // Delete is final: nothing is recreated by a save or touch of the old version.
    assert!(store.delete(&c, now).await.unwrap());
    assert!(!store.delete(&c, now).await.unwrap());
    assert!(matches!(
        store
            .save(&c, moved.version, b"{\"n\":4}", expires, now)
            .await,
        Err(StoreError::Gone)
    ));
    assert!(matches!(
        store.touch(&c, later, now).await,
        Err(StoreError::Gone)
    ));
    assert!(store.load(&c, now).await.unwrap().is_none());

    // Beaker's expiry: `_accessed_time + timeout`.
    let (d, _) = raw_key();
    let then = now - TIMEOUT - Duration::from_secs(60);
    store
        .create(&d, b"{\"old\":1}", then + TIMEOUT, then)
        .await
        .unwrap();
    assert!(store.load(&d, then).await.unwrap().is_some());
    assert!(store.load(&d, now).await.unwrap().is_none());
    assert!(matches!(
        store.touch(&d, expires, now).await,
        Err(StoreError::Gone)
    ));
    assert!(matches!(
        store.rename(&d, &c, now).await,
        Err(StoreError::Gone)
    ));
    // An expired record is replaced by a create, and is a free rename target.
    let (e, _) = raw_key();
    store
        .create(&e, b"{\"old\":2}", then + TIMEOUT, then)
        .await
        .unwrap();
    store.rename(&b, &e, now).await.unwrap();
    assert_eq!(
        json(&store.load(&e, now).await.unwrap().unwrap().data),
        serde_json::json!({"other": true})
    );
    store
        .create(&d, b"{\"new\":1}", expires, now)
        .await
        .unwrap();
    assert_eq!(
        json(&store.load(&d, now).await.unwrap().unwrap().data),
        serde_json::json!({"new": 1})
    );

    // Not Beaker's key form: refused on every operation, never a silent miss.
    let hashed = StoreKey::from_bytes([7; 32]);
    assert!(matches!(
        store.load(&hashed, now).await,
        Err(StoreError::Misconfigured(_))
    ));
    assert!(matches!(
        store.create(&hashed, b"{}", expires, now).await,
        Err(StoreError::Misconfigured(_))
    ));
    // Data that is not a session map is refused before anything is written.
    let (f, _) = raw_key();
    assert!(matches!(
        store.create(&f, b"[1]", expires, now).await,
        Err(StoreError::Corrupt)
    ));
    assert!(store.load(&f, now).await.unwrap().is_none());
    // No user index in Beaker's layout.
    assert!(matches!(
        store.set_user(&d, "ada", now).await,
        Err(StoreError::Unsupported)
    ));
    assert_eq!(store.sweep(now, 100).await.unwrap(), 0);
}

/// A value this side cannot read (another key, or not Beaker's) is neither loaded as data
/// nor replaced.
async fn leaves_unreadable_values_alone(store: &BeakerStore, plant: impl AsyncFn(&str, &[u8])) {
    let now = OffsetDateTime::now_utc();
    let (key, id) = raw_key();
    plant(&id, b"bm90IGEgcGlja2xl").await; // base64 of "not a pickle"
    let record = store.load(&key, now).await.unwrap().unwrap();
    assert!(serde_json::from_slice::<serde_json::Value>(&record.data).is_err());
    assert!(matches!(
        store.create(&key, b"{\"x\":1}", now + TIMEOUT, now).await,
        Err(StoreError::Duplicate)
    ));
    assert!(matches!(
        store
            .save(&key, record.version, b"{\"x\":1}", now + TIMEOUT, now)
            .await,
        Err(StoreError::Gone)
    ));
    assert!(matches!(
        store.touch(&key, now + TIMEOUT, now).await,
        Err(StoreError::Gone)
    ));
    assert!(matches!(
        store.rename(&key, &raw_key().0, now).await,
        Err(StoreError::Gone)
    ));
    // ... and it is still there, as it was.
    assert_eq!(
        store.load(&key, now).await.unwrap().unwrap().data,
        record.data
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn files_keep_the_contract() {
    for value in values() {
        let dir = scratch();
        let store = BeakerStore::files(&dir, value, TIMEOUT).unwrap();
        contract(&store).await;
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_keeps_the_contract() {
    let Some(url) = services::url("REDIS_URL") else {
        return;
    };
    for value in values() {
        let store = BeakerStore::redis(&url, value, TIMEOUT).await.unwrap();
        contract(&store).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn files_leave_unreadable_values_alone() {
    let dir = scratch();
    let store =
        BeakerStore::files(&dir, BeakerStored::new(BeakerSerializer::Pickle), TIMEOUT).unwrap();
    let root = dir.clone();
    leaves_unreadable_values_alone(&store, async |id: &str, value: &[u8]| {
        let dir = root.join("container_file").join(&id[..1]).join(&id[..2]);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{id}.cache"));
        let mut hash = serde_json::Map::new();
        hash.insert(
            "session".into(),
            String::from_utf8(value.to_vec()).unwrap().into(),
        );
        std::fs::write(path, cookie_session::pickle::to_pickle(&hash).unwrap()).unwrap();
    })
    .await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_leaves_unreadable_values_alone() {
    let Some(url) = services::url("REDIS_URL") else {
        return;
    };
    let store = BeakerStore::redis(&url, BeakerStored::new(BeakerSerializer::Pickle), TIMEOUT)
        .await
        .unwrap();
    let client = redis::Client::open(url).unwrap();
    leaves_unreadable_values_alone(&store, async |id: &str, value: &[u8]| {
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let pickled =
            cookie_session::pickle::text_to_pickle(std::str::from_utf8(value).unwrap()).unwrap();
        let () = redis::cmd("SET")
            .arg(format!("beaker_cache:{id}:session"))
            .arg(pickled)
            .arg("EX")
            .arg(60)
            .query_async(&mut conn)
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memcached_keeps_the_contract() {
    if services::url("MEMCACHED_URL").is_none() {
        return;
    }
    for value in values() {
        let store = BeakerStore::memcached(&services::memcached_address(), value, TIMEOUT);
        contract(&store).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memcached_leaves_unreadable_values_alone() {
    if services::url("MEMCACHED_URL").is_none() {
        return;
    }
    let address = services::memcached_address();
    let store = BeakerStore::memcached(
        &address,
        BeakerStored::new(BeakerSerializer::Pickle),
        TIMEOUT,
    );
    leaves_unreadable_values_alone(&store, async |id: &str, value: &[u8]| {
        use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
        let stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        let mut stream = tokio::io::BufReader::new(stream);
        let mut request = format!("set {id}_session 16 60 {}\r\n", value.len()).into_bytes();
        request.extend_from_slice(value);
        request.extend_from_slice(b"\r\n");
        stream.get_mut().write_all(&request).await.unwrap();
        let mut line = String::new();
        stream.read_line(&mut line).await.unwrap();
        assert_eq!(line, "STORED\r\n");
    })
    .await;
}

/// Beaker's `ext:database` table, as SQLAlchemy creates it, under a name of its own.
async fn beaker_table(url: &str) -> (tokio_postgres::Client, String) {
    let client = services::postgres_client(url).await;
    let table = services::unique_name("cs_beaker");
    client
        .batch_execute(&format!(
            "CREATE TABLE {table} (id SERIAL PRIMARY KEY, namespace VARCHAR(255) NOT NULL UNIQUE, \
             accessed TIMESTAMP NOT NULL, created TIMESTAMP NOT NULL, data BYTEA NOT NULL)"
        ))
        .await
        .unwrap();
    (client, table)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_keeps_the_contract() {
    let Some(url) = services::url("DATABASE_URL") else {
        return;
    };
    let (client, table) = beaker_table(&url).await;
    for value in values() {
        let store = BeakerStore::database(&url, &table, value, TIMEOUT).unwrap();
        contract(&store).await;
    }
    client
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_leaves_unreadable_values_alone() {
    let Some(url) = services::url("DATABASE_URL") else {
        return;
    };
    let (client, table) = beaker_table(&url).await;
    let store = BeakerStore::database(
        &url,
        &table,
        BeakerStored::new(BeakerSerializer::Pickle),
        TIMEOUT,
    )
    .unwrap();
    let (c, t) = (&client, &table);
    leaves_unreadable_values_alone(&store, async |id: &str, value: &[u8]| {
        let mut hash = serde_json::Map::new();
        hash.insert(
            "session".into(),
            String::from_utf8(value.to_vec()).unwrap().into(),
        );
        let data = cookie_session::pickle::to_pickle(&hash).unwrap();
        c.execute(
            &format!(
                "INSERT INTO {t} (namespace, accessed, created, data) VALUES ($1, now(), now(), $2)"
            ),
            &[&id, &data],
        )
        .await
        .unwrap();
    })
    .await;
    // A table that is not there is the operator's to fix, said so.
    let missing = BeakerStore::database(
        &url,
        "cs_no_such_table",
        BeakerStored::new(BeakerSerializer::Pickle),
        TIMEOUT,
    )
    .unwrap();
    let (key, _) = raw_key();
    let error = missing
        .load(&key, OffsetDateTime::now_utc())
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Misconfigured(_)), "{error:?}");
    assert!(matches!(
        BeakerStore::database(
            &url,
            "t; DROP TABLE x",
            BeakerStored::new(BeakerSerializer::Pickle),
            TIMEOUT
        ),
        Err(StoreError::Misconfigured(_))
    ));
    client
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
}
