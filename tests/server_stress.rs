//! 64 concurrent requests on one server-side session, each writing its own key, against
//! each store of this crate: no update is lost, versions increase by exactly one per
//! successful save, none needs a retry of its own (commits in one process take turns), and a
//! session deleted meanwhile never comes back.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;
#[cfg(any(feature = "postgres", feature = "redis", feature = "memcached"))]
mod services;

use std::sync::{Arc, Barrier};

use common::{T0, at, key};
use cookie_session::store::{DynStore, MemoryStore, SessionStore, block_on};
use cookie_session::time::OffsetDateTime;
use cookie_session::{
    CookieAction, KeyRing, Mode, SessionConfig, SessionError, SessionHandle, Sessions,
};

const TASKS: usize = 64;

fn sessions() -> Sessions {
    SessionConfig::new(Mode::Signed, KeyRing::new(key(1)))
        .with_name("sid")
        .build()
        .unwrap()
}

/// One request that writes `key`; retried as a client would when the store reports that
/// the record kept changing under it (after the layer's own retries).
fn write_own_key(
    sessions: &Sessions,
    store: &Arc<dyn DynStore>,
    cookie: &str,
    task: usize,
    t0: i64,
) -> usize {
    for attempt in 1.. {
        let handle = SessionHandle::server_side(
            sessions.load_server_side([cookie.as_bytes()], at(t0 + 1)),
            store.clone(),
        );
        block_on(handle.load()).unwrap();
        handle.insert(&format!("task-{task:02}"), &task).unwrap();
        match block_on(handle.commit(at(t0 + 1))) {
            Ok(decision) => {
                assert_eq!(decision.cookie, CookieAction::Keep);
                return attempt;
            }
            Err(SessionError::Stored(cookie_session::store::StoreError::Conflict)) => {}
            Err(other) => panic!("task {task}: {other:?}"),
        }
    }
    unreachable!()
}

/// The stress run at the frozen clock `T0`, for stores that keep no clock of their own.
fn stress(store: Arc<dyn DynStore>) {
    stress_at(store, T0, None);
}

/// The stress run with its clock starting at `t0` (the real time, for a server that also
/// expires records on its own clock), every thread inside `runtime` when the store needs
/// one.
fn stress_at(store: Arc<dyn DynStore>, t0: i64, runtime: Option<&tokio::runtime::Handle>) {
    let _entered = runtime.map(tokio::runtime::Handle::enter);
    let sessions = sessions();
    let first = SessionHandle::server_side(sessions.load_server_side([], at(t0)), store.clone());
    block_on(first.load()).unwrap();
    first.insert("user", "ada").unwrap();
    let decision = block_on(first.commit(at(t0))).unwrap();
    let CookieAction::Set(header) = &decision.cookie else {
        panic!("a new session sets a cookie")
    };
    let cookie = header.split(';').next().unwrap().to_owned();

    let start = Arc::new(Barrier::new(TASKS));
    let attempts: Vec<usize> = std::thread::scope(|scope| {
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| {
                let (sessions, store, cookie, start) = (&sessions, &store, &cookie, start.clone());
                scope.spawn(move || {
                    let _entered = runtime.map(tokio::runtime::Handle::enter);
                    start.wait();
                    write_own_key(sessions, store, cookie, task, t0)
                })
            })
            .collect();
        tasks.into_iter().map(|t| t.join().unwrap()).collect()
    });

    let session = sessions.load_server_side([cookie.as_bytes()], at(t0 + 2));
    let record = block_on(store.load(&session.store_key().unwrap(), at(t0 + 2)))
        .unwrap()
        .unwrap();
    let data: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&record.data).unwrap();
    for task in 0..TASKS {
        assert_eq!(
            data[&format!("task-{task:02}")],
            task,
            "task {task}'s update was lost"
        );
    }
    assert_eq!(data["user"], "ada");
    assert_eq!(
        record.version.0,
        1 + TASKS as u64,
        "one version per successful save, none skipped or repeated"
    );
    let retried = attempts.iter().filter(|&&a| a > 1).count();
    eprintln!("{TASKS} writers: {retried} needed a request-level retry");
    // The 64 commits take turns within this process: each meets at most the versions
    // saved before its turn, so one reload settles it and none runs out of retries.
    assert_eq!(
        retried, 0,
        "commits of one process lost their retries to each other"
    );

    // A logout while 64 more requests are in flight: none of them brings the session back.
    let loaded: Vec<SessionHandle> = (0..TASKS)
        .map(|_| {
            let h = SessionHandle::server_side(
                sessions.load_server_side([cookie.as_bytes()], at(t0 + 3)),
                store.clone(),
            );
            block_on(h.load()).unwrap();
            h
        })
        .collect();
    let logout = SessionHandle::server_side(
        sessions.load_server_side([cookie.as_bytes()], at(t0 + 3)),
        store.clone(),
    );
    block_on(logout.load()).unwrap();
    logout.delete().unwrap();
    block_on(logout.commit(at(t0 + 3))).unwrap();
    std::thread::scope(|scope| {
        for (task, handle) in loaded.into_iter().enumerate() {
            scope.spawn(move || {
                let _entered = runtime.map(tokio::runtime::Handle::enter);
                handle.insert("late", &task).unwrap();
                let decision = block_on(handle.commit(at(t0 + 4))).unwrap();
                // Changes dropped, and no Set-Cookie that could overtake another's.
                assert_eq!(decision.cookie, CookieAction::Keep, "{decision:?}");
            });
        }
    });
    let session = sessions.load_server_side([cookie.as_bytes()], at(t0 + 5));
    assert!(
        block_on(store.load(&session.store_key().unwrap(), at(t0 + 5)))
            .unwrap()
            .is_none()
    );
}

#[test]
fn memory_store_under_64_concurrent_writers() {
    stress(Arc::new(MemoryStore::new()));
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_store_under_64_concurrent_writers() {
    let dir = std::env::temp_dir().join(format!("cookie-session-stress-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    stress(Arc::new(
        cookie_session::store::SqliteStore::open(dir.join("s.db")).unwrap(),
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(feature = "files")]
#[test]
fn file_store_under_64_concurrent_writers() {
    let dir = std::env::temp_dir().join(format!(
        "cookie-session-stress-files-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    stress(Arc::new(
        cookie_session::store::FileStore::open(&dir).unwrap(),
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Now, to the second: the clock for a server with its own expiry.
fn real_now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// The stress run on a store that needs the test's runtime (a network client), its
/// threads entered into that runtime, the clock at the real time.
#[cfg(any(feature = "postgres", feature = "redis", feature = "memcached"))]
async fn stress_networked(store: impl DynStore) -> Result<(), String> {
    let handle = tokio::runtime::Handle::current();
    let store: Arc<dyn DynStore> = Arc::new(store);
    tokio::task::spawn_blocking(move || stress_at(store, real_now(), Some(&handle)))
        .await
        .map_err(|e| e.to_string())
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_store_under_64_concurrent_writers() {
    services::with_postgres(async { stress_networked(services::postgres_store().await).await })
        .unwrap();
}

#[cfg(feature = "redis")]
#[test]
fn redis_store_under_64_concurrent_writers() {
    services::with_redis(async { stress_networked(services::redis_store().await).await }).unwrap();
}

#[cfg(feature = "redis")]
#[test]
fn redis_cluster_store_under_64_concurrent_writers() {
    services::with_redis_cluster(async {
        stress_networked(services::redis_cluster_store().await).await
    })
    .unwrap();
}

#[cfg(feature = "memcached")]
#[test]
fn memcached_store_under_64_concurrent_writers() {
    services::with_memcached(async { stress_networked(services::memcached_store().await).await })
        .unwrap();
}

/// Counts loads and saves; each save takes 2 ms, as over a network, so that concurrent
/// commits queue for their turn.
#[derive(Default)]
struct Slow {
    loads: std::sync::atomic::AtomicUsize,
    saves: std::sync::atomic::AtomicUsize,
}

impl common::Hook for Slow {
    fn before(&self, op: &'static str) -> Result<(), cookie_session::store::StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        match op {
            "load" => drop(self.loads.fetch_add(1, SeqCst)),
            "save" => {
                self.saves.fetch_add(1, SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            _ => {}
        }
        Ok(())
    }
}

/// Sixteen requests of one session, all loaded before any commits, commit at once through
/// one store handle: each commit takes its turn and builds on the record the one before it
/// wrote, so every request costs one load and one save (no save that fails on an old
/// version, no reload), and no update is lost.
#[test]
fn contended_commits_build_on_the_turn_before_without_a_reload() {
    use std::sync::atomic::Ordering::SeqCst;
    const WRITERS: usize = 16;
    let hooked = Arc::new(common::Hooked::<Slow>::default());
    let store: Arc<dyn DynStore> = hooked.clone();
    let sessions = sessions();
    let first = SessionHandle::server_side(sessions.load_server_side([], at(T0)), store.clone());
    block_on(first.load()).unwrap();
    first.insert("user", "ada").unwrap();
    let CookieAction::Set(header) = block_on(first.commit(at(T0))).unwrap().cookie else {
        panic!("a new session sets a cookie")
    };
    let cookie = header.split(';').next().unwrap().to_owned();
    let (loads, saves) = (
        hooked.hook.loads.load(SeqCst),
        hooked.hook.saves.load(SeqCst),
    );

    let loaded = Arc::new(Barrier::new(WRITERS));
    std::thread::scope(|scope| {
        for task in 0..WRITERS {
            let (sessions, store, cookie, loaded) = (&sessions, &store, &cookie, loaded.clone());
            scope.spawn(move || {
                let handle = SessionHandle::server_side(
                    sessions.load_server_side([cookie.as_bytes()], at(T0 + 1)),
                    store.clone(),
                );
                block_on(handle.load()).unwrap();
                handle
                    .update_or_default("count", |n: &mut u64| *n += 1)
                    .unwrap();
                handle.insert(&format!("task-{task:02}"), &task).unwrap();
                loaded.wait();
                block_on(handle.commit(at(T0 + 1))).unwrap();
            });
        }
    });
    assert_eq!(
        hooked.hook.loads.load(SeqCst) - loads,
        WRITERS,
        "a reload happened"
    );
    assert_eq!(
        hooked.hook.saves.load(SeqCst) - saves,
        WRITERS,
        "a save failed"
    );
    let session = sessions.load_server_side([cookie.as_bytes()], at(T0 + 2));
    let record = block_on(store.load(&session.store_key().unwrap(), at(T0 + 2)))
        .unwrap()
        .unwrap();
    let data: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&record.data).unwrap();
    assert_eq!(data["count"], WRITERS as u64);
    for task in 0..WRITERS {
        assert_eq!(data[&format!("task-{task:02}")], task);
    }
    assert_eq!(record.version.0, 1 + WRITERS as u64);
}
