//! The whole request path: load a session from a `Cookie` header, read one key (or write
//! one), finish. Compare `request/read-one-key/SIZE` with `decode/floor-signed/SIZE` of the
//! codec bench (the floor's full decode into a map). Run: `cargo bench --bench request`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "common.rs"]
mod common;

use std::hint::black_box;

use common::{SIZES, Session, now, payload, ring};
use cookie_session::{CookieAction, Mode, SessionConfig};
use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let now = now();
    let mut group = c.benchmark_group("request");
    for mode in [Mode::Signed, Mode::Encrypted] {
        let sessions = SessionConfig::new(mode, ring())
            .with_name("sid")
            .with_max_size(8192)
            .build()
            .unwrap();
        for size in SIZES {
            let data: Session = payload(size);
            let mut session = sessions.load([], now);
            for (k, v) in &data {
                session.insert(k, v).unwrap();
            }
            let header = session
                .finish(now)
                .unwrap()
                .set_cookie()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned();
            let header = format!("theme=dark; {header}; _ga=GA1.2.3");

            group.bench_function(format!("read-one-key/{mode}/{size}"), |b| {
                b.iter(|| {
                    let mut session = sessions.load([black_box(header.as_str())], now);
                    let user: Option<u64> = session.get("user_id").unwrap();
                    let decision = session.finish(now).unwrap();
                    assert_eq!(decision.cookie, CookieAction::Keep);
                    user
                })
            });
            group.bench_function(format!("write/{mode}/{size}"), |b| {
                let mut n = 0u64;
                b.iter(|| {
                    n += 1;
                    let mut session = sessions.load([black_box(header.as_str())], now);
                    session.insert("n", &n).unwrap();
                    session.finish(now).unwrap()
                })
            });
            group.bench_function(format!("untouched/{mode}/{size}"), |b| {
                b.iter(|| {
                    sessions
                        .load([black_box(header.as_str())], now)
                        .finish(now)
                        .unwrap()
                })
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
