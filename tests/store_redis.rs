//! `RedisStore` against a real Redis or Valkey (`REDIS_URL`): the conformance suite and
//! native expiry.
#![allow(clippy::unwrap_used, clippy::panic)]

mod services;

cookie_session::store_conformance!(async services::redis_store(), services::with_redis);

use cookie_session::store::{SessionStore as _, StoreKey, Version};
use time::{Duration, OffsetDateTime};

/// The record's native expiry (`EXPIRETIME`, Redis 7 / Valkey), as UNIX seconds.
async fn native_expiry(key: &StoreKey) -> i64 {
    let url = std::env::var("REDIS_URL").unwrap();
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("EXPIRETIME")
        .arg(format!("{}{key}", services::current_name()))
        .query_async(&mut conn)
        .await
        .unwrap()
}

/// The server removes a record at most a minute after its expiry, never before, whichever
/// way each write moves the expiry; writes that extend it within that minute leave the
/// native expiry alone (one `EXPIREAT` a minute for a sliding expiry).
#[test]
fn native_expiry_follows_the_record_within_a_minute() {
    services::with_redis(async {
        let store = services::redis_store().await;
        let key = StoreKey::from_bytes([7; 32]);
        let now = OffsetDateTime::now_utc();
        let mut e = now + Duration::minutes(20);
        let within = |x: i64, e: OffsetDateTime| {
            let e = e.unix_timestamp();
            assert!(x >= e && x <= e + 60, "native {x} for expiry {e}");
        };
        store.create(&key, b"{}", e, now).await.unwrap();
        let first = native_expiry(&key).await;
        within(first, e);
        let mut version = Version::FIRST;
        // Extended by 30 s: still within the minute, untouched.
        e += Duration::seconds(30);
        version = store.save(&key, version, b"{}", e, now).await.unwrap();
        assert_eq!(native_expiry(&key).await, first);
        within(first, e);
        // Extended past it, by a save and by a touch: moved.
        for extend in [90, 3600] {
            e += Duration::seconds(extend);
            version = store.save(&key, version, b"{}", e, now).await.unwrap();
            within(native_expiry(&key).await, e);
        }
        e += Duration::seconds(200);
        store.touch(&key, e, now).await.unwrap();
        within(native_expiry(&key).await, e);
        // Shortened (a save may end a session sooner): moved down with it.
        e = now + Duration::minutes(2);
        store.save(&key, version, b"{}", e, now).await.unwrap();
        within(native_expiry(&key).await, e);
        Ok::<(), ()>(())
    })
    .unwrap();
}

/// A server that lost the store's scripts (restarted without persistence, `SCRIPT FLUSH`,
/// a replica promoted before the scripts reached it) is sent each script again by the
/// call that found it missing: no write fails for it.
#[test]
fn a_server_that_forgot_the_scripts_is_sent_them_again() {
    services::with_redis(async {
        let store = services::redis_store().await;
        let key = StoreKey::from_bytes([9; 32]);
        let now = OffsetDateTime::now_utc();
        let e = now + Duration::minutes(20);
        let flush = || async {
            let url = std::env::var("REDIS_URL").unwrap();
            let client = redis::Client::open(url).unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            let () = redis::cmd("SCRIPT")
                .arg("FLUSH")
                .query_async(&mut conn)
                .await
                .unwrap();
        };
        flush().await;
        assert_eq!(
            store.create(&key, b"{\"a\":1}", e, now).await.unwrap(),
            Version::FIRST
        );
        flush().await;
        let second = store
            .save(&key, Version::FIRST, b"{\"a\":2}", e, now)
            .await
            .unwrap();
        assert!(second > Version::FIRST);
        // The version it returned is the one the store holds: the next save builds on it,
        // and the one it replaced is refused.
        flush().await;
        let third = store
            .save(&key, second, b"{\"a\":3}", e, now)
            .await
            .unwrap();
        assert!(third > second);
        assert!(matches!(
            store.save(&key, second, b"{\"a\":4}", e, now).await,
            Err(cookie_session::store::StoreError::Conflict)
        ));
        let record = store.load(&key, now).await.unwrap().unwrap();
        assert_eq!(record.data, b"{\"a\":3}");
        assert_eq!(record.version, third);
        flush().await;
        store
            .touch(&key, e + Duration::minutes(1), now)
            .await
            .unwrap();
        flush().await;
        assert!(store.delete(&key, now).await.unwrap());
        assert!(store.load(&key, now).await.unwrap().is_none());
        Ok::<(), ()>(())
    })
    .unwrap();
}

/// Connecting to a cluster that is not one fails with a typed error, never a panic: no
/// node given, an address that is not a URL, nothing listening, and a server without
/// cluster mode (`REDIS_URL`).
#[test]
fn connecting_to_what_is_not_a_cluster_is_unavailable() {
    use cookie_session::store::{RedisStore, StoreError};
    let unavailable = |result: Result<RedisStore, StoreError>| match result {
        Err(StoreError::Unavailable(error)) => error.to_string(),
        other => panic!("{other:?}"),
    };
    let rt = services::runtime();
    rt.block_on(async {
        unavailable(RedisStore::connect_cluster(&[]).await);
        unavailable(RedisStore::connect_cluster(&["not a url"]).await);
        // Nothing listens on port 1; a second seed is tried after the first.
        unavailable(
            RedisStore::connect_cluster(&["redis://127.0.0.1:1", "redis://127.0.0.1:2"]).await,
        );
    });
    services::with_redis(async {
        let url = std::env::var("REDIS_URL").unwrap();
        let message = unavailable(RedisStore::connect_cluster(&[&url]).await);
        assert!(message.contains("cluster"), "{message}");
        Ok::<(), ()>(())
    })
    .unwrap();
}
