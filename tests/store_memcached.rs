//! `MemcachedStore` against a real memcached (`MEMCACHED_URL`): the conformance suite,
//! rename's restore of an occupied target, and an unreachable server.
#![allow(clippy::unwrap_used, clippy::panic)]

mod services;

use cookie_session::store::{MemcachedStore, SessionStore, StoreError, StoreKey};
use cookie_session::time::{Duration, OffsetDateTime};

cookie_session::store_conformance!(async services::memcached_store(), services::with_memcached);

#[test]
fn an_unreachable_server_is_unavailable() {
    services::runtime().block_on(async {
        let store = MemcachedStore::new("127.0.0.1:9");
        let result = store
            .load(&StoreKey::from_bytes([3; 32]), OffsetDateTime::now_utc())
            .await;
        assert!(
            matches!(result, Err(StoreError::Unavailable(_))),
            "{result:?}"
        );
    });
}

#[test]
fn a_refused_rename_leaves_both_sessions_as_they_were() {
    services::with_memcached(async {
        let store = services::memcached_store().await;
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let (a, b) = (
            StoreKey::from_bytes(rand::random()),
            StoreKey::from_bytes(rand::random()),
        );
        let va = store
            .create(&a, b"{\"a\":1}", now + Duration::minutes(20), now)
            .await
            .unwrap();
        store
            .create(&b, b"{\"b\":1}", now + Duration::minutes(30), now)
            .await
            .unwrap();
        assert!(matches!(
            store.rename(&a, &b, now).await,
            Err(StoreError::Duplicate)
        ));
        let ra = store.load(&a, now).await.unwrap().unwrap();
        assert_eq!((ra.data.as_slice(), ra.version), (&b"{\"a\":1}"[..], va));
        assert_eq!(ra.expires, now + Duration::minutes(20));
        assert_eq!(
            store.load(&b, now).await.unwrap().unwrap().data,
            b"{\"b\":1}"
        );
        // And a save on the old key still works after the refused move.
        store
            .save(&a, va, b"{\"a\":2}", now + Duration::minutes(20), now)
            .await
            .unwrap();
        Ok::<(), String>(())
    })
    .unwrap();
}
