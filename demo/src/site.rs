//! The demo's pages, whatever framework serves them: each route is a function of the
//! session (and its form), returning a [`Page`]; `axum_app.rs` and `actix_app.rs` only
//! extract the form and turn the page into their framework's response.

use cookie_session::{Persistence, SessionError, SessionHandle};
use serde::Deserialize;
use serde_json::json;

/// What a route answers.
pub(crate) enum Page {
    Html(String),
    Json(serde_json::Value),
    Text(&'static str),
}

/// Session errors become a 500 through `?` (`SessionError` is a response in both
/// frameworks).
pub(crate) type Handled = Result<Page, SessionError>;

pub(crate) fn index(session: &SessionHandle) -> Handled {
    // A change that replays: server-side, visits of several tabs (or instances) at once
    // are all counted.
    session.update_or_default("count", |n: &mut u64| *n += 1)?;
    let count = session.get::<u64>("count")?.unwrap_or_default();
    let user = session.get::<String>("user")?;
    let note = last_note(session)?.unwrap_or_default();
    let flashes: String = session
        .take_flashes()?
        .iter()
        .map(|f| format!("<p class=flash>{}</p>", escape(&f.message)))
        .collect();
    let greeting = match &user {
        Some(user) => format!("Logged in as <b>{}</b>.", escape(user)),
        None => "Not logged in.".to_owned(),
    };
    Ok(Page::Html(format!(
        "<!doctype html><title>cookie-session demo</title>\
         <h1>cookie-session demo</h1>{flashes}\
         <p id=count>Visits in this session: {count}</p><p>{greeting}</p><p>Note: {note}</p>\
         <form method=post action=/login><input name=user placeholder=name>\
         <label><input type=checkbox name=remember value=1> remember me</label><button id=login>Log in</button></form>\
         <form method=post action=/note><input name=text placeholder=note><button id=save>Save note</button></form>\
         <form method=post action=/logout><button id=logout>Log out</button></form>\
         <p><a href=/me>/me</a> (read-only) &middot; <a href=/health>/health</a> (no session)</p>",
        note = escape(&note),
    )))
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    user: String,
    remember: Option<String>,
}

pub(crate) fn login(session: &SessionHandle, form: LoginForm) -> Handled {
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
pub(crate) struct NoteForm {
    text: String,
}

pub(crate) fn note(session: &SessionHandle, form: NoteForm) -> Handled {
    let bytes = form.text.len();
    add_note(session, form.text)?;
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

pub(crate) fn me(session: &SessionHandle) -> Handled {
    let notes = session.get::<Vec<String>>("notes")?.unwrap_or_default();
    Ok(Page::Json(json!({
        "user": session.get::<String>("user")?,
        "note": notes.last(),
        "notes": notes.len(),
        "count": session.get::<u64>("count")?,
    })))
}

pub(crate) fn logout(session: &SessionHandle) -> Handled {
    session.delete()?;
    Ok(page("Logged out."))
}

/// A page for visitors whose browsers keep no cookies: every link and form carries the
/// session in `tg_visit` (which the middleware removes before the handler sees the request).
pub(crate) fn plain(session: &SessionHandle) -> Handled {
    session.update_or_default("plain_count", |n: &mut u64| *n += 1)?;
    let count = session.get::<u64>("plain_count")?.unwrap_or_default();
    plain_page(session, count)
}

#[derive(Deserialize)]
pub(crate) struct PlainNote {
    text: String,
}

pub(crate) fn plain_note(session: &SessionHandle, form: PlainNote) -> Handled {
    add_note(session, form.text)?;
    let count = session.get::<u64>("plain_count")?.unwrap_or(0);
    plain_page(session, count)
}

fn plain_page(session: &SessionHandle, count: u64) -> Handled {
    let note = last_note(session)?.unwrap_or_default();
    // After the changes: the token carries the session as it is now.
    let token = session.token()?.unwrap_or_default();
    Ok(Page::Html(format!(
        "<!doctype html><title>cookie-session demo, no cookies</title>         <h1>Without cookies</h1><p id=count>Visits through these links: {count}</p>         <p id=note>Note: {note}</p>         <p><a id=next href=\"/plain?tg_visit={token}\">Next page</a></p>         <form method=post action=/plain><input type=hidden name=tg_visit value=\"{token}\">         <input name=text placeholder=note><button id=save>Save note</button></form>",
        note = escape(&note),
    )))
}

pub(crate) fn health() -> Page {
    Page::Text("ok")
}

fn page(message: &str) -> Page {
    Page::Html(format!(
        "<!doctype html><title>cookie-session demo</title><p id=message>{message}</p><p><a href=/>Back</a></p>"
    ))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
