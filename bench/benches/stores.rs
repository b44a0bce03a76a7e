//! Per request, untouched / read one key / write one key, through axum and each layer, on
//! the same PostgreSQL and Redis, small and medium payloads, in one run: our layer next to
//! tower-sessions' PostgreSQL (sqlx) and Redis (fred) stores. Also the store calls per
//! request of each. Run from `bench/`, with the servers named:
//! `DATABASE_URL=postgres://... REDIS_URL=redis://... cargo bench --bench stores`.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cookie_session_bench::{apps, call, filled, payload};
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
    let mut group = c.benchmark_group("stores");
    let mut calls_table = Vec::new();
    for size in ["small", "medium"] {
        let data = payload(size);
        for (name, app, calls) in &apps {
            let cookie = rt.block_on(filled(app, &data));
            for route in ["untouched", "read", "write"] {
                let path = format!("/{route}");
                // Store calls per request, counted over 100 requests.
                calls.store(0, Ordering::Relaxed);
                for _ in 0..100 {
                    rt.block_on(call(app, &path, Some(&cookie), String::new()));
                }
                let per_request = calls.load(Ordering::Relaxed) as f64 / 100.0;
                calls_table.push(format!(
                    "{route}/{name}/{size}: {per_request} store calls per request"
                ));
                group.bench_function(format!("{route}/{name}/{size}"), |b| {
                    b.iter(|| {
                        rt.block_on(call(app, black_box(&path), Some(&cookie), String::new()))
                    });
                });
            }
        }
    }
    group.finish();
    for line in calls_table {
        println!("{line}");
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
