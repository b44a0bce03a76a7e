//! The `http` helpers and the tower layer: header merging, query tokens, 5xx policy,
//! laziness.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use axum::routing::get;
use common::*;
use cookie_session::SessionHandle;
use cookie_session::tower::SessionLayer;
use cookie_session::{LoadOutcome, Mode, SessionConfig};

fn decision_with_cookie() -> cookie_session::Decision {
    let sessions = sessions(Mode::Signed);
    let mut session = sessions.load([], at(T0));
    session.insert("a", &1).unwrap();
    session.finish(at(T0)).unwrap()
}

#[test]
fn apply_adds_vary_without_clobbering_and_never_twice() {
    let decision = decision_with_cookie();
    let mut headers = HeaderMap::new();
    headers.insert("vary", HeaderValue::from_static("Accept-Encoding"));
    headers.append("set-cookie", HeaderValue::from_static("theme=dark"));
    cookie_session::http::apply(&decision, &mut headers);
    let vary: Vec<_> = headers
        .get_all("vary")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(vary, ["Accept-Encoding", "Cookie"]);
    assert_eq!(
        headers.get_all("set-cookie").iter().count(),
        2,
        "other cookies are kept"
    );

    for existing in ["cookie", "Accept, Cookie", "*"] {
        let mut headers = HeaderMap::new();
        headers.insert("vary", HeaderValue::from_static(existing));
        cookie_session::http::apply(&decision, &mut headers);
        assert_eq!(headers.get_all("vary").iter().count(), 1, "{existing}");
    }
}

#[test]
fn apply_makes_caching_private_and_keeps_stricter_directives() {
    let decision = decision_with_cookie();
    let cases = [
        (None, "private"),
        (Some("public, max-age=60"), "private, max-age=60"),
        (Some("max-age=60, s-maxage=600"), "private, max-age=60"),
        (Some("no-store"), "no-store"),
        (Some("private, max-age=5"), "private, max-age=5"),
    ];
    for (existing, expected) in cases {
        let mut headers = HeaderMap::new();
        if let Some(value) = existing {
            headers.insert("cache-control", HeaderValue::from_static(value));
        }
        cookie_session::http::apply(&decision, &mut headers);
        assert_eq!(headers["cache-control"], expected, "{existing:?}");
    }
}

#[test]
fn load_reads_every_cookie_header_and_a_query_token_only_when_enabled() {
    let sessions = sessions(Mode::Signed);
    let browser = Browser::with_session(&sessions, T0, &small());
    let cookie = browser.cookie.clone().unwrap();
    let request = Request::get("/")
        .header("cookie", "a=1")
        .header("cookie", &cookie)
        .body(())
        .unwrap();
    let session = cookie_session::http::load(&sessions, request.headers(), request.uri(), at(T0));
    assert_eq!(session.outcome(), LoadOutcome::Loaded);

    let value = cookie.split_once('=').unwrap().1;
    let uri = format!("/page?x=1&sid={value}");
    let request = Request::get(uri.as_str()).body(()).unwrap();
    let off = cookie_session::http::load(&sessions, request.headers(), request.uri(), at(T0));
    assert_eq!(
        off.outcome(),
        LoadOutcome::New,
        "the token source is off by default"
    );
    let on = config(Mode::Signed)
        .with_token_parameter("sid")
        .build()
        .unwrap();
    let session = cookie_session::http::load(&on, request.headers(), request.uri(), at(T0));
    assert_eq!(session.outcome(), LoadOutcome::Loaded);
}

async fn call(app: &mut Router, request: Request<Body>) -> Response<Body> {
    use tower_service::Service;
    std::future::poll_fn(|cx| Service::<Request<Body>>::poll_ready(app, cx))
        .await
        .unwrap();
    Service::call(app, request).await.unwrap()
}

fn app(layer: SessionLayer) -> Router {
    Router::new()
        .route(
            "/write",
            get(|s: SessionHandle| async move {
                s.insert("a", &1).unwrap();
                "ok"
            }),
        )
        .route(
            "/fail",
            get(|s: SessionHandle| async move {
                s.insert("a", &2).unwrap();
                (StatusCode::INTERNAL_SERVER_ERROR, "failed half-way")
            }),
        )
        .route("/untouched", get(|| async { "ok" }))
        .layer(layer)
}

#[tokio::test]
async fn the_layer_does_not_save_on_server_errors_unless_asked() {
    let sessions = config(Mode::Encrypted).build().unwrap();
    let mut strict = app(SessionLayer::new(sessions.clone()));
    let response = call(
        &mut strict,
        Request::get("/fail").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(response.status(), 500);
    assert!(response.headers().get("set-cookie").is_none());
    assert_eq!(response.headers()["vary"], "Cookie");

    let mut lenient = app(SessionLayer::new(sessions).with_save_on_server_error(true));
    let response = call(
        &mut lenient,
        Request::get("/fail").body(Body::empty()).unwrap(),
    )
    .await;
    assert!(response.headers().get("set-cookie").is_some());
}

#[tokio::test]
async fn the_layer_leaves_untouched_requests_alone_even_with_a_bad_cookie() {
    let sessions = SessionConfig::new(Mode::Encrypted, cookie_session::KeyRing::new(key(1)))
        .build()
        .unwrap();
    let mut app = app(SessionLayer::new(sessions));
    let request = Request::get("/untouched")
        .header("cookie", "__Host-session=garbage")
        .body(Body::empty())
        .unwrap();
    let response = call(&mut app, request).await;
    assert!(response.headers().get("set-cookie").is_none());
    assert!(response.headers().get("vary").is_none());
    let response = call(
        &mut app,
        Request::get("/write").body(Body::empty()).unwrap(),
    )
    .await;
    assert!(
        response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("__Host-session=")
    );
}

#[tokio::test]
async fn a_handler_without_the_layer_gets_a_clear_500() {
    let mut app: Router = Router::new().route(
        "/",
        get(|s: SessionHandle| async move {
            drop(s);
            "ok"
        }),
    );
    let response = call(&mut app, Request::get("/").body(Body::empty()).unwrap()).await;
    assert_eq!(response.status(), 500);
}

/// Security review, item 4b: a cookie with octets above 0x7f elsewhere in the header (set
/// by another part of the site) does not hide the session cookie.
#[test]
fn load_reads_the_session_from_a_header_that_is_not_utf8() {
    let sessions = sessions(Mode::Signed);
    let mut session = sessions.load([], at(T0));
    session.insert("user", &7).unwrap();
    let set = session
        .finish(at(T0))
        .unwrap()
        .set_cookie()
        .unwrap()
        .to_owned();
    let pair = set.split(';').next().unwrap();
    for header in [
        format!("theme=caf\u{e9}; {pair}").into_bytes(),
        [
            b"legacy=\xe9t\xe9; ".as_slice(),
            pair.as_bytes(),
            b"; x=\xff",
        ]
        .concat(),
    ] {
        let mut headers = HeaderMap::new();
        headers.insert("cookie", HeaderValue::from_bytes(&header).unwrap());
        assert!(
            headers["cookie"].to_str().is_err(),
            "the header is not visible ASCII"
        );
        let session =
            cookie_session::http::load(&sessions, &headers, &"/".parse().unwrap(), at(T0));
        assert_eq!(session.outcome(), LoadOutcome::Loaded);
        assert_eq!(session.get::<u64>("user").unwrap(), Some(7));
    }
}

async fn body_text(response: Response<Body>) -> String {
    use http_body_util::BodyExt as _;
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// `?` in a handler: a session error becomes a 500 with a short body that names no key.
#[tokio::test]
async fn session_errors_work_with_the_question_mark_in_handlers() {
    let sessions = config(Mode::Signed).build().unwrap();
    let mut app = Router::new()
        .route(
            "/",
            get(|s: SessionHandle| async move {
                s.insert("secret_key_name", "text")?;
                let n = s.get::<u64>("secret_key_name")?; // wrong type: an error
                Ok::<_, cookie_session::SessionError>(format!("{n:?}"))
            }),
        )
        .layer(SessionLayer::new(sessions));
    let response = call(&mut app, Request::get("/").body(Body::empty()).unwrap()).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        response.headers().get("set-cookie").is_none(),
        "no save on a 5xx"
    );
    let body = body_text(response).await;
    assert_eq!(body.trim(), "the session could not be used");
}

fn oversized_app(layer: SessionLayer) -> Router {
    Router::new()
        .route(
            "/big",
            get(|s: SessionHandle| async move {
                s.insert("blob", &"x".repeat(5000)).unwrap();
                "stored?"
            }),
        )
        .layer(layer)
}

#[tokio::test]
async fn a_session_that_cannot_be_saved_gets_a_text_500_or_the_applications_response() {
    let sessions = config(Mode::Signed).build().unwrap();
    let mut app = oversized_app(SessionLayer::new(sessions.clone()));
    let response = call(&mut app, Request::get("/big").body(Body::empty()).unwrap()).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(response.headers().get("set-cookie").is_none());
    assert_eq!(
        body_text(response).await.trim(),
        "the session could not be saved"
    );

    let layer = SessionLayer::new(sessions).with_save_failure(|error| {
        assert!(matches!(
            error,
            cookie_session::SessionError::Encode(cookie_session::EncodeError::TooLarge { .. })
        ));
        let mut response = axum::http::Response::new("Too much in your basket.".to_owned());
        *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
        response
    });
    let mut app = oversized_app(layer);
    let response = call(&mut app, Request::get("/big").body(Body::empty()).unwrap()).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(response.headers().get("set-cookie").is_none());
    assert_eq!(body_text(response).await, "Too much in your basket.");
}

/// A minimal `tracing` subscriber that records each event's fields as text.
mod capture {
    use std::fmt::Write as _;
    use std::sync::{Arc, Mutex};

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    #[derive(Clone, Default)]
    pub(crate) struct Events(pub(crate) Arc<Mutex<Vec<String>>>);

    struct Text<'a>(&'a mut String);

    impl Visit for Text<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            let _ = write!(self.0, "{}={:?} ", field.name(), value);
        }
    }

    impl Subscriber for Events {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut text = format!("{} ", event.metadata().level());
            event.record(&mut Text(&mut text));
            self.0.lock().unwrap().push(text);
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }
}

/// Operators see what happened: rejected cookies (the reason, not the value), a session too
/// large (size, limit and keys, not values), a failed save.
#[test]
fn rejections_and_failed_saves_are_logged_without_values() {
    let events = capture::Events::default();
    let seen = events.0.clone();
    tracing::subscriber::with_default(events, || {
        let sessions = sessions(Mode::Signed);
        let mut session = sessions.load(["sid=AAAAsecret-looking-value"], at(T0));
        assert_eq!(session.outcome(), LoadOutcome::Invalid);
        session.insert("card_number", "4111111111111111").unwrap();
        session.insert("blob", &"y".repeat(5000)).unwrap();
        assert!(session.finish(at(T0)).is_err());
    });
    let log = seen.lock().unwrap().join("\n");
    assert!(log.contains("reason=\"unsupported-version\""), "{log}");
    assert!(log.contains("size=") && log.contains("limit=4096"), "{log}");
    assert!(
        log.contains("card_number") && log.contains("blob"),
        "keys are named: {log}"
    );
    for secret in ["4111111111111111", "yyyy", "secret-looking-value"] {
        assert!(!log.contains(secret), "{secret} leaked: {log}");
    }
}

/// A store that can be switched off, as a database that stops answering.
type Switchable = common::Hooked<Down>;

#[derive(Default)]
struct Down(std::sync::atomic::AtomicBool);

impl common::Hook for Down {
    fn before(&self, _: &'static str) -> Result<(), cookie_session::store::StoreError> {
        if self.0.load(std::sync::atomic::Ordering::Relaxed) {
            Err(cookie_session::store::StoreError::Unavailable(
                "connection refused".into(),
            ))
        } else {
            Ok(())
        }
    }
}

fn server_side_app(store: std::sync::Arc<Switchable>) -> Router {
    server_side_app_with(store, false)
}

fn server_side_app_with(store: std::sync::Arc<Switchable>, degrade: bool) -> Router {
    let sessions = config(Mode::Encrypted).build().unwrap();
    Router::new()
        .route(
            "/login",
            get(|s: SessionHandle| async move {
                s.with(|s| -> Result<(), cookie_session::SessionError> {
                    s.regenerate()?;
                    s.insert("user", "ada")
                })??;
                Ok::<_, cookie_session::SessionError>("in")
            }),
        )
        .route(
            "/me",
            get(|s: SessionHandle| async move {
                Ok::<_, cookie_session::SessionError>(format!("{:?}", s.get::<String>("user")?))
            }),
        )
        .route(
            "/logout",
            get(|s: SessionHandle| async move {
                s.delete()?;
                Ok::<_, cookie_session::SessionError>("out")
            }),
        )
        .route("/health", get(|| async { "ok" }))
        .layer(
            SessionLayer::new(sessions)
                .with_store(store)
                .with_read_only_session_when_store_down(degrade),
        )
}

fn get_with(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut request = Request::get(path);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn server_side_sessions_through_the_layer_end_in_a_logout_that_is_final() {
    let store = std::sync::Arc::new(Switchable::default());
    let mut app = server_side_app(store.clone());
    let response = call(&mut app, get_with("/login", None)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = cookie_pair(&response);
    let response = call(&mut app, get_with("/me", Some(&cookie))).await;
    assert!(response.headers().get("set-cookie").is_none());
    assert_eq!(body_text(response).await, "Some(\"ada\")");
    let response = call(&mut app, get_with("/logout", Some(&cookie))).await;
    assert!(
        response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    // Replaying the pre-logout cookie finds no session.
    let response = call(&mut app, get_with("/me", Some(&cookie))).await;
    assert_eq!(body_text(response).await, "None");
    assert!(store.inner.is_empty());
}

#[tokio::test]
async fn a_store_that_is_down_gives_503_with_retry_after_and_leaves_the_cookie() {
    let store = std::sync::Arc::new(Switchable::default());
    let mut app = server_side_app(store.clone());
    let response = call(&mut app, get_with("/login", None)).await;
    let cookie = cookie_pair(&response);
    store
        .hook
        .0
        .store(true, std::sync::atomic::Ordering::Relaxed);
    for path in ["/me", "/logout", "/login"] {
        let response = call(&mut app, get_with(path, Some(&cookie))).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(response.headers()["retry-after"], "5");
        assert!(
            response.headers().get("set-cookie").is_none(),
            "{path}: the cookie stays"
        );
    }
    // A new visitor's first write fails at the end of the request: 503 too, no cookie.
    let response = call(&mut app, get_with("/login", None)).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().get("set-cookie").is_none());
    // A route that never takes the session is not affected.
    let response = call(&mut app, get_with("/health", Some(&cookie))).await;
    assert_eq!(response.status(), StatusCode::OK);
    // Back up: the session is there again.
    store
        .hook
        .0
        .store(false, std::sync::atomic::Ordering::Relaxed);
    let response = call(&mut app, get_with("/me", Some(&cookie))).await;
    assert_eq!(body_text(response).await, "Some(\"ada\")");
}

#[tokio::test]
async fn opt_in_the_store_being_down_serves_an_empty_read_only_session() {
    let store = std::sync::Arc::new(Switchable::default());
    let mut app = server_side_app_with(store.clone(), true);
    let response = call(&mut app, get_with("/login", None)).await;
    let cookie = cookie_pair(&response);
    store
        .hook
        .0
        .store(true, std::sync::atomic::Ordering::Relaxed);
    // Reading: served, as a visitor without a session; the cookie is not touched.
    let response = call(&mut app, get_with("/me", Some(&cookie))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("set-cookie").is_none());
    assert_eq!(body_text(response).await, "None");
    // Changing (logging in again, logging out): 503 at the end, nothing written.
    for path in ["/login", "/logout"] {
        let response = call(&mut app, get_with(path, Some(&cookie))).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(response.headers().get("set-cookie").is_none(), "{path}");
    }
    store
        .hook
        .0
        .store(false, std::sync::atomic::Ordering::Relaxed);
    let response = call(&mut app, get_with("/me", Some(&cookie))).await;
    assert_eq!(
        body_text(response).await,
        "Some(\"ada\")",
        "the session survived"
    );
}

#[tokio::test]
async fn the_layer_sends_every_piece_of_a_split_session_and_removes_stale_ones() {
    let sessions = config(Mode::Signed)
        .with_max_cookies(4)
        .with_max_total_size(16_384)
        .build()
        .unwrap();
    let mut app = Router::new()
        .route(
            "/big",
            get(|s: SessionHandle| async move {
                // 9,000 characters that do not compress (and compression is off anyway).
                let blob: String = (0..9000u32)
                    .map(|i| char::from(b'a' + u8::try_from(i * 7 % 26).unwrap()))
                    .collect();
                s.insert("blob", &blob).unwrap();
                "ok"
            }),
        )
        .route(
            "/small",
            get(|s: SessionHandle| async move {
                s.remove("blob").unwrap();
                s.insert("a", &1).unwrap();
                "ok"
            }),
        )
        .layer(SessionLayer::new(sessions));
    let names = |response: &Response<Body>| -> Vec<(String, bool)> {
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| {
                let v = v.to_str().unwrap();
                let name = v.split('=').next().unwrap().to_owned();
                (name, v.contains("Max-Age=0"))
            })
            .collect()
    };
    let response = call(&mut app, Request::get("/big").body(Body::empty()).unwrap()).await;
    let sent = names(&response);
    assert_eq!(
        sent,
        [("sid", false), ("sid.2", false), ("sid.3", false)]
            .map(|(n, r)| (n.to_owned(), r))
            .to_vec()
    );
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("; ");
    let response = call(
        &mut app,
        Request::get("/small")
            .header("cookie", &cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        names(&response),
        [("sid", false), ("sid.2", true), ("sid.3", true)]
            .map(|(n, r)| (n.to_owned(), r))
            .to_vec()
    );
}

/// A store whose saves always lose to a concurrent writer once switched on.
#[derive(Default)]
struct Contended(std::sync::atomic::AtomicBool);

impl common::Hook for Contended {
    fn before(&self, op: &'static str) -> Result<(), cookie_session::store::StoreError> {
        if op == "save" && self.0.load(std::sync::atomic::Ordering::Relaxed) {
            Err(cookie_session::store::StoreError::Conflict)
        } else {
            Ok(())
        }
    }
}

#[tokio::test]
async fn a_write_that_loses_every_retry_to_concurrent_writes_gets_503_with_retry_after() {
    let store = std::sync::Arc::new(common::Hooked::<Contended>::default());
    let sessions = config(Mode::Signed).build().unwrap();
    let mut app = Router::new()
        .route(
            "/count",
            get(|s: SessionHandle| async move {
                let n = s.get::<u64>("n")?.unwrap_or(0) + 1;
                s.insert("n", &n)?;
                Ok::<_, cookie_session::SessionError>(n.to_string())
            }),
        )
        .layer(SessionLayer::new(sessions).with_store(store.clone()));
    let response = call(&mut app, get_with("/count", None)).await;
    let cookie = cookie_pair(&response);
    store
        .hook
        .0
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let response = call(&mut app, get_with("/count", Some(&cookie))).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    assert!(response.headers().get("set-cookie").is_none());
    // Once the contention is over, the session is where it was: nothing was lost.
    store
        .hook
        .0
        .store(false, std::sync::atomic::Ordering::Relaxed);
    let response = call(&mut app, get_with("/count", Some(&cookie))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_text(response).await, "2");
}
