//! `MemoryStore`: the conformance suite, and its limits (entries, bytes, record size) with
//! both policies at the limit.
#![allow(clippy::unwrap_used, clippy::panic)]

use cookie_session::store::conformance::block_on;
use cookie_session::store::{MemoryStore, SessionStore, StoreError, StoreKey, WhenFull};
use time::{Duration, OffsetDateTime};

cookie_session::store_conformance!(MemoryStore::new());

mod boxed {
    //! The same suite through the type-erased form.
    use std::sync::Arc;

    use cookie_session::store::{DynStore, MemoryStore};

    cookie_session::store_conformance!(Arc::new(MemoryStore::new()) as Arc<dyn DynStore>);
}

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap()
}

fn k(n: u8) -> StoreKey {
    StoreKey::from_bytes([n; 32])
}

#[test]
fn at_the_entry_limit_the_soonest_expiring_record_is_evicted() {
    let store = MemoryStore::new().with_max_entries(3);
    let now = t0();
    for (n, minutes) in [(1, 30), (2, 10), (3, 20)] {
        block_on(store.create(&k(n), b"x", now + Duration::minutes(minutes), now)).unwrap();
    }
    block_on(store.create(&k(4), b"x", now + Duration::minutes(60), now)).unwrap();
    assert_eq!(store.len(), 3);
    assert!(
        block_on(store.load(&k(2), now)).unwrap().is_none(),
        "2 expired soonest"
    );
    for n in [1, 3, 4] {
        assert!(
            block_on(store.load(&k(n), now)).unwrap().is_some(),
            "{n} kept"
        );
    }
}

#[test]
fn expired_records_make_room_before_any_live_one_is_evicted() {
    let store = MemoryStore::new()
        .with_max_entries(2)
        .when_full(WhenFull::Refuse);
    let now = t0();
    block_on(store.create(&k(1), b"x", now + Duration::minutes(1), now)).unwrap();
    block_on(store.create(&k(2), b"x", now + Duration::minutes(60), now)).unwrap();
    let later = now + Duration::minutes(5);
    block_on(store.create(&k(3), b"x", later + Duration::minutes(60), later)).unwrap();
    assert!(block_on(store.load(&k(2), later)).unwrap().is_some());
}

#[test]
fn refusing_at_the_limit_keeps_every_existing_session() {
    let store = MemoryStore::new()
        .with_max_bytes(3 * (1000 + 128))
        .when_full(WhenFull::Refuse);
    let now = t0();
    let data = vec![b'x'; 1000];
    for n in 1..=3 {
        block_on(store.create(&k(n), &data, now + Duration::minutes(20), now)).unwrap();
    }
    let refused = block_on(store.create(&k(4), &data, now + Duration::minutes(20), now));
    assert!(matches!(refused, Err(StoreError::Full)), "{refused:?}");
    assert!(
        refused
            .unwrap_err()
            .to_string()
            .contains("raise its limits")
    );
    // Growing a record past the limit is refused too, and leaves it as it was.
    let v = block_on(store.load(&k(1), now)).unwrap().unwrap().version;
    let grown = block_on(store.save(
        &k(1),
        v,
        &vec![b'y'; 1500],
        now + Duration::minutes(20),
        now,
    ));
    assert!(matches!(grown, Err(StoreError::Full)));
    assert_eq!(
        block_on(store.load(&k(1), now)).unwrap().unwrap().data,
        data
    );
    for n in 1..=3 {
        assert!(block_on(store.load(&k(n), now)).unwrap().is_some());
    }
}

#[test]
fn a_flood_of_tiny_records_is_bounded_by_bytes_too() {
    let store = MemoryStore::new().with_max_bytes(100 * 128);
    let now = t0();
    for n in 0..1000u32 {
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(&n.to_be_bytes());
        block_on(store.create(
            &StoreKey::from_bytes(key),
            b"",
            now + Duration::minutes(20),
            now,
        ))
        .unwrap();
    }
    assert_eq!(
        store.len(),
        100,
        "each record costs its overhead, even empty"
    );
}

#[test]
fn oversized_records_are_refused_with_the_limit() {
    let store = MemoryStore::new().with_max_record_size(1024);
    let now = t0();
    let error =
        block_on(store.create(&k(1), &[0; 1025], now + Duration::minutes(1), now)).unwrap_err();
    assert!(matches!(
        error,
        StoreError::TooLarge {
            size: 1025,
            limit: 1024
        }
    ));
    assert!(block_on(store.load(&k(1), now)).unwrap().is_none());
}
