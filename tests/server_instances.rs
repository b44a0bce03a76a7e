//! Several instances of one application sharing PostgreSQL or Redis, each with its own
//! layer and its own store client; and the engine going away and coming back.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;
mod services;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use axum::routing::get;
use common::cookie_pair;
use cookie_session::store::{DynStore, PostgresStore, PostgresTable, RedisStore};
use cookie_session::tower::SessionLayer;
use cookie_session::{Key, KeyRing, Mode, SessionConfig, SessionError, SessionHandle};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt as _;

/// One instance of the application: the routes every test uses, on `store`.
fn instance(ring: &KeyRing, store: Arc<dyn DynStore>) -> Router {
    let sessions = SessionConfig::new(Mode::Encrypted, ring.clone())
        .with_name("sid")
        .with_insecure_http_for_local_development()
        .build()
        .unwrap();
    Router::new()
        .route(
            "/login",
            get(|s: SessionHandle| async move {
                s.with(|s| -> Result<(), SessionError> {
                    s.regenerate()?;
                    s.insert("user", "ada")
                })??;
                Ok::<_, SessionError>("in")
            }),
        )
        .route(
            "/me",
            get(|s: SessionHandle| async move {
                Ok::<_, SessionError>(format!("{:?}", s.get::<String>("user")?))
            }),
        )
        .route(
            "/set/{key}",
            get(
                |s: SessionHandle, axum::extract::Path(key): axum::extract::Path<String>| async move {
                    s.insert(&key, &true)?;
                    Ok::<_, SessionError>("set")
                },
            ),
        )
        .route(
            "/has/{key}",
            get(
                |s: SessionHandle, axum::extract::Path(key): axum::extract::Path<String>| async move {
                    Ok::<_, SessionError>(format!("{:?}", s.get::<bool>(&key)?))
                },
            ),
        )
        .route(
            "/login-as/{user}",
            get(
                |s: SessionHandle, axum::extract::Path(user): axum::extract::Path<String>| async move {
                    s.with(|s| -> Result<(), SessionError> {
                        s.regenerate()?;
                        s.insert("user", &user)?;
                        s.attach_user(&user)
                    })??;
                    Ok::<_, SessionError>("in")
                },
            ),
        )
        .route(
            "/logout-elsewhere/{user}",
            get(
                |s: SessionHandle, axum::extract::Path(user): axum::extract::Path<String>| async move {
                    Ok::<_, SessionError>(s.log_out_user(&user, true).await?.to_string())
                },
            ),
        )
        .route(
            "/logout",
            get(|s: SessionHandle| async move {
                s.delete()?;
                Ok::<_, SessionError>("out")
            }),
        )
        .layer(SessionLayer::new(sessions).with_store(store))
}

async fn get_path(app: &Router, path: &str, cookie: Option<&str>) -> Response<Body> {
    let mut request = Request::get(path);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    app.clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

async fn text(response: Response<Body>) -> String {
    use http_body_util::BodyExt as _;
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// A session made through A is read through B; writes of different keys through A and B
/// at the same time both survive; a logout through B is seen through A at once.
async fn two_instances(a: Arc<dyn DynStore>, b: Arc<dyn DynStore>) {
    let ring = KeyRing::new(Key::generate().unwrap());
    let (a, b) = (instance(&ring, a), instance(&ring, b));

    let response = get_path(&a, "/login", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = cookie_pair(&response);
    assert_eq!(
        text(get_path(&b, "/me", Some(&cookie)).await).await,
        "Some(\"ada\")"
    );

    for round in 0..20 {
        let (key_a, key_b) = (format!("a{round}"), format!("b{round}"));
        // On the runtime's two worker threads, at the same time.
        let write = |app: &Router, key: &str| {
            let (app, path, cookie) = (app.clone(), format!("/set/{key}"), cookie.clone());
            tokio::spawn(async move { get_path(&app, &path, Some(&cookie)).await.status() })
        };
        let (ra, rb) = (write(&a, &key_a), write(&b, &key_b));
        let (ra, rb) = (ra.await.unwrap(), rb.await.unwrap());
        assert_eq!((ra, rb), (StatusCode::OK, StatusCode::OK));
        for key in [&key_a, &key_b] {
            let seen = text(get_path(&a, &format!("/has/{key}"), Some(&cookie)).await).await;
            assert_eq!(seen, "Some(true)", "round {round}: {key} was lost");
        }
    }

    let response = get_path(&b, "/logout", Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(text(get_path(&a, "/me", Some(&cookie)).await).await, "None");

    // Grace logs in through A (a laptop) and through B (a phone), then logs out everywhere
    // else from the phone: the laptop's next request, through A, finds no session.
    let laptop = cookie_pair(&get_path(&a, "/login-as/grace", None).await);
    let phone = cookie_pair(&get_path(&b, "/login-as/grace", None).await);
    let ended = text(get_path(&b, "/logout-elsewhere/grace", Some(&phone)).await).await;
    assert_eq!(ended, "1");
    assert_eq!(text(get_path(&a, "/me", Some(&laptop)).await).await, "None");
    assert_eq!(
        text(get_path(&a, "/me", Some(&phone)).await).await,
        "Some(\"grace\")"
    );
}

#[test]
fn two_instances_share_postgresql() {
    services::with_postgres(async {
        let first = services::postgres_store().await;
        // The second instance: its own pool on the same table.
        let url = std::env::var("DATABASE_URL").unwrap();
        let table = PostgresTable::new(&services::current_name());
        let second = PostgresStore::connect(&url, table).unwrap();
        two_instances(Arc::new(first), Arc::new(second)).await;
        Ok::<(), String>(())
    })
    .unwrap();
}

#[test]
fn two_instances_share_redis() {
    services::with_redis(async {
        let first = services::redis_store().await;
        let second = services::redis_store().await;
        two_instances(Arc::new(first), Arc::new(second)).await;
        Ok::<(), String>(())
    })
    .unwrap();
}

/// A TCP relay in front of a server, which the test can close (the port then refuses
/// connections, and open ones are cut) and open again on the same port.
struct Relay {
    addr: SocketAddr,
    target: SocketAddr,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Relay {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay = Self {
            addr: listener.local_addr().unwrap(),
            target,
            tasks: Arc::default(),
        };
        relay.serve(listener);
        relay
    }

    fn serve(&self, listener: TcpListener) {
        let (target, tasks) = (self.target, self.tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let pipe = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tasks.lock().unwrap().push(pipe);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    fn close(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    async fn open(&self) {
        let listener = loop {
            // The aborted accept task drops its listener asynchronously.
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        self.serve(listener);
    }
}

/// The engine goes away: `503` with `Retry-After`, the cookie untouched; it comes back:
/// the same session is served again without restarting anything.
async fn outage(relay: &Relay, store: Arc<dyn DynStore>) {
    let ring = KeyRing::new(Key::generate().unwrap());
    let app = instance(&ring, store);
    let response = get_path(&app, "/login", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = cookie_pair(&response);

    relay.close();
    for path in ["/me", "/set/x", "/logout"] {
        let response = get_path(&app, path, Some(&cookie)).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(response.headers().contains_key("retry-after"), "{path}");
        assert!(
            !response.headers().contains_key("set-cookie"),
            "{path}: the cookie stays"
        );
    }

    relay.open().await;
    let mut answer = String::new();
    for _ in 0..50 {
        let response = get_path(&app, "/me", Some(&cookie)).await;
        if response.status() == StatusCode::OK {
            answer = text(response).await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answer, "Some(\"ada\")", "service did not resume within 5 s");
}

fn server_addr(url: &str, default_port: u16) -> SocketAddr {
    let rest = url.split("://").nth(1).unwrap();
    let host_port = rest.split('/').next().unwrap();
    let host_port = host_port.rsplit('@').next().unwrap();
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().unwrap()),
        None => (host_port, default_port),
    };
    let host = if host == "localhost" {
        "127.0.0.1"
    } else {
        host
    };
    SocketAddr::new(host.parse().unwrap(), port)
}

#[test]
fn postgresql_going_away_gives_503_and_service_resumes_when_it_is_back() {
    services::with_postgres(async {
        let url = std::env::var("DATABASE_URL").unwrap();
        let relay = Relay::start(server_addr(&url, 5432)).await;
        // Creates the check's table, directly.
        services::postgres_store().await;
        // The application's own pool (`from_pool`), connecting through the relay.
        let direct: tokio_postgres::Config = url.parse().unwrap();
        let mut config = tokio_postgres::Config::new();
        config
            .user(direct.get_user().unwrap_or("postgres"))
            .dbname(direct.get_dbname().unwrap_or("postgres"))
            .host("127.0.0.1")
            .port(relay.addr.port());
        if let Some(password) = direct.get_password() {
            config.password(password);
        }
        let manager = deadpool_postgres::Manager::new(config, tokio_postgres::NoTls);
        let pool = deadpool_postgres::Pool::builder(manager)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .unwrap();
        let store = PostgresStore::from_pool(pool, PostgresTable::new(&services::current_name()))
            .unwrap()
            .with_timeout(Duration::from_secs(2));
        outage(&relay, Arc::new(store)).await;
        Ok::<(), String>(())
    })
    .unwrap();
}

#[test]
fn redis_going_away_gives_503_and_service_resumes_when_it_is_back() {
    services::with_redis(async {
        let url = std::env::var("REDIS_URL").unwrap();
        let relay = Relay::start(server_addr(&url, 6379)).await;
        let store = RedisStore::connect(&format!("redis://{}/", relay.addr))
            .await
            .unwrap()
            .with_prefix(&services::current_name())
            .with_timeout(Duration::from_secs(2));
        outage(&relay, Arc::new(store)).await;
        Ok::<(), String>(())
    })
    .unwrap();
}
