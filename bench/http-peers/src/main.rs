//! One server for one wrk run: `http-peer IMPL PAYLOAD PORT`, on a single-threaded runtime
//! (one actix worker). Every implementation has the same three routes:
//! `GET /login` stores the payload (`small` or `medium` of `../shared/bench/payloads.json`)
//! in a new session, `GET /me` reads one key (`user_id`), `POST /note` writes one key (a
//! counter, so every write is a real change). IMPL is `bare` (no session at all),
//! `ours-signed`, `ours-encrypted`, `ours-memory`, `ours-sqlite` (this crate's layer, in a
//! cookie or server-side), `tower-sessions` (its `MemoryStore`), `actix-signed`,
//! `actix-private`, `actix-redis` (actix-session's cookie and Redis stores),
//! `ours-actix-signed`, `ours-actix-encrypted`, `ours-actix-redis` (this crate's actix-web
//! middleware, the last on `RedisStore`), `ours-redis` and `tower-sessions-redis` (our
//! axum layer on `RedisStore`, tower-sessions with tower-sessions-redis-store over fred;
//! every Redis row reads `REDIS_URL`), `ours-redis-cluster` and
//! `tower-sessions-redis-cluster` (the same on the cluster `REDIS_CLUSTER_URL` names),
//! `axum-extra-signed` and
//! `axum-extra-private` (the session as a JSON map in one `SignedCookieJar` /
//! `PrivateCookieJar` cookie). `run.sh` drives it.

use cookie_session_bench_http::{actix, payload, router};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, imp, size, port] = &args[..] else {
        eprintln!("usage: http-peer IMPL small|medium PORT");
        std::process::exit(2);
    };
    let port: u16 = port.parse().expect("a port");
    let data = payload(size);
    if let Some(ours) = imp.strip_prefix("ours-actix-") {
        actix::serve_ours(ours, data, port).expect("actix serves");
        return;
    }
    if let Some(store) = imp.strip_prefix("actix-") {
        actix::serve(store, data, port).expect("actix serves");
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let router = router(imp, data).await;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("binds");
        println!("listening");
        axum::serve(listener, router).await.expect("serves");
    });
}
