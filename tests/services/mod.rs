//! The servers some tests need (PostgreSQL, Redis), taken from `DATABASE_URL` and
//! `REDIS_URL`. Where a variable is unset the test says loudly that it was skipped and
//! passes, except under `CI=true`, where a skipped server test fails.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::cell::RefCell;
use std::future::Future;
use std::io::Write as _;

/// The server URL in `var`, or `None` after a loud skip line (a panic under `CI=true`).
pub fn url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{var} is not set: under CI=true a server test may not be skipped"
            );
            // Straight to stderr: the test harness does not capture it, so it shows.
            let _ = writeln!(
                std::io::stderr(),
                "!!!!! SKIPPED: {var} is not set; this test needs that server !!!!!"
            );
            None
        }
    }
}

/// A runtime for a test: the stores spawn their connections' tasks on it.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A name no other test (or earlier run) uses: `cs_test_<unix seconds>_<random>`.
pub fn unique_name(prefix: &str) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    format!("{prefix}_{secs}_{:08x}", rand::random::<u32>())
}

thread_local! {
    /// The table or key prefix of the check running on this thread.
    static NAME: RefCell<String> = const { RefCell::new(String::new()) };
}

pub fn current_name() -> String {
    NAME.with(|n| n.borrow().clone())
}

/// Runs `check` against a fresh PostgreSQL table (dropped afterwards), or skips.
pub fn with_postgres<E>(check: impl Future<Output = Result<(), E>>) -> Result<(), E> {
    let Some(url) = url("DATABASE_URL") else {
        return Ok(());
    };
    let table = unique_name("cs_test");
    NAME.with(|n| *n.borrow_mut() = table.clone());
    let rt = runtime();
    let result = rt.block_on(check);
    rt.block_on(drop_table(&url, &table));
    result
}

/// A store on this check's table (see [`with_postgres`]), created.
#[cfg(feature = "postgres")]
pub async fn postgres_store() -> cookie_session::store::PostgresStore {
    use cookie_session::store::{PostgresStore, PostgresTable};
    let url = std::env::var("DATABASE_URL").unwrap();
    let store = PostgresStore::connect(&url, PostgresTable::new(&current_name())).unwrap();
    store.create_table().await.unwrap();
    store
}

/// A direct connection for the test's own SQL.
pub async fn postgres_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

async fn drop_table(url: &str, table: &str) {
    let client = postgres_client(url).await;
    client
        .batch_execute(&format!("DROP TABLE IF EXISTS {table}"))
        .await
        .unwrap();
    // Tables of earlier runs that were interrupted before they dropped theirs.
    let cutoff = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 3600;
    let stale = client
        .query(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'cs\\_test\\_%'",
            &[],
        )
        .await
        .unwrap();
    for row in stale {
        let name: String = row.get(0);
        let secs = name.split('_').nth(2).and_then(|s| s.parse::<u64>().ok());
        if secs.is_some_and(|s| s < cutoff) {
            let _ = client
                .batch_execute(&format!("DROP TABLE IF EXISTS {name}"))
                .await;
        }
    }
}

/// Runs `check` against Redis under a fresh key prefix (cleared afterwards), or skips.
pub fn with_redis<E>(check: impl Future<Output = Result<(), E>>) -> Result<(), E> {
    let Some(url) = url("REDIS_URL") else {
        return Ok(());
    };
    let prefix = format!("{}:", unique_name("cs_test"));
    NAME.with(|n| *n.borrow_mut() = prefix.clone());
    let rt = runtime();
    let result = rt.block_on(check);
    rt.block_on(clear_prefix(&url, &prefix));
    result
}

/// A store under this check's key prefix (see [`with_redis`]).
#[cfg(feature = "redis")]
pub async fn redis_store() -> cookie_session::store::RedisStore {
    let url = std::env::var("REDIS_URL").unwrap();
    cookie_session::store::RedisStore::connect(&url)
        .await
        .unwrap()
        .with_prefix(&current_name())
}

async fn clear_prefix(url: &str, prefix: &str) {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

/// The cluster's node URLs from `REDIS_CLUSTER_URL` (comma-separated), or a loud skip.
pub fn cluster_urls() -> Option<Vec<String>> {
    url("REDIS_CLUSTER_URL").map(|urls| urls.split(',').map(str::to_owned).collect())
}

/// Runs `check` against the Redis Cluster under a fresh key prefix (cleared afterwards),
/// or skips.
pub fn with_redis_cluster<E>(check: impl Future<Output = Result<(), E>>) -> Result<(), E> {
    let Some(urls) = cluster_urls() else {
        return Ok(());
    };
    let prefix = format!("{}:", unique_name("cs_test"));
    NAME.with(|n| *n.borrow_mut() = prefix.clone());
    let rt = runtime();
    let result = rt.block_on(check);
    rt.block_on(clear_cluster_prefix(&urls, &prefix));
    result
}

/// A cluster store under this check's key prefix (see [`with_redis_cluster`]).
#[cfg(feature = "redis")]
pub async fn redis_cluster_store() -> cookie_session::store::RedisStore {
    let urls = cluster_urls().unwrap();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    cookie_session::store::RedisStore::connect_cluster(&urls)
        .await
        .unwrap()
        .with_prefix(&current_name())
}

/// A cluster store that keeps every key in one slot: this check's prefix as a hash tag.
#[cfg(feature = "redis")]
pub async fn redis_cluster_store_in_one_slot() -> cookie_session::store::RedisStore {
    let urls = cluster_urls().unwrap();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    let name = current_name();
    cookie_session::store::RedisStore::connect_cluster(&urls)
        .await
        .unwrap()
        .with_prefix(&format!("{name}{{{name}}}:"))
}

#[cfg(feature = "redis")]
async fn clear_cluster_prefix(urls: &[String], prefix: &str) {
    let client = redis::cluster::ClusterClient::new(urls.iter().map(String::as_str)).unwrap();
    let mut conn = client.get_async_connection().await.unwrap();
    // Each record in its own slot, or all in the prefix's when it holds a tag: KEYS is
    // asked of every master.
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    for key in keys {
        let _: () = redis::cmd("DEL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

#[cfg(not(feature = "redis"))]
async fn clear_cluster_prefix(_: &[String], _: &str) {}

/// Runs `check` against memcached under a fresh key prefix, or skips. (Its items expire by
/// themselves; the test's are removed by the checks or expire.)
pub fn with_memcached<E>(check: impl Future<Output = Result<(), E>>) -> Result<(), E> {
    if url("MEMCACHED_URL").is_none() {
        return Ok(());
    }
    let prefix = format!("{}:", unique_name("cs_test"));
    NAME.with(|n| *n.borrow_mut() = prefix);
    runtime().block_on(check)
}

/// `MEMCACHED_URL` (`memcache://host:port` or `host:port`) as `host:port`.
pub fn memcached_address() -> String {
    let url = std::env::var("MEMCACHED_URL").unwrap();
    let address = url.split("://").last().unwrap().trim_end_matches('/');
    address.to_owned()
}

/// A store under this check's key prefix (see [`with_memcached`]).
#[cfg(feature = "memcached")]
pub async fn memcached_store() -> cookie_session::store::MemcachedStore {
    cookie_session::store::MemcachedStore::new(&memcached_address()).with_prefix(&current_name())
}
