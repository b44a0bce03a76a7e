//! Adapters for the [`http`] crate's types (the `http` feature): load a session
//! from a request's headers and apply the end-of-request [`Decision`] to a response's.
//!
//! ```
//! use cookie_session::{Key, KeyRing, Mode, SessionConfig};
//! use cookie_session::time::OffsetDateTime;
//! use http::{HeaderMap, Request};
//!
//! let sessions = SessionConfig::new(Mode::Signed, KeyRing::new(Key::generate()?)).build()?;
//! let request = Request::get("/").header("cookie", "theme=dark").body(())?;
//!
//! let now = OffsetDateTime::now_utc();
//! let mut session = cookie_session::http::load(&sessions, request.headers(), request.uri(), now);
//! session.insert("user_id", &42)?;
//!
//! let mut response_headers = HeaderMap::new();
//! cookie_session::http::apply(&session.finish(now)?, &mut response_headers);
//! assert!(response_headers.contains_key("set-cookie"));
//! assert_eq!(response_headers["vary"], "Cookie");
//! assert_eq!(response_headers["cache-control"], "private");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use ::http::header::{CACHE_CONTROL, COOKIE, SET_COOKIE, VARY};
use ::http::{HeaderMap, HeaderValue, Uri};
use time::OffsetDateTime;

use crate::session::{Decision, Session, Sessions};

/// Loads the session of a request from all its `Cookie` headers. When the configuration
/// enables a token source ([`SessionConfig::with_token_source`](crate::SessionConfig::with_token_source)),
/// the query parameter named like the cookie is tried after the cookies.
pub fn load(sessions: &Sessions, headers: &HeaderMap, uri: &Uri, now: OffsetDateTime) -> Session {
    // As bytes: one cookie with a non-ASCII octet must not hide the whole header.
    let cookies = headers.get_all(COOKIE).iter().map(HeaderValue::as_bytes);
    let token = sessions
        .config()
        .token_source
        .then(|| query_param(uri.query()?, sessions.name()))
        .flatten();
    let mut session = sessions.load_bytes(cookies, now);
    session.add_token(token.as_deref());
    session
}

/// The first value of the query parameter `name`, percent-decoded.
fn query_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// Applies `decision` to a response's headers: appends each `Set-Cookie` (other cookies are
/// kept), adds `Vary: Cookie` unless the response already varies on it (or on `*`), and
/// makes the response `private` for shared caches: an existing `Cache-Control` keeps its
/// directives except `public` and `s-maxage`, and one with `private` or `no-store` is left
/// alone.
pub fn apply(decision: &Decision, headers: &mut HeaderMap) {
    for set_cookie in decision.set_cookies() {
        // Set-Cookie values here are visible ASCII (validated name and attributes,
        // base64url or Beaker's base64 value), which is always a valid header value.
        match HeaderValue::from_str(set_cookie) {
            Ok(value) => {
                headers.append(SET_COOKIE, value);
            }
            Err(_) => debug_assert!(false, "Set-Cookie value is not a header value"),
        }
    }
    if decision.vary_cookie && !varies_on_cookie(headers) {
        headers.append(VARY, HeaderValue::from_static("Cookie"));
    }
    if decision.cache_private {
        make_private(headers);
    }
}

fn directives(headers: &HeaderMap, name: ::http::HeaderName) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|d| d.trim().to_owned())
        .filter(|d| !d.is_empty())
        .collect()
}

fn varies_on_cookie(headers: &HeaderMap) -> bool {
    directives(headers, VARY)
        .iter()
        .any(|d| d == "*" || d.eq_ignore_ascii_case("cookie"))
}

fn make_private(headers: &mut HeaderMap) {
    let existing = directives(headers, CACHE_CONTROL);
    let name = |d: &str| {
        d.split('=')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    };
    if existing
        .iter()
        .any(|d| matches!(name(d).as_str(), "private" | "no-store"))
    {
        return;
    }
    let kept = existing
        .into_iter()
        .filter(|d| !matches!(name(d).as_str(), "public" | "s-maxage"));
    let value = std::iter::once("private".to_owned())
        .chain(kept)
        .collect::<Vec<_>>()
        .join(", ");
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(CACHE_CONTROL, value);
    }
}
