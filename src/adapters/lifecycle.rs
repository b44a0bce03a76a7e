//! What every framework adapter does around a request, written once: the session handle at
//! the start (lazily loaded: an untouched request costs nothing), and at the end either the
//! decision to write onto the handler's response or the response that replaces it. An
//! adapter translates requests and responses; it decides nothing of its own.

use std::fmt;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::server::Begun;
use crate::server::handle::SessionHandle;
use crate::session::error::SessionError;
use crate::session::{CookieAction, Decision, Sessions};
use crate::stores::{DynStore, StoreError};

/// An adapter's settings, shared by the requests it serves.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) sessions: Sessions,
    pub(crate) save_on_server_error: bool,
    pub(crate) store: Option<Arc<dyn DynStore>>,
    /// Server-side: an empty, read-only session while the store is down, instead of `503`.
    pub(crate) degrade: bool,
}

impl Settings {
    pub(crate) fn new(sessions: Sessions) -> Self {
        Self {
            sessions,
            save_on_server_error: false,
            store: None,
            degrade: false,
        }
    }

    /// The request's session, from its `Cookie` header values (as bytes: one cookie with a
    /// non-ASCII octet must not hide the whole header) and its token parameter.
    pub(crate) fn begin<'h>(
        &self,
        cookies: impl IntoIterator<Item = &'h [u8]>,
        token: Option<&str>,
        now: OffsetDateTime,
    ) -> SessionHandle {
        match &self.store {
            None => {
                let mut session = self.sessions.load_bytes(cookies, now);
                session.add_token(token);
                SessionHandle::new(session)
            }
            Some(store) => {
                let mut session = self.sessions.load_server_side(cookies, now);
                session.add_token(token);
                SessionHandle::server_side(session, Arc::clone(store))
            }
        }
    }

    /// What becomes of the handler's response, whose status was a server error or not.
    pub(crate) async fn end(
        &self,
        handle: &SessionHandle,
        server_error: bool,
        now: OffsetDateTime,
    ) -> End {
        // A failed handler's half-done changes are not stored (unless configured), in a
        // cookie or in a store; the response still varies on the cookie if it was read.
        if server_error && !self.save_on_server_error {
            let Ok(Some(session)) = handle.take() else {
                return End::Leave;
            };
            let (brought_token, token_issued) = session.token_headers();
            let headers_only = if session.accessed() {
                Decision::accessed(CookieAction::Keep, Vec::new())
            } else {
                Decision::untouched()
            };
            return End::Apply(headers_only.with_token_headers(brought_token, token_issued));
        }
        // Cookie sessions finish synchronously, and so does a server-side request that
        // writes nothing (most of them). A store's writes are boxed: held inline, their
        // state made every request's future 2,960 bytes (680 without it), allocated past
        // the allocator's small-size cache and copied on every request; boxed for every
        // request, a read cost a 2.5 KB allocation (and glibc's consolidation it triggers).
        let committed = match &self.store {
            None => handle.finish(now),
            // The handle's store: `begin` gave it this one.
            Some(store) => match handle.begin_commit(now) {
                Ok(Begun::Done(decision)) => Ok(decision),
                Ok(Begun::Store(pending)) => Box::pin(pending.finish(&**store, now)).await,
                Err(error) => Err(error),
            },
        };
        match committed {
            Ok(decision) => End::Apply(decision),
            // Someone finished it already: nothing to do.
            Err(SessionError::Finished) => End::Leave,
            Err(error) => {
                crate::diagnostics::save_failed(self.sessions.name(), &error);
                End::Replace(match error {
                    SessionError::Stored(StoreError::Unavailable(_)) => Failure::StoreUnavailable,
                    // Other requests kept changing the record for every retry: contention,
                    // not a fault, so the client is told to try again shortly.
                    SessionError::Stored(StoreError::Conflict) => Failure::StoreBusy,
                    error => Failure::NotSaved(error),
                })
            }
        }
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("sessions", &self.sessions)
            .field("save_on_server_error", &self.save_on_server_error)
            .field("server_side", &self.store.is_some())
            .field("degrade", &self.degrade)
            .finish()
    }
}

/// The end of a request.
#[derive(Debug)]
pub(crate) enum End {
    /// Write this onto the handler's response.
    Apply(Decision),
    /// Leave the response as it is.
    Leave,
    /// Send this instead of the handler's response, without any `Set-Cookie`: nothing was
    /// stored, and the browser keeps its cookie.
    Replace(Failure),
}

/// Why the handler's response is replaced.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The store is down: `503` with `Retry-After: 5`.
    StoreUnavailable,
    /// Concurrent writes of the session won every retry: `503` with `Retry-After: 1`.
    StoreBusy,
    /// The session could not be saved (e.g. too large): the application's save-failure
    /// response, or `500`.
    NotSaved(SessionError),
}

impl Failure {
    /// The status, `Retry-After` and text of the default response.
    pub(crate) fn response(&self) -> (u16, Option<&'static str>, &'static str) {
        match self {
            Self::StoreUnavailable => (503, Some("5"), STORE_UNAVAILABLE),
            Self::StoreBusy => (
                503,
                Some("1"),
                "the session was changed by other requests while this one saved; try again\n",
            ),
            Self::NotSaved(_) => (500, None, "the session could not be saved\n"),
        }
    }
}

/// The text of a `503` for a store that is down.
pub(crate) const STORE_UNAVAILABLE: &str = "the session store is unavailable; try again shortly\n";

/// The text of a `500` for `?` on a session operation in a handler (the details, which name
/// session keys, go to the `tracing` log, not to the client).
#[cfg(any(feature = "axum", feature = "actix"))]
pub(crate) const HANDLER_ERROR: &str = "the session could not be used\n";

/// The handle a handler asks for: a server-side session's record is read now (once per
/// request), so handlers that do not take the session cost no store I/O.
#[cfg(any(feature = "axum", feature = "actix"))]
pub(crate) async fn extract(
    handle: Option<SessionHandle>,
    degrade: bool,
) -> Result<SessionHandle, SessionRejection> {
    let handle = handle.ok_or(SessionRejection::MissingLayer)?;
    let loaded = if degrade {
        handle.load_or_degrade().await.map(|_| ())
    } else {
        handle.load().await
    };
    match loaded {
        Ok(()) => Ok(handle),
        Err(error) => {
            crate::diagnostics::handler_error(&error);
            Err(SessionRejection::StoreUnavailable)
        }
    }
}

/// Why a handler could not get its session.
#[cfg(any(feature = "axum", feature = "actix"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionRejection {
    /// The route has no session middleware: a `500`.
    MissingLayer,
    /// The session store did not answer: a `503` with `Retry-After`; the visitor's cookie
    /// is not touched.
    StoreUnavailable,
}

#[cfg(any(feature = "axum", feature = "actix"))]
impl fmt::Display for SessionRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MissingLayer => "the session middleware is not installed on this route",
            Self::StoreUnavailable => STORE_UNAVAILABLE.trim_end(),
        })
    }
}

#[cfg(any(feature = "axum", feature = "actix"))]
impl std::error::Error for SessionRejection {}

/// Whether a `Content-Type` value is `application/x-www-form-urlencoded`.
pub(crate) fn is_form(content_type: Option<&[u8]>) -> bool {
    content_type
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// A `Content-Length` value, if it is a number.
pub(crate) fn declared_length(content_length: Option<&[u8]>) -> Option<u64> {
    std::str::from_utf8(content_length?).ok()?.parse().ok()
}

/// The most of a form body without a `Content-Length` that the layer reads to hand it on
/// whole (axum's default body limit): 2 MiB. A form with a declared length over
/// [`with_max_form_size`](crate::SessionConfig::with_max_form_size) is never read.
pub const MAX_CHUNKED_FORM: usize = 2 * 1024 * 1024;
