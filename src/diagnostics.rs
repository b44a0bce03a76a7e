//! Events for operators: what the session layer decided that a log should show. With the
//! `tracing` feature they are `tracing` events (target `cookie_session`); without it they
//! compile to nothing. They carry cookie names, sizes and categories, never a cookie value
//! or a session value.

/// A re-issue that was only asked for (a format upgrade, a renewal, a key rotation) did not
/// fit the size limit; the visitor keeps the cookie they have.
pub(crate) fn reissue_deferred(cookie: &str, size: usize, limit: usize) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        target: "cookie_session",
        cookie,
        size,
        limit,
        "session not re-issued: in the configured format it would exceed the size limit, so \
         the visitor keeps the cookie they have (read-only until it fits)"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = (cookie, size, limit);
}
