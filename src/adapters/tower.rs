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

use crate::adapters::lifecycle::{End, Failure, Settings, declared_length, is_form};
/// The handle lives at the crate root (it serves every adapter); also here for tower users.
pub use crate::server::handle::SessionHandle;
use crate::session::Sessions;
use crate::session::error::SessionError;
use crate::stores::SessionStore;

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
    settings: Settings,
    save_failure: Option<SaveFailure>,
}

impl SessionLayer {
    /// A layer for these sessions.
    #[must_use]
    pub fn new(sessions: Sessions) -> Self {
        Self {
            settings: Settings::new(sessions),
            save_failure: None,
        }
    }

    /// Server-side sessions: the cookie carries only a signed id, the data lives in
    /// `store` (see [`server`](crate::server)). The store is read once per request, when a
    /// handler extracts the session, and written once at the end when the request changed
    /// something. When the store fails, the response is `503 Service Unavailable` with
    /// `Retry-After`, and the visitor's cookie is left alone.
    ///
    /// ```
    /// # use cookie_session::{Key, KeyRing, Mode, SessionConfig};
    /// # use cookie_session::tower::SessionLayer;
    /// use cookie_session::store::MemoryStore;
    /// # let sessions = SessionConfig::new(Mode::Signed, KeyRing::new(Key::generate()?)).build()?;
    /// let layer = SessionLayer::new(sessions).with_store(MemoryStore::new());
    /// # let _ = layer;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_store(mut self, store: impl SessionStore) -> Self {
        self.settings.store = Some(Arc::new(store));
        self
    }

    /// Whether a 5xx response still stores session changes. Default off: a handler that
    /// failed half-way should not commit half its changes (`Vary` is still added when the
    /// session was read).
    #[must_use]
    pub fn with_save_on_server_error(mut self, save: bool) -> Self {
        self.settings.save_on_server_error = save;
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

    /// Server-side: when the store is down, serve an empty, read-only session instead of
    /// `503` (opt-in). Pages that only show session data render as for a visitor without
    /// a session; a request that changes the session still gets `503` at its end, and the
    /// visitor's cookie is never touched. Default off.
    #[must_use]
    pub fn with_read_only_session_when_store_down(mut self, degrade: bool) -> Self {
        self.settings.degrade = degrade;
        self
    }

    fn failure_response(&self, failure: &Failure) -> Response<String> {
        match (failure, &self.save_failure) {
            (Failure::NotSaved(error), Some(respond)) => respond(error),
            _ => {
                let (status, retry_after, text) = failure.response();
                let mut response = Response::new(text.to_owned());
                *response.status_mut() =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                if let Some(seconds) = retry_after {
                    response.headers_mut().insert(
                        ::http::header::RETRY_AFTER,
                        ::http::HeaderValue::from_static(seconds),
                    );
                }
                response
            }
        }
    }
}

impl fmt::Debug for SessionLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionLayer")
            .field("sessions", &self.settings.sessions)
            .field("save_on_server_error", &self.settings.save_on_server_error)
            .field("save_failure", &self.save_failure.as_ref().map(|_| "<fn>"))
            .field("server_side", &self.settings.store.is_some())
            .field("degrade", &self.settings.degrade)
            .finish()
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            // One reference count per request instead of a clone of every field.
            layer: Arc::new(self.clone()),
        }
    }
}

/// The service [`SessionLayer`] wraps around an inner service.
#[derive(Clone, Debug)]
pub struct SessionService<S> {
    inner: S,
    layer: Arc<SessionLayer>,
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
        let settings = &self.layer.settings;
        let token = take_token(&settings.sessions, &mut request);
        let cookies = request
            .headers()
            .get_all(::http::header::COOKIE)
            .iter()
            .map(::http::HeaderValue::as_bytes);
        let handle = settings.begin(cookies, token.as_deref(), now);
        request.extensions_mut().insert(handle.clone());
        if settings.degrade {
            request.extensions_mut().insert(Degrade);
        }
        let response = self.inner.call(request);
        let layer = Arc::clone(&self.layer);
        Box::pin(async move {
            let mut response = response.await?;
            // The request's time serves for its response: one clock read per request
            // instead of two (`perf` put each at over 1 % of a small request on a virtual
            // machine). The difference is the request's duration, which only moves a
            // renewed cookie's deadlines earlier by as much.
            let server_error = response.status().is_server_error();
            match layer.settings.end(&handle, server_error, now).await {
                End::Apply(decision) => crate::http::apply(&decision, response.headers_mut()),
                End::Leave => {}
                End::Replace(failure) => {
                    response = layer.failure_response(&failure).map(ResBody::from);
                }
            }
            Ok(response)
        })
    }
}

/// The token parameter of a request, taken out of it: from the form body (put into the
/// extensions by [`FormSessionLayer`]) or else the URL query, which is rewritten without
/// it. `None` when the configuration names no parameter.
fn take_token<B>(sessions: &Sessions, request: &mut Request<B>) -> Option<String> {
    let name = sessions.config().token.as_deref()?;
    let from_form = request
        .extensions_mut()
        .remove::<FormToken>()
        .and_then(|t| t.0);
    let from_query = match request
        .uri()
        .query()
        .map(|q| crate::http::take_token(q, name))
    {
        Some((Some(token), Some(rest))) => {
            if let Some(uri) = without_query(request.uri(), &rest) {
                *request.uri_mut() = uri;
            }
            Some(token)
        }
        _ => None,
    };
    // A form's hidden field is the deliberate one; both are removed either way.
    from_form.or(from_query)
}

/// `uri` with its query replaced by `rest` (none if empty).
fn without_query(uri: &::http::Uri, rest: &str) -> Option<::http::Uri> {
    let mut parts = uri.clone().into_parts();
    let path_and_query = if rest.is_empty() {
        uri.path().to_owned()
    } else {
        format!("{}?{rest}", uri.path())
    };
    parts.path_and_query = Some(path_and_query.parse().ok()?);
    ::http::Uri::from_parts(parts).ok()
}

/// The token parameter found in a form body (`None`: the body had none).
#[derive(Clone, Debug)]
struct FormToken(Option<String>);

impl SessionLayer {
    /// Also reads the [token parameter](crate::SessionConfig::with_token_parameter) from
    /// `application/x-www-form-urlencoded` request bodies (a POST form with a hidden field),
    /// as TurboGears' `visit.source = 'cookie, form'` does. A body of at most
    /// [`with_max_form_size`](crate::SessionConfig::with_max_form_size) is read, the
    /// parameter is removed from it, and the handler gets the rest of the body unchanged.
    /// A larger form reaches the handler unchanged, with the token left in it (not
    /// taken): the framework's own body limit decides about it. One that declares its
    /// `Content-Length` (what browsers send) is not read at all; a chunked one is read
    /// whole, up to [`MAX_CHUNKED_FORM`] (`413` beyond). The returned layer needs a request
    /// body that can be rebuilt from bytes, as axum's is.
    ///
    /// ```
    /// # use cookie_session::{Key, KeyRing, Mode, SessionConfig};
    /// # use cookie_session::tower::SessionLayer;
    /// let sessions = SessionConfig::new(Mode::Encrypted, KeyRing::new(Key::generate()?))
    ///     .with_token_parameter("tg_visit")
    ///     .build()?;
    /// let layer = SessionLayer::new(sessions).with_form_bodies();
    /// # let _ = layer;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_form_bodies(self) -> FormSessionLayer {
        FormSessionLayer { layer: self }
    }
}

/// [`SessionLayer`] that also reads the token parameter from form bodies
/// ([`SessionLayer::with_form_bodies`]).
#[derive(Clone, Debug)]
pub struct FormSessionLayer {
    layer: SessionLayer,
}

impl<S> Layer<S> for FormSessionLayer {
    type Service = FormSessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FormSessionService {
            inner: self.layer.layer(inner),
        }
    }
}

/// The service [`FormSessionLayer`] wraps around an inner service.
#[derive(Clone, Debug)]
pub struct FormSessionService<S> {
    inner: SessionService<S>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for FormSessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send,
    ReqBody: http_body::Body<Data = bytes::Bytes> + From<bytes::Bytes> + Send + 'static,
    ReqBody::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    ResBody: From<String> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let config = self.inner.layer.settings.sessions.config();
        let content_type = request.headers().get(::http::header::CONTENT_TYPE);
        let is_form = is_form(content_type.map(::http::HeaderValue::as_bytes));
        let (Some(name), true) = (config.token.clone(), is_form) else {
            return self.inner.call(request);
        };
        let limit = config.max_form;
        // The service that was polled ready serves this request; a clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            // A form larger than the token's bound is the handler's (a note, an upload as
            // a form): handed on unread when its length is declared.
            let length = request.headers().get(::http::header::CONTENT_LENGTH);
            if declared_length(length.map(::http::HeaderValue::as_bytes))
                .is_some_and(|n| n > limit as u64)
            {
                return inner.call(request).await;
            }
            let (mut parts, body) = request.into_parts();
            let (bytes, within) = match read_form(body, limit).await {
                Ok(read) => read,
                Err(status) => return Ok(plain(status).map(ResBody::from)),
            };
            let (token, rest) = match std::str::from_utf8(&bytes) {
                Ok(text) if within => crate::http::take_token(text, &name),
                // Over the bound, or not a form after all: handed on untouched.
                _ => (None, None),
            };
            let body = match rest {
                Some(rest) => {
                    parts.headers.insert(
                        ::http::header::CONTENT_LENGTH,
                        ::http::HeaderValue::from(rest.len()),
                    );
                    ReqBody::from(bytes::Bytes::from(rest))
                }
                None => ReqBody::from(bytes),
            };
            parts.extensions.insert(FormToken(token));
            inner.call(Request::from_parts(parts, body)).await
        })
    }
}

pub use crate::adapters::lifecycle::MAX_CHUNKED_FORM;

/// The whole body, and whether it is at most `limit` bytes (the token is looked for only
/// then). A longer one is read on, whole, to be handed on: `413` past
/// [`MAX_CHUNKED_FORM`]; `400` if it breaks off.
async fn read_form<B>(body: B, limit: usize) -> Result<(bytes::Bytes, bool), StatusCode>
where
    B: http_body::Body<Data = bytes::Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use http_body_util::BodyExt as _;
    let ceiling = limit.max(MAX_CHUNKED_FORM);
    match http_body_util::Limited::new(body, ceiling).collect().await {
        Ok(collected) => {
            let bytes = collected.to_bytes();
            let within = bytes.len() <= limit;
            Ok((bytes, within))
        }
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            Err(StatusCode::PAYLOAD_TOO_LARGE)
        }
        Err(_) => Err(StatusCode::BAD_REQUEST),
    }
}

/// A short text response with `status`.
fn plain(status: StatusCode) -> Response<String> {
    let text = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "the form is too large\n",
        _ => "the request body could not be read\n",
    };
    let mut response = Response::new(text.to_owned());
    *response.status_mut() = status;
    response
}

/// Marks a request whose session may be served read-only while the store is down.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Degrade;

/// The axum extractor (the `axum` feature): a handler takes a [`SessionHandle`] argument.
#[cfg(feature = "axum")]
mod axum_extractor {
    use axum_core::extract::FromRequestParts;
    use axum_core::response::{IntoResponse, Response};
    use http::request::Parts;
    use http::{HeaderValue, StatusCode, header};

    use crate::adapters::lifecycle::{HANDLER_ERROR, STORE_UNAVAILABLE, SessionRejection};
    use crate::server::handle::SessionHandle;
    use crate::session::error::SessionError;

    /// Extracting the session reads a server-side session's record (once per request):
    /// handlers that do not take the session cost no store I/O.
    impl<S: Send + Sync> FromRequestParts<S> for SessionHandle {
        type Rejection = SessionRejection;

        async fn from_request_parts(
            parts: &mut Parts,
            _state: &S,
        ) -> Result<Self, Self::Rejection> {
            let handle = parts.extensions.get::<SessionHandle>().cloned();
            let degrade = parts.extensions.get::<super::Degrade>().is_some();
            crate::adapters::lifecycle::extract(handle, degrade).await
        }
    }

    impl IntoResponse for SessionRejection {
        fn into_response(self) -> Response {
            match self {
                Self::MissingLayer => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "SessionLayer is not installed on this route",
                )
                    .into_response(),
                Self::StoreUnavailable => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, HeaderValue::from_static("5"))],
                    STORE_UNAVAILABLE,
                )
                    .into_response(),
            }
        }
    }

    /// `?` on session operations in a handler: a `500` with a short, generic text (the
    /// details, which name session keys, go to the `tracing` log, not to the client).
    impl IntoResponse for SessionError {
        fn into_response(self) -> Response {
            crate::diagnostics::handler_error(&self);
            (StatusCode::INTERNAL_SERVER_ERROR, HANDLER_ERROR).into_response()
        }
    }
}

/// Why a handler could not get its session (the axum extractor's rejection).
#[cfg(feature = "axum")]
pub use crate::adapters::lifecycle::SessionRejection;
