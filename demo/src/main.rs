//! A small site that keeps its visitors' sessions in encrypted cookies, served by axum or
//! (`FRAMEWORK=actix`, built with `--features actix`) by actix-web: the same pages and the
//! same sessions, so instances of both can serve one visitor.
//!
//! Run with `cargo run -p cookie-session-demo` (from the repository root) and open the
//! printed URL. `PORT` sets the port (default 3000; 0 picks a free one),
//! `COOKIE_SESSION_KEY` the key (default: a new random key per start, so restarting logs
//! everyone out), and `SESSION_STORE` where sessions live: `cookie` (the default: in the
//! encrypted cookie), or server-side: `memory` (in this process), `sqlite:PATH`,
//! `files:DIR`, `memcached:HOST:PORT`, and, built with the demo's `postgres` / `redis`
//! features, `postgres://...` / `redis://...` / `redis-cluster://HOST:PORT,HOST:PORT,...`
//! (a Redis or Valkey Cluster through any of its nodes; swept in the background where the
//! store does not expire records itself). `SESSION_COOKIES=N` (2 to 8) lets a cookie session
//! grow across up to N cookies (`demo-session`, `demo-session.2`, ...; 16 KiB in all).
//!
//! `GET /plain` works without cookies: its links and form carry the session in the
//! `tg_visit` parameter (TurboGears' `visit.source = 'cookie, form'`), and `POST /plain`
//! (`text`, `tg_visit`) stores a note from that form.
//!
//! Routes: `GET /` counts visits (writes) and shows flash messages, `POST /login` (`user`,
//! optional `remember`) regenerates the session and stores the user, `POST /note` (`text`)
//! stores a note, `GET /me` shows the session as JSON (read-only: never sends a cookie),
//! `POST /logout` deletes the session, `GET /health` never touches it.

use std::sync::Arc;
use std::time::Duration;

use cookie_session::store::{
    DynStore, FileStore, MemcachedStore, MemoryStore, SessionStore, SqliteStore, Sweeper,
};
use cookie_session::time::OffsetDateTime;
use cookie_session::{Key, KeyRing, Mode, SessionConfig, TouchPolicy};

#[cfg(feature = "actix")]
mod actix_app;
mod axum_app;
mod site;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key = match std::env::var("COOKIE_SESSION_KEY") {
        Ok(text) => Key::parse(&text)?,
        Err(_) => {
            eprintln!(
                "WARNING: COOKIE_SESSION_KEY is not set; using a random key for this run only."
            );
            eprintln!(
                "WARNING: every restart logs everyone out. Set one from `cookie-session keygen`."
            );
            Key::generate()?
        }
    };
    let cookies = match std::env::var("SESSION_COOKIES") {
        Ok(n) => n.parse::<usize>()?,
        Err(_) => 1,
    };
    let sessions = SessionConfig::new(Mode::Encrypted, KeyRing::new(key))
        .with_name("demo-session")
        .with_insecure_http_for_local_development()
        .with_idle_timeout(Duration::from_secs(20 * 60))
        .with_touch_policy(TouchPolicy::SLIDING)
        .with_max_cookies(cookies)
        .with_max_total_size(16 * 1024)
        // For the cookie-less page; off by default in the library.
        .with_token_parameter("tg_visit")
        .build()?;
    eprintln!("NOTE: plain-HTTP development mode: the cookie is sent without `Secure`.");
    if cookies > 1 {
        eprintln!("NOTE: a cookie session may be split across up to {cookies} cookies.");
    }

    let store = std::env::var("SESSION_STORE").unwrap_or_else(|_| "cookie".to_owned());
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let framework = std::env::var("FRAMEWORK").unwrap_or_else(|_| "axum".to_owned());
    match framework.as_str() {
        "axum" => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(async {
                let layer = cookie_session::tower::SessionLayer::new(sessions);
                let layer = match stored(&store).await? {
                    None => layer,
                    Some(store) => layer.with_store(store),
                };
                axum_app::serve(layer, port).await
            }),
        #[cfg(feature = "actix")]
        "actix" => actix_web::rt::System::new().block_on(async {
            let middleware = cookie_session::actix::SessionMiddleware::new(sessions);
            let middleware = match stored(&store).await? {
                None => middleware,
                Some(store) => middleware.with_store(store),
            };
            Ok(actix_app::serve(middleware, port).await?)
        }),
        other => Err(format!(
            "FRAMEWORK={other:?}: use axum, or actix (built with `--features actix`)"
        )
        .into()),
    }
}

/// The store `SESSION_STORE` names, announced.
async fn stored(name: &str) -> Result<Option<Arc<dyn DynStore>>, Box<dyn std::error::Error>> {
    let store = store_of(name).await?;
    eprintln!("NOTE: sessions are kept in: {name}");
    Ok(store)
}

/// The store `SESSION_STORE` names (`None`: sessions in the cookie). Stores that do not
/// expire records themselves are swept in the background.
async fn store_of(name: &str) -> Result<Option<Arc<dyn DynStore>>, Box<dyn std::error::Error>> {
    let (kind, place) = name.split_once(':').unwrap_or((name, ""));
    let store: Arc<dyn DynStore> = match kind {
        "cookie" => return Ok(None),
        "memory" => swept(MemoryStore::new()),
        "sqlite" if !place.is_empty() => swept(SqliteStore::open(place)?),
        "files" if !place.is_empty() => swept(FileStore::open(place)?),
        "memcached" if !place.is_empty() => Arc::new(MemcachedStore::new(place)),
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => {
            let table = cookie_session::store::PostgresTable::new("demo_sessions");
            let store = cookie_session::store::PostgresStore::connect(name, table)?;
            store.create_table().await?;
            swept(store)
        }
        #[cfg(feature = "redis")]
        "redis" => Arc::new(cookie_session::store::RedisStore::connect(name).await?),
        #[cfg(feature = "redis")]
        "redis-cluster" => {
            let nodes: Vec<String> = place
                .trim_start_matches("//")
                .split(',')
                .map(|node| format!("redis://{}", node.trim_end_matches('/')))
                .collect();
            let nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
            Arc::new(cookie_session::store::RedisStore::connect_cluster(&nodes).await?)
        }
        _ => {
            return Err(format!(
                "SESSION_STORE={name:?}: use cookie, memory, sqlite:PATH, files:DIR, \
                 memcached:HOST:PORT, or (built with the feature) postgres://..., redis://... \
                 or redis-cluster://HOST:PORT,HOST:PORT,..."
            )
            .into());
        }
    };
    Ok(Some(store))
}

/// `store`, with a sweeper running for it.
fn swept<S: SessionStore>(store: S) -> Arc<dyn DynStore> {
    let store = Arc::new(store);
    tokio::spawn(sweeper().run(store.clone(), OffsetDateTime::now_utc, tokio::time::sleep));
    store
}

/// Expired server-side sessions are removed every minute; failures are logged and retried.
fn sweeper() -> Sweeper {
    Sweeper::new()
        .with_interval(Duration::from_secs(60))
        .on_error(|error| eprintln!("session sweep failed: {error}"))
}
