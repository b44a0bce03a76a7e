//! The half of the peer benchmarks that knows nothing of this crate: tower-sessions' routes,
//! its store-call counter, the payloads, requests, and the measuring loop. Shared (by
//! `#[path]`) with `sqlite-peer/`, which cannot link this crate's SQLite beside sqlx's.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response};
use axum::routing::get;
use serde_json::{Map, Value};
use tower::ServiceExt as _;

pub type Payload = Map<String, Value>;

/// A payload of `../shared/bench/payloads.json` (vendored as `benches/payloads.json`).
pub fn payload(size: &str) -> Payload {
    let all: Value = serde_json::from_str(include_str!("../../benches/payloads.json")).unwrap();
    serde_json::from_value(all[size].clone()).unwrap()
}

/// Counts calls to the tower-sessions store it wraps.
#[derive(Debug, Clone)]
pub struct TheirsCounted<S> {
    pub inner: S,
    pub calls: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl<S: tower_sessions::SessionStore> tower_sessions::SessionStore for TheirsCounted<S> {
    async fn create(
        &self,
        record: &mut tower_sessions::session::Record,
    ) -> tower_sessions::session_store::Result<()> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.create(record).await
    }
    async fn save(
        &self,
        record: &tower_sessions::session::Record,
    ) -> tower_sessions::session_store::Result<()> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.save(record).await
    }
    async fn load(
        &self,
        id: &tower_sessions::session::Id,
    ) -> tower_sessions::session_store::Result<Option<tower_sessions::session::Record>> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.load(id).await
    }
    async fn delete(
        &self,
        id: &tower_sessions::session::Id,
    ) -> tower_sessions::session_store::Result<()> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.delete(id).await
    }
}

/// tower-sessions on `store`, the same routes.
pub fn theirs<S: tower_sessions::SessionStore + Clone>(store: S) -> Router {
    use tower_sessions::{Session, SessionManagerLayer};
    Router::new()
        .route("/untouched", get(|| async { "ok" }))
        .route(
            "/read",
            get(
                |s: Session| async move { format!("{:?}", s.get::<u64>("user_id").await.unwrap()) },
            ),
        )
        .route(
            "/write",
            get(|s: Session| async move {
                let n = s.get::<u64>("n").await.unwrap().unwrap_or(0);
                s.insert("n", n + 1).await.unwrap();
                "ok"
            }),
        )
        .route(
            "/fill",
            get(|s: Session, body: String| async move {
                let data: Payload = serde_json::from_str(&body).unwrap();
                for (k, v) in data {
                    s.insert(&k, v).await.unwrap();
                }
                "ok"
            }),
        )
        .layer(SessionManagerLayer::new(store).with_secure(false))
}

pub async fn call(app: &Router, path: &str, cookie: Option<&str>, body: String) -> Response<Body> {
    let mut request = Request::get(path);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    app.clone()
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap()
}

/// The session cookie after filling a new session with `payload`.
pub async fn filled(app: &Router, payload: &Payload) -> String {
    let response = call(app, "/fill", None, serde_json::to_string(payload).unwrap()).await;
    response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// An app under test: its name, its router, its store-call counter.
pub type App = (&'static str, Router, Arc<AtomicUsize>);

/// Measures each app on each route and payload, and prints the store calls per request.
pub fn measure(c: &mut criterion::Criterion, rt: &tokio::runtime::Runtime, apps: &[App]) {
    let mut group = c.benchmark_group("stores");
    let mut calls_table = Vec::new();
    for size in ["small", "medium"] {
        let data = payload(size);
        for (name, app, calls) in apps {
            let cookie = rt.block_on(filled(app, &data));
            for route in ["untouched", "read", "write"] {
                let path = format!("/{route}");
                // Store calls per request, counted over 100 requests.
                calls.store(0, Ordering::Relaxed);
                for _ in 0..100 {
                    rt.block_on(call(app, &path, Some(&cookie), String::new()));
                }
                let per_request = calls.load(Ordering::Relaxed) as f64 / 100.0;
                calls_table.push(format!(
                    "{route}/{name}/{size}: {per_request} store calls per request"
                ));
                group.bench_function(format!("{route}/{name}/{size}"), |b| {
                    b.iter(|| {
                        rt.block_on(call(
                            app,
                            std::hint::black_box(&path),
                            Some(&cookie),
                            String::new(),
                        ))
                    });
                });
            }
        }
    }
    group.finish();
    for line in calls_table {
        println!("{line}");
    }
}

/// Short warm-up and measurement: the ratios, not the absolute times, are what we read.
pub fn criterion() -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}
