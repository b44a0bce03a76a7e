//! Reading the request's `Cookie` header and writing `Set-Cookie` header values, through
//! the `cookie` crate (rwf2/cookie-rs): its parser is the one most Rust frameworks use, and
//! its renderer writes `Expires` as an RFC 7231 IMF-fixdate.

use std::time::Duration;

use cookie::Cookie;
use time::OffsetDateTime;

use crate::config::{Persistence, SameSite, SessionConfig};

/// How many same-named cookies are tried. Browsers send one per matching path/domain, so a
/// handful is normal; more is an attack on decode time.
pub(crate) const MAX_CANDIDATES: usize = 8;

/// RFC 6265bis: user agents cap `Max-Age`/`Expires` at 400 days.
pub(crate) const MAX_AGE_CAP: Duration = Duration::from_secs(400 * 86_400);

/// The values of every cookie called `name` in the given `Cookie` header values, in order
/// (at most [`MAX_CANDIDATES`]). Surrounding double quotes are removed; pairs that do not
/// parse are skipped.
///
/// The header is split at `;` with `memchr` (SIMD; a session cookie makes the header
/// kilobytes long), and only pairs that can carry `name` are handed to the cookie crate's
/// parser, which trims and checks them as its own `split_parse` would.
pub(crate) fn find<'h>(headers: impl IntoIterator<Item = &'h str>, name: &str) -> Vec<String> {
    headers
        .into_iter()
        .flat_map(|header| {
            let mut start = 0;
            memchr::memchr_iter(b';', header.as_bytes())
                .chain(std::iter::once(header.len()))
                .map(move |end| {
                    let pair = header.get(start..end).unwrap_or_default();
                    start = end + 1;
                    pair
                })
        })
        // The cookie crate trims the name, so a pair named `name` starts with it.
        .filter(|pair| pair.trim_start().starts_with(name))
        .filter_map(|pair| Cookie::parse(pair).ok())
        .filter(|c| c.name() == name)
        .map(|c| c.value_trimmed().to_owned())
        .take(MAX_CANDIDATES)
        .collect()
}

/// The `Set-Cookie` value that stores `value`, valid until `deadline` (persistent
/// cookies only).
pub(crate) fn set(
    config: &SessionConfig,
    value: &str,
    deadline: OffsetDateTime,
    now: OffsetDateTime,
) -> String {
    let mut cookie = base(config, value);
    if config.persistence == Persistence::Persistent {
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
    let mut cookie = base(config, "");
    cookie.set_max_age(time::Duration::ZERO);
    cookie.set_expires(OffsetDateTime::UNIX_EPOCH);
    cookie.to_string()
}

fn base<'a>(config: &'a SessionConfig, value: &'a str) -> Cookie<'a> {
    let mut cookie = Cookie::new(config.name.as_str(), value);
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
