//! The conformance suite catches broken stores: a reference store built here passes every
//! check, and each deliberately broken variant (ignores versions, resurrects deleted
//! records, shortens on touch, loads expired records, lets two creates win) fails the check
//! that guards against it.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::HashMap;
use std::future::{Future, ready};
use std::sync::Mutex;

use cookie_session::store::conformance::{self, block_on};
use cookie_session::store::{Record, SessionStore, StoreError, StoreKey, Version};
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    IgnoresVersions,
    ResurrectsDeleted,
    ShortensOnTouch,
    LoadsExpired,
    LastCreateWins,
}

/// A plain map store with one switchable defect.
struct Faulty {
    map: Mutex<HashMap<StoreKey, Record>>,
    fault: Fault,
}

impl Faulty {
    fn new(fault: Fault) -> Self {
        Self {
            map: Mutex::default(),
            fault,
        }
    }

    fn live(&self, key: &StoreKey, now: OffsetDateTime) -> Option<Record> {
        let record = self.map.lock().unwrap().get(key).cloned()?;
        (self.fault == Fault::LoadsExpired || now < record.expires).then_some(record)
    }
}

impl SessionStore for Faulty {
    fn load(
        &self,
        key: &StoreKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send {
        ready(Ok(self.live(key, now)))
    }

    fn create(
        &self,
        key: &StoreKey,
        data: &[u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Version, StoreError>> + Send {
        if self.fault != Fault::LastCreateWins && self.live(key, now).is_some() {
            return ready(Err(StoreError::Duplicate));
        }
        let record = Record::new(data.to_vec(), expires, Version::FIRST);
        self.map.lock().unwrap().insert(*key, record);
        ready(Ok(Version::FIRST))
    }

    fn save(
        &self,
        key: &StoreKey,
        expected: Version,
        data: &[u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Version, StoreError>> + Send {
        let current = match self.live(key, now) {
            Some(record) => record.version,
            None if self.fault == Fault::ResurrectsDeleted => expected,
            None => return ready(Err(StoreError::Gone)),
        };
        if current != expected && self.fault != Fault::IgnoresVersions {
            return ready(Err(StoreError::Conflict));
        }
        let version = current.next();
        let record = Record::new(data.to_vec(), expires, version);
        self.map.lock().unwrap().insert(*key, record);
        ready(Ok(version))
    }

    fn touch(
        &self,
        key: &StoreKey,
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let Some(mut record) = self.live(key, now) else {
            return ready(Err(StoreError::Gone));
        };
        if self.fault == Fault::ShortensOnTouch || expires > record.expires {
            record.expires = expires;
        }
        self.map.lock().unwrap().insert(*key, record);
        ready(Ok(()))
    }

    fn rename(
        &self,
        from: &StoreKey,
        to: &StoreKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let Some(record) = self.live(from, now) else {
            return ready(Err(StoreError::Gone));
        };
        if self.live(to, now).is_some() {
            return ready(Err(StoreError::Duplicate));
        }
        let mut map = self.map.lock().unwrap();
        map.remove(from);
        map.insert(*to, record);
        ready(Ok(()))
    }

    fn delete(
        &self,
        key: &StoreKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let live = self.live(key, now).is_some();
        self.map.lock().unwrap().remove(key);
        ready(Ok(live))
    }

    fn sweep(
        &self,
        now: OffsetDateTime,
        max: usize,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send {
        let mut map = self.map.lock().unwrap();
        let expired: Vec<StoreKey> = map
            .iter()
            .filter(|(_, r)| r.expires <= now)
            .map(|(k, _)| *k)
            .take(max)
            .collect();
        for key in &expired {
            map.remove(key);
        }
        ready(Ok(expired.len()))
    }
}

/// Every check, by name, against a store with `fault`: the names of those that fail.
fn failing(fault: Fault) -> Vec<&'static str> {
    macro_rules! run {
        ($($check:ident),+) => {{
            let mut failed = Vec::new();
            $(
                if block_on(conformance::$check(Faulty::new(fault))).is_err() {
                    failed.push(stringify!($check));
                }
            )+
            failed
        }};
    }
    let failed = run!(
        create_then_load,
        duplicate_create,
        absent_and_expired_load_as_none,
        save_compares_and_sets,
        gone_is_never_recreated,
        touch_never_shortens,
        rename_moves_and_refuses_an_occupied_key,
        delete_is_idempotent,
        sweep_removes_only_expired_and_drains,
        payloads_round_trip_exactly,
        concurrent_writers_have_one_winner,
        long_deadlines_are_kept_exactly,
        debug_output_hides_data
    );
    assert!(failed.iter().all(|name| conformance::CHECKS.contains(name)));
    failed
}

#[test]
fn the_reference_store_passes_every_check() {
    assert_eq!(failing(Fault::None), Vec::<&str>::new());
}

#[test]
fn a_store_that_ignores_versions_fails() {
    let failed = failing(Fault::IgnoresVersions);
    assert!(failed.contains(&"save_compares_and_sets"), "{failed:?}");
    assert!(
        failed.contains(&"concurrent_writers_have_one_winner"),
        "{failed:?}"
    );
}

#[test]
fn a_store_that_resurrects_deleted_records_fails() {
    let failed = failing(Fault::ResurrectsDeleted);
    assert!(failed.contains(&"gone_is_never_recreated"), "{failed:?}");
}

#[test]
fn a_store_that_shortens_on_touch_fails() {
    assert_eq!(failing(Fault::ShortensOnTouch), ["touch_never_shortens"]);
}

#[test]
fn a_store_that_loads_expired_records_fails() {
    let failed = failing(Fault::LoadsExpired);
    assert!(
        failed.contains(&"absent_and_expired_load_as_none"),
        "{failed:?}"
    );
    assert!(
        failed.contains(&"long_deadlines_are_kept_exactly"),
        "{failed:?}"
    );
}

#[test]
fn a_store_where_the_last_create_wins_fails() {
    let failed = failing(Fault::LastCreateWins);
    assert!(failed.contains(&"duplicate_create"), "{failed:?}");
    assert!(
        failed.contains(&"concurrent_writers_have_one_winner"),
        "{failed:?}"
    );
}
