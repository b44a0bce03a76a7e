//! A browser's cookie store for one site, as RFC 6265 section 5.3 keeps it: a cookie is
//! keyed by name, domain and path; `Set-Cookie`s are applied in the order given; `Max-Age=0`
//! (or the removal's 1970 `Expires`) removes; expired cookies are not sent. Shared by the
//! session model, its fuzz target and `tests/chunk_transitions.rs`.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;

/// The browser's cookies for the site, by (name, domain, path).
#[derive(Debug, Default)]
pub struct Jar {
    cookies: BTreeMap<(String, String, String), (String, Option<i64>)>,
}

impl Jar {
    /// The `Cookie` header of a request to `/` at `now`.
    pub fn header(&mut self, now: i64) -> String {
        // Expired cookies are dropped before a request.
        self.cookies
            .retain(|_, (_, expires)| expires.is_none_or(|at| now < at));
        self.cookies
            .iter()
            .map(|((name, _, _), (value, _))| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Applies one `Set-Cookie` received at `now`, as RFC 6265 section 5.3 does.
    pub fn apply(&mut self, set_cookie: &str, now: i64) {
        let mut parts = set_cookie.split(';');
        let (name, value) = parts.next().unwrap().trim().split_once('=').unwrap();
        let (mut domain, mut path, mut expires) = (String::new(), "/".to_owned(), None);
        for attribute in parts {
            let (attr, val) = attribute
                .trim()
                .split_once('=')
                .unwrap_or((attribute.trim(), ""));
            match attr.to_ascii_lowercase().as_str() {
                "domain" => domain = val.trim_start_matches('.').to_ascii_lowercase(),
                "path" if val.starts_with('/') => path = val.to_owned(),
                // Max-Age wins over Expires; only the removal's 1970 date is sent here.
                "max-age" => expires = Some(now + val.parse::<i64>().unwrap().max(0)),
                "expires" if val.contains("1970") && expires.is_none() => expires = Some(0),
                _ => {}
            }
        }
        let key = (name.to_owned(), domain, path);
        if expires.is_some_and(|at| at <= now) {
            self.cookies.remove(&key);
        } else {
            assert!(name.len() + value.len() <= 4096, "{name}: {}", value.len());
            self.cookies.insert(key, (value.to_owned(), expires));
        }
    }

    /// The names of the cookies held.
    pub fn names(&self) -> std::collections::BTreeSet<String> {
        self.cookies
            .keys()
            .map(|(name, _, _)| name.clone())
            .collect()
    }

    /// Whether the jar holds no cookie.
    pub fn is_empty(&self) -> bool {
        self.cookies.is_empty()
    }
}
