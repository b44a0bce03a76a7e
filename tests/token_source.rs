//! The visit key from request parameters (TurboGears' `visit.source = 'cookie, form'`),
//! through the tower layer: query and form-body tokens, the configured order, the
//! parameter removed from what the handler sees, a bounded body, tampered tokens, the
//! response headers, and no silent move into a cookie.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use axum::routing::{get, post};
use common::*;
use cookie_session::store::MemoryStore;
use cookie_session::tower::SessionLayer;
use cookie_session::{
    ConfigError, LoadOutcome, Mode, SessionConfig, SessionError, SessionHandle, TokenOrder,
};
use http_body_util::BodyExt as _;

const PARAM: &str = "tg_visit";

async fn call(app: &mut Router, request: Request<Body>) -> Response<Body> {
    use tower_service::Service;
    std::future::poll_fn(|cx| Service::<Request<Body>>::poll_ready(app, cx))
        .await
        .unwrap();
    Service::call(app, request).await.unwrap()
}

async fn text(response: Response<Body>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn token_config(mode: Mode) -> SessionConfig {
    config(mode).with_token_parameter(PARAM)
}

/// Routes: `/start` makes a session for `who` and answers its token; `/whoami` answers
/// `who|outcome|uri-query` (the query the handler sees); `/form` answers
/// `who|body` (the body the handler sees); `/login` regenerates and answers the new token;
/// `/static` never touches the session.
fn routes(layer: cookie_session::tower::FormSessionLayer, calls: Arc<AtomicUsize>) -> Router {
    let seen = Arc::clone(&calls);
    Router::new()
        .route(
            "/start/{who}",
            get(
                |s: SessionHandle, axum::extract::Path(who): axum::extract::Path<String>| async move {
                    s.insert("who", &who).unwrap();
                    s.token().unwrap().unwrap()
                },
            ),
        )
        .route(
            "/whoami",
            get(|s: SessionHandle, uri: axum::http::Uri| async move {
                let who = s.get::<String>("who").unwrap().unwrap_or_default();
                let outcome = format!("{:?}", s.outcome().unwrap());
                format!("{who}|{outcome}|{}", uri.query().unwrap_or_default())
            }),
        )
        .route(
            "/form",
            post(move |s: SessionHandle, body: String| {
                seen.fetch_add(1, Ordering::SeqCst);
                async move {
                    let who = s.get::<String>("who").unwrap().unwrap_or_default();
                    format!("{who}|{body}")
                }
            }),
        )
        .route(
            "/login",
            post(|s: SessionHandle| async move {
                s.regenerate().unwrap();
                s.insert("user", &"ada").unwrap();
                s.token().unwrap().unwrap()
            }),
        )
        .route("/static", get(|| async { "static" }))
        .route(
            "/policy",
            get(|s: SessionHandle| async move {
                let _ = s.get::<String>("who");
                (
                    [
                        ("referrer-policy", "same-origin"),
                        ("cache-control", "public, max-age=60"),
                    ],
                    "ok",
                )
            }),
        )
        .layer(layer)
}

fn get_req(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn form(uri: &str, body: &str) -> Request<Body> {
    Request::post(uri)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("content-length", body.len())
        .body(Body::from(body.to_owned()))
        .unwrap()
}

async fn start(app: &mut Router, who: &str) -> (String, Option<String>) {
    let response = call(app, get_req(&format!("/start/{who}"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
    (text(response).await, cookie)
}

#[tokio::test]
async fn a_query_token_loads_the_session_and_the_handler_never_sees_it() {
    for mode in MODES {
        let layer = SessionLayer::new(token_config(mode).build().unwrap()).with_form_bodies();
        let mut app = routes(layer, Arc::default());
        let (token, _) = start(&mut app, "alice").await;

        let response = call(
            &mut app,
            get_req(&format!("/whoami?page=2&{PARAM}={token}&sort=a%20b")),
        )
        .await;
        let headers = response.headers().clone();
        assert_eq!(
            text(response).await,
            "alice|Loaded|page=2&sort=a%20b",
            "{mode}: the other parameters are intact, byte for byte"
        );
        assert!(headers.get("set-cookie").is_none(), "{mode}: {headers:?}");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert_eq!(headers["cache-control"], "no-store");

        // The parameter alone: the handler sees no query at all.
        let response = call(&mut app, get_req(&format!("/whoami?{PARAM}={token}"))).await;
        assert_eq!(text(response).await, "alice|Loaded|");
    }
}

#[tokio::test]
async fn a_form_token_loads_the_session_and_the_handler_gets_the_rest_of_the_body() {
    let calls = Arc::new(AtomicUsize::new(0));
    let layer =
        SessionLayer::new(token_config(Mode::Encrypted).build().unwrap()).with_form_bodies();
    let mut app = routes(layer, Arc::clone(&calls));
    let (token, _) = start(&mut app, "bob").await;

    let body = format!("note=hello+world&{PARAM}={token}&x=%26");
    let response = call(&mut app, form("/form", &body)).await;
    assert!(response.headers().get("set-cookie").is_none());
    assert_eq!(response.headers()["referrer-policy"], "no-referrer");
    assert_eq!(text(response).await, "bob|note=hello+world&x=%26");

    // A form without the parameter is handed on byte for byte, and has no session.
    let response = call(&mut app, form("/form", "note=%C3%A9")).await;
    assert_eq!(text(response).await, "|note=%C3%A9");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_form_over_the_bound_reaches_the_handler_unchanged_with_its_token_left_in() {
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = SessionLayer::new(
        token_config(Mode::Signed)
            .with_max_form_size(512)
            .build()
            .unwrap(),
    )
    .with_form_bodies();
    let mut app = routes(layer, Arc::clone(&calls));
    let (token, _) = start(&mut app, "carol").await;

    // Just over the bound, far over, and with or without a Content-Length: the handler
    // gets the body byte for byte, and the token in it is not taken (no session).
    for pad in [600 - token.len() - PARAM.len(), 600, 20_000, 300_000] {
        let body = format!("{PARAM}={token}&pad={}", "x".repeat(pad));
        let response = call(&mut app, form("/form", &body)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().get("set-cookie").is_none());
        assert_eq!(text(response).await, format!("|{body}"), "declared, {pad}");
        let response = call(&mut app, chunked_form(body.clone())).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(text(response).await, format!("|{body}"), "chunked, {pad}");
    }
    // At the bound exactly, the token is taken.
    let body = format!("{PARAM}={token}&pad=");
    let body = format!("{body}{}", "y".repeat(512 - body.len()));
    let response = call(&mut app, form("/form", &body)).await;
    assert!(text(response).await.starts_with("carol|pad=yyy"));
    assert_eq!(calls.load(Ordering::SeqCst), 9);

    // A chunked form past 2 MiB is refused before the handler (it would be read whole).
    let huge = "z".repeat(cookie_session::tower::MAX_CHUNKED_FORM + 1);
    let response = call(&mut app, chunked_form(huge)).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(calls.load(Ordering::SeqCst), 9, "the handler did not run");

    // The session is intact: the same token still works.
    let response = call(&mut app, form("/form", &format!("{PARAM}={token}"))).await;
    assert_eq!(text(response).await, "carol|");
}

/// A form request without a `Content-Length`, as a chunked upload comes.
fn chunked_form(body: String) -> Request<Body> {
    Request::post("/form")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap()
}

/// Server-side sessions exist for large data: a 20 KB note in a form, with the default
/// bound and form bodies on (as the demo runs), reaches the handler and is stored.
#[tokio::test]
async fn a_large_form_note_is_stored_in_a_server_side_session() {
    let layer = SessionLayer::new(token_config(Mode::Encrypted).build().unwrap())
        .with_store(MemoryStore::new())
        .with_form_bodies();
    let app =
        Router::new()
            .route(
                "/note",
                post(|s: SessionHandle, body: String| async move {
                    s.insert("note", &body).unwrap();
                    body.len().to_string()
                }),
            )
            .route(
                "/note",
                get(|s: SessionHandle| async move {
                    s.get::<String>("note").unwrap().unwrap_or_default()
                }),
            )
            .layer(layer);
    let mut app = app;
    let note = format!("note={}", "n".repeat(20_000));
    let response = call(&mut app, form("/note", &note)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(text(response).await, note.len().to_string());
    let response = call(
        &mut app,
        Request::get("/note")
            .header("cookie", cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(text(response).await, note);
}

#[tokio::test]
async fn the_configured_source_wins_when_a_cookie_and_a_parameter_disagree() {
    for (order, expected) in [
        (TokenOrder::CookieFirst, "cookie-user"),
        (TokenOrder::ParameterFirst, "param-user"),
    ] {
        let sessions = token_config(Mode::Signed)
            .with_token_order(order)
            .build()
            .unwrap();
        let mut app = routes(
            SessionLayer::new(sessions).with_form_bodies(),
            Arc::default(),
        );
        let (_, cookie) = start(&mut app, "cookie-user").await;
        let (token, _) = start(&mut app, "param-user").await;
        let request = Request::get(format!("/whoami?{PARAM}={token}"))
            .header("cookie", cookie.unwrap())
            .body(Body::empty())
            .unwrap();
        let response = call(&mut app, request).await;
        let body = text(response).await;
        assert!(
            body.starts_with(&format!("{expected}|")),
            "{order:?}: {body}"
        );
    }
}

#[tokio::test]
async fn tampered_foreign_and_unconfigured_tokens_give_no_session_and_no_cookie() {
    let sessions = token_config(Mode::Encrypted).build().unwrap();
    let mut app = routes(
        SessionLayer::new(sessions).with_form_bodies(),
        Arc::default(),
    );
    let (token, _) = start(&mut app, "dave").await;

    let mut tampered = token.clone().into_bytes();
    let last = tampered.len() - 5;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let foreign = {
        let other = SessionConfig::new(Mode::Encrypted, cookie_session::KeyRing::new(key(9)))
            .with_name("sid")
            .with_token_parameter(PARAM)
            .build()
            .unwrap();
        let mut session = other.load([], at(T0));
        session.insert("who", &"mallory").unwrap();
        session.token().unwrap().unwrap()
    };
    for bad in [
        tampered.as_str(),
        foreign.as_str(),
        "",
        "%%%",
        "x".repeat(5000).as_str(),
    ] {
        let response = call(&mut app, get_req(&format!("/whoami?{PARAM}={bad}"))).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().get("set-cookie").is_none());
        let body = text(response).await;
        assert!(
            body.starts_with("|Invalid|") || body.starts_with("|New|"),
            "{body}"
        );
    }

    // Without a token parameter in the configuration the query is left alone.
    let plain = config(Mode::Encrypted).build().unwrap();
    let mut plain_app = routes(SessionLayer::new(plain).with_form_bodies(), Arc::default());
    let response = call(&mut plain_app, get_req(&format!("/whoami?{PARAM}={token}"))).await;
    assert_eq!(text(response).await, format!("|New|{PARAM}={token}"));
    let mut session = config(Mode::Signed).build().unwrap().load([], at(T0));
    session.insert("a", &1).unwrap();
    assert!(matches!(
        session.token(),
        Err(SessionError::NoTokenParameter)
    ));
}

#[tokio::test]
async fn response_headers_keep_the_applications_referrer_policy_but_never_allow_caching() {
    let sessions = token_config(Mode::Signed).build().unwrap();
    let mut app = routes(
        SessionLayer::new(sessions).with_form_bodies(),
        Arc::default(),
    );
    let (token, _) = start(&mut app, "erin").await;
    let response = call(&mut app, get_req(&format!("/policy?{PARAM}={token}"))).await;
    assert_eq!(response.headers()["referrer-policy"], "same-origin");
    assert_eq!(response.headers()["cache-control"], "no-store");

    // A page that only embeds a token (a cookie visitor's links) is not cached either.
    let response = call(&mut app, get_req("/start/frank")).await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(response.headers().get("referrer-policy").is_none());
}

#[tokio::test]
async fn login_through_a_token_issues_a_fresh_id_in_the_token_never_a_cookie() {
    for server_side in [false, true] {
        let sessions = token_config(Mode::Encrypted).build().unwrap();
        let layer = SessionLayer::new(sessions);
        let layer = if server_side {
            layer.with_store(MemoryStore::new())
        } else {
            layer
        };
        let mut app = routes(layer.with_form_bodies(), Arc::default());
        let (token, _) = start(&mut app, "gina").await;
        let before = cookie_session::inspect(&token).unwrap().session_id;

        let response = call(&mut app, form("/login", &format!("{PARAM}={token}"))).await;
        assert!(
            response.headers().get("set-cookie").is_none(),
            "server-side {server_side}: a token session is not moved into a cookie"
        );
        let fresh = text(response).await;
        let after = cookie_session::inspect(&fresh).unwrap().session_id;
        assert_ne!(
            before, after,
            "server-side {server_side}: login gives a new id"
        );

        let response = call(&mut app, get_req(&format!("/whoami?{PARAM}={fresh}"))).await;
        assert_eq!(response.headers()["referrer-policy"], "no-referrer");
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert!(text(response).await.starts_with("gina|Loaded|"));
        if server_side {
            // The old id's record moved: the token from before the login finds nothing.
            let response = call(&mut app, get_req(&format!("/whoami?{PARAM}={token}"))).await;
            let body = text(response).await;
            assert!(body.starts_with("|Missing|"), "{body}");
        }
    }
}

#[test]
fn the_parameter_name_is_checked_at_build() {
    for bad in ["", "tg visit", "a&b", "x=y", "é", &"p".repeat(65)] {
        assert_eq!(
            config(Mode::Signed)
                .with_token_parameter(bad)
                .build()
                .unwrap_err(),
            ConfigError::InvalidTokenParameter,
            "{bad:?}"
        );
    }
    for good in ["tg_visit", "visit-key", "s.id", "T0"] {
        config(Mode::Signed)
            .with_token_parameter(good)
            .build()
            .unwrap();
    }
    // A token session read through the core API comes back as Loaded from the parameter.
    let sessions = token_config(Mode::Signed).build().unwrap();
    let mut session = sessions.load([], at(T0));
    session.insert("a", &1).unwrap();
    let token = session.token().unwrap().unwrap();
    let again = sessions.load_with_token([], Some(&token), at(T0 + 1));
    assert_eq!(again.outcome(), LoadOutcome::Loaded);
}

/// Every kind of session the layer keeps: cookie sessions in both modes, and server-side.
fn layers() -> Vec<(&'static str, cookie_session::tower::FormSessionLayer)> {
    let mut layers: Vec<_> = MODES
        .into_iter()
        .map(|mode| {
            let layer = SessionLayer::new(token_config(mode).build().unwrap()).with_form_bodies();
            (
                if mode == Mode::Signed {
                    "signed"
                } else {
                    "encrypted"
                },
                layer,
            )
        })
        .collect();
    layers.push((
        "server-side",
        SessionLayer::new(token_config(Mode::Encrypted).build().unwrap())
            .with_store(MemoryStore::new())
            .with_form_bodies(),
    ));
    layers
}

/// A request that brings the token gets `Referrer-Policy: no-referrer` and
/// `Cache-Control: no-store` whether or not its handler touches the session, in every kind
/// of session.
#[tokio::test]
async fn a_request_with_a_token_gets_its_headers_even_when_the_handler_ignores_the_session() {
    for (kind, layer) in layers() {
        let mut app = routes(layer, Arc::default());
        let (token, _) = start(&mut app, "dora").await;
        for uri in [
            format!("/static?{PARAM}={token}"),
            format!("/whoami?{PARAM}={token}"),
        ] {
            let response = call(&mut app, get_req(&uri)).await;
            assert_eq!(response.status(), StatusCode::OK, "{kind} {uri}");
            let headers = response.headers();
            assert_eq!(
                headers.get("referrer-policy").map(|v| v.to_str().unwrap()),
                Some("no-referrer"),
                "{kind} {uri}"
            );
            assert_eq!(headers["cache-control"], "no-store", "{kind} {uri}");
            assert!(headers.get("set-cookie").is_none(), "{kind} {uri}");
        }
        // A form token too.
        let response = call(&mut app, form("/form", &format!("{PARAM}={token}"))).await;
        assert_eq!(response.headers()["cache-control"], "no-store", "{kind}");
    }
}

/// An invalid cookie (tampered, or a wrong key's) next to a valid token: the session comes
/// from the token, and the invalid cookie is removed, as it would be without the token.
#[tokio::test]
async fn an_invalid_cookie_beside_a_valid_token_is_removed() {
    for (kind, layer) in layers() {
        let mut app = routes(layer, Arc::default());
        let (token, _) = start(&mut app, "erin").await;
        for bad in [
            "sid=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "sid=garbage",
        ] {
            let request = Request::get(format!("/whoami?{PARAM}={token}"))
                .header("cookie", bad)
                .body(Body::empty())
                .unwrap();
            let response = call(&mut app, request).await;
            let headers = response.headers().clone();
            let removals: Vec<_> = headers
                .get_all("set-cookie")
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect();
            assert_eq!(removals.len(), 1, "{kind} {bad}: {removals:?}");
            assert!(
                removals[0].starts_with("sid=;") && removals[0].contains("Max-Age=0"),
                "{kind}: {removals:?}"
            );
            assert_eq!(headers["cache-control"], "no-store", "{kind}");
            assert_eq!(text(response).await, "erin|Loaded|", "{kind} {bad}");
        }
        // A valid cookie of another session, with the token tried first, is kept.
        let (_, cookie) = start(&mut app, "fay").await;
        if let Some(cookie) = cookie {
            let request = Request::get(format!("/whoami?{PARAM}={token}"))
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap();
            let response = call(&mut app, request).await;
            assert!(response.headers().get("set-cookie").is_none(), "{kind}");
            assert_eq!(
                text(response).await,
                "fay|Loaded|",
                "{kind}: the cookie wins"
            );
        }
    }
}

/// A token is one value, never split: a session that outgrows it (cookies disabled, so
/// the token is all there is) is a `TokenTooLarge` error from `token()` that says so, and
/// the request that brought the token still finishes (no cookie is written for it).
#[test]
fn a_session_too_large_for_a_token_is_an_error_that_says_so() {
    use cookie_session::EncodeError;
    for mode in MODES {
        let sessions = token_config(mode)
            .with_max_cookies(4)
            .with_max_total_size(16_000)
            .build()
            .unwrap();
        let mut session = sessions.load([""], at(T0));
        session.insert("who", "gus").unwrap();
        let token = session.token().unwrap().unwrap();
        session.finish(at(T0)).unwrap();

        let mut session = sessions.load_with_token([""], Some(&*token), at(T0 + 1));
        assert_eq!(
            session.get::<String>("who").unwrap().as_deref(),
            Some("gus")
        );
        session.insert("notes", &"n".repeat(6_000)).unwrap();
        let error = session.token().unwrap_err();
        assert!(
            matches!(
                error,
                SessionError::Encode(EncodeError::TokenTooLarge { limit: 4096, .. })
            ),
            "{mode}: {error:?}"
        );
        let message = format!("{error:?}");
        assert!(message.contains("token holds at most 4096"), "{message}");
        let decision = session.finish(at(T0 + 1)).unwrap();
        assert!(decision.set_cookies().next().is_none(), "{mode}");
        // The same data fits a (split) cookie: the bound is the token's only.
        let mut session = sessions.load([""], at(T0));
        session.insert("notes", &"n".repeat(6_000)).unwrap();
        assert_eq!(session.finish(at(T0)).unwrap().set_cookies().count(), 2);
    }
}
