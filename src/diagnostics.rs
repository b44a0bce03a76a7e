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

/// The session could not be saved at the end of a request (typically: too large). The
/// response does not store it.
#[cfg(any(feature = "tower", feature = "actix"))]
pub(crate) fn save_failed(cookie: &str, error: &(dyn std::error::Error + 'static)) {
    #[cfg(feature = "tracing")]
    tracing::error!(
        target: "cookie_session",
        cookie,
        error = %Chain(error),
        "session not saved; the browser keeps its previous cookie"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = (cookie, error);
}

/// A handler returned a session error with `?`.
#[cfg(any(feature = "axum", feature = "actix"))]
pub(crate) fn handler_error(error: &(dyn std::error::Error + 'static)) {
    #[cfg(feature = "tracing")]
    tracing::error!(target: "cookie_session", error = %Chain(error), "session error in a handler");
    #[cfg(not(feature = "tracing"))]
    let _ = error;
}

/// A session over the size limit: its size, the limit, and its keys (never the values), so
/// an operator can see what grew.
pub(crate) fn too_large(cookie: &str, size: usize, limit: usize, keys: &[&str]) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        target: "cookie_session",
        cookie,
        size,
        limit,
        keys = ?keys,
        "session too large for its cookie"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = (cookie, size, limit, keys);
}

/// A cookie of the session's name was rejected: the category, never the value.
pub(crate) fn rejected(cookie: &str, error: &crate::wire::error::DecodeError) {
    #[cfg(feature = "tracing")]
    tracing::debug!(
        target: "cookie_session",
        cookie,
        reason = category(error),
        "session cookie rejected; the request gets a new session"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = (cookie, error);
}

/// A short, stable name for why a cookie was rejected.
#[cfg(feature = "tracing")]
fn category(error: &crate::wire::error::DecodeError) -> &'static str {
    use crate::wire::error::DecodeError;
    match error {
        DecodeError::TooLarge { .. } => "too-large",
        DecodeError::Malformed => "malformed",
        DecodeError::UnsupportedVersion(_) => "unsupported-version",
        DecodeError::WrongMode { .. } => "wrong-mode",
        DecodeError::UnknownKey(_) => "unknown-key",
        DecodeError::Invalid => "invalid",
        DecodeError::Expired(crate::wire::stamp::Deadline::Idle) => "expired-idle",
        DecodeError::Expired(_) => "expired-absolute",
        DecodeError::IssuedInFuture => "issued-in-future",
        DecodeError::TooDeep { .. } => "too-deep",
        DecodeError::Payload(_) => "payload",
        DecodeError::InvalidName => "invalid-name",
        DecodeError::MissingChunk { .. } => "missing-chunk",
        DecodeError::TooManyChunks { .. } => "too-many-chunks",
        DecodeError::SessionTooLarge { .. } => "session-too-large",
        DecodeError::CorruptCompression => "corrupt-compression",
    }
}

/// An error with its `source()` chain on one line (the chain carries no values).
#[cfg(feature = "tracing")]
struct Chain<'a>(&'a (dyn std::error::Error + 'static));

#[cfg(feature = "tracing")]
impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

/// A sweep of expired sessions failed; the sweeper backs off and tries again.
pub(crate) fn sweep_failed(error: &(dyn std::error::Error + 'static), consecutive: u32) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        target: "cookie_session",
        consecutive_failures = consecutive,
        error = %Chain(error),
        "sweeping expired sessions failed; backing off and trying again"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = (error, consecutive);
}

/// The store was down and a session is served empty and read-only.
pub(crate) fn store_down_degraded(error: &(dyn std::error::Error + 'static)) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        target: "cookie_session",
        error = %Chain(error),
        "session store unavailable; serving an empty, read-only session"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = error;
}
