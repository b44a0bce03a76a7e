//! A plain map store with one switchable defect, for showing that a checker (the
//! conformance suite, the history checker) catches it.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::collections::HashMap;
use std::future::{Future, ready};
use std::sync::Mutex;

use cookie_session::store::{Record, SessionStore, StoreError, StoreKey, Version};
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    IgnoresVersions,
    ResurrectsDeleted,
    ShortensOnTouch,
    LoadsExpired,
    LastCreateWins,
}

/// A plain map store with one switchable defect.
pub struct Faulty {
    map: Mutex<HashMap<StoreKey, Record>>,
    fault: Fault,
}

impl Faulty {
    pub fn new(fault: Fault) -> Self {
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
