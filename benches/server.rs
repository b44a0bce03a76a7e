//! Server-side sessions per request, through the whole tower layer and an axum router:
//! untouched / read one key / write one key, for our memory and SQLite stores next to
//! tower-sessions' `MemoryStore`, on the small and medium payloads, in one run; and the
//! same routes with no session layer (`bare`), so each layer's own cost can be read off.
//! Run: `cargo bench --bench server --features axum,sqlite`; with `--features
//! axum,sqlite,postgres,redis` and `DATABASE_URL` / `REDIS_URL` set, also on PostgreSQL and
//! Redis.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "common.rs"]
mod common;

use std::hint::black_box;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response};
use axum::routing::get;
use common::{Session, payload, ring};
use cookie_session::store::{MemoryStore, SqliteStore};
use cookie_session::tower::SessionLayer;
use cookie_session::{Mode, SessionConfig, SessionHandle};
use criterion::{Criterion, criterion_group, criterion_main};
use tower::ServiceExt as _;

fn ours(store_kind: &str) -> Router {
    ours_on(match store_kind {
        "memory" => std::sync::Arc::new(MemoryStore::new()),
        // A file, as an application's (and as tower-sessions' in `bench/sqlite-peer/`).
        _ => {
            let dir =
                std::env::temp_dir().join(format!("cookie-session-bench-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(format!("{}.db", rand_suffix()));
            std::sync::Arc::new(SqliteStore::open(path).unwrap())
        }
    })
}

/// A name no other store of this run uses.
fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed).to_string()
}

fn ours_on(store: std::sync::Arc<dyn cookie_session::store::DynStore>) -> Router {
    let sessions = SessionConfig::new(Mode::Signed, ring())
        .with_name("sid")
        .with_insecure_http_for_local_development()
        .build()
        .unwrap();
    let layer = SessionLayer::new(sessions).with_store(store);
    Router::new()
        .route("/untouched", get(|| async { "ok" }))
        .route(
            "/read",
            get(|s: SessionHandle| async move { format!("{:?}", s.get::<u64>("user_id")) }),
        )
        .route(
            "/write",
            get(|s: SessionHandle| async move {
                let n = s.get::<u64>("n").unwrap().unwrap_or(0);
                s.insert("n", &(n + 1)).unwrap();
                "ok"
            }),
        )
        .route(
            "/fill",
            get(|s: SessionHandle, body: String| async move {
                let data: Session = serde_json::from_str(&body).unwrap();
                for (k, v) in data {
                    s.insert(&k, &v).unwrap();
                }
                "ok"
            }),
        )
        .layer(layer)
}

fn theirs() -> Router {
    use tower_sessions::{MemoryStore, Session as Ts, SessionManagerLayer};
    Router::new()
        .route("/untouched", get(|| async { "ok" }))
        .route(
            "/read",
            get(|s: Ts| async move { format!("{:?}", s.get::<u64>("user_id").await.unwrap()) }),
        )
        .route(
            "/write",
            get(|s: Ts| async move {
                let n = s.get::<u64>("n").await.unwrap().unwrap_or(0);
                s.insert("n", n + 1).await.unwrap();
                "ok"
            }),
        )
        .route(
            "/fill",
            get(|s: Ts, body: String| async move {
                let data: Session = serde_json::from_str(&body).unwrap();
                for (k, v) in data {
                    s.insert(&k, v).await.unwrap();
                }
                "ok"
            }),
        )
        .layer(SessionManagerLayer::new(MemoryStore::default()).with_secure(false))
}

/// The same routes with no session at all: the floor each layer's cost is measured from.
fn bare() -> Router {
    Router::new()
        .route("/untouched", get(|| async { "ok" }))
        .route("/read", get(|| async { format!("{:?}", Some(1u64)) }))
        .route("/write", get(|| async { "ok" }))
}

async fn call(app: &Router, path: &str, cookie: Option<&str>, body: String) -> Response<Body> {
    let mut request = Request::get(path);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    app.clone()
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap()
}

/// Our layer on PostgreSQL and Redis, where the bench is built with those features and
/// `DATABASE_URL` / `REDIS_URL` name the servers.
async fn networked() -> Vec<(&'static str, Router)> {
    #[allow(unused_mut)]
    let mut apps = Vec::new();
    #[cfg(feature = "postgres")]
    if let Ok(url) = std::env::var("DATABASE_URL") {
        use cookie_session::store::{PostgresStore, PostgresTable};
        let store =
            PostgresStore::connect(&url, PostgresTable::new("cookie_session_bench")).unwrap();
        store.create_table().await.unwrap();
        apps.push(("ours-postgres", ours_on(std::sync::Arc::new(store))));
    }
    #[cfg(feature = "redis")]
    if let Ok(url) = std::env::var("REDIS_URL") {
        let store = cookie_session::store::RedisStore::connect(&url)
            .await
            .unwrap()
            .with_prefix("cookie-session-bench:");
        apps.push(("ours-redis", ours_on(std::sync::Arc::new(store))));
    }
    apps
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("server");
    let floor = bare();
    for route in ["untouched", "read", "write"] {
        let path = format!("/{route}");
        group.bench_function(format!("{route}/bare"), |b| {
            b.iter(|| rt.block_on(call(&floor, black_box(&path), Some("sid=x"), String::new())));
        });
    }
    for size in ["small", "medium"] {
        let data = serde_json::to_string(&payload(size)).unwrap();
        let mut apps = vec![
            ("ours-memory", ours("memory")),
            ("ours-sqlite", ours("sqlite")),
            ("tower-sessions-memory", theirs()),
        ];
        apps.extend(rt.block_on(networked()));
        for (name, app) in apps {
            let response = rt.block_on(call(&app, "/fill", None, data.clone()));
            let cookie = response.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned();
            for route in ["untouched", "read", "write"] {
                let path = format!("/{route}");
                group.bench_function(format!("{route}/{name}/{size}"), |b| {
                    b.iter(|| {
                        rt.block_on(call(&app, black_box(&path), Some(&cookie), String::new()))
                    });
                });
            }
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench
}
criterion_main!(benches);
