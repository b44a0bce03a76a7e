//! Tower middleware (the `tower` feature): [`SessionLayer`] gives every request a lazily
//! loaded session through a [`SessionHandle`] in its extensions, and writes the decision on
//! the response.
//!
//! ```
//! use cookie_session::tower::SessionLayer;
//! use cookie_session::{Key, KeyRing, Mode, SessionConfig, SessionError, SessionHandle};
//!
//! let sessions = SessionConfig::new(Mode::Encrypted, KeyRing::new(Key::generate()?)).build()?;
//! let layer = SessionLayer::new(sessions);
//! // axum: Router::new().route("/", get(handler)).layer(layer), and in a handler:
//! async fn handler(session: SessionHandle) -> Result<String, SessionError> {
//!     let visits = session.get::<u64>("visits")?.unwrap_or(0) + 1;
//!     session.insert("visits", &visits)?;
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
use std::sync::Arc;
use std::task::{Context, Poll};

use ::http::{Request, Response, StatusCode};
use time::OffsetDateTime;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::SessionError;
/// The handle lives at the crate root (it serves every adapter); also here for tower users.
pub use crate::handle::SessionHandle;
use crate::session::{CookieAction, Decision, Sessions};

/// What the response becomes when the session cannot be saved.
type SaveFailure = Arc<dyn Fn(&SessionError) -> Response<String> + Send + Sync>;

/// Adds sessions to a tower service.
///
/// Each request gets a [`SessionHandle`] in its extensions. Nothing is decoded unless a
/// handler uses the session. After the inner service responds, the session's decision is
/// applied with [`http::apply`](crate::http::apply). If the session cannot be saved (too
/// large), the response becomes a `500 Internal Server Error` with a short text body and no
/// `Set-Cookie` (the browser keeps its previous cookie, and the change is not silently
/// lost), a `tracing` error is emitted, and [`with_save_failure`](Self::with_save_failure)
/// lets the application answer differently.
#[derive(Clone)]
pub struct SessionLayer {
    sessions: Sessions,
    save_on_server_error: bool,
    save_failure: Option<SaveFailure>,
}

impl SessionLayer {
    /// A layer for these sessions.
    #[must_use]
    pub fn new(sessions: Sessions) -> Self {
        Self {
            sessions,
            save_on_server_error: false,
            save_failure: None,
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

    /// The response to send instead of the handler's when the session cannot be saved
    /// (for example a page saying the cart is full). It replaces the handler's response
    /// whole; no `Set-Cookie` is added to it. Default: `500` with the text
    /// "the session could not be saved".
    ///
    /// ```
    /// # use cookie_session::{Key, KeyRing, Mode, SessionConfig};
    /// # use cookie_session::tower::SessionLayer;
    /// # let sessions = SessionConfig::new(Mode::Signed, KeyRing::new(Key::generate()?)).build()?;
    /// let layer = SessionLayer::new(sessions).with_save_failure(|_error| {
    ///     let mut response = http::Response::new("Your basket is too large to keep.".to_owned());
    ///     *response.status_mut() = http::StatusCode::PAYLOAD_TOO_LARGE;
    ///     response
    /// });
    /// # let _ = layer;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_save_failure(
        mut self,
        respond: impl Fn(&SessionError) -> Response<String> + Send + Sync + 'static,
    ) -> Self {
        self.save_failure = Some(Arc::new(respond));
        self
    }

    fn failure_response(&self, error: &SessionError) -> Response<String> {
        match &self.save_failure {
            Some(respond) => respond(error),
            None => {
                let mut response = Response::new("the session could not be saved\n".to_owned());
                *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                response
            }
        }
    }
}

impl fmt::Debug for SessionLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionLayer")
            .field("sessions", &self.sessions)
            .field("save_on_server_error", &self.save_on_server_error)
            .field("save_failure", &self.save_failure.as_ref().map(|_| "<fn>"))
            .finish()
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
    ResBody: From<String> + Send + 'static,
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
        let handle = SessionHandle::new(session);
        request.extensions_mut().insert(handle.clone());
        let response = self.inner.call(request);
        let layer = self.layer.clone();
        Box::pin(async move {
            let mut response = response.await?;
            // `Finished`: someone finished it already (nothing to do); `InUse` cannot happen
            // here, outside any handler code.
            let Ok(Some(session)) = handle.take() else {
                return Ok(response);
            };
            match session.finish(OffsetDateTime::now_utc()) {
                Ok(mut decision) => {
                    if response.status().is_server_error() && !layer.save_on_server_error {
                        decision = without_cookie(decision);
                    }
                    crate::http::apply(&decision, response.headers_mut());
                }
                Err(error) => {
                    crate::diagnostics::save_failed(layer.sessions.name(), &error);
                    response = layer.failure_response(&error).map(ResBody::from);
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

/// The axum extractor (the `axum` feature): a handler takes a [`SessionHandle`] argument.
#[cfg(feature = "axum")]
mod axum_extractor {
    use axum_core::extract::FromRequestParts;
    use axum_core::response::{IntoResponse, Response};
    use http::StatusCode;
    use http::request::Parts;

    use crate::error::SessionError;
    use crate::handle::SessionHandle;

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

    /// `?` on session operations in a handler: a `500` with a short, generic text (the
    /// details, which name session keys, go to the `tracing` log, not to the client).
    impl IntoResponse for SessionError {
        fn into_response(self) -> Response {
            crate::diagnostics::handler_error(&self);
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the session could not be used\n",
            )
                .into_response()
        }
    }
}

#[cfg(feature = "axum")]
pub use axum_extractor::MissingSessionLayer;
