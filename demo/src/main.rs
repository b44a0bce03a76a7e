//! A small axum site that keeps its visitors' sessions in encrypted cookies.
//!
//! Run with `cargo run -p cookie-session-demo` (from the repository root) and open the
//! printed URL. `PORT` sets the port (default 3000; 0 picks a free one),
//! `COOKIE_SESSION_KEY` the key (default: a new random key per start, so restarting logs
//! everyone out), and `SESSION_STORE` where sessions live: `cookie` (the default: in the
//! encrypted cookie), or server-side: `memory` (in this process), `sqlite:PATH`,
//! `files:DIR`, `memcached:HOST:PORT`, and, built with the demo's `postgres` / `redis`
//! features, `postgres://...` / `redis://...` (swept in the background where the store
//! does not expire records itself). `SESSION_COOKIES=N` (2 to 8) lets a cookie session
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

use std::time::Duration;

use axum::Router;
use axum::extract::Form;
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::{get, post};
use cookie_session::store::{
    DynStore, FileStore, MemcachedStore, MemoryStore, SessionStore, SqliteStore, Sweeper,
};
use cookie_session::time::OffsetDateTime;
use cookie_session::tower::SessionLayer;
use cookie_session::{
    Key, KeyRing, Mode, Persistence, SessionConfig, SessionError, SessionHandle, TouchPolicy,
};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
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

    let layer = SessionLayer::new(sessions);
    let store = std::env::var("SESSION_STORE").unwrap_or_else(|_| "cookie".to_owned());
    let layer = match store_of(&store).await? {
        None => layer,
        Some(store) => layer.with_store(store),
    };
    eprintln!("NOTE: sessions are kept in: {store}");

    let app = Router::new()
        .route("/", get(index))
        .route("/login", post(login))
        .route("/note", post(note))
        .route("/me", get(me))
        .route("/logout", post(logout))
        .route("/health", get(health))
        .route("/plain", get(plain).post(plain_note))
        .layer(layer.with_form_bodies());

    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://{}/", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
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
        _ => {
            return Err(format!(
                "SESSION_STORE={name:?}: use cookie, memory, sqlite:PATH, files:DIR, \
                 memcached:HOST:PORT, or (built with the feature) postgres://... or redis://..."
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

/// Session errors become a 500 through `?` (`SessionError` is an axum `IntoResponse`).
type Handled = Result<Response, SessionError>;

/// Expired server-side sessions are removed every minute; failures are logged and retried.
fn sweeper() -> Sweeper {
    Sweeper::new()
        .with_interval(Duration::from_secs(60))
        .on_error(|error| eprintln!("session sweep failed: {error}"))
}

async fn index(session: SessionHandle) -> Handled {
    // A change that replays: server-side, visits of several tabs (or instances) at once
    // are all counted.
    session.update_or_default("count", |n: &mut u64| *n += 1)?;
    let count = session.get::<u64>("count")?.unwrap_or_default();
    let user = session.get::<String>("user")?;
    let note = last_note(&session)?.unwrap_or_default();
    let flashes: String = session
        .take_flashes()?
        .iter()
        .map(|f| format!("<p class=flash>{}</p>", escape(&f.message)))
        .collect();
    let greeting = match &user {
        Some(user) => format!("Logged in as <b>{}</b>.", escape(user)),
        None => "Not logged in.".to_owned(),
    };
    Ok(Html(format!(
        "<!doctype html><title>cookie-session demo</title>\
         <h1>cookie-session demo</h1>{flashes}\
         <p id=count>Visits in this session: {count}</p><p>{greeting}</p><p>Note: {note}</p>\
         <form method=post action=/login><input name=user placeholder=name>\
         <label><input type=checkbox name=remember value=1> remember me</label><button id=login>Log in</button></form>\
         <form method=post action=/note><input name=text placeholder=note><button id=save>Save note</button></form>\
         <form method=post action=/logout><button id=logout>Log out</button></form>\
         <p><a href=/me>/me</a> (read-only) &middot; <a href=/health>/health</a> (no session)</p>",
        note = escape(&note),
    ))
    .into_response())
}

#[derive(Deserialize)]
struct LoginForm {
    user: String,
    remember: Option<String>,
}

async fn login(session: SessionHandle, Form(form): Form<LoginForm>) -> Handled {
    // One consistent change: a new id at login (against fixation), then the user.
    session.with(|s| -> Result<(), SessionError> {
        s.regenerate()?;
        s.insert("user", &form.user)?;
        if form.remember.is_some() {
            s.set_persistence(Persistence::Persistent); // "remember me": survives a browser restart
        }
        s.flash("info", &format!("Welcome, {}.", form.user))
    })??;
    Ok(page(&format!("Logged in as {}.", escape(&form.user))))
}

#[derive(Deserialize)]
struct NoteForm {
    text: String,
}

async fn note(session: SessionHandle, Form(form): Form<NoteForm>) -> Handled {
    let bytes = form.text.len();
    add_note(&session, form.text)?;
    Ok(page(&format!("Saved a note of {bytes} bytes.")))
}

/// The newest notes kept, in bytes (the newest is always kept, whatever its size).
const NOTES_KEPT: usize = 2048;

/// Appends `text` to the session's notes with a change that replays: server-side, notes
/// saved from two tabs at once are both kept. Older notes go once the newest fill
/// [`NOTES_KEPT`]. (The closure may run again on a newer session: it only changes the list.)
fn add_note(session: &SessionHandle, text: String) -> Result<(), SessionError> {
    session.update_or_default("notes", move |notes: &mut Vec<String>| {
        notes.push(text.clone());
        let mut total = 0;
        let keep = notes
            .iter()
            .rev()
            .take_while(|note| {
                total += note.len();
                total <= NOTES_KEPT
            })
            .count()
            .max(1);
        notes.drain(..notes.len() - keep);
    })
}

fn last_note(session: &SessionHandle) -> Result<Option<String>, SessionError> {
    Ok(session
        .get::<Vec<String>>("notes")?
        .and_then(|mut notes| notes.pop()))
}

async fn me(session: SessionHandle) -> Handled {
    let notes = session.get::<Vec<String>>("notes")?.unwrap_or_default();
    Ok(Json(json!({
        "user": session.get::<String>("user")?,
        "note": notes.last(),
        "notes": notes.len(),
        "count": session.get::<u64>("count")?,
    }))
    .into_response())
}

async fn logout(session: SessionHandle) -> Handled {
    session.delete()?;
    Ok(page("Logged out."))
}

/// A page for visitors whose browsers keep no cookies: every link and form carries the
/// session in `tg_visit` (which the layer removes before the handler sees the request).
async fn plain(session: SessionHandle) -> Handled {
    session.update_or_default("plain_count", |n: &mut u64| *n += 1)?;
    let count = session.get::<u64>("plain_count")?.unwrap_or_default();
    plain_page(&session, count)
}

#[derive(Deserialize)]
struct PlainNote {
    text: String,
}

async fn plain_note(session: SessionHandle, Form(form): Form<PlainNote>) -> Handled {
    add_note(&session, form.text)?;
    let count = session.get::<u64>("plain_count")?.unwrap_or(0);
    plain_page(&session, count)
}

fn plain_page(session: &SessionHandle, count: u64) -> Handled {
    let note = last_note(session)?.unwrap_or_default();
    // After the changes: the token carries the session as it is now.
    let token = session.token()?.unwrap_or_default();
    Ok(Html(format!(
        "<!doctype html><title>cookie-session demo, no cookies</title>         <h1>Without cookies</h1><p id=count>Visits through these links: {count}</p>         <p id=note>Note: {note}</p>         <p><a id=next href=\"/plain?tg_visit={token}\">Next page</a></p>         <form method=post action=/plain><input type=hidden name=tg_visit value=\"{token}\">         <input name=text placeholder=note><button id=save>Save note</button></form>",
        note = escape(&note),
    ))
    .into_response())
}

async fn health() -> &'static str {
    "ok"
}

fn page(message: &str) -> Response {
    Html(format!("<!doctype html><title>cookie-session demo</title><p id=message>{message}</p><p><a href=/>Back</a></p>")).into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
