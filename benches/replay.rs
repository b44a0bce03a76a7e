//! Changes that replay (issue 24): what a replaying change costs next to a plain insert,
//! and how many same-session writes per second 16 concurrent writers get on each store.
//!
//! - `change/*`: one request's write of a counter through the session layer on the memory
//!   store: `insert` of a value read first, or `update_or_default`; without a conflict, and
//!   when the commit meets a record another request saved meanwhile (a reload, then the
//!   value written again or the change run again).
//! - `16-writers/*`: 16 writers at once, each a request that increments one session's
//!   counter with `update_or_default`, through two instances (store handles) of each store;
//!   throughput is writes per second. Requests that lost every retry are counted and
//!   printed (the layer answers them `503`).
//!
//! Run: `cargo bench --bench replay --features sqlite,files`; with `postgres,redis,memcached`
//! too and `DATABASE_URL`, `REDIS_URL`, `MEMCACHED_URL` set, also on those stores.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::ring;
use cookie_session::store::{DynStore, FileStore, MemoryStore, SqliteStore};
use cookie_session::{CookieAction, Mode, SessionConfig, SessionHandle, Sessions};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use time::OffsetDateTime;

fn sessions() -> Sessions {
    SessionConfig::new(Mode::Signed, ring())
        .with_name("sid")
        .build()
        .unwrap()
}

/// A session with a counter and a small payload; its cookie.
async fn start(sessions: &Sessions, store: &Arc<dyn DynStore>) -> String {
    let handle = SessionHandle::server_side(
        sessions.load_server_side(std::iter::empty(), OffsetDateTime::now_utc()),
        Arc::clone(store),
    );
    handle.load().await.unwrap();
    for (key, value) in common::payload("small") {
        handle.insert(&key, &value).unwrap();
    }
    handle.insert("n", &0_u64).unwrap();
    match handle
        .commit(OffsetDateTime::now_utc())
        .await
        .unwrap()
        .cookie
    {
        CookieAction::Set(header) => header.split(';').next().unwrap().to_owned(),
        other => panic!("{other:?}"),
    }
}

async fn loaded(sessions: &Sessions, store: &Arc<dyn DynStore>, cookie: &str) -> SessionHandle {
    let handle = SessionHandle::server_side(
        sessions.load_server_side([cookie.as_bytes()], OffsetDateTime::now_utc()),
        Arc::clone(store),
    );
    handle.load().await.unwrap();
    handle
}

#[derive(Clone, Copy)]
enum Write {
    Insert,
    Update,
}

fn write(handle: &SessionHandle, how: Write) {
    match how {
        Write::Insert => {
            let n = handle.get::<u64>("n").unwrap().unwrap_or(0);
            handle.insert("n", &(n + 1)).unwrap();
        }
        Write::Update => handle
            .update_or_default("n", |n: &mut u64| *n += 1)
            .unwrap(),
    }
}

fn change(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sessions = sessions();
    let store: Arc<dyn DynStore> = Arc::new(MemoryStore::new());
    let cookie = rt.block_on(start(&sessions, &store));
    let mut group = c.benchmark_group("change");
    for (name, how) in [("insert", Write::Insert), ("update", Write::Update)] {
        group.bench_function(format!("{name}/no-conflict"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let handle = loaded(&sessions, &store, &cookie).await;
                    write(&handle, how);
                    handle.commit(OffsetDateTime::now_utc()).await.unwrap()
                })
            });
        });
        // The measured request loaded before another one saved: its commit conflicts,
        // reloads, and writes its value again or runs its change again.
        group.bench_function(format!("{name}/conflict"), |b| {
            b.iter_batched(
                || {
                    rt.block_on(async {
                        let late = loaded(&sessions, &store, &cookie).await;
                        let first = loaded(&sessions, &store, &cookie).await;
                        write(&first, Write::Update);
                        first.commit(OffsetDateTime::now_utc()).await.unwrap();
                        late
                    })
                },
                |late| {
                    rt.block_on(async {
                        write(&late, how);
                        late.commit(OffsetDateTime::now_utc()).await.unwrap()
                    })
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

/// Two handles on one backend for each store this build and environment have.
fn stores(rt: &tokio::runtime::Runtime) -> Vec<(&'static str, [Arc<dyn DynStore>; 2])> {
    let dir = std::env::temp_dir().join(format!("cookie-session-replay-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let memory: Arc<dyn DynStore> = Arc::new(MemoryStore::new());
    let db = dir.join("sessions.db");
    let mut stores: Vec<(&'static str, [Arc<dyn DynStore>; 2])> = vec![
        ("memory", [Arc::clone(&memory), memory]),
        (
            "sqlite",
            [
                Arc::new(SqliteStore::open(&db).unwrap()),
                Arc::new(SqliteStore::open(&db).unwrap()),
            ],
        ),
        (
            "files",
            [
                Arc::new(FileStore::open(dir.join("files")).unwrap()),
                Arc::new(FileStore::open(dir.join("files")).unwrap()),
            ],
        ),
    ];
    network_stores(rt, &mut stores);
    stores
}

#[allow(unused_variables, clippy::ptr_arg)]
fn network_stores(
    rt: &tokio::runtime::Runtime,
    stores: &mut Vec<(&'static str, [Arc<dyn DynStore>; 2])>,
) {
    #[cfg(feature = "postgres")]
    if let Ok(url) = std::env::var("DATABASE_URL") {
        use cookie_session::store::{PostgresStore, PostgresTable};
        let table = PostgresTable::new("cs_bench_replay");
        let open = || {
            let store = PostgresStore::connect(&url, table.clone()).unwrap();
            rt.block_on(store.create_table()).unwrap();
            Arc::new(store) as Arc<dyn DynStore>
        };
        stores.push(("postgres", [open(), open()]));
    }
    #[cfg(feature = "redis")]
    if let Ok(url) = std::env::var("REDIS_URL") {
        use cookie_session::store::RedisStore;
        let open = || {
            let store = rt.block_on(RedisStore::connect(&url)).unwrap();
            Arc::new(store.with_prefix("cs-bench-replay:")) as Arc<dyn DynStore>
        };
        stores.push(("redis", [open(), open()]));
    }
    #[cfg(feature = "memcached")]
    if let Ok(url) = std::env::var("MEMCACHED_URL") {
        use cookie_session::store::MemcachedStore;
        let address = url
            .split("://")
            .last()
            .unwrap()
            .trim_end_matches('/')
            .to_owned();
        let open = || {
            Arc::new(MemcachedStore::new(&address).with_prefix("cs-bench-replay:"))
                as Arc<dyn DynStore>
        };
        stores.push(("memcached", [open(), open()]));
    }
}

const WRITERS: usize = 16;

fn writers(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sessions = Arc::new(sessions());
    let mut group = c.benchmark_group("16-writers");
    group.throughput(Throughput::Elements(WRITERS as u64));
    for (name, [a, b]) in stores(&rt) {
        let cookie = Arc::new(rt.block_on(start(&sessions, &a)));
        let (written, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        group.bench_function(name, |bench| {
            bench.iter_custom(|iters| {
                rt.block_on(async {
                    let started = Instant::now();
                    for _ in 0..iters {
                        let tasks: Vec<_> = (0..WRITERS)
                            .map(|i| {
                                let store = Arc::clone(if i % 2 == 0 { &a } else { &b });
                                let (sessions, cookie) =
                                    (Arc::clone(&sessions), Arc::clone(&cookie));
                                let (written, failed) = (Arc::clone(&written), Arc::clone(&failed));
                                tokio::spawn(async move {
                                    let handle = loaded(&sessions, &store, &cookie).await;
                                    write(&handle, Write::Update);
                                    match handle.commit(OffsetDateTime::now_utc()).await {
                                        Ok(_) => written.fetch_add(1, Ordering::Relaxed),
                                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                                    };
                                })
                            })
                            .collect();
                        for task in tasks {
                            task.await.unwrap();
                        }
                    }
                    started.elapsed()
                })
            });
        });
        let (written, failed) = (
            written.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed),
        );
        let counted = rt.block_on(async {
            loaded(&sessions, &a, &cookie)
                .await
                .get::<u64>("n")
                .unwrap()
                .unwrap_or(0)
        });
        println!(
            "16-writers/{name}: {written} writes acknowledged, {failed} lost every retry (503), counter {counted}"
        );
        assert_eq!(
            counted, written as u64,
            "{name}: every acknowledged write counted"
        );
    }
    group.finish();
}

fn config() -> Criterion {
    common::criterion().measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = change, writers
}
criterion_main!(benches);
