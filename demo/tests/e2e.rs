//! End to end: the demo server (`src/main.rs`, built by `cargo test`) on an ephemeral
//! loopback port, driven by a real HTTP client; `Set-Cookie` presence and absence per route,
//! under axum and (built with the demo's `actix` feature, as `--all-features` does) under
//! actix-web, and a fleet of both.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use ureq::Agent;

struct Demo {
    child: Child,
    url: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The frameworks this build of the demo serves.
fn frameworks() -> Vec<&'static str> {
    let mut frameworks = vec!["axum"];
    if cfg!(feature = "actix") {
        frameworks.push("actix");
    } else if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "under CI=true the demo is tested under actix-web too: build it with --all-features"
        );
    } else {
        eprintln!("!!!!! SKIPPED: the demo under actix-web (build with --features actix) !!!!!");
    }
    frameworks
}

/// The demo under `framework` with `SESSION_STORE` set to `store`.
fn start_demo_with(framework: &str, store: &str) -> Demo {
    start_instance(framework, store, None)
}

/// The demo under `framework` on `store`, with `key` (several instances of one app share it)
/// or a random one.
fn start_instance(framework: &str, store: &str, key: Option<&str>) -> Demo {
    let demo = env!("CARGO_BIN_EXE_cookie-session-demo");
    let mut command = Command::new(demo);
    command
        .env("PORT", "0")
        .env("SESSION_STORE", store)
        .env("FRAMEWORK", framework);
    match key {
        Some(key) => command.env("COOKIE_SESSION_KEY", key),
        None => command.env_remove("COOKIE_SESSION_KEY"),
    };
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .expect("the demo prints its URL")
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    Demo { child, url }
}

/// One response: status, the `name=value` of its Set-Cookie (if any), the full Set-Cookie,
/// Vary and Cache-Control.
struct Reply {
    status: u16,
    set_cookie: Option<String>,
    vary: Option<String>,
    cache_control: Option<String>,
    body: String,
}

fn send(
    agent: &Agent,
    method: &str,
    url: &str,
    cookie: Option<&str>,
    form: &[(&str, &str)],
) -> Reply {
    let response = match method {
        "GET" => {
            let mut request = agent.get(url);
            if let Some(c) = cookie {
                request = request.header("Cookie", c);
            }
            request.call()
        }
        _ => {
            let mut request = agent.post(url);
            if let Some(c) = cookie {
                request = request.header("Cookie", c);
            }
            request.send_form(form.iter().copied())
        }
    };
    let mut response = response.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (set_cookie, vary, cache_control) = (
        header("set-cookie"),
        header("vary"),
        header("cache-control"),
    );
    Reply {
        status: response.status().as_u16(),
        set_cookie,
        vary,
        cache_control,
        body: response.body_mut().read_to_string().unwrap(),
    }
}

fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

#[test]
fn every_route_sends_exactly_the_headers_it_should() {
    for framework in frameworks() {
        every_route_under(framework);
    }
}

fn every_route_under(framework: &str) {
    let demo = start_demo_with(framework, "cookie");
    let agent: Agent = Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let url = |path: &str| format!("{}{}", demo.url, path.trim_start_matches('/'));

    // /health never touches the session: no Set-Cookie, no Vary.
    let r = send(&agent, "GET", &url("/health"), None, &[]);
    assert_eq!(
        (r.status, r.set_cookie.as_deref(), r.vary.as_deref()),
        (200, None, None)
    );

    // / writes (visit counter): a new cookie with the configured attributes.
    let r = send(&agent, "GET", &url("/"), None, &[]);
    let set = r.set_cookie.expect("a first visit stores the counter");
    assert!(set.starts_with("demo-session="));
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attribute), "{set} lacks {attribute}");
    }
    // A browser-session cookie until "remember me" is ticked.
    assert!(
        !set.contains("Max-Age") && !set.contains("Expires"),
        "{set}"
    );
    assert!(
        !set.contains("Secure"),
        "the demo runs with the plain-HTTP opt-out"
    );
    assert_eq!(
        (r.vary.as_deref(), r.cache_control.as_deref()),
        (Some("Cookie"), Some("private"))
    );
    let mut cookie = pair(&set);

    // /me only reads: no Set-Cookie, but Vary.
    let r = send(&agent, "GET", &url("/me"), Some(&cookie), &[]);
    assert_eq!(r.set_cookie, None);
    assert_eq!(r.vary.as_deref(), Some("Cookie"));
    assert_eq!(r.cache_control, None);
    assert!(r.body.contains("\"count\":1"), "{}", r.body);

    // Log in with "remember me": a new cookie with a new session id, now persistent.
    let before = cookie.clone();
    let r = send(
        &agent,
        "POST",
        &url("/login"),
        Some(&cookie),
        &[("user", "ada"), ("remember", "1")],
    );
    let set = r.set_cookie.expect("login stores the user");
    // Max-Age counts down from the authenticated idle deadline (whole seconds): 1200 or,
    // a fraction of a second into that second, 1199. Never more.
    assert!(
        set.contains("Max-Age=1200") || set.contains("Max-Age=1199"),
        "{set}"
    );
    assert!(set.contains("Expires="), "{set}");
    cookie = pair(&set);
    assert_ne!(cookie, before);
    let r = send(&agent, "GET", &url("/me"), Some(&cookie), &[]);
    assert!(r.body.contains("\"user\":\"ada\""), "{}", r.body);
    assert_eq!(r.set_cookie, None);
    // The flash message shows once, and "remember me" is kept by later re-issues.
    let r = send(&agent, "GET", &url("/"), Some(&cookie), &[]);
    assert!(r.body.contains("Welcome, ada."), "{}", r.body);
    let set = r
        .set_cookie
        .expect("the visit counter and the taken flash are changes");
    assert!(set.contains("Max-Age="), "{set}");
    cookie = pair(&set);
    let r = send(&agent, "GET", &url("/"), Some(&cookie), &[]);
    assert!(!r.body.contains("Welcome"), "{}", r.body);
    cookie = pair(&r.set_cookie.unwrap());

    // A note: stored.
    let r = send(
        &agent,
        "POST",
        &url("/note"),
        Some(&cookie),
        &[("text", "remember the milk")],
    );
    cookie = pair(&r.set_cookie.expect("a note is a change"));

    // A note too large for a cookie: 500, no Set-Cookie; the previous session stays valid.
    let huge = "x".repeat(5000);
    let r = send(
        &agent,
        "POST",
        &url("/note"),
        Some(&cookie),
        &[("text", &huge)],
    );
    assert_eq!((r.status, r.set_cookie.as_deref()), (500, None));
    assert!(
        r.body.contains("could not be saved"),
        "a short text body: {}",
        r.body
    );
    let r = send(&agent, "GET", &url("/me"), Some(&cookie), &[]);
    assert!(r.body.contains("remember the milk"), "{}", r.body);

    // A tampered cookie on a read-only route: removed.
    let r = send(&agent, "GET", &url("/me"), Some("demo-session=AAAA"), &[]);
    assert!(r.set_cookie.unwrap().contains("Max-Age=0"));

    // Log out: the cookie is removed, with the same attributes.
    let r = send(&agent, "POST", &url("/logout"), Some(&cookie), &[]);
    let removal = r.set_cookie.expect("logout removes the cookie");
    assert!(removal.starts_with("demo-session=;"));
    assert!(
        removal.contains("Max-Age=0")
            && removal.contains("Path=/")
            && removal.contains("SameSite=Lax")
    );
}

/// Server-side modes: the same routes, a cookie that carries only an id, a note far over a
/// cookie's 4 KB, and what only server-side sessions give: after logout, replaying the old
/// cookie finds no session.
#[test]
fn server_side_modes_store_big_sessions_and_make_logout_final() {
    let dir = std::env::temp_dir().join(format!("cookie-session-demo-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut stores = vec![
        "memory".to_owned(),
        format!("sqlite:{}", dir.join("sessions.db").display()),
        format!("files:{}", dir.join("files").display()),
    ];
    // The network stores, where CI (or the developer) names the servers; the demo must be
    // built with the store's feature (`cargo test --workspace --all-features` is).
    for (var, feature_on) in [
        ("MEMCACHED_URL", true),
        ("DATABASE_URL", cfg!(feature = "postgres")),
        ("REDIS_URL", cfg!(feature = "redis")),
        ("REDIS_CLUSTER_URL", cfg!(feature = "redis")),
    ] {
        match std::env::var(var) {
            Ok(url) if feature_on => stores.push(match var {
                "MEMCACHED_URL" => format!(
                    "memcached:{}",
                    url.split("://").last().unwrap().trim_end_matches('/')
                ),
                // The cluster's nodes (`redis://a,redis://b`) as the demo takes them.
                "REDIS_CLUSTER_URL" => format!("redis-cluster://{}", url.replace("redis://", "")),
                _ => url,
            }),
            _ if std::env::var("CI").as_deref() == Ok("true") => {
                panic!("{var} must be set, and the demo built with its store, under CI=true")
            }
            _ => {
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "!!!!! SKIPPED: the demo on {var}'s server (unset, or the feature is off) !!!!!"
                );
            }
        }
    }
    for (framework, store) in frameworks()
        .into_iter()
        .flat_map(|f| stores.iter().map(move |s| (f, s.as_str())))
    {
        let demo = start_demo_with(framework, store);
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let url = |path: &str| format!("{}{}", demo.url, path.trim_start_matches('/'));

        let r = send(&agent, "GET", &url("/health"), None, &[]);
        assert_eq!(
            (r.set_cookie.as_deref(), r.vary.as_deref()),
            (None, None),
            "{store}"
        );

        let r = send(&agent, "POST", &url("/login"), None, &[("user", "ada")]);
        let cookie = pair(&r.set_cookie.expect("a new session sets its id cookie"));
        assert!(cookie.len() < 200, "{store}: only an id travels: {cookie}");

        // A 10 KB note: too big for any cookie, fine on the server; no new cookie needed.
        let note = "n".repeat(10_000);
        let r = send(
            &agent,
            "POST",
            &url("/note"),
            Some(&cookie),
            &[("text", &note)],
        );
        assert_eq!((r.status, r.set_cookie.as_deref()), (200, None), "{store}");
        let r = send(&agent, "GET", &url("/me"), Some(&cookie), &[]);
        assert!(
            r.body.contains(&note) && r.body.contains("\"user\":\"ada\""),
            "{store}"
        );
        assert_eq!(r.set_cookie, None);

        let r = send(&agent, "POST", &url("/logout"), Some(&cookie), &[]);
        assert!(r.set_cookie.unwrap().contains("Max-Age=0"), "{store}");
        // The stolen or replayed pre-logout cookie finds nothing.
        let r = send(&agent, "GET", &url("/me"), Some(&cookie), &[]);
        assert!(r.body.contains("\"user\":null"), "{store}: {}", r.body);
        assert!(
            r.set_cookie.unwrap().contains("Max-Age=0"),
            "and it is removed"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Two instances of the demo on one SQLite file (one key, as one application): 24
/// concurrent visits of one visitor, spread over both, and every acknowledged one is
/// counted (the visit counter is a change that replays); a visit that got 503 is not.
#[test]
fn concurrent_visits_through_two_instances_are_all_counted() {
    let dir = std::env::temp_dir().join(format!("cookie-session-demo-two-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = format!("sqlite:{}", dir.join("sessions.db").display());
    let key = "0ChbDyo9IwCbdf3RWkgNkTS-AhoKm8qleYSXYGCX9CE";
    // A fleet of both frameworks where the build has both.
    let second = frameworks().last().copied().unwrap();
    let instances = [
        start_instance("axum", &store, Some(key)),
        start_instance(second, &store, Some(key)),
    ];
    let agent: Agent = Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let r = send(&agent, "GET", &instances[0].url, None, &[]);
    let cookie = pair(&r.set_cookie.expect("the first visit makes the session"));

    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let visits: Vec<_> = (0..24)
            .map(|i| {
                let (agent, cookie) = (agent.clone(), cookie.clone());
                let url = instances[i % 2].url.clone();
                scope.spawn(move || send(&agent, "GET", &url, Some(&cookie), &[]).status)
            })
            .collect();
        visits.into_iter().map(|v| v.join().unwrap()).collect()
    });
    let acknowledged = statuses.iter().filter(|s| **s == 200).count();
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "{statuses:?}"
    );
    assert!(acknowledged >= 12, "most visits get through: {statuses:?}");
    for instance in &instances {
        let r = send(
            &agent,
            "GET",
            &format!("{}me", instance.url),
            Some(&cookie),
            &[],
        );
        assert!(
            r.body.contains(&format!("\"count\":{}", 1 + acknowledged)),
            "1 + {acknowledged} visits: {}",
            r.body
        );
    }
    drop(instances);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A fleet of one axum and one actix instance with one key, in cookie mode and on SQLite: a
/// login through either is seen through both, and a logout through either ends it on both.
#[test]
fn one_fleet_of_axum_and_actix_shares_logins_and_logouts() {
    if !frameworks().contains(&"actix") {
        return;
    }
    let dir =
        std::env::temp_dir().join(format!("cookie-session-demo-fleet-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key = "0ChbDyo9IwCbdf3RWkgNkTS-AhoKm8qleYSXYGCX9CE";
    let agent: Agent = Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let sqlite = format!("sqlite:{}", dir.join("sessions.db").display());
    for store in ["cookie", sqlite.as_str()] {
        let fleet = [
            start_instance("axum", store, Some(key)),
            start_instance("actix", store, Some(key)),
        ];
        for (login_on, logout_on) in [(0, 1), (1, 0), (0, 0), (1, 1)] {
            let r = send(
                &agent,
                "POST",
                &format!("{}login", fleet[login_on].url),
                None,
                &[("user", "ada")],
            );
            let cookie = pair(&r.set_cookie.expect("login sets the cookie"));
            for instance in &fleet {
                let r = send(
                    &agent,
                    "GET",
                    &format!("{}me", instance.url),
                    Some(&cookie),
                    &[],
                );
                assert!(
                    r.body.contains("\"user\":\"ada\""),
                    "{store}: logged in on {login_on}: {}",
                    r.body
                );
            }
            let r = send(
                &agent,
                "POST",
                &format!("{}logout", fleet[logout_on].url),
                Some(&cookie),
                &[],
            );
            assert!(r.set_cookie.unwrap().contains("Max-Age=0"), "{store}");
            if store != "cookie" {
                // Server-side, the old cookie finds nothing on either instance.
                for instance in &fleet {
                    let r = send(
                        &agent,
                        "GET",
                        &format!("{}me", instance.url),
                        Some(&cookie),
                        &[],
                    );
                    assert!(r.body.contains("\"user\":null"), "{store}: {}", r.body);
                }
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
