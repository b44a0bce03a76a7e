//! `RedisStore` on a Redis or Valkey Cluster (`REDIS_CLUSTER_URL`, comma-separated node
//! URLs; `.ci/run` starts three masters and three replicas on loopback): the conformance
//! suite, and every key of a store in one slot.
#![allow(clippy::unwrap_used, clippy::panic)]

mod services;

cookie_session::store_conformance!(
    async services::redis_cluster_store(),
    services::with_redis_cluster
);

/// Records, the user index and renamed records all carry the store's hash tag, so that
/// every script runs in one slot (a cluster refuses a script across slots).
#[cfg(feature = "redis")]
#[test]
fn every_key_of_the_store_is_in_one_slot() {
    use cookie_session::store::{SessionStore, StoreKey};
    use cookie_session::time::{Duration, OffsetDateTime};
    services::with_redis_cluster(async {
        let store = services::redis_cluster_store().await;
        let now = OffsetDateTime::now_utc();
        let (a, b) = (StoreKey::from_bytes([1; 32]), StoreKey::from_bytes([2; 32]));
        store
            .create(&a, b"{}", now + Duration::hours(1), now)
            .await
            .unwrap();
        store.set_user(&a, "ada", now).await.unwrap();
        store.rename(&a, &b, now).await.unwrap();
        assert_eq!(store.sessions_of("ada", now).await.unwrap(), vec![b]);
        let urls = services::cluster_urls().unwrap();
        let client = redis::cluster::ClusterClient::new(urls.iter().map(String::as_str)).unwrap();
        let mut conn = client.get_async_connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{{{}}}*", services::current_name()))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(keys.len(), 2, "the record and the user's set: {keys:?}");
        let mut slots = std::collections::BTreeSet::new();
        for key in &keys {
            let slot: i64 = redis::cmd("CLUSTER")
                .arg("KEYSLOT")
                .arg(key)
                .query_async(&mut conn)
                .await
                .unwrap();
            slots.insert(slot);
        }
        assert_eq!(slots.len(), 1, "{keys:?} in {slots:?}");
        Ok::<(), String>(())
    })
    .unwrap();
}
