//! The concurrent history checker (`server::history`) on every store: concurrent
//! read-modify-write requests of one visitor through two instances lose nothing that was
//! acknowledged, duplicate nothing, and leave no trace of a rejected request. And the
//! checker catches the two ways of breaking that: a commit that writes values back instead
//! of replaying the change, and a store that ignores versions.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;
mod services;

use std::sync::Arc;

use common::faulty::{Fault, Faulty};
use cookie_session::server::history::{Change, Checker, History, Violation};
use cookie_session::store::{
    DynStore, FileStore, MemcachedStore, MemoryStore, SqliteStore, block_on,
};

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

#[cfg(feature = "redis")]
#[test]
fn redis_cluster_two_connections() {
    services::with_redis_cluster(async {
        let (a, b) = (
            services::redis_cluster_store().await,
            services::redis_cluster_store().await,
        );
        kept_the_promise(
            Checker::new(TASKS).run(Arc::new(a), Arc::new(b)).await,
            "redis cluster",
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

#[test]
fn the_checker_catches_a_store_that_ignores_versions() {
    // A store whose `save` ignores the version it is given: no compare-and-set.
    let store: Arc<dyn DynStore> = Arc::new(Faulty::new(Fault::IgnoresVersions));
    let result = block_on(Checker::new(TASKS).run(store.clone(), store));
    assert!(
        matches!(result, Err(Violation::Lost(_) | Violation::Counter { .. })),
        "{result:?}"
    );
}
