//! The servers of the HTTP-level benchmark, one router per implementation (see
//! `src/main.rs`), shared with the `profile` binary that drives them in-process.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value};

pub type Payload = Map<String, Value>;

static NOTES: AtomicU64 = AtomicU64::new(0);

pub fn payload(size: &str) -> Payload {
    let all: Value =
        serde_json::from_str(include_str!("../../../benches/payloads.json")).expect("payloads");
    serde_json::from_value(all[size].clone()).expect("a payload")
}

pub fn next_note() -> u64 {
    NOTES.fetch_add(1, Ordering::Relaxed)
}

/// The axum router of `imp` (every implementation but actix-web's); async, for the Redis
/// stores' connections.
pub async fn router(imp: &str, data: Payload) -> axum::Router {
    match imp {
        "bare" => bare::router(),
        "tower-sessions" => theirs::router(data),
        "tower-sessions-redis" => theirs_redis::router(false, data).await,
        "tower-sessions-redis-cluster" => theirs_redis::router(true, data).await,
        "axum-extra-signed" => jar::router(false, data),
        "axum-extra-private" => jar::router(true, data),
        ours => mine::router(ours, data).await,
    }
}

/// `REDIS_URL`, by default the local server.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned())
}

/// `REDIS_CLUSTER_URL`'s nodes (comma-separated; by default the local cluster `.ci/run`
/// starts on ports 7000-7005).
pub fn redis_cluster_nodes() -> Vec<String> {
    std::env::var("REDIS_CLUSTER_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:7000".to_owned())
        .split(',')
        .map(str::to_owned)
        .collect()
}

/// No session at all: the floor every other row is measured against.
pub mod bare {
    use axum::Router;
    use axum::routing::{get, post};

    pub fn router() -> Router {
        Router::new()
            .route("/login", get(|| async { "ok" }))
            .route("/me", get(|| async { "1234567" }))
            .route("/note", post(|| async { super::next_note().to_string() }))
    }
}

/// This crate's layer.
pub mod mine {
    use axum::Router;
    use axum::routing::{get, post};
    use cookie_session::store::{MemoryStore, RedisStore, SqliteStore};
    use cookie_session::tower::SessionLayer;
    use cookie_session::{Key, KeyRing, Mode, SessionConfig, SessionError, SessionHandle};

    pub async fn router(imp: &str, data: super::Payload) -> Router {
        let mode = if imp == "ours-encrypted" {
            Mode::Encrypted
        } else {
            Mode::Signed
        };
        let sessions = SessionConfig::new(mode, KeyRing::new(Key::generate().expect("a key")))
            .with_name("session")
            .with_insecure_http_for_local_development()
            .build()
            .expect("a configuration");
        let layer = SessionLayer::new(sessions);
        let layer = match imp {
            "ours-signed" | "ours-encrypted" => layer,
            "ours-memory" => layer.with_store(MemoryStore::new()),
            "ours-sqlite" => {
                let path =
                    std::env::temp_dir().join(format!("http-peer-{}.db", std::process::id()));
                layer.with_store(SqliteStore::open(&path).expect("sqlite"))
            }
            "ours-redis" => layer.with_store(
                RedisStore::connect(&super::redis_url())
                    .await
                    .expect("Redis answers"),
            ),
            "ours-redis-cluster" => {
                let nodes = super::redis_cluster_nodes();
                let nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
                layer.with_store(
                    RedisStore::connect_cluster(&nodes)
                        .await
                        .expect("the cluster answers"),
                )
            }
            other => panic!("unknown implementation {other}"),
        };
        Router::new()
            .route(
                "/login",
                get(move |s: SessionHandle| async move {
                    for (k, v) in &data {
                        s.insert(k, v)?;
                    }
                    Ok::<_, SessionError>("ok")
                }),
            )
            .route(
                "/me",
                get(|s: SessionHandle| async move {
                    Ok::<_, SessionError>(s.get::<u64>("user_id")?.unwrap_or(0).to_string())
                }),
            )
            .route(
                "/note",
                post(|s: SessionHandle| async move {
                    let n = super::next_note();
                    s.insert("note", &n)?;
                    Ok::<_, SessionError>(n.to_string())
                }),
            )
            .layer(layer)
    }
}

/// tower-sessions' three routes over its `Session` type (`$session`), for the in-memory
/// store (tower-sessions 0.15) and the Redis store (0.14, the version its Redis store
/// fits).
macro_rules! tower_sessions_routes {
    ($session:ty, $data:expr) => {{
        let data = $data;
        Router::new()
            .route(
                "/login",
                get(move |s: $session| async move {
                    for (k, v) in &data {
                        s.insert(k, v).await.expect("inserts");
                    }
                    "ok"
                }),
            )
            .route(
                "/me",
                get(|s: $session| async move {
                    s.get::<u64>("user_id")
                        .await
                        .expect("reads")
                        .unwrap_or(0)
                        .to_string()
                }),
            )
            .route(
                "/note",
                post(|s: $session| async move {
                    let n = super::next_note();
                    s.insert("note", n).await.expect("writes");
                    n.to_string()
                }),
            )
    }};
}

/// tower-sessions with its in-memory store.
pub mod theirs {
    use axum::Router;
    use axum::routing::{get, post};
    use tower_sessions::{MemoryStore, Session, SessionManagerLayer};

    pub fn router(data: super::Payload) -> Router {
        let layer = SessionManagerLayer::new(MemoryStore::default()).with_secure(false);
        tower_sessions_routes!(Session, data).layer(layer)
    }
}

/// tower-sessions with its Redis store (tower-sessions-redis-store, over fred), on one
/// server (`REDIS_URL`) or the cluster (`REDIS_CLUSTER_URL`).
pub mod theirs_redis {
    use axum::Router;
    use axum::routing::{get, post};
    use fred::prelude::{ClientLike as _, Config, Pool};
    use tower_sessions_014::{Session, SessionManagerLayer};
    use tower_sessions_redis_store::RedisStore;

    pub async fn router(cluster: bool, data: super::Payload) -> Router {
        let url = if cluster {
            // fred's cluster URL: the first node, the others as `node=` parameters.
            let nodes = super::redis_cluster_nodes();
            let bare: Vec<&str> = nodes
                .iter()
                .map(|n| n.trim_start_matches("redis://").trim_end_matches('/'))
                .collect();
            let others: Vec<String> = bare[1..].iter().map(|n| format!("node={n}")).collect();
            format!("redis-cluster://{}?{}", bare[0], others.join("&"))
        } else {
            super::redis_url()
        };
        let pool =
            Pool::new(Config::from_url(&url).expect("a URL"), None, None, None, 4).expect("a pool");
        pool.init().await.expect("Redis answers");
        let layer = SessionManagerLayer::new(RedisStore::new(pool)).with_secure(false);
        tower_sessions_routes!(Session, data).layer(layer)
    }
}

/// axum-extra's cookie jars, the session as one JSON map in one cookie.
pub mod jar {
    use axum::Router;
    use axum::extract::FromRef;
    use axum::routing::{get, post};
    use axum_extra::extract::cookie::{Cookie, Key, PrivateCookieJar, SignedCookieJar};

    #[derive(Clone)]
    struct State(Key);

    impl FromRef<State> for Key {
        fn from_ref(state: &State) -> Self {
            state.0.clone()
        }
    }

    fn read(value: Option<Cookie<'_>>) -> super::Payload {
        value
            .and_then(|c| serde_json::from_str(c.value()).ok())
            .unwrap_or_default()
    }

    fn cookie(map: &super::Payload) -> Cookie<'static> {
        let mut cookie = Cookie::new("session", serde_json::to_string(map).expect("json"));
        cookie.set_path("/");
        cookie.set_http_only(true);
        cookie
    }

    /// The routes over one jar type: the two jars share no trait, so a macro writes them.
    macro_rules! routes {
        ($jar:ty, $data:expr) => {{
            let data = $data;
            Router::new()
                .route(
                    "/login",
                    get(move |jar: $jar| async move { (jar.add(cookie(&data)), "ok") }),
                )
                .route(
                    "/me",
                    get(|jar: $jar| async move {
                        read(jar.get("session"))["user_id"]
                            .as_u64()
                            .unwrap_or(0)
                            .to_string()
                    }),
                )
                .route(
                    "/note",
                    post(|jar: $jar| async move {
                        let mut map = read(jar.get("session"));
                        let n = super::next_note();
                        map.insert("note".into(), n.into());
                        (jar.add(cookie(&map)), n.to_string())
                    }),
                )
        }};
    }

    pub fn router(private: bool, data: super::Payload) -> Router {
        let state = State(Key::generate());
        if private {
            routes!(PrivateCookieJar, data).with_state(state)
        } else {
            routes!(SignedCookieJar, data).with_state(state)
        }
    }
}

/// actix-web with actix-session's cookie or Redis store, and with this crate's middleware,
/// one worker each.
pub mod actix {
    use actix_session::config::CookieContentSecurity;
    use actix_session::storage::{CookieSessionStore, RedisSessionStore};
    use actix_session::{Session, SessionMiddleware};
    use actix_web::cookie::Key;
    use actix_web::{App, HttpServer, web};
    use cookie_session::{KeyRing, Mode, SessionConfig, SessionError, SessionHandle};

    use super::redis_url;

    /// actix-session: `store` is `signed`, `private` or `redis`.
    pub fn serve(store: &str, data: super::Payload, port: u16) -> std::io::Result<()> {
        let key = Key::generate();
        let store = store.to_owned();
        actix_web::rt::System::new().block_on(async move {
            let redis = match store.as_str() {
                "redis" => Some(
                    RedisSessionStore::new(redis_url())
                        .await
                        .expect("Redis answers"),
                ),
                _ => None,
            };
            let security = if store == "private" {
                CookieContentSecurity::Private
            } else {
                CookieContentSecurity::Signed
            };
            macro_rules! routes {
                ($app:expr, $data:expr) => {{
                    let data = $data;
                    $app.route(
                        "/login",
                        web::get().to(move |s: Session| {
                            let data = data.clone();
                            async move {
                                for (k, v) in &data {
                                    s.insert(k, v).expect("inserts");
                                }
                                "ok"
                            }
                        }),
                    )
                    .route(
                        "/me",
                        web::get().to(|s: Session| async move {
                            s.get::<u64>("user_id")
                                .ok()
                                .flatten()
                                .unwrap_or(0)
                                .to_string()
                        }),
                    )
                    .route(
                        "/note",
                        web::post().to(|s: Session| async move {
                            let n = super::next_note();
                            s.insert("note", n).expect("writes");
                            n.to_string()
                        }),
                    )
                }};
            }
            // The two stores are different types: one server each.
            match redis {
                Some(redis) => {
                    let server = HttpServer::new(move || {
                        routes!(
                            App::new().wrap(
                                SessionMiddleware::builder(redis.clone(), key.clone())
                                    .cookie_secure(false)
                                    .build(),
                            ),
                            data.clone()
                        )
                    })
                    .workers(1)
                    .bind(("127.0.0.1", port))?;
                    println!("listening");
                    server.run().await
                }
                None => {
                    let server = HttpServer::new(move || {
                        routes!(
                            App::new().wrap(
                                SessionMiddleware::builder(
                                    CookieSessionStore::default(),
                                    key.clone(),
                                )
                                .cookie_secure(false)
                                .cookie_content_security(security)
                                .build(),
                            ),
                            data.clone()
                        )
                    })
                    .workers(1)
                    .bind(("127.0.0.1", port))?;
                    println!("listening");
                    server.run().await
                }
            }
        })
    }

    /// This crate's actix-web middleware: `ours` is `signed`, `encrypted` or `redis`.
    pub fn serve_ours(ours: &str, data: super::Payload, port: u16) -> std::io::Result<()> {
        let mode = if ours == "encrypted" {
            Mode::Encrypted
        } else {
            Mode::Signed
        };
        let sessions = SessionConfig::new(
            mode,
            KeyRing::new(cookie_session::Key::generate().expect("a key")),
        )
        .with_name("session")
        .with_insecure_http_for_local_development()
        .build()
        .expect("a configuration");
        let ours = ours.to_owned();
        actix_web::rt::System::new().block_on(async move {
            let middleware = cookie_session::actix::SessionMiddleware::new(sessions);
            let middleware = match ours.as_str() {
                "redis" => middleware.with_store(
                    cookie_session::store::RedisStore::connect(&redis_url())
                        .await
                        .expect("Redis answers"),
                ),
                _ => middleware,
            };
            let server = HttpServer::new(move || {
                let data = data.clone();
                App::new()
                    .wrap(middleware.clone())
                    .route(
                        "/login",
                        web::get().to(move |s: SessionHandle| {
                            let data = data.clone();
                            async move {
                                for (k, v) in &data {
                                    s.insert(k, v)?;
                                }
                                Ok::<_, SessionError>("ok")
                            }
                        }),
                    )
                    .route(
                        "/me",
                        web::get().to(|s: SessionHandle| async move {
                            Ok::<_, SessionError>(s.get::<u64>("user_id")?.unwrap_or(0).to_string())
                        }),
                    )
                    .route(
                        "/note",
                        web::post().to(|s: SessionHandle| async move {
                            let n = super::next_note();
                            s.insert("note", &n)?;
                            Ok::<_, SessionError>(n.to_string())
                        }),
                    )
            })
            .workers(1)
            .bind(("127.0.0.1", port))?;
            println!("listening");
            server.run().await
        })
    }
}
