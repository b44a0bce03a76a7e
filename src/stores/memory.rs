//! [`MemoryStore`]: sessions in this process's memory, bounded by entries and bytes.
//!
//! For one instance, tests and development: every instance of an application has its own,
//! and a restart loses every session. An unbounded in-memory store is a known way to let
//! anyone exhaust a server's memory (each request without a cookie can create a session),
//! so this one has limits and says what happens at them: evict the session nearest its
//! expiry, or refuse new sessions ([`WhenFull`]).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::{Future, ready};
use std::sync::{Mutex, PoisonError};

use time::OffsetDateTime;

use super::{Record, SessionStore, StoreError, StoreKey, Version};

/// What [`MemoryStore`] does when a new or growing record would pass its limits (after
/// expired records have been dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WhenFull {
    /// Evict the live records nearest their expiry until it fits (the default): the store
    /// keeps serving, and the visitors who lose their session are those who would have
    /// lost it soonest anyway.
    EvictSoonestExpiring,
    /// Refuse with [`StoreError::Full`]: existing sessions are safe, new ones fail.
    Refuse,
}

/// What one record costs besides its data: the key, the expiry and version, and the
/// entries in both indexes (an estimate, so that a flood of tiny records is bounded too).
const RECORD_OVERHEAD: usize = 128;

/// Sessions in memory. Cheap operations under one short lock; nothing is awaited while it
/// is held.
///
/// ```
/// use cookie_session::store::{MemoryStore, SessionStore, StoreKey, WhenFull, block_on};
/// # use cookie_session::time::{Duration, OffsetDateTime};
///
/// let store = MemoryStore::new()
///     .with_max_entries(10_000)
///     .with_max_bytes(16 << 20)
///     .when_full(WhenFull::Refuse);
/// let now = OffsetDateTime::now_utc();
/// let key = StoreKey::from_bytes([7; 32]);
/// block_on(store.create(&key, b"{}", now + Duration::minutes(20), now))?;
/// assert_eq!(block_on(store.load(&key, now))?.unwrap().data, b"{}");
/// # Ok::<(), cookie_session::store::StoreError>(())
/// ```
#[derive(Debug)]
pub struct MemoryStore {
    state: Mutex<State>,
    max_entries: usize,
    max_bytes: usize,
    max_record: usize,
    when_full: WhenFull,
}

#[derive(Debug, Default)]
struct State {
    records: HashMap<StoreKey, Record>,
    /// Every record by expiry, soonest first: for sweeping and eviction without a scan.
    by_expiry: BTreeSet<(OffsetDateTime, StoreKey)>,
    bytes: usize,
    /// The user index: each linked record's user, and each user's records. An entry goes
    /// with its record (delete, expiry, eviction), so the index never outgrows the store.
    owner: HashMap<StoreKey, String>,
    users: HashMap<String, HashSet<StoreKey>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// A store of at most 100,000 records, 64 MiB and 64 KiB per record, evicting the
    /// records nearest their expiry when full.
    #[must_use]
    pub fn new() -> Self {
        Self {
            state: Mutex::default(),
            max_entries: 100_000,
            max_bytes: 64 << 20,
            max_record: 64 << 10,
            when_full: WhenFull::EvictSoonestExpiring,
        }
    }

    /// The most records it holds. Default 100,000.
    #[must_use]
    pub const fn with_max_entries(mut self, entries: usize) -> Self {
        self.max_entries = entries;
        self
    }

    /// The most bytes it holds, data plus a fixed estimate of 128 bytes per record.
    /// Default 64 MiB.
    #[must_use]
    pub const fn with_max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// The largest record's data; larger is [`StoreError::TooLarge`]. Default 64 KiB.
    #[must_use]
    pub const fn with_max_record_size(mut self, bytes: usize) -> Self {
        self.max_record = bytes;
        self
    }

    /// What to do at the limits. Default [`WhenFull::EvictSoonestExpiring`].
    #[must_use]
    pub const fn when_full(mut self, when_full: WhenFull) -> Self {
        self.when_full = when_full;
        self
    }

    /// The number of records held, live or not yet swept.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    /// Whether it holds no records.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every mutation below leaves the state consistent before anything can panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes room for `extra` more bytes and `new` more records, never touching `keep`.
    fn make_room(
        &self,
        state: &mut State,
        extra: usize,
        new: usize,
        keep: &StoreKey,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let fits = |s: &State| {
            s.records.len() + new <= self.max_entries && s.bytes + extra <= self.max_bytes
        };
        if fits(state) {
            return Ok(());
        }
        state.sweep(now, usize::MAX);
        while !fits(state) {
            if self.when_full == WhenFull::Refuse {
                return Err(StoreError::Full);
            }
            let victim = state
                .by_expiry
                .iter()
                .map(|(_, key)| *key)
                .find(|key| key != keep)
                .ok_or(StoreError::Full)?;
            state.remove(&victim);
        }
        Ok(())
    }
}

impl State {
    fn live(&self, key: &StoreKey, now: OffsetDateTime) -> Option<&Record> {
        self.records.get(key).filter(|r| now < r.expires)
    }

    /// A new record under `key`, replacing whatever was there (its user link too).
    fn insert(&mut self, key: StoreKey, record: Record) {
        self.remove(&key);
        self.put(key, record);
    }

    /// A new state of the record under `key`, keeping its user link.
    fn replace(&mut self, key: StoreKey, record: Record) {
        if let Some(old) = self.records.remove(&key) {
            self.bytes -= cost(&old.data);
            self.by_expiry.remove(&(old.expires, key));
        }
        self.put(key, record);
    }

    fn put(&mut self, key: StoreKey, record: Record) {
        self.bytes += cost(&record.data);
        self.by_expiry.insert((record.expires, key));
        self.records.insert(key, record);
    }

    /// Removes the record and its user link; returns both.
    fn remove(&mut self, key: &StoreKey) -> Option<Record> {
        let record = self.records.remove(key)?;
        self.bytes -= cost(&record.data);
        self.by_expiry.remove(&(record.expires, *key));
        self.unlink(key);
        Some(record)
    }

    fn link(&mut self, key: StoreKey, user: String) {
        self.unlink(&key);
        self.users.entry(user.clone()).or_default().insert(key);
        self.owner.insert(key, user);
    }

    fn unlink(&mut self, key: &StoreKey) -> Option<String> {
        let user = self.owner.remove(key)?;
        if let Some(keys) = self.users.get_mut(&user) {
            keys.remove(key);
            if keys.is_empty() {
                self.users.remove(&user);
            }
        }
        Some(user)
    }

    fn sweep(&mut self, now: OffsetDateTime, max: usize) -> usize {
        let expired: Vec<StoreKey> = self
            .by_expiry
            .iter()
            .take_while(|(expires, _)| *expires <= now)
            .take(max)
            .map(|(_, key)| *key)
            .collect();
        for key in &expired {
            self.remove(key);
        }
        expired.len()
    }
}

fn cost(data: &[u8]) -> usize {
    data.len() + RECORD_OVERHEAD
}

impl SessionStore for MemoryStore {
    fn load(
        &self,
        key: &StoreKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send {
        ready(Ok(self.lock().live(key, now).cloned()))
    }

    fn create(
        &self,
        key: &StoreKey,
        data: &[u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Version, StoreError>> + Send {
        let result = super::check_size(data, self.max_record).and_then(|()| {
            let mut state = self.lock();
            if state.live(key, now).is_some() {
                return Err(StoreError::Duplicate);
            }
            // An expired record under the key is replaced: free it before measuring room.
            state.remove(key);
            self.make_room(&mut state, cost(data), 1, key, now)?;
            state.insert(*key, Record::new(data.to_vec(), expires, Version::FIRST));
            Ok(Version::FIRST)
        });
        ready(result)
    }

    fn save(
        &self,
        key: &StoreKey,
        expected: Version,
        data: &[u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Version, StoreError>> + Send {
        let result = super::check_size(data, self.max_record).and_then(|()| {
            let mut state = self.lock();
            let current = state.live(key, now).ok_or(StoreError::Gone)?;
            if current.version != expected {
                return Err(StoreError::Conflict);
            }
            let grows = cost(data).saturating_sub(cost(&current.data));
            self.make_room(&mut state, grows, 0, key, now)?;
            let version = expected.next();
            state.replace(*key, Record::new(data.to_vec(), expires, version));
            Ok(version)
        });
        ready(result)
    }

    fn touch(
        &self,
        key: &StoreKey,
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let mut state = self.lock();
        let result = match state.live(key, now) {
            None => Err(StoreError::Gone),
            Some(record) if expires <= record.expires => Ok(()),
            Some(record) => {
                let record = Record::new(record.data.clone(), expires, record.version);
                state.replace(*key, record);
                Ok(())
            }
        };
        ready(result)
    }

    fn rename(
        &self,
        from: &StoreKey,
        to: &StoreKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let mut state = self.lock();
        let result = if state.live(from, now).is_none() {
            Err(StoreError::Gone)
        } else if from == to {
            Ok(())
        } else if state.live(to, now).is_some() {
            Err(StoreError::Duplicate)
        } else {
            // `from` is live (checked above), so `remove` finds it.
            let user = state.owner.get(from).cloned();
            match state.remove(from) {
                Some(record) => {
                    state.insert(*to, record);
                    if let Some(user) = user {
                        state.link(*to, user);
                    }
                    Ok(())
                }
                None => Err(StoreError::Gone),
            }
        };
        ready(result)
    }

    fn delete(
        &self,
        key: &StoreKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let mut state = self.lock();
        let live = state.live(key, now).is_some();
        state.remove(key);
        ready(Ok(live))
    }

    fn sweep(
        &self,
        now: OffsetDateTime,
        max: usize,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send {
        ready(Ok(self.lock().sweep(now, max)))
    }

    fn set_user(
        &self,
        key: &StoreKey,
        user: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let result = super::check_user(user).and_then(|()| {
            let mut state = self.lock();
            state.live(key, now).ok_or(StoreError::Gone)?;
            state.link(*key, user.to_owned());
            Ok(())
        });
        ready(result)
    }

    fn sessions_of(
        &self,
        user: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<StoreKey>, StoreError>> + Send {
        let state = self.lock();
        let keys = state.users.get(user).map_or_else(Vec::new, |keys| {
            keys.iter()
                .filter(|k| state.live(k, now).is_some())
                .copied()
                .collect()
        });
        ready(Ok(keys))
    }

    fn delete_sessions_of(
        &self,
        user: &str,
        except: Option<&StoreKey>,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<StoreKey>, StoreError>> + Send {
        let mut state = self.lock();
        let doomed: Vec<StoreKey> = state
            .users
            .get(user)
            .map_or_else(Vec::new, |keys| keys.iter().copied().collect())
            .into_iter()
            .filter(|k| Some(k) != except)
            .collect();
        let mut deleted = Vec::new();
        for key in doomed {
            if state.live(&key, now).is_some() {
                deleted.push(key);
            }
            state.remove(&key);
        }
        ready(Ok(deleted))
    }
}
