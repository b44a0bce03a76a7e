//! Reading the request's `Cookie` header and writing `Set-Cookie` header values, through
//! the `cookie` crate (rwf2/cookie-rs): its parser is the one most Rust frameworks use, and
//! its renderer writes `Expires` as an RFC 7231 IMF-fixdate.

use std::time::Duration;

use cookie::Cookie;
use time::OffsetDateTime;

use crate::session::config::{SameSite, SessionConfig};
use crate::wire::stamp::Persistence;

/// How many same-named cookies are tried. Browsers send one per matching path/domain, so a
/// handful is normal; more is an attack on decode time.
pub(crate) const MAX_CANDIDATES: usize = 8;

/// RFC 6265bis: user agents cap `Max-Age`/`Expires` at 400 days.
pub(crate) const MAX_AGE_CAP: Duration = Duration::from_secs(400 * 86_400);

/// The values of every cookie called `name` in the given `Cookie` header values, in order
/// (at most [`MAX_CANDIDATES`]). Surrounding double quotes are removed; pairs that do not
/// parse are skipped.
///
/// Headers are bytes: a browser may send any octet in another cookie of the site, and one
/// such cookie must not hide the session's. Names and values are trimmed of SP and HTAB
/// only, as RFC 6265bis says (the cookie crate's `str::trim` also strips Unicode spaces,
/// so `\u{a0}__Host-session` would pass for `__Host-session`), and names compare byte for
/// byte. On ASCII without such spaces the result is exactly what the cookie crate's
/// `Cookie::split_parse` gives (a property test below holds it to that), without its cost
/// on a session-sized header: this splits once with `memchr` (SIMD) and looks at a pair
/// only if it starts with `name`.
#[cfg(test)]
pub(crate) fn find<'h>(headers: impl IntoIterator<Item = &'h [u8]>, name: &str) -> Vec<String> {
    find_pieces(headers, name, 1).0.to_vec()
}

/// The values found for the session cookie (and a token parameter's), in order. Almost
/// always none or one, and then held without a vector: one allocation less per request.
#[derive(Debug, Default)]
pub(crate) enum Candidates {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl Candidates {
    /// Puts `value` at index `at` (at the end when `at` is past it).
    pub(crate) fn insert(&mut self, at: usize, value: String) {
        *self = match std::mem::take(self) {
            Self::None => Self::One(value),
            Self::One(first) if at == 0 => Self::Many(vec![value, first]),
            Self::One(first) => Self::Many(vec![first, value]),
            Self::Many(mut all) => {
                all.insert(at.min(all.len()), value);
                Self::Many(all)
            }
        };
    }

    fn push(&mut self, value: String) {
        self.insert(usize::MAX, value);
    }
}

impl std::ops::Deref for Candidates {
    type Target = [String];

    fn deref(&self) -> &[String] {
        match self {
            Self::None => &[],
            Self::One(value) => std::slice::from_ref(value),
            Self::Many(values) => values,
        }
    }
}

/// [`find`], and with `max_cookies > 1` also the values of the companion cookies of a
/// session split across cookies (`name.2` to `name.{max_cookies}`), each with its position,
/// in order (at most [`MAX_CANDIDATES`] per position).
pub(crate) fn find_pieces<'h>(
    headers: impl IntoIterator<Item = &'h [u8]>,
    name: &str,
    max_cookies: usize,
) -> (Candidates, Vec<(usize, String)>) {
    let mut candidates = Candidates::None;
    let mut companions: Vec<(usize, String)> = Vec::new();
    let pairs = headers.into_iter().flat_map(|header| {
        let mut start = 0;
        memchr::memchr_iter(b';', header)
            .chain(std::iter::once(header.len()))
            .map(move |end| {
                let pair = header.get(start..end).unwrap_or_default();
                start = end + 1;
                pair
            })
    });
    for (found, value) in pairs.filter_map(parse_pair) {
        let Some(rest) = found.strip_prefix(name.as_bytes()) else {
            continue;
        };
        // A session value is base64url; one that is not UTF-8 stays a candidate, so that
        // it is rejected (and removed) like any other malformed value.
        // (`from_utf8` first: its SIMD check is several times cheaper than the lossy
        // conversion's chunk walk, and a session value is ASCII.)
        let value = || match std::str::from_utf8(value) {
            Ok(text) => text.to_owned(),
            Err(_) => String::from_utf8_lossy(value).into_owned(),
        };
        match rest {
            [] if candidates.len() < MAX_CANDIDATES => candidates.push(value()),
            [b'.', digit @ b'2'..=b'9'] if max_cookies > 1 => {
                let position = usize::from(digit - b'0');
                let seen = companions.iter().filter(|(p, _)| *p == position).count();
                if position <= max_cookies && seen < MAX_CANDIDATES {
                    companions.push((position, value()));
                }
            }
            _ => {}
        }
    }
    (candidates, companions)
}

/// A `name=value` pair: split at the first `=`, both sides trimmed of SP and HTAB, the name
/// not empty; the value without one pair of surrounding double quotes.
fn parse_pair(pair: &[u8]) -> Option<(&[u8], &[u8])> {
    let eq = memchr::memchr(b'=', pair)?;
    let name = trim(&pair[..eq]);
    if name.is_empty() {
        return None;
    }
    let value = trim(&pair[eq + 1..]);
    // A lone `"` is not a quoted value: it has no closing quote once the opening one is
    // stripped.
    let unquoted = value
        .strip_prefix(b"\"")
        .and_then(|v| v.strip_suffix(b"\""));
    Some((name, unquoted.unwrap_or(value)))
}

/// Strips SP and HTAB, the only whitespace RFC 6265bis trims.
fn trim(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

/// The `Set-Cookie` value that stores `value`, valid until `deadline` (persistent
/// cookies only).
pub(crate) fn set(
    config: &SessionConfig,
    value: &str,
    persistence: Persistence,
    deadline: OffsetDateTime,
    now: OffsetDateTime,
) -> String {
    set_named(config, &config.name, value, persistence, deadline, now)
}

/// [`set`] for the cookie `name` (a piece of a split session) with the configured
/// attributes.
pub(crate) fn set_named(
    config: &SessionConfig,
    name: &str,
    value: &str,
    persistence: Persistence,
    deadline: OffsetDateTime,
    now: OffsetDateTime,
) -> String {
    let mut cookie = base(config, name, value);
    if persistence == Persistence::Persistent {
        let remaining = std::time::Duration::try_from(deadline - now).unwrap_or_default();
        let max_age = remaining.min(MAX_AGE_CAP);
        let max_age = time::Duration::try_from(max_age).unwrap_or(time::Duration::ZERO);
        cookie.set_max_age(max_age);
        cookie.set_expires(now + max_age);
    }
    cookie.to_string()
}

/// The `Set-Cookie` value that deletes the cookie: the same name and attributes (so it
/// matches the stored cookie), an empty value, `Max-Age=0` and an `Expires` in the past.
pub(crate) fn removal(config: &SessionConfig) -> String {
    removal_named(config, &config.name)
}

/// [`removal`] of the cookie `name` (a piece of a split session).
pub(crate) fn removal_named(config: &SessionConfig, name: &str) -> String {
    let mut cookie = base(config, name, "");
    cookie.set_max_age(time::Duration::ZERO);
    cookie.set_expires(OffsetDateTime::UNIX_EPOCH);
    cookie.to_string()
}

/// The removal of a cookie of this name stored under another `Domain` (`None`: host-only)
/// and `Path` than the configured ones.
pub(crate) fn removal_at(config: &SessionConfig, domain: Option<&str>, path: &str) -> String {
    let mut cookie = base(config, &config.name, "");
    cookie.unset_domain();
    if let Some(domain) = domain {
        cookie.set_domain(domain);
    }
    cookie.set_path(path);
    cookie.set_max_age(time::Duration::ZERO);
    cookie.set_expires(OffsetDateTime::UNIX_EPOCH);
    cookie.to_string()
}

fn base<'a>(config: &'a SessionConfig, name: &'a str, value: &'a str) -> Cookie<'a> {
    let mut cookie = Cookie::new(name, value);
    cookie.set_path(config.path.as_str());
    if let Some(domain) = &config.domain {
        cookie.set_domain(domain.as_str());
    }
    cookie.set_secure(config.secure);
    cookie.set_http_only(config.http_only);
    cookie.set_same_site(match config.same_site {
        SameSite::Strict => cookie::SameSite::Strict,
        SameSite::Lax => cookie::SameSite::Lax,
        SameSite::None => cookie::SameSite::None,
    });
    if config.partitioned {
        cookie.set_partitioned(true);
    }
    cookie
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn candidates_keep_the_order_they_are_put_in() {
        let mut candidates = Candidates::default();
        assert!(candidates.is_empty());
        candidates.push("b".to_owned());
        assert_eq!(&*candidates, ["b"]);
        candidates.insert(0, "a".to_owned());
        candidates.push("d".to_owned());
        candidates.insert(2, "c".to_owned());
        assert_eq!(&*candidates, ["a", "b", "c", "d"]);
        let mut one = Candidates::default();
        one.push("x".to_owned());
        one.insert(1, "y".to_owned());
        assert_eq!(&*one, ["x", "y"]);
    }

    /// RFC 6265bis, section 5.4 (the `Cookie` header) read literally: split at `;`, then at
    /// the first `=`, trim SP and HTAB, drop empty names; plus the cookie crate's removal
    /// of one pair of surrounding quotes.
    fn by_the_rfc(headers: &[String], name: &str) -> Vec<String> {
        let sp_htab = |c: char| c == ' ' || c == '\t';
        headers
            .iter()
            .flat_map(|h| h.split(';'))
            .filter_map(|pair| pair.split_once('='))
            .map(|(n, v)| (n.trim_matches(sp_htab), v.trim_matches(sp_htab)))
            .filter(|(n, _)| !n.is_empty() && *n == name)
            .map(|(_, v)| {
                let unquoted = v.strip_prefix('"').and_then(|v| v.strip_suffix('"'));
                unquoted.unwrap_or(v).to_owned()
            })
            .take(MAX_CANDIDATES)
            .collect()
    }

    fn ours(headers: &[String], name: &str) -> Vec<String> {
        find(headers.iter().map(|h| h.as_bytes()), name)
    }

    /// The cookie crate's reading of the same headers.
    fn with_cookie_crate(headers: &[String], name: &str) -> Vec<String> {
        headers
            .iter()
            .flat_map(|h| Cookie::split_parse(h.as_str()))
            .filter_map(Result::ok)
            .filter(|c| c.name() == name)
            .map(|c| c.value_trimmed().to_owned())
            .take(MAX_CANDIDATES)
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// Same values, same order, as the RFC's algorithm, on headers made of the
        /// characters that matter (separators, quotes, spaces of every kind, the name and
        /// near misses).
        #[test]
        fn reads_headers_as_the_rfc_says(
            headers in prop::collection::vec(
                prop::collection::vec(prop::sample::select(vec![
                    "sid", "sid", "si", "sidx", "=", "=", ";", "; ", " ", "\t", "\"",
                    "v", "abc", "\u{a0}", "\u{3000}", "é", ",", "\u{b}", "\r",
                ]), 0..16).prop_map(|parts| parts.concat()),
                0..3,
            ),
        ) {
            prop_assert_eq!(ours(&headers, "sid"), by_the_rfc(&headers, "sid"));
        }

        /// Same values, same order, as `Cookie::split_parse` where the two agree on what
        /// whitespace is: ASCII headers without other spaces than SP and HTAB.
        #[test]
        fn reads_ascii_headers_as_the_cookie_crate_does(
            headers in prop::collection::vec(
                prop::collection::vec(prop::sample::select(vec![
                    "sid", "sid", "si", "sidx", "=", "=", ";", "; ", " ", "\t", "\"",
                    "v", "abc", ",",
                ]), 0..16).prop_map(|parts| parts.concat()),
                0..3,
            ),
        ) {
            prop_assert_eq!(ours(&headers, "sid"), with_cookie_crate(&headers, "sid"));
        }
    }
}
