//! The apps of the peer benchmarks: our layer and tower-sessions on PostgreSQL and Redis
//! (see `peers` for tower-sessions' side).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::missing_panics_doc
)]

pub mod peers;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::get;
use cookie_session::store::{
    DynStore, PostgresStore, PostgresTable, Record, RedisStore, SessionStore, StoreError, StoreKey,
    Version,
};
use cookie_session::time::OffsetDateTime;
use cookie_session::tower::SessionLayer;
use cookie_session::{Key, KeyRing, Mode, SessionConfig, SessionHandle};
pub use peers::{App, Payload, TheirsCounted, call, criterion, filled, measure, payload, theirs};

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

/// The apps on the servers at `database_url` and `redis_url`, each with its call
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

    // On a Redis Cluster too, where `REDIS_CLUSTER_URL` names its nodes (comma-separated).
    if let Ok(urls) = std::env::var("REDIS_CLUSTER_URL") {
        let nodes: Vec<&str> = urls.split(',').collect();
        let calls = Arc::new(AtomicUsize::new(0));
        let store = RedisStore::connect_cluster(&nodes)
            .await
            .unwrap()
            .with_prefix("cookie-session-bench:");
        let store = Counted {
            inner: store,
            calls: calls.clone(),
        };
        apps.push(("ours-redis-cluster", ours(Arc::new(store)), calls));

        let calls = Arc::new(AtomicUsize::new(0));
        // fred's cluster URL: the first node, the others as `node=` parameters.
        let first = nodes[0].trim_start_matches("redis://");
        let others: Vec<String> = nodes[1..]
            .iter()
            .map(|n| format!("node={}", n.trim_start_matches("redis://")))
            .collect();
        let url = format!("redis-cluster://{first}?{}", others.join("&"));
        let pool = Pool::new(Config::from_url(&url).unwrap(), None, None, None, 4).unwrap();
        pool.init().await.unwrap();
        let store = tower_sessions_redis_store::RedisStore::new(pool);
        let store = TheirsCounted {
            inner: store,
            calls: calls.clone(),
        };
        apps.push(("tower-sessions-redis-cluster", theirs(store), calls));
    }

    apps
}
