//! Tower middleware (the `tower` feature): [`SessionLayer`] gives every request a lazily
//! loaded [`Session`] through its extensions and writes the decision on the response.
//!
//! ```
//! use cookie_session::tower::{SessionHandle, SessionLayer};
//! use cookie_session::{Key, KeyRing, Mode, SessionConfig};
//!
//! let sessions = SessionConfig::new(Mode::Encrypted, KeyRing::new(Key::generate()?)).build()?;
//! let layer = SessionLayer::new(sessions);
//! // axum: Router::new().route("/", get(handler)).layer(layer), and in a handler:
//! fn handler(session: SessionHandle) -> Result<String, cookie_session::tower::SessionGone> {
//!     let mut session = session.lock()?;
//!     let visits = session.get::<u64>("visits").ok().flatten().unwrap_or(0) + 1;
//!     let _ = session.insert("visits", &visits);
//!     Ok(format!("visit number {visits}"))
//! }
//! # let _ = (layer, handler);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **Concurrent requests** from one browser each load the cookie the browser sent and each
//! may answer with a new one; the browser keeps whichever response arrives last (last
//! writer wins), so a change made by a slower parallel request can be lost. Touch avoidance
//! makes this rare: read-only requests send no cookie at all, so only concurrent *writes*
//! race, as with every client-side session store.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use ::http::{Request, Response, StatusCode};
use time::OffsetDateTime;
use tower_layer::Layer;
use tower_service::Service;

use crate::session::{CookieAction, Decision, Session, Sessions};

/// Adds sessions to a tower service.
///
/// Each request gets a [`SessionHandle`] in its extensions. Nothing is decoded unless a
/// handler uses the session. After the inner service responds, the session's decision is
/// applied with [`http::apply`](crate::http::apply). If the session cannot be saved (too
/// large), the response becomes an empty `500 Internal Server Error` without a
/// `Set-Cookie`: the browser keeps its previous cookie, and the change is not silently lost.
#[derive(Clone, Debug)]
pub struct SessionLayer {
    sessions: Sessions,
    save_on_server_error: bool,
}

impl SessionLayer {
    /// A layer for these sessions.
    #[must_use]
    pub fn new(sessions: Sessions) -> Self {
        Self {
            sessions,
            save_on_server_error: false,
        }
    }

    /// Whether a 5xx response still stores session changes. Default off: a handler that
    /// failed half-way should not commit half its changes (`Vary` is still added when the
    /// session was read).
    #[must_use]
    pub fn with_save_on_server_error(mut self, save: bool) -> Self {
        self.save_on_server_error = save;
        self
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`SessionLayer`] wraps around an inner service.
#[derive(Clone, Debug)]
pub struct SessionService<S> {
    inner: S,
    layer: SessionLayer,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let now = OffsetDateTime::now_utc();
        let session =
            crate::http::load(&self.layer.sessions, request.headers(), request.uri(), now);
        let handle = SessionHandle(Arc::new(Mutex::new(Some(session))));
        request.extensions_mut().insert(handle.clone());
        let response = self.inner.call(request);
        let save_on_server_error = self.layer.save_on_server_error;
        Box::pin(async move {
            let mut response = response.await?;
            let Some(session) = handle.take() else {
                return Ok(response);
            };
            match session.finish(OffsetDateTime::now_utc()) {
                Ok(mut decision) => {
                    if response.status().is_server_error() && !save_on_server_error {
                        decision = without_cookie(decision);
                    }
                    crate::http::apply(&decision, response.headers_mut());
                }
                Err(_) => {
                    response = Response::new(ResBody::default());
                    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                }
            }
            Ok(response)
        })
    }
}

/// The decision with its cookie dropped (and so no cache advice), keeping `Vary`.
fn without_cookie(decision: Decision) -> Decision {
    let mut decision = decision;
    decision.cookie = CookieAction::Keep;
    decision.removals.clear();
    decision.cache_private = false;
    decision
}

/// A request's session, shared between the middleware and the handler. Lock it briefly;
/// the guard cannot be held across an `.await`.
#[derive(Clone)]
pub struct SessionHandle(Arc<Mutex<Option<Session>>>);

impl SessionHandle {
    /// Locks the session for reading or changing it.
    ///
    /// # Errors
    /// [`SessionGone`] once the response has been produced and the session finished (a
    /// task that outlived its request).
    pub fn lock(&self) -> Result<SessionGuard<'_>, SessionGone> {
        let guard = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if guard.is_some() {
            Ok(SessionGuard(guard))
        } else {
            Err(SessionGone)
        }
    }

    fn take(&self) -> Option<Session> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionHandle").finish_non_exhaustive()
    }
}

/// The locked session of a request; dereferences to [`Session`].
pub struct SessionGuard<'a>(MutexGuard<'a, Option<Session>>);

impl std::ops::Deref for SessionGuard<'_> {
    type Target = Session;

    fn deref(&self) -> &Session {
        // Invariant: `SessionHandle::lock` only builds a guard over `Some`.
        self.0
            .as_ref()
            .unwrap_or_else(|| unreachable!("a guard always holds a session"))
    }
}

impl std::ops::DerefMut for SessionGuard<'_> {
    fn deref_mut(&mut self) -> &mut Session {
        self.0
            .as_mut()
            .unwrap_or_else(|| unreachable!("a guard always holds a session"))
    }
}

impl fmt::Debug for SessionGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SessionGuard").field(&**self).finish()
    }
}

/// The session was used after its response was produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionGone;

impl fmt::Display for SessionGone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the response was already produced; the session can no longer be used")
    }
}

impl std::error::Error for SessionGone {}

/// The axum extractor (the `axum` feature): a handler takes a [`SessionHandle`] argument.
#[cfg(feature = "axum")]
mod axum_extractor {
    use axum_core::extract::FromRequestParts;
    use axum_core::response::{IntoResponse, Response};
    use http::StatusCode;
    use http::request::Parts;

    use super::{SessionGone, SessionHandle};

    impl<S: Send + Sync> FromRequestParts<S> for SessionHandle {
        type Rejection = MissingSessionLayer;

        async fn from_request_parts(
            parts: &mut Parts,
            _state: &S,
        ) -> Result<Self, Self::Rejection> {
            parts
                .extensions
                .get::<SessionHandle>()
                .cloned()
                .ok_or(MissingSessionLayer)
        }
    }

    /// A handler asked for a session on a route without [`SessionLayer`](super::SessionLayer).
    #[derive(Debug, Clone, Copy)]
    pub struct MissingSessionLayer;

    impl IntoResponse for MissingSessionLayer {
        fn into_response(self) -> Response {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "SessionLayer is not installed on this route",
            )
                .into_response()
        }
    }

    impl IntoResponse for SessionGone {
        fn into_response(self) -> Response {
            (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
        }
    }
}

#[cfg(feature = "axum")]
pub use axum_extractor::MissingSessionLayer;
