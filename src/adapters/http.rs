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

use ::http::header::{CACHE_CONTROL, COOKIE, REFERRER_POLICY, SET_COOKIE, VARY};
use ::http::{HeaderMap, HeaderValue, Uri};
use time::OffsetDateTime;

use crate::session::{Decision, Session, Sessions};

/// Loads the session of a request from all its `Cookie` headers. When the configuration
/// names a token parameter ([`SessionConfig::with_token_parameter`](crate::SessionConfig::with_token_parameter)),
/// its value in the URL query is tried too, in the configured order. (The tower layer also
/// reads form bodies, and removes the parameter from what the handler sees; see
/// [`take_token`].)
pub fn load(sessions: &Sessions, headers: &HeaderMap, uri: &Uri, now: OffsetDateTime) -> Session {
    let token = sessions
        .config()
        .token
        .as_deref()
        .and_then(|name| take_token(uri.query()?, name).0);
    load_with_token(sessions, headers, token.as_deref(), now)
}

/// [`load`] with the token parameter's value already taken from the request.
pub(crate) fn load_with_token(
    sessions: &Sessions,
    headers: &HeaderMap,
    token: Option<&str>,
    now: OffsetDateTime,
) -> Session {
    // As bytes: one cookie with a non-ASCII octet must not hide the whole header.
    let cookies = headers.get_all(COOKIE).iter().map(HeaderValue::as_bytes);
    let mut session = sessions.load_bytes(cookies, now);
    session.add_token(token);
    session
}

/// Finds the parameter `name` in an `application/x-www-form-urlencoded` string (a URL
/// query or a form body): its first value, percent-decoded, and the string without any
/// of its occurrences (the other pairs kept byte for byte, in order). `(None, None)` when
/// the parameter is not there, so nothing needs rewriting.
///
/// ```
/// use cookie_session::http::take_token;
/// let (token, rest) = take_token("page=2&tg_visit=abc&sort=name", "tg_visit");
/// assert_eq!(token.as_deref(), Some("abc"));
/// assert_eq!(rest.as_deref(), Some("page=2&sort=name"));
/// assert_eq!(take_token("page=2", "tg_visit"), (None, None));
/// ```
#[must_use]
pub fn take_token(encoded: &str, name: &str) -> (Option<String>, Option<String>) {
    let mut token = None;
    let mut kept = Vec::new();
    for pair in encoded.split('&') {
        let raw_name = pair.split('=').next().unwrap_or_default();
        let is_token = form_urlencoded::parse(raw_name.as_bytes())
            .next()
            .is_some_and(|(key, _)| key == name);
        if is_token {
            if token.is_none() {
                token = form_urlencoded::parse(pair.as_bytes())
                    .next()
                    .map(|(_, value)| value.into_owned());
            }
        } else {
            kept.push(pair);
        }
    }
    match token {
        Some(token) => (Some(token), Some(kept.join("&"))),
        None => (None, None),
    }
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
    if decision.no_store {
        // The strictest directive there is: nothing else the application said matters.
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    } else if decision.cache_private {
        make_private(headers);
    }
    if decision.no_referrer && !headers.contains_key(REFERRER_POLICY) {
        headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
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
    // The usual case, without the parsing and the three allocations of a merge.
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("private"));
        return;
    }
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
