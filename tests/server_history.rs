//! The concurrent history checker (`server::history`) on every store: concurrent
//! read-modify-write requests of one visitor through two instances lose nothing that was
//! acknowledged, duplicate nothing, and leave no trace of a rejected request. And the
//! checker catches the two ways of breaking that: a commit that writes values back instead
//! of replaying the change, and a store that ignores versions.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;
mod services;

use std::sync::Arc;

use cookie_session::server::history::{Change, Checker, History, Violation};
use cookie_session::store::{
    DynStore, FileStore, MemcachedStore, MemoryStore, Record, SessionStore, SqliteStore,
    StoreError, StoreKey, Version, block_on,
};
use cookie_session::time::OffsetDateTime;

const TASKS: u64 = 24;

fn kept_the_promise(history: Result<History, Violation>, store: &str) -> History {
    let history = history.unwrap_or_else(|v| panic!("{store}: {v}"));
    assert_eq!(
        history.acknowledged + history.rejected,
        usize::try_from(TASKS).unwrap()
    );
    // Not a vacuous pass: most requests got through their conflicts.
    assert!(
        history.acknowledged >= usize::try_from(TASKS / 2).unwrap(),
        "{store}: {history:?}"
    );
    history
}

#[test]
fn memory() {
    let store = Arc::new(MemoryStore::new());
    // One handle twice: the memory store has no second instance.
    kept_the_promise(
        block_on(Checker::new(TASKS).run(store.clone(), store)),
        "memory",
    );
}

#[test]
fn sqlite_two_connections_on_one_file() {
    let dir = std::env::temp_dir().join(format!("cookie-session-history-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sessions.db");
    let (a, b) = (
        SqliteStore::open(&path).unwrap(),
        SqliteStore::open(&path).unwrap(),
    );
    kept_the_promise(
        block_on(Checker::new(TASKS).run(Arc::new(a), Arc::new(b))),
        "sqlite",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn files_two_handles_on_one_directory() {
    let dir = std::env::temp_dir().join(format!(
        "cookie-session-history-files-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let (a, b) = (
        FileStore::open(&dir).unwrap(),
        FileStore::open(&dir).unwrap(),
    );
    kept_the_promise(
        block_on(Checker::new(TASKS).run(Arc::new(a), Arc::new(b))),
        "files",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn postgres_two_pools() {
    services::with_postgres(async {
        let (a, b) = (
            services::postgres_store().await,
            services::postgres_store().await,
        );
        kept_the_promise(
            Checker::new(TASKS).run(Arc::new(a), Arc::new(b)).await,
            "postgres",
        );
        Ok::<(), String>(())
    })
    .unwrap();
}

#[test]
fn redis_two_connections() {
    services::with_redis(async {
        let (a, b) = (services::redis_store().await, services::redis_store().await);
        kept_the_promise(
            Checker::new(TASKS).run(Arc::new(a), Arc::new(b)).await,
            "redis",
        );
        Ok::<(), String>(())
    })
    .unwrap();
}

#[test]
fn memcached_two_pools() {
    services::with_memcached(async {
        let (a, b): (MemcachedStore, MemcachedStore) = (
            services::memcached_store().await,
            services::memcached_store().await,
        );
        kept_the_promise(
            Checker::new(TASKS).run(Arc::new(a), Arc::new(b)).await,
            "memcached",
        );
        Ok::<(), String>(())
    })
    .unwrap();
}

/// A request that reads, computes and inserts (the values a commit that replays values
/// instead of changes would write) loses updates: the checker says which.
#[test]
fn the_checker_catches_values_written_back_instead_of_changes_replayed() {
    let store = Arc::new(MemoryStore::new());
    let result = block_on(
        Checker::new(TASKS)
            .with_change(Change::ReadThenInsert)
            .run(store.clone(), store),
    );
    assert!(
        matches!(result, Err(Violation::Lost(_) | Violation::Counter { .. })),
        "{result:?}"
    );
}

/// A store whose `save` ignores the version it is given (no compare-and-set): the last
/// save wins and the others' appends vanish.
struct IgnoresVersions(Arc<MemoryStore>);

impl SessionStore for IgnoresVersions {
    fn load(
        &self,
        key: &StoreKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send {
        self.0.load(key, now)
    }

    fn create(
        &self,
        key: &StoreKey,
        data: &[u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Version, StoreError>> + Send {
        self.0.create(key, data, expires, now)
    }

    fn save(
        &self,
        key: &StoreKey,
        _expected: Version,
        data: &[u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Version, StoreError>> + Send {
        let (key, data) = (*key, data.to_vec());
        async move {
            let current = self.0.load(&key, now).await?.ok_or(StoreError::Gone)?;
            self.0
                .save(&key, current.version, &data, expires, now)
                .await
        }
    }

    fn touch(
        &self,
        key: &StoreKey,
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.0.touch(key, expires, now)
    }

    fn rename(
        &self,
        from: &StoreKey,
        to: &StoreKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.0.rename(from, to, now)
    }

    fn delete(
        &self,
        key: &StoreKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.0.delete(key, now)
    }

    fn sweep(
        &self,
        now: OffsetDateTime,
        max: usize,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send {
        self.0.sweep(now, max)
    }
}

#[test]
fn the_checker_catches_a_store_that_ignores_versions() {
    let memory = Arc::new(MemoryStore::new());
    let (a, b): (Arc<dyn DynStore>, Arc<dyn DynStore>) = (
        Arc::new(IgnoresVersions(memory.clone())),
        Arc::new(IgnoresVersions(memory)),
    );
    let result = block_on(Checker::new(TASKS).run(a, b));
    assert!(
        matches!(result, Err(Violation::Lost(_) | Violation::Counter { .. })),
        "{result:?}"
    );
}
