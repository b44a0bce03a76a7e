//! `FileStore`: the conformance suite, crash leftovers, and files that are not records.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;

use cookie_session::store::{FileStore, SessionStore, StoreKey, block_on};
use cookie_session::time::{Duration, OffsetDateTime};

/// A fresh directory under the system's temporary directory (the conformance checks
/// cannot remove theirs: directories of runs over an hour old are removed here).
fn scratch() -> PathBuf {
    if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
        for entry in entries.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 3600);
            let ours = entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with("cookie-session-files-"));
            if ours && old {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let dir = std::env::temp_dir().join(format!(
        "cookie-session-files-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

cookie_session::store_conformance!(FileStore::open(scratch()).unwrap());

#[test]
fn files_that_are_not_records_load_as_absent_and_are_replaced_by_create() {
    let dir = scratch();
    let store = FileStore::open(&dir).unwrap();
    let key = StoreKey::from_bytes([0x5a; 32]);
    let now = OffsetDateTime::now_utc();
    std::fs::write(dir.join(format!("{key}.session")), b"garbage").unwrap();
    assert_eq!(block_on(store.load(&key, now)).unwrap(), None);
    block_on(store.create(&key, b"{}", now + Duration::minutes(5), now)).unwrap();
    assert_eq!(
        block_on(store.load(&key, now)).unwrap().unwrap().data,
        b"{}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn records_are_named_by_store_key_and_no_temporary_file_is_left() {
    let dir = scratch();
    let store = FileStore::open(&dir).unwrap();
    let now = OffsetDateTime::now_utc();
    let key = StoreKey::from_bytes([0x11; 32]);
    let v = block_on(store.create(&key, b"{\"a\":1}", now + Duration::minutes(5), now)).unwrap();
    block_on(store.save(&key, v, b"{\"a\":2}", now + Duration::minutes(5), now)).unwrap();
    // A stale save writes its temporary file, loses, and removes it.
    assert!(block_on(store.save(&key, v, b"{\"a\":3}", now + Duration::minutes(5), now)).is_err());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with(".lock-"))
        .collect();
    names.sort();
    assert_eq!(names, [format!("{key}.session")]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn synced_writes_round_trip_and_a_torn_record_is_no_session() {
    let dir = scratch();
    let store = FileStore::open(&dir).unwrap().with_synced_writes(true);
    let now = OffsetDateTime::now_utc();
    let key = StoreKey::from_bytes([0x22; 32]);
    let v = block_on(store.create(&key, b"{\"a\":1}", now + Duration::minutes(5), now)).unwrap();
    block_on(store.save(&key, v, b"{\"a\":2}", now + Duration::minutes(5), now)).unwrap();
    assert_eq!(
        block_on(store.load(&key, now)).unwrap().unwrap().data,
        b"{\"a\":2}"
    );
    // What a power loss without synced writes can leave: the header and part of the data.
    let path = dir.join(format!("{key}.session"));
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
    std::fs::write(
        dir.join(format!("{}.session", StoreKey::from_bytes([0x33; 32]))),
        &bytes[..10],
    )
    .unwrap();
    // The store hands back what is there; the session layer refuses a record that is not
    // a whole JSON object, so the visitor gets a new session, never a partial one.
    let torn = block_on(store.load(&key, now)).unwrap().unwrap();
    assert!(serde_json::from_slice::<serde_json::Value>(&torn.data).is_err());
    assert_eq!(
        block_on(store.load(&StoreKey::from_bytes([0x33; 32]), now)).unwrap(),
        None
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
