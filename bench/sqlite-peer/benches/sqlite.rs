//! tower-sessions' SQLite store (sqlx) on the routes and payloads of `../benches/stores.rs`,
//! WAL with `synchronous = NORMAL` as ours. Run by `../run.sh` right after that benchmark.
#![allow(missing_docs, clippy::unwrap_used)]

#[path = "../../src/peers.rs"]
mod peers;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use criterion::{Criterion, criterion_group, criterion_main};
use peers::{TheirsCounted, criterion, measure, theirs};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("cookie-session-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let app = rt.block_on(async {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.join("theirs.db"))
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        let store = tower_sessions_sqlx_store::SqliteStore::new(pool);
        store.migrate().await.unwrap();
        theirs(TheirsCounted {
            inner: store,
            calls: calls.clone(),
        })
    });
    measure(c, &rt, &[("tower-sessions-sqlite", app, calls)]);
}

criterion_group! {
    name = benches;
    config = criterion();
    targets = bench
}
criterion_main!(benches);
