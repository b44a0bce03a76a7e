//! Per request, untouched / read one key / write one key, through axum and each layer, on
//! the same PostgreSQL and Redis, small and medium payloads, in one run: our layer next to
//! tower-sessions' PostgreSQL (sqlx) and Redis (fred) stores. SQLite is compared by
//! `run.sh`: ours in the crate's `server` benchmark, tower-sessions' in `sqlite-peer/`,
//! one right after the other. Also the store
//! calls per request of each. Run from `bench/`: `bash run.sh` with `DATABASE_URL` and
//! `REDIS_URL` set.
#![allow(missing_docs, clippy::unwrap_used)]

use cookie_session_bench::{apps, criterion, measure};
use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let (Ok(database_url), Ok(redis_url)) =
        (std::env::var("DATABASE_URL"), std::env::var("REDIS_URL"))
    else {
        eprintln!("set DATABASE_URL and REDIS_URL: these benchmarks need both servers");
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let apps = rt.block_on(apps(&database_url, &redis_url));
    measure(c, &rt, &apps);
}

criterion_group! {
    name = benches;
    config = criterion();
    targets = bench
}
criterion_main!(benches);
