//! The same behaviours through both frameworks: each test builds one site (the same
//! handlers where the frameworks allow it) under axum and under actix-web, drives both with
//! the same requests through a small cookie jar, and checks both the same way. Then one
//! fleet: an axum site and an actix site with the same key, in cookie mode and on one store.
#![cfg(all(feature = "axum", feature = "actix"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::web;
use common::{Hook, Hooked, config, incompressible};
use cookie_session::actix::SessionMiddleware;
use cookie_session::store::{MemoryStore, StoreError};
use cookie_session::tower::SessionLayer;
use cookie_session::{Mode, SessionConfig, SessionError, SessionHandle};
use tower::ServiceExt as _;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framework {
    Axum,
    Actix,
}

const BOTH: [Framework; 2] = [Framework::Axum, Framework::Actix];

/// A request, as either framework's test client takes it.
struct Req {
    method: &'static str,
    uri: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

fn get(uri: &str) -> Req {
    Req {
        method: "GET",
        uri: uri.to_owned(),
        headers: Vec::new(),
        body: Vec::new(),
    }
}

fn post_form(uri: &str, body: &str) -> Req {
    Req {
        method: "POST",
        uri: uri.to_owned(),
        headers: vec![(
            "content-type",
            "application/x-www-form-urlencoded".to_owned(),
        )],
        body: body.as_bytes().to_vec(),
    }
}

/// A response, as both frameworks' clients give it.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn one(&self, name: &str) -> Option<&str> {
        self.all(name).first().copied()
    }
}

type Site = Box<dyn Fn(Req) -> Pin<Box<dyn Future<Output = Reply>>>>;

/// A browser's cookies: what `Set-Cookie` says, applied in order (`Max-Age=0` removes).
#[derive(Default, Clone, Debug)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn apply(&mut self, reply: &Reply) {
        for set in reply.all("set-cookie") {
            let pair = set.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if set.contains("Max-Age=0") {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    fn header(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| {
            self.0
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// Sends `request` with the jar's cookies and keeps what the response sets.
    async fn send(&mut self, site: &Site, mut request: Req) -> Reply {
        if let Some(cookies) = self.header() {
            request.headers.push(("cookie", cookies));
        }
        let reply = site(request).await;
        self.apply(&reply);
        reply
    }
}

// The handlers both frameworks serve as they are.

async fn untouched() -> &'static str {
    "ok"
}

async fn read(session: SessionHandle) -> Result<String, SessionError> {
    Ok(format!("{:?}", session.get::<u64>("n")?))
}

async fn write(session: SessionHandle) -> Result<String, SessionError> {
    session.update_or_default("n", |n: &mut u64| *n += 1)?;
    Ok(format!("{:?}", session.get::<u64>("n")?))
}

async fn login(session: SessionHandle) -> Result<String, SessionError> {
    session.with(|s| -> Result<(), SessionError> {
        s.regenerate()?;
        s.insert("user", "ada")
    })??;
    Ok("in".to_owned())
}

async fn me(session: SessionHandle) -> Result<String, SessionError> {
    Ok(format!("{:?}", session.get::<String>("user")?))
}

async fn logout(session: SessionHandle) -> Result<String, SessionError> {
    session.delete()?;
    Ok("out".to_owned())
}

/// 6 KB that does not compress: more than one cookie holds.
async fn big(session: SessionHandle) -> Result<String, SessionError> {
    session.insert("big", &incompressible(6000, 7))?;
    Ok("big".to_owned())
}

async fn small(session: SessionHandle) -> Result<String, SessionError> {
    session.remove("big")?;
    Ok("small".to_owned())
}

async fn big_len(session: SessionHandle) -> Result<String, SessionError> {
    Ok(format!(
        "{:?}",
        session.get::<String>("big")?.map(|b| b.len())
    ))
}

async fn wrong_type(session: SessionHandle) -> Result<String, SessionError> {
    session.insert("t", "text")?;
    Ok(format!("{:?}", session.get::<u64>("t")?))
}

async fn token(session: SessionHandle) -> Result<String, SessionError> {
    Ok(session.token()?.unwrap_or_default())
}

async fn form(session: SessionHandle, body: String) -> Result<String, SessionError> {
    Ok(format!("{body} n={:?}", session.get::<u64>("n")?))
}

#[derive(Clone, Default)]
struct Setup {
    config: Option<fn() -> SessionConfig>,
    store: Option<Arc<dyn cookie_session::store::DynStore>>,
    degrade: bool,
    no_middleware: bool,
}

fn default_config() -> SessionConfig {
    config(Mode::Encrypted)
}

fn sessions_of(setup: &Setup) -> cookie_session::Sessions {
    (setup.config.unwrap_or(default_config))().build().unwrap()
}

async fn site(framework: Framework, setup: &Setup) -> Site {
    match framework {
        Framework::Axum => axum_site(setup),
        Framework::Actix => actix_site(setup).await,
    }
}

fn axum_site(setup: &Setup) -> Site {
    use axum::routing::{get, post};
    let router = axum::Router::new()
        .route("/untouched", get(untouched))
        .route("/read", get(read))
        .route("/write", get(write))
        .route("/login", get(login))
        .route("/me", get(me))
        .route("/logout", get(logout))
        .route("/big", get(big))
        .route("/small", get(small))
        .route("/big-len", get(big_len))
        .route("/wrong-type", get(wrong_type))
        .route("/token", get(token))
        .route("/form", post(form))
        .route(
            "/fail",
            get(|s: SessionHandle| async move {
                s.insert("n", &99).unwrap();
                (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "failed")
            }),
        )
        .route(
            "/cached",
            get(|s: SessionHandle| async move {
                s.update_or_default("n", |n: &mut u64| *n += 1).unwrap();
                let n = s.get::<u64>("n").unwrap();
                (
                    [("cache-control", "public, max-age=60"), ("vary", "Accept")],
                    format!("{n:?}"),
                )
            }),
        )
        .route(
            "/query",
            get(|s: SessionHandle, uri: axum::http::Uri| async move {
                format!(
                    "{} n={:?}",
                    uri.query().unwrap_or_default(),
                    s.get::<u64>("n").unwrap()
                )
            }),
        );
    let router = if setup.no_middleware {
        router
    } else {
        let mut layer = SessionLayer::new(sessions_of(setup))
            .with_read_only_session_when_store_down(setup.degrade);
        if let Some(store) = &setup.store {
            layer = layer.with_store(Arc::clone(store));
        }
        router.layer(layer.with_form_bodies())
    };
    boxed_axum(router)
}

/// An axum router, boxed as a [`Site`].
fn boxed_axum(router: axum::Router) -> Site {
    Box::new(move |req: Req| {
        let router = router.clone();
        Box::pin(async move {
            let mut request = axum::http::Request::builder()
                .method(req.method)
                .uri(&req.uri);
            for (name, value) in &req.headers {
                request = request.header(*name, value);
            }
            let request = request.body(axum::body::Body::from(req.body)).unwrap();
            let response = router.oneshot(request).await.unwrap();
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap().to_owned()))
                .collect();
            let body = http_body_util::BodyExt::collect(response.into_body())
                .await
                .unwrap()
                .to_bytes();
            Reply {
                status,
                headers,
                body: String::from_utf8(body.to_vec()).unwrap(),
            }
        })
    })
}

fn actix_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/untouched", web::get().to(untouched))
        .route("/read", web::get().to(read))
        .route("/write", web::get().to(write))
        .route("/login", web::get().to(login))
        .route("/me", web::get().to(me))
        .route("/logout", web::get().to(logout))
        .route("/big", web::get().to(big))
        .route("/small", web::get().to(small))
        .route("/big-len", web::get().to(big_len))
        .route("/wrong-type", web::get().to(wrong_type))
        .route("/token", web::get().to(token))
        .route("/form", web::post().to(form))
        .route(
            "/fail",
            web::get().to(|s: SessionHandle| async move {
                s.insert("n", &99).unwrap();
                actix_web::HttpResponse::InternalServerError().body("failed")
            }),
        )
        .route(
            "/cached",
            web::get().to(|s: SessionHandle| async move {
                s.update_or_default("n", |n: &mut u64| *n += 1).unwrap();
                let n = s.get::<u64>("n").unwrap();
                actix_web::HttpResponse::Ok()
                    .insert_header(("cache-control", "public, max-age=60"))
                    .insert_header(("vary", "Accept"))
                    .body(format!("{n:?}"))
            }),
        )
        .route(
            "/query",
            web::get().to(
                |s: SessionHandle, request: actix_web::HttpRequest| async move {
                    format!(
                        "{} n={:?}",
                        request.query_string(),
                        s.get::<u64>("n").unwrap()
                    )
                },
            ),
        );
}

/// An actix test service, boxed as a [`Site`].
macro_rules! boxed_actix {
    ($app:expr) => {{
        let service = Rc::new(actix_web::test::init_service($app).await);
        Box::new(move |req: Req| {
            let service = Rc::clone(&service);
            Box::pin(async move {
                let mut request = actix_web::test::TestRequest::default()
                    .method(actix_web::http::Method::from_bytes(req.method.as_bytes()).unwrap())
                    .uri(&req.uri);
                for (name, value) in req.headers {
                    request = request.insert_header((name, value));
                }
                let request = request.set_payload(req.body).to_request();
                let response = actix_web::test::call_service(&*service, request).await;
                let status = response.status().as_u16();
                let headers = response
                    .headers()
                    .iter()
                    .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap().to_owned()))
                    .collect();
                let body = actix_web::test::read_body(response).await;
                Reply {
                    status,
                    headers,
                    body: String::from_utf8(body.to_vec()).unwrap(),
                }
            }) as Pin<Box<dyn Future<Output = Reply>>>
        }) as Site
    }};
}

async fn actix_site(setup: &Setup) -> Site {
    if setup.no_middleware {
        return boxed_actix!(actix_web::App::new().configure(actix_routes));
    }
    let mut middleware = SessionMiddleware::new(sessions_of(setup))
        .with_read_only_session_when_store_down(setup.degrade)
        .with_form_bodies();
    if let Some(store) = &setup.store {
        middleware = middleware.with_store(Arc::clone(store));
    }
    boxed_actix!(
        actix_web::App::new()
            .wrap(middleware)
            .configure(actix_routes)
    )
}

/// Runs `test` for each framework on an actix runtime (which serves axum's futures too).
fn each(test: impl AsyncFn(Framework)) {
    for framework in BOTH {
        actix_web::rt::System::new().block_on(test(framework));
    }
}

#[test]
fn an_untouched_request_gets_no_session_headers_even_with_a_bad_cookie() {
    each(async |framework| {
        let site = site(framework, &Setup::default()).await;
        let mut request = get("/untouched");
        request.headers.push(("cookie", "sid=forged".to_owned()));
        let reply = site(request).await;
        assert_eq!(reply.status, 200, "{framework:?}");
        for name in ["set-cookie", "vary", "cache-control"] {
            assert_eq!(reply.one(name), None, "{framework:?}: {name}");
        }
    });
}

#[test]
fn a_write_sets_the_cookie_and_a_read_sends_none_but_varies() {
    each(async |framework| {
        let site = site(framework, &Setup::default()).await;
        let mut jar = Jar::default();
        let first = jar.send(&site, get("/write")).await;
        assert_eq!(first.body, "Some(1)", "{framework:?}");
        assert_eq!(first.all("set-cookie").len(), 1, "{framework:?}");
        let second = jar.send(&site, get("/write")).await;
        assert_eq!(second.body, "Some(2)", "{framework:?}");
        let read = jar.send(&site, get("/read")).await;
        assert_eq!(read.body, "Some(2)", "{framework:?}");
        assert!(read.all("set-cookie").is_empty(), "{framework:?}: {read:?}");
        assert_eq!(read.one("vary"), Some("Cookie"), "{framework:?}");
        // Nothing to keep from shared caches: no cookie is sent.
        assert_eq!(read.one("cache-control"), None, "{framework:?}");
        assert_eq!(
            second.one("cache-control"),
            Some("private"),
            "{framework:?}"
        );
    });
}

#[test]
fn the_applications_cache_headers_are_merged_not_replaced() {
    each(async |framework| {
        let site = site(framework, &Setup::default()).await;
        let mut jar = Jar::default();
        jar.send(&site, get("/write")).await;
        // A write: the response carries a cookie, so shared caches must not keep it.
        let reply = jar.send(&site, get("/cached")).await;
        assert_eq!(reply.body, "Some(2)");
        assert_eq!(reply.all("set-cookie").len(), 1, "{framework:?}");
        assert_eq!(
            reply.one("cache-control"),
            Some("private, max-age=60"),
            "{framework:?}"
        );
        let mut vary = reply.all("vary");
        vary.sort_unstable();
        assert_eq!(vary, ["Accept", "Cookie"], "{framework:?}");
    });
}

#[test]
fn a_failed_handler_stores_nothing() {
    each(async |framework| {
        let site = site(framework, &Setup::default()).await;
        let mut jar = Jar::default();
        jar.send(&site, get("/write")).await;
        let failed = jar.send(&site, get("/fail")).await;
        assert_eq!(failed.status, 500, "{framework:?}");
        assert!(failed.all("set-cookie").is_empty(), "{framework:?}");
        assert_eq!(failed.one("vary"), Some("Cookie"), "{framework:?}");
        assert_eq!(jar.send(&site, get("/read")).await.body, "Some(1)");
    });
}

#[test]
fn a_session_too_large_to_keep_gets_a_500_and_the_old_cookie_stays() {
    each(async |framework| {
        let site = site(framework, &Setup::default()).await;
        let mut jar = Jar::default();
        jar.send(&site, get("/write")).await;
        let before = jar.clone();
        let reply = jar.send(&site, get("/big")).await;
        assert_eq!(reply.status, 500, "{framework:?}");
        assert_eq!(reply.body, "the session could not be saved\n");
        assert!(reply.all("set-cookie").is_empty(), "{framework:?}");
        assert_eq!(jar.0, before.0);
    });
}

#[test]
fn a_session_error_in_a_handler_is_a_generic_500() {
    each(async |framework| {
        let site = site(framework, &Setup::default()).await;
        let reply = site(get("/wrong-type")).await;
        assert_eq!(reply.status, 500, "{framework:?}");
        assert_eq!(
            reply.body, "the session could not be used\n",
            "{framework:?}"
        );
        assert!(!reply.body.contains("text"));
    });
}

#[test]
fn a_handler_without_the_middleware_gets_a_clear_500() {
    each(async |framework| {
        let setup = Setup {
            no_middleware: true,
            ..Setup::default()
        };
        let site = site(framework, &setup).await;
        let reply = site(get("/read")).await;
        assert_eq!(reply.status, 500, "{framework:?}");
        assert!(
            reply.body.contains("not installed"),
            "{framework:?}: {reply:?}"
        );
    });
}

fn split_config() -> SessionConfig {
    config(Mode::Encrypted)
        .with_max_cookies(4)
        .with_max_total_size(16 * 1024)
}

#[test]
fn a_session_split_across_cookies_grows_shrinks_and_reads_back_whole() {
    each(async |framework| {
        let setup = Setup {
            config: Some(split_config),
            ..Setup::default()
        };
        let site = site(framework, &setup).await;
        let mut jar = Jar::default();
        jar.send(&site, get("/write")).await;
        assert_eq!(jar.0.len(), 1);
        let grown = jar.send(&site, get("/big")).await;
        assert_eq!(grown.status, 200, "{framework:?}");
        let pieces = jar.0.len();
        assert!(pieces >= 2, "{framework:?}: {:?}", jar.0.keys());
        let read = jar.send(&site, get("/big-len")).await;
        assert_eq!(read.body, "Some(6000)", "{framework:?}");
        assert!(read.all("set-cookie").is_empty(), "{framework:?}");
        // Rewritten at the same size: the same pieces, none set twice.
        let again = jar.send(&site, get("/write")).await;
        let mut names: Vec<_> = again
            .all("set-cookie")
            .iter()
            .map(|s| s.split('=').next().unwrap().to_owned())
            .collect();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count, "{framework:?}: a piece set twice");
        assert_eq!(jar.0.len(), pieces, "{framework:?}");
        // Shrunk to one cookie: the stale pieces are removed.
        jar.send(&site, get("/small")).await;
        assert_eq!(jar.0.len(), 1, "{framework:?}: {:?}", jar.0.keys());
        assert_eq!(jar.send(&site, get("/read")).await.body, "Some(2)");
    });
}

fn token_config() -> SessionConfig {
    config(Mode::Encrypted).with_token_parameter("tg_visit")
}

#[test]
fn the_token_parameter_works_in_the_query_and_in_form_bodies_and_is_taken_out() {
    for store in [false, true] {
        each(async |framework| {
            let setup = Setup {
                config: Some(token_config),
                store: store.then(|| Arc::new(MemoryStore::new()) as _),
                ..Setup::default()
            };
            let site = site(framework, &setup).await;
            let mut jar = Jar::default();
            jar.send(&site, get("/write")).await;
            let token = jar.send(&site, get("/token")).await.body;
            assert!(!token.is_empty(), "{framework:?}");
            // No cookies: the session comes from the parameter, which the handler never
            // sees; the page is neither cached nor leaked in a Referer.
            let reply = site(get(&format!("/query?a=1&tg_visit={token}&b=2"))).await;
            assert_eq!(
                reply.body, "a=1&b=2 n=Some(1)",
                "{framework:?} store={store}"
            );
            assert_eq!(reply.one("referrer-policy"), Some("no-referrer"));
            assert_eq!(reply.one("cache-control"), Some("no-store"));
            let reply = site(post_form("/form", &format!("a=1&tg_visit={token}"))).await;
            assert_eq!(reply.body, "a=1 n=Some(1)", "{framework:?} store={store}");
            // A form over the bound is the handler's, unread and whole.
            let long = format!("a={}&tg_visit={token}", "x".repeat(70_000));
            let reply = site(post_form("/form", &long)).await;
            assert_eq!(reply.status, 200, "{framework:?}");
            assert_eq!(reply.body, format!("{long} n=None"), "{framework:?}");
        });
    }
}

#[test]
fn server_side_sessions_log_in_and_out_for_good() {
    each(async |framework| {
        let setup = Setup {
            store: Some(Arc::new(MemoryStore::new())),
            ..Setup::default()
        };
        let site = site(framework, &setup).await;
        let mut jar = Jar::default();
        assert_eq!(jar.send(&site, get("/login")).await.body, "in");
        let stolen = jar.clone();
        let me = jar.send(&site, get("/me")).await;
        assert_eq!(me.body, "Some(\"ada\")", "{framework:?}");
        assert!(me.all("set-cookie").is_empty(), "{framework:?}: read-only");
        jar.send(&site, get("/logout")).await;
        assert!(jar.0.is_empty(), "{framework:?}");
        // The old cookie finds nothing: the logout is final.
        let mut stolen = stolen;
        assert_eq!(stolen.send(&site, get("/me")).await.body, "None");
    });
}

/// A store that can be switched off, as a database that stops answering.
#[derive(Default)]
struct Down(AtomicBool);

impl Hook for Down {
    fn before(&self, _: &'static str) -> Result<(), StoreError> {
        if self.0.load(Ordering::Relaxed) {
            Err(StoreError::Unavailable("connection refused".into()))
        } else {
            Ok(())
        }
    }
}

#[test]
fn a_store_that_is_down_gives_503_with_retry_after_and_leaves_the_cookie() {
    for degrade in [false, true] {
        each(async |framework| {
            let store = Arc::new(Hooked::<Down>::default());
            let setup = Setup {
                store: Some(store.clone() as _),
                degrade,
                ..Setup::default()
            };
            let site = site(framework, &setup).await;
            let mut jar = Jar::default();
            jar.send(&site, get("/login")).await;
            let cookie = jar.clone();
            store.hook.0.store(true, Ordering::Relaxed);
            let reply = jar.send(&site, get("/me")).await;
            if degrade {
                // Read-only pages render as for a visitor without a session.
                assert_eq!(reply.status, 200, "{framework:?}");
                assert_eq!(reply.body, "None");
            } else {
                assert_eq!(reply.status, 503, "{framework:?}");
                assert_eq!(reply.one("retry-after"), Some("5"), "{framework:?}");
            }
            let write = jar.send(&site, get("/write")).await;
            assert_eq!(write.status, 503, "{framework:?} degrade={degrade}");
            assert!(write.one("retry-after").is_some());
            assert!(write.all("set-cookie").is_empty(), "{framework:?}");
            assert_eq!(jar.0, cookie.0, "{framework:?}: the cookie is untouched");
            // Back up: the session is there again.
            store.hook.0.store(false, Ordering::Relaxed);
            assert_eq!(jar.send(&site, get("/me")).await.body, "Some(\"ada\")");
        });
    }
}

/// One fleet: an axum site and an actix site with the same key (and store), each request
/// of the visitor going to either.
async fn fleet(store: Option<Arc<dyn cookie_session::store::DynStore>>) -> [Site; 2] {
    let setup = Setup {
        store,
        ..Setup::default()
    };
    [
        site(Framework::Axum, &setup).await,
        site(Framework::Actix, &setup).await,
    ]
}

#[test]
fn one_fleet_two_frameworks_a_login_on_either_is_seen_on_both_and_a_logout_ends_it() {
    for server_side in [false, true] {
        for (login_on, logout_on) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            actix_web::rt::System::new().block_on(async {
                let store = server_side.then(|| Arc::new(MemoryStore::new()) as _);
                let sites = fleet(store).await;
                let mut jar = Jar::default();
                jar.send(&sites[login_on], get("/login")).await;
                for site in &sites {
                    assert_eq!(jar.send(site, get("/me")).await.body, "Some(\"ada\")");
                }
                let before_logout = jar.clone();
                jar.send(&sites[logout_on], get("/logout")).await;
                for site in &sites {
                    assert_eq!(jar.send(site, get("/me")).await.body, "None");
                }
                if server_side {
                    // Server-side, the logout is final everywhere, even for the old cookie.
                    for site in &sites {
                        let mut old = before_logout.clone();
                        assert_eq!(old.send(site, get("/me")).await.body, "None");
                    }
                }
            });
        }
    }
}

/// Server-side on SQLite (its writes run on a worker thread, so the requests really
/// interleave): every increment through either framework survives.
#[test]
fn one_fleet_two_frameworks_concurrent_counts_through_both_all_survive() {
    let dir = std::env::temp_dir().join(format!("cookie-session-fleet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sessions.db");
    actix_web::rt::System::new().block_on(async {
        let store = cookie_session::store::SqliteStore::open(&path).unwrap();
        let sites = fleet(Some(Arc::new(store))).await;
        let mut jar = Jar::default();
        jar.send(&sites[0], get("/write")).await;
        let cookie = jar.header().unwrap();
        // Sixteen increments, alternating frameworks, all in flight at once.
        let requests = (0..16).map(|i| {
            let mut request = get("/write");
            request.headers.push(("cookie", cookie.clone()));
            sites[i % 2](request)
        });
        for reply in futures_join_all(requests).await {
            assert_eq!(reply.status, 200, "{reply:?}");
        }
        for site in &sites {
            assert_eq!(jar.send(site, get("/read")).await.body, "Some(17)");
        }
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Polls every future to completion, interleaved (no extra dependency for `join_all`).
async fn futures_join_all<F: Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<Pin<Box<F>>> = futures.map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (future, slot) in pending.iter_mut().zip(done.iter_mut()) {
            if slot.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(output) => *slot = Some(output),
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    done.into_iter().map(Option::unwrap).collect()
}

/// The application's own answer to a session that cannot be saved, in each framework's
/// response type: it replaces the handler's response whole, without `Set-Cookie`.
#[test]
fn the_applications_save_failure_response_replaces_the_handlers() {
    actix_web::rt::System::new().block_on(async {
        let axum_site: Site = {
            let layer = SessionLayer::new(sessions_of(&Setup::default())).with_save_failure(|_| {
                let mut response = axum::http::Response::new("basket full".to_owned());
                *response.status_mut() = axum::http::StatusCode::PAYLOAD_TOO_LARGE;
                response
            });
            let router = axum::Router::new()
                .route("/big", axum::routing::get(big))
                .layer(layer);
            boxed_axum(router)
        };
        let middleware = SessionMiddleware::new(sessions_of(&Setup::default()))
            .with_save_failure(|_| actix_web::HttpResponse::PayloadTooLarge().body("basket full"));
        let actix_site: Site = boxed_actix!(
            actix_web::App::new()
                .wrap(middleware)
                .route("/big", web::get().to(big))
        );
        for site in [axum_site, actix_site] {
            let reply = site(get("/big")).await;
            assert_eq!((reply.status, reply.body.as_str()), (413, "basket full"));
            assert!(reply.all("set-cookie").is_empty());
        }
    });
}

/// Counts the store's writes (every operation but a load).
#[derive(Default)]
struct Writes(std::sync::atomic::AtomicUsize);

impl Hook for Writes {
    fn before(&self, op: &'static str) -> Result<(), StoreError> {
        if op != "load" {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

/// Server-side, a request that only reads the session writes nothing to the store and sends
/// no cookie, in either framework; one that changes it writes once.
#[test]
fn a_read_only_request_writes_nothing_to_the_store() {
    each(async |framework| {
        let store = Arc::new(Hooked::<Writes>::default());
        let setup = Setup {
            store: Some(store.clone() as _),
            ..Setup::default()
        };
        let site = site(framework, &setup).await;
        let mut jar = Jar::default();
        jar.send(&site, get("/login")).await;
        let writes = || store.hook.0.load(Ordering::SeqCst);
        let before = writes();
        for _ in 0..3 {
            let reply = jar.send(&site, get("/me")).await;
            assert_eq!(reply.body, "Some(\"ada\")", "{framework:?}");
            assert!(reply.all("set-cookie").is_empty(), "{framework:?}");
        }
        assert_eq!(writes(), before, "{framework:?}: a read wrote to the store");
        jar.send(&site, get("/write")).await;
        assert_eq!(writes(), before + 1, "{framework:?}: one change, one write");
        // An untouched request does not even read.
        site(get("/untouched")).await;
        assert_eq!(writes(), before + 1, "{framework:?}");
    });
}
