//! Writing a [`Decision`] onto a response's headers, whatever the framework's header map:
//! the merge rules (`Vary`, `Cache-Control`, `Referrer-Policy`) are written once here, and
//! each adapter only says how its map reads and writes a header.

use crate::session::Decision;

/// The response headers a decision writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Name {
    SetCookie,
    Vary,
    CacheControl,
    ReferrerPolicy,
}

/// A framework's response header map.
pub(crate) trait Headers {
    /// Calls `f` with each value of `name` that is text.
    fn each(&self, name: Name, f: &mut dyn FnMut(&str));
    fn contains(&self, name: Name) -> bool;
    /// Adds a value, keeping the others. `value` is visible ASCII (the caller's promise).
    fn append(&mut self, name: Name, value: &str);
    /// Replaces every value of `name`. `value` is visible ASCII.
    fn set(&mut self, name: Name, value: &str);
}

/// Applies `decision`: appends each `Set-Cookie` (other cookies are kept), adds
/// `Vary: Cookie` unless the response already varies on it (or on `*`), and makes the
/// response `private` for shared caches (see [`crate::http::apply`]).
pub(crate) fn apply(decision: &Decision, headers: &mut impl Headers) {
    for set_cookie in decision.set_cookies() {
        headers.append(Name::SetCookie, set_cookie);
    }
    if decision.vary_cookie && !varies_on_cookie(headers) {
        headers.append(Name::Vary, "Cookie");
    }
    if decision.no_store {
        // The strictest directive there is: nothing else the application said matters.
        headers.set(Name::CacheControl, "no-store");
    } else if decision.cache_private {
        make_private(headers);
    }
    if decision.no_referrer && !headers.contains(Name::ReferrerPolicy) {
        headers.set(Name::ReferrerPolicy, "no-referrer");
    }
}

fn directives(headers: &impl Headers, name: Name) -> Vec<String> {
    let mut found = Vec::new();
    headers.each(name, &mut |value| {
        found.extend(
            value
                .split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_owned),
        );
    });
    found
}

fn varies_on_cookie(headers: &impl Headers) -> bool {
    let mut varies = false;
    headers.each(Name::Vary, &mut |value| {
        varies |= value
            .split(',')
            .map(str::trim)
            .any(|d| d == "*" || d.eq_ignore_ascii_case("cookie"));
    });
    varies
}

fn make_private(headers: &mut impl Headers) {
    // The usual case, without the parsing and the allocations of a merge.
    if !headers.contains(Name::CacheControl) {
        headers.set(Name::CacheControl, "private");
        return;
    }
    let existing = directives(headers, Name::CacheControl);
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
    headers.set(Name::CacheControl, &value);
}
