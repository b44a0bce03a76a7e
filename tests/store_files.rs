//! `FileStore`: the conformance suite, crash leftovers, files that are not records, who
//! may read the files, and locks held by another process.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;

use cookie_session::store::{FileStore, SessionStore, StoreError, StoreKey, block_on};
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
    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
        .create(&dir)
        .unwrap();
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

fn mode(path: &std::path::Path) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).unwrap().permissions())
        & 0o7777
}

/// The directory is 0700 and every file in it (records, lock files) 0600: no other local
/// user reads a session or holds a lock.
#[test]
fn only_the_processs_user_can_read_the_directory_and_its_files() {
    let parent = scratch();
    // A directory the store creates, and one that exists with the usual 0755.
    let fresh = parent.join("fresh");
    let existing = parent.join("existing");
    std::fs::create_dir(&existing).unwrap();
    std::fs::set_permissions(
        &existing,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    for dir in [&fresh, &existing] {
        let store = FileStore::open(dir).unwrap();
        let now = OffsetDateTime::now_utc();
        for n in 0..40u8 {
            let key = StoreKey::from_bytes([n.wrapping_mul(7); 32]);
            let version =
                block_on(store.create(&key, b"{}", now + Duration::minutes(5), now)).unwrap();
            block_on(store.save(&key, version, b"{\"a\":1}", now + Duration::minutes(9), now))
                .unwrap();
        }
        let from = StoreKey::from_bytes([0; 32]);
        block_on(store.rename(&from, &StoreKey::from_bytes([0xef; 32]), now)).unwrap();
        assert_eq!(mode(dir), 0o700, "{}", dir.display());
        let mut files = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            assert_eq!(mode(&path), 0o600, "{}", path.display());
            files += 1;
        }
        assert!(files > 40, "records and lock files: {files}");
    }
    std::fs::remove_dir_all(&parent).unwrap();
}

#[test]
fn a_directory_other_users_may_write_is_refused() {
    let parent = scratch();
    for bits in [0o777, 0o775, 0o757, 0o1777] {
        let dir = parent.join(format!("d{bits:o}"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(bits)).unwrap();
        let error = FileStore::open(&dir).unwrap_err();
        assert!(
            matches!(error, StoreError::Misconfigured(_)),
            "{bits:o}: {error:?}"
        );
        assert!(
            error.to_string().contains("writable by other users"),
            "{error}"
        );
    }
    std::fs::remove_dir_all(&parent).unwrap();
}

#[test]
fn a_directory_another_user_owns_is_refused() {
    let parent = scratch();
    let probe = parent.join("probe");
    std::fs::write(&probe, b"").unwrap();
    let me = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&probe).unwrap());
    let dir = if me == 0 {
        // As root: a directory given to `nobody`.
        let dir = parent.join("nobodys");
        std::fs::create_dir(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(65_534), Some(65_534)).unwrap();
        dir
    } else {
        // Otherwise: root's own.
        PathBuf::from("/")
    };
    let error = FileStore::open(&dir).unwrap_err();
    assert!(matches!(error, StoreError::Misconfigured(_)), "{error:?}");
    assert!(error.to_string().contains("belongs to user"), "{error}");
    std::fs::remove_dir_all(&parent).unwrap();
}

/// Another process holds every lock file's `flock` and never lets go: operations fail with
/// `Unavailable` after the lock timeout instead of hanging, and work again once it lets go.
#[test]
fn a_lock_held_elsewhere_is_an_error_after_the_timeout_not_a_hang() {
    let dir = scratch();
    let store = FileStore::open(&dir)
        .unwrap()
        .with_lock_timeout(std::time::Duration::from_millis(200));
    let now = OffsetDateTime::now_utc();
    let key = StoreKey::from_bytes([0x42; 32]);
    let version = block_on(store.create(&key, b"{}", now + Duration::minutes(5), now)).unwrap();
    let held: Vec<std::fs::File> = (0..16)
        .map(|stripe| {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .open(dir.join(format!(".lock-{stripe:x}")))
                .or_else(|_| {
                    std::fs::OpenOptions::new()
                        .create(true)
                        .truncate(false)
                        .write(true)
                        .open(dir.join(format!(".lock-{stripe:x}")))
                })
                .unwrap();
            file.lock().unwrap();
            file
        })
        .collect();
    let later = now + Duration::seconds(1);
    let other = StoreKey::from_bytes([0x17; 32]);
    let results = [
        block_on(store.save(&key, version, b"{}", later + Duration::minutes(5), later)).map(drop),
        block_on(store.create(&other, b"{}", later + Duration::minutes(5), later)).map(drop),
        block_on(store.delete(&key, later)).map(drop),
        block_on(store.rename(&key, &other, later)),
    ];
    for result in results {
        let error = result.unwrap_err();
        assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
        let source = std::error::Error::source(&error).unwrap().to_string();
        assert!(source.contains("locked by another process"), "{source}");
    }
    // Loads take no lock.
    assert!(block_on(store.load(&key, later)).unwrap().is_some());
    drop(held);
    block_on(store.save(&key, version, b"{}", later + Duration::minutes(5), later)).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
