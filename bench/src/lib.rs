//! What the peer benchmarks share: the apps (our layer and tower-sessions on PostgreSQL
//! and Redis, the same routes), a store-call counter for each side, and the payloads.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::missing_panics_doc
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response};
use axum::routing::get;
use cookie_session::store::{
    DynStore, PostgresStore, PostgresTable, Record, RedisStore, SessionStore, StoreError, StoreKey,
    Version,
};
use cookie_session::time::OffsetDateTime;
use cookie_session::tower::SessionLayer;
use cookie_session::{Key, KeyRing, Mode, SessionConfig, SessionHandle};
use serde_json::{Map, Value};
use tower::ServiceExt as _;

pub type Payload = Map<String, Value>;

/// A payload of `../shared/bench/payloads.json` (vendored as `benches/payloads.json`).
pub fn payload(size: &str) -> Payload {
    let all: Value = serde_json::from_str(include_str!("../../benches/payloads.json")).unwrap();
    serde_json::from_value(all[size].clone()).unwrap()
}

/// Counts calls to the store it wraps (ours).
#[derive(Debug)]
pub struct Counted<S> {
    pub inner: S,
    pub calls: Arc<AtomicUsize>,
}

impl<S: SessionStore> SessionStore for Counted<S> {
    fn load(
        &self,
        key: &StoreKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.load(key, now)
    }
    fn create(
        &self,
        key: &StoreKey,
        data: &[u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Version, StoreError>> + Send {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.create(key, data, expires, now)
    }
    fn save(
        &self,
        key: &StoreKey,
        expected: Version,
        data: &[u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Version, StoreError>> + Send {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.save(key, expected, data, expires, now)
    }
    fn touch(
        &self,
        key: &StoreKey,
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.touch(key, expires, now)
    }
    fn rename(
        &self,
        from: &StoreKey,
        to: &StoreKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.rename(from, to, now)
    }
    fn delete(
        &self,
        key: &StoreKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.delete(key, now)
    }
    fn sweep(
        &self,
        now: OffsetDateTime,
        max: usize,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send {
        self.inner.sweep(now, max)
    }
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

/// Our layer on `store`, signed mode, with the routes every app has.
pub fn ours(store: Arc<dyn DynStore>) -> Router {
    let sessions = SessionConfig::new(Mode::Signed, KeyRing::new(Key::generate().unwrap()))
        .with_name("sid")
        .with_insecure_http_for_local_development()
        .build()
        .unwrap();
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
                let data: Payload = serde_json::from_str(&body).unwrap();
                for (k, v) in data {
                    s.insert(&k, &v).unwrap();
                }
                "ok"
            }),
        )
        .layer(SessionLayer::new(sessions).with_store(store))
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

/// The four apps on the servers at `database_url` and `redis_url`, each with its call
/// counter.
pub async fn apps(
    database_url: &str,
    redis_url: &str,
) -> Vec<(&'static str, Router, Arc<AtomicUsize>)> {
    let mut apps = Vec::new();

    let calls = Arc::new(AtomicUsize::new(0));
    let store =
        PostgresStore::connect(database_url, PostgresTable::new("cookie_session_bench")).unwrap();
    store.create_table().await.unwrap();
    let store = Counted {
        inner: store,
        calls: calls.clone(),
    };
    apps.push(("ours-postgres", ours(Arc::new(store)), calls));

    let calls = Arc::new(AtomicUsize::new(0));
    let pool = sqlx::PgPool::connect(database_url).await.unwrap();
    let store = tower_sessions_sqlx_store::PostgresStore::new(pool);
    store.migrate().await.unwrap();
    let store = TheirsCounted {
        inner: store,
        calls: calls.clone(),
    };
    apps.push(("tower-sessions-postgres", theirs(store), calls));

    let calls = Arc::new(AtomicUsize::new(0));
    let store = RedisStore::connect(redis_url)
        .await
        .unwrap()
        .with_prefix("cookie-session-bench:");
    let store = Counted {
        inner: store,
        calls: calls.clone(),
    };
    apps.push(("ours-redis", ours(Arc::new(store)), calls));

    let calls = Arc::new(AtomicUsize::new(0));
    use fred::prelude::{ClientLike as _, Config, Pool};
    let pool = Pool::new(Config::from_url(redis_url).unwrap(), None, None, None, 4).unwrap();
    pool.init().await.unwrap();
    let store = tower_sessions_redis_store::RedisStore::new(pool);
    let store = TheirsCounted {
        inner: store,
        calls: calls.clone(),
    };
    apps.push(("tower-sessions-redis", theirs(store), calls));

    apps
}
