//! actix-web middleware (the `actix` feature): [`SessionMiddleware`] gives every request a
//! lazily loaded session, and a handler takes it as a [`SessionHandle`] argument, as with
//! axum: the same sessions, cookies and stores, so an actix service and an axum one with
//! the same key read each other's sessions.
//!
//! ```
//! use actix_web::{App, web};
//! use cookie_session::actix::SessionMiddleware;
//! use cookie_session::{Key, KeyRing, Mode, SessionConfig, SessionError, SessionHandle};
//!
//! async fn handler(session: SessionHandle) -> Result<String, SessionError> {
//!     let visits = session.get::<u64>("visits")?.unwrap_or(0) + 1;
//!     session.insert("visits", &visits)?;
//!     Ok(format!("visit number {visits}"))
//! }
//!
//! let sessions = SessionConfig::new(Mode::Encrypted, KeyRing::new(Key::generate()?)).build()?;
//! let middleware = SessionMiddleware::new(sessions);
//! let app = App::new().wrap(middleware).route("/", web::get().to(handler));
//! # let _ = app;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Everything the tower layer does, it does (the logic is shared, in the adapters' common
//! code): no `Set-Cookie` and no store write for read-only requests, `Vary: Cookie` and
//! `Cache-Control` merged with the application's own headers, split cookies, the token
//! parameter in the query (and, with [`with_form_bodies`](SessionMiddleware::with_form_bodies),
//! in bounded form bodies), `503` with `Retry-After` when a store is down, and
//! `SessionError` as an actix [`ResponseError`] for `?` in handlers.

use std::fmt;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, HttpResponse, ResponseError};
use time::OffsetDateTime;

use crate::adapters::headers::{Headers, Name};
/// The most of a chunked form body the middleware reads (shared with the tower layer).
pub use crate::adapters::lifecycle::MAX_CHUNKED_FORM;
/// Why a handler could not get its session (the extractor's error).
pub use crate::adapters::lifecycle::SessionRejection;
use crate::adapters::lifecycle::{
    End, Failure, HANDLER_ERROR, STORE_UNAVAILABLE, Settings, declared_length, is_form,
};
pub use crate::server::handle::SessionHandle;
use crate::session::Sessions;
use crate::session::error::SessionError;
use crate::stores::SessionStore;

/// What the response becomes when the session cannot be saved.
type SaveFailure = Arc<dyn Fn(&SessionError) -> HttpResponse + Send + Sync>;

/// Adds sessions to an actix-web app, scope or resource (`.wrap(middleware)`).
///
/// Each request gets a [`SessionHandle`]; nothing is decoded unless a handler uses the
/// session. After the handler responds, the session's decision is written onto the
/// response's headers. If the session cannot be saved (too large), the response becomes
/// a `500` with a short text body and no `Set-Cookie` (the browser keeps its previous
/// cookie); [`with_save_failure`](Self::with_save_failure) lets the application answer
/// differently.
#[derive(Clone)]
pub struct SessionMiddleware {
    settings: Settings,
    save_failure: Option<SaveFailure>,
    form_bodies: bool,
}

impl SessionMiddleware {
    /// Middleware for these sessions.
    #[must_use]
    pub fn new(sessions: Sessions) -> Self {
        Self {
            settings: Settings::new(sessions),
            save_failure: None,
            form_bodies: false,
        }
    }

    /// Server-side sessions: the cookie carries only a signed id, the data lives in
    /// `store` (see [`server`](crate::server)); as
    /// [`SessionLayer::with_store`](crate::tower::SessionLayer::with_store). When the
    /// store fails, the response is `503 Service Unavailable` with `Retry-After`.
    ///
    /// ```
    /// # use cookie_session::{Key, KeyRing, Mode, SessionConfig};
    /// # use cookie_session::actix::SessionMiddleware;
    /// use cookie_session::store::MemoryStore;
    /// # let sessions = SessionConfig::new(Mode::Signed, KeyRing::new(Key::generate()?)).build()?;
    /// let middleware = SessionMiddleware::new(sessions).with_store(MemoryStore::new());
    /// # let _ = middleware;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_store(mut self, store: impl SessionStore) -> Self {
        self.settings.store = Some(Arc::new(store));
        self
    }

    /// Whether a 5xx response still stores session changes. Default off: a handler that
    /// failed half-way should not commit half its changes.
    #[must_use]
    pub fn with_save_on_server_error(mut self, save: bool) -> Self {
        self.settings.save_on_server_error = save;
        self
    }

    /// The response to send instead of the handler's when the session cannot be saved
    /// (for example a page saying the cart is full); no `Set-Cookie` is added to it.
    /// Default: `500` with the text "the session could not be saved".
    #[must_use]
    pub fn with_save_failure(
        mut self,
        respond: impl Fn(&SessionError) -> HttpResponse + Send + Sync + 'static,
    ) -> Self {
        self.save_failure = Some(Arc::new(respond));
        self
    }

    /// Server-side: when the store is down, serve an empty, read-only session instead of
    /// `503` (opt-in; see
    /// [`SessionLayer::with_read_only_session_when_store_down`](crate::tower::SessionLayer::with_read_only_session_when_store_down)).
    #[must_use]
    pub fn with_read_only_session_when_store_down(mut self, degrade: bool) -> Self {
        self.settings.degrade = degrade;
        self
    }

    /// Also reads the [token parameter](crate::SessionConfig::with_token_parameter) from
    /// `application/x-www-form-urlencoded` bodies, as
    /// [`SessionLayer::with_form_bodies`](crate::tower::SessionLayer::with_form_bodies)
    /// does: a form of at most
    /// [`with_max_form_size`](crate::SessionConfig::with_max_form_size) is read and the
    /// parameter removed from it; a larger one reaches the handler unchanged (unread when
    /// its length is declared; a chunked one is read whole up to [`MAX_CHUNKED_FORM`],
    /// `413` beyond).
    #[must_use]
    pub fn with_form_bodies(mut self) -> Self {
        self.form_bodies = true;
        self
    }

    fn failure_response(&self, failure: &Failure) -> HttpResponse {
        match (failure, &self.save_failure) {
            (Failure::NotSaved(error), Some(respond)) => respond(error),
            _ => {
                let (status, retry_after, text) = failure.response();
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                text_response(status, retry_after, text)
            }
        }
    }
}

impl fmt::Debug for SessionMiddleware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionMiddleware")
            .field("settings", &self.settings)
            .field("save_failure", &self.save_failure.as_ref().map(|_| "<fn>"))
            .field("form_bodies", &self.form_bodies)
            .finish()
    }
}

impl<S, B> Transform<S, ServiceRequest> for SessionMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = SessionService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(SessionService {
            inner: Rc::new(service),
            middleware: Rc::new(self.clone()),
        }))
    }
}

/// The service [`SessionMiddleware`] wraps around an inner service.
pub struct SessionService<S> {
    inner: Rc<S>,
    middleware: Rc<SessionMiddleware>,
}

impl<S> fmt::Debug for SessionService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionService")
            .field("middleware", &self.middleware)
            .finish_non_exhaustive()
    }
}

/// Marks a request whose session may be served read-only while the store is down.
#[derive(Clone, Copy, Debug)]
struct Degrade;

impl<S, B> Service<ServiceRequest> for SessionService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    actix_web::dev::forward_ready!(inner);

    fn call(&self, mut request: ServiceRequest) -> Self::Future {
        let inner = Rc::clone(&self.inner);
        let middleware = Rc::clone(&self.middleware);
        Box::pin(async move {
            let now = OffsetDateTime::now_utc();
            let settings = &middleware.settings;
            let from_form = match (middleware.form_bodies, settings.sessions.config()) {
                (true, config) => match config.token.as_deref() {
                    Some(name) => match form_token(&mut request, name, config.max_form).await {
                        Ok(token) => token,
                        Err(status) => {
                            let text = if status == StatusCode::PAYLOAD_TOO_LARGE {
                                "the form is too large\n"
                            } else {
                                "the request body could not be read\n"
                            };
                            let response = text_response(status, None, text);
                            return Ok(request.into_response(response).map_into_right_body());
                        }
                    },
                    None => None,
                },
                (false, _) => None,
            };
            let from_query = query_token(&mut request, &settings.sessions);
            // A form's hidden field is the deliberate one; both are removed either way.
            let token = from_form.or(from_query);
            let cookies = request
                .headers()
                .get_all(header::COOKIE)
                .map(HeaderValue::as_bytes);
            let handle = settings.begin(cookies, token.as_deref(), now);
            request.extensions_mut().insert(handle.clone());
            if settings.degrade {
                request.extensions_mut().insert(Degrade);
            }
            let mut response = inner.call(request).await?;
            let server_error = response.status().is_server_error();
            match settings.end(&handle, server_error, now).await {
                End::Apply(decision) => {
                    crate::adapters::headers::apply(&decision, response.headers_mut());
                    Ok(response.map_into_left_body())
                }
                End::Leave => Ok(response.map_into_left_body()),
                End::Replace(failure) => {
                    let replacement = middleware.failure_response(&failure);
                    Ok(response.into_response(replacement).map_into_right_body())
                }
            }
        })
    }
}

/// The token parameter of the URL query, taken out of it: the handler sees the query
/// without it. `None` when the configuration names no parameter or the query has none.
fn query_token(request: &mut ServiceRequest, sessions: &Sessions) -> Option<String> {
    let name = sessions.config().token.as_deref()?;
    let (Some(token), Some(rest)) = crate::http::take_token(request.uri().query()?, name) else {
        return None;
    };
    let path_and_query = if rest.is_empty() {
        request.path().to_owned()
    } else {
        format!("{}?{rest}", request.path())
    };
    let mut parts = request.uri().clone().into_parts();
    if let Ok(path_and_query) = path_and_query.parse() {
        parts.path_and_query = Some(path_and_query);
        if let Ok(uri) = actix_web::http::Uri::from_parts(parts) {
            request.head_mut().uri = uri;
        }
    }
    Some(token)
}

/// The token parameter of a form body, taken out of it (the handler gets the rest of the
/// body, byte for byte). See [`SessionMiddleware::with_form_bodies`].
async fn form_token(
    request: &mut ServiceRequest,
    name: &str,
    limit: usize,
) -> Result<Option<String>, StatusCode> {
    let headers = request.headers();
    let content_type = headers.get(header::CONTENT_TYPE).map(HeaderValue::as_bytes);
    let length = headers
        .get(header::CONTENT_LENGTH)
        .map(HeaderValue::as_bytes);
    // A form larger than the token's bound is the handler's: handed on unread when its
    // length is declared.
    if !is_form(content_type) || declared_length(length).is_some_and(|n| n > limit as u64) {
        return Ok(None);
    }
    let mut payload = request.take_payload();
    let ceiling = limit.max(MAX_CHUNKED_FORM);
    let mut body = Vec::new();
    while let Some(chunk) =
        std::future::poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut payload), cx)).await
    {
        let chunk = chunk.map_err(|_| StatusCode::BAD_REQUEST)?;
        if body.len() + chunk.len() > ceiling {
            return Err(StatusCode::PAYLOAD_TOO_LARGE);
        }
        body.extend_from_slice(&chunk);
    }
    let (token, rest) = match std::str::from_utf8(&body) {
        Ok(text) if body.len() <= limit => crate::http::take_token(text, name),
        // Over the bound, or not a form after all: handed on untouched.
        _ => (None, None),
    };
    let body = match rest {
        Some(rest) => {
            request
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(rest.len()));
            Bytes::from(rest)
        }
        None => Bytes::from(body),
    };
    request.set_payload(Payload::from(body));
    Ok(token)
}

fn text_response(
    status: StatusCode,
    retry_after: Option<&'static str>,
    text: &str,
) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    response.content_type("text/plain; charset=utf-8");
    if let Some(seconds) = retry_after {
        response.insert_header((header::RETRY_AFTER, seconds));
    }
    response.body(text.to_owned())
}

impl Headers for HeaderMap {
    fn each(&self, name: Name, f: &mut dyn FnMut(&str)) {
        for value in self.get_all(header_name(name)) {
            if let Ok(text) = value.to_str() {
                f(text);
            }
        }
    }

    fn contains(&self, name: Name) -> bool {
        self.contains_key(header_name(name))
    }

    fn append(&mut self, name: Name, value: &str) {
        if let Ok(value) = HeaderValue::from_str(value) {
            HeaderMap::append(self, header_name(name), value);
        }
    }

    fn set(&mut self, name: Name, value: &str) {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.insert(header_name(name), value);
        }
    }
}

fn header_name(name: Name) -> header::HeaderName {
    match name {
        Name::SetCookie => header::SET_COOKIE,
        Name::Vary => header::VARY,
        Name::CacheControl => header::CACHE_CONTROL,
        Name::ReferrerPolicy => header::REFERRER_POLICY,
    }
}

/// A handler takes the session as an argument. Extracting it reads a server-side session's
/// record (once per request): handlers that do not take the session cost no store I/O.
impl FromRequest for SessionHandle {
    type Error = SessionRejection;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let extensions = request.extensions();
        let handle = extensions.get::<SessionHandle>().cloned();
        let degrade = extensions.get::<Degrade>().is_some();
        Box::pin(crate::adapters::lifecycle::extract(handle, degrade))
    }
}

/// A missing middleware is a `500`; a store that is down a `503` with `Retry-After`.
impl ResponseError for SessionRejection {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::MissingLayer => StatusCode::INTERNAL_SERVER_ERROR,
            Self::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::MissingLayer => text_response(
                self.status_code(),
                None,
                "SessionMiddleware is not installed on this route\n",
            ),
            Self::StoreUnavailable => {
                text_response(self.status_code(), Some("5"), STORE_UNAVAILABLE)
            }
        }
    }
}

/// `?` on session operations in a handler: a `500` with a short, generic text (the
/// details, which name session keys, go to the `tracing` log, not to the client).
impl ResponseError for SessionError {
    fn status_code(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    fn error_response(&self) -> HttpResponse {
        crate::diagnostics::handler_error(self);
        text_response(self.status_code(), None, HANDLER_ERROR)
    }
}
