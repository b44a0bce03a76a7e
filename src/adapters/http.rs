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

use crate::adapters::headers::Name;
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
    crate::adapters::headers::apply(decision, headers);
}

impl crate::adapters::headers::Headers for HeaderMap {
    fn each(&self, name: Name, f: &mut dyn FnMut(&str)) {
        for value in self.get_all(header(name)) {
            if let Ok(text) = value.to_str() {
                f(text);
            }
        }
    }

    fn contains(&self, name: Name) -> bool {
        self.contains_key(header(name))
    }

    fn append(&mut self, name: Name, value: &str) {
        if let Some(value) = value_of(value) {
            HeaderMap::append(self, header(name), value);
        }
    }

    fn set(&mut self, name: Name, value: &str) {
        if let Some(value) = value_of(value) {
            self.insert(header(name), value);
        }
    }
}

fn header(name: Name) -> ::http::HeaderName {
    match name {
        Name::SetCookie => SET_COOKIE,
        Name::Vary => VARY,
        Name::CacheControl => CACHE_CONTROL,
        Name::ReferrerPolicy => REFERRER_POLICY,
    }
}

/// The values written are visible ASCII (validated cookie names and attributes, base64url
/// or Beaker's base64, fixed directives), which is always a valid header value.
fn value_of(value: &str) -> Option<HeaderValue> {
    let value = HeaderValue::from_str(value).ok();
    debug_assert!(value.is_some(), "a header value that is not visible ASCII");
    value
}
