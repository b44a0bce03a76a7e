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
