//! A small axum site that keeps its visitors' sessions in encrypted cookies.
//!
//! Run with `cargo run --example demo` and open the printed URL. `PORT` sets the port
//! (default 3000; 0 picks a free one), `COOKIE_SESSION_KEY` the key (default: a new random
//! key per start, so restarting logs everyone out).
//!
//! Routes: `GET /` counts visits (writes), `POST /login` (`user`) regenerates the session
//! and stores the user, `POST /note` (`text`) stores a note, `GET /me` shows the session as
//! JSON (read-only: never sends a cookie), `POST /logout` deletes the session, `GET /health`
//! never touches it.

use std::time::Duration;

use axum::Router;
use axum::extract::Form;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::{get, post};
use cookie_session::tower::{SessionHandle, SessionLayer};
use cookie_session::{Key, KeyRing, Mode, Persistence, SessionConfig, TouchPolicy};
use serde::Deserialize;
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key = match std::env::var("COOKIE_SESSION_KEY") {
        Ok(text) => Key::from_base64url(&text)?,
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
    let sessions = SessionConfig::new(Mode::Encrypted, KeyRing::new(key))
        .with_name("demo-session")
        .with_insecure_http_for_local_development()
        .with_persistence(Persistence::Persistent)
        .with_idle_timeout(Duration::from_secs(20 * 60))
        .with_touch_policy(TouchPolicy::SLIDING)
        .build()?;
    eprintln!("NOTE: plain-HTTP development mode: the cookie is sent without `Secure`.");

    let app = Router::new()
        .route("/", get(index))
        .route("/login", post(login))
        .route("/note", post(note))
        .route("/me", get(me))
        .route("/logout", post(logout))
        .route("/health", get(health))
        .layer(SessionLayer::new(sessions));

    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://{}/", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

type Handled = Result<Response, Response>;

/// Session errors become a 500 (a value of the wrong type, a session gone).
fn fail(error: impl std::fmt::Display) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response()
}

async fn index(session: SessionHandle) -> Handled {
    let mut s = session.lock().map_err(fail)?;
    let count = s.get::<u64>("count").map_err(fail)?.unwrap_or(0) + 1;
    s.insert("count", &count).map_err(fail)?;
    let user = s.get::<String>("user").map_err(fail)?;
    let note = s.get::<String>("note").map_err(fail)?.unwrap_or_default();
    let greeting = match &user {
        Some(user) => format!("Logged in as <b>{}</b>.", escape(user)),
        None => "Not logged in.".to_owned(),
    };
    Ok(Html(format!(
        "<!doctype html><title>cookie-session demo</title>\
         <h1>cookie-session demo</h1>\
         <p id=count>Visits in this session: {count}</p><p>{greeting}</p><p>Note: {note}</p>\
         <form method=post action=/login><input name=user placeholder=name><button id=login>Log in</button></form>\
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
}

async fn login(session: SessionHandle, Form(form): Form<LoginForm>) -> Handled {
    let mut s = session.lock().map_err(fail)?;
    s.regenerate().map_err(fail)?; // a new session id at login, against fixation
    s.insert("user", &form.user).map_err(fail)?;
    Ok(page(&format!("Logged in as {}.", escape(&form.user))))
}

#[derive(Deserialize)]
struct NoteForm {
    text: String,
}

async fn note(session: SessionHandle, Form(form): Form<NoteForm>) -> Handled {
    let mut s = session.lock().map_err(fail)?;
    s.insert("note", &form.text).map_err(fail)?;
    Ok(page(&format!("Saved a note of {} bytes.", form.text.len())))
}

async fn me(session: SessionHandle) -> Handled {
    let mut s = session.lock().map_err(fail)?;
    Ok(Json(json!({
        "user": s.get::<String>("user").map_err(fail)?,
        "note": s.get::<String>("note").map_err(fail)?,
        "count": s.get::<u64>("count").map_err(fail)?,
    }))
    .into_response())
}

async fn logout(session: SessionHandle) -> Handled {
    session.lock().map_err(fail)?.delete();
    Ok(page("Logged out."))
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
