//! Server-side sessions per request, through the whole tower layer and an axum router:
//! untouched / read one key / write one key, for our memory and SQLite stores next to
//! tower-sessions' `MemoryStore`, on the small and medium payloads, in one run; and the
//! same routes with no session layer (`bare`), so each layer's own cost can be read off.
//! Run: `cargo bench --bench server --features axum,sqlite`.
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
    let sessions = SessionConfig::new(Mode::Signed, ring())
        .with_name("sid")
        .with_insecure_http_for_local_development()
        .build()
        .unwrap();
    let layer = SessionLayer::new(sessions);
    let layer = match store_kind {
        "memory" => layer.with_store(MemoryStore::new()),
        _ => layer.with_store(SqliteStore::open_in_memory().unwrap()),
    };
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

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
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
        for (name, app) in [
            ("ours-memory", ours("memory")),
            ("ours-sqlite", ours("sqlite")),
            ("tower-sessions-memory", theirs()),
        ] {
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
