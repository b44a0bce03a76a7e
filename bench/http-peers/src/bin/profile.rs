//! Drives one implementation's router in-process, without a network, for `N` requests of
//! one route: for `valgrind --tool=callgrind`, whose instruction counts are stable on a
//! noisy machine. `profile IMPL small|medium me|note N`; the per-request cost of a layer is
//! its count less `bare`'s, divided by N (see `run.sh` in this directory and BENCHMARKS.md).

use axum::body::Body;
use axum::http::Request;
use cookie_session_bench_http::{payload, router};
use tower::ServiceExt as _;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, imp, size, route, n] = &args[..] else {
        eprintln!("usage: profile IMPL small|medium me|note N");
        std::process::exit(2);
    };
    let n: usize = n.parse().expect("a count");
    let data = payload(size);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let router = router(imp, data).await;
        let login = router
            .clone()
            .oneshot(
                Request::get("/login")
                    .body(Body::empty())
                    .expect("a request"),
            )
            .await
            .expect("infallible");
        let cookie: Vec<String> = login
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| {
                v.to_str()
                    .expect("ascii")
                    .split(';')
                    .next()
                    .expect("a pair")
                    .to_owned()
            })
            .collect();
        let cookie = cookie.join("; ");
        let (method, path) = if route == "note" {
            ("POST", "/note")
        } else {
            ("GET", "/me")
        };
        for _ in 0..n {
            let mut request = Request::builder().method(method).uri(path);
            if !cookie.is_empty() {
                request = request.header("cookie", &cookie);
            }
            let response = router
                .clone()
                .oneshot(request.body(Body::empty()).expect("a request"))
                .await
                .expect("infallible");
            assert!(response.status().is_success(), "{}", response.status());
        }
    });
}
