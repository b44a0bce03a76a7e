//! Server-side sessions where a Beaker application keeps them (features `beaker` and
//! `pickle`): see [`BeakerStore`].
//!
//! The store works on the value Beaker keeps under the namespace key `session` (its text:
//! base64 of the pickled or JSON dict, maybe encrypted; [`BeakerStored`] reads and writes
//! it). Each backend (`redis.rs`, `files.rs`) only wraps that text as Beaker's backend does
//! and gives two atomic steps on it: replace the value if it is still the one read, and
//! move it to another id if both are still as read. Everything else (expiry, versions,
//! retries) is here, once.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use sha2::Digest as _;
use time::OffsetDateTime;

use super::{BoxFuture, Record, SessionStore, StoreError, StoreKey, Version, check_size};
use crate::legacy::beaker::{BeakerCookie, BeakerStored};

#[cfg(feature = "postgres")]
mod database;
#[cfg(feature = "files")]
mod files;
#[cfg(feature = "memcached")]
mod memcached;
#[cfg(feature = "redis")]
mod redis;

/// How often an operation reads again after the value changed between its read and its
/// write (another instance, or the Beaker application, wrote meanwhile).
const RETRIES: usize = 16;

/// Beaker's backends keep a value this much longer than the session's timeout (its
/// `Session` passes `timeout + 120` s to the namespace manager).
const GRACE: Duration = Duration::from_secs(120);

/// What a backend found under an id.
pub(crate) struct Found {
    /// The session's text, as `BeakerStored` reads it.
    value: Vec<u8>,
    /// The bytes as the backend stores them: what a compare-and-set compares.
    raw: Vec<u8>,
}

/// One of Beaker's backends, on the session value it keeps for an id.
pub(crate) trait Backend: Send + Sync + fmt::Debug + 'static {
    /// The value under `id`, if any (expired or not: Beaker's expiry is inside it).
    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Found>, StoreError>>;

    /// Replaces what is under `id` with `new` (`None`: removes it) if it is still
    /// `expected` (`None`: nothing). `false` when it was not: nothing changed.
    fn swap<'a>(
        &'a self,
        id: &'a str,
        expected: Option<&'a [u8]>,
        new: Option<&'a [u8]>,
        keep: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Moves `value`, read under `from` as `from_raw`, to `to` (where `to_raw` was read),
    /// and removes `from`, in one step; `false` when either changed meanwhile.
    #[allow(clippy::too_many_arguments, reason = "one atomic step on two ids")]
    fn relocate<'a>(
        &'a self,
        from: &'a str,
        from_raw: &'a [u8],
        to: &'a str,
        to_raw: Option<&'a [u8]>,
        value: &'a [u8],
        keep: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;
}

/// Server-side sessions shared with a running Beaker (or TurboGears) application: the
/// records are Beaker's own, under Beaker's keys, files and locks, so a visitor's session
/// is one session on the Python pages and the Rust ones.
///
/// Use it with [`SessionConfig::with_beaker_ids`](crate::SessionConfig::with_beaker_ids)
/// (the cookie is Beaker's id cookie, and records are keyed by the raw id), an idle timeout
/// equal to Beaker's `session.timeout`, and the value format of the Beaker application
/// ([`BeakerStored`]: `session.data_serializer`, `session.encrypt_key`). Backends:
/// [`redis`](Self::redis) (`ext:redis`), [`memcached`](Self::memcached)
/// (`ext:memcached`), [`database`](Self::database) (`ext:database` on PostgreSQL) and
/// [`files`](Self::files) (`file`).
///
/// What holds, compared with this crate's own stores:
/// - **Expiry is Beaker's**: a record lives while `_accessed_time + timeout` is in the
///   future; a write sets `_accessed_time` to the write's expiry less the timeout (so,
///   `now`). Expired records stay until the backend drops them (Redis and memcached
///   `timeout + 120 s` after this side's last write, as Beaker sets for Redis; rows and
///   files never: Beaker owns them), and [`sweep`](SessionStore::sweep) removes nothing.
/// - **No lost update on this side**: versions are a fingerprint of the session's data
///   (Beaker keeps no counter), and every write is a compare-and-set on the exact bytes
///   read (a Redis script; memcached's CAS; an SQL statement that compares the row's
///   data; for files, Beaker's own `flock` on its lock file), so a write
///   from either application between this store's read and write is never overwritten: the
///   commit reloads and re-applies its changes. Beaker itself does not compare: a Beaker
///   request that read before this store wrote will overwrite it when it saves (Beaker
///   saves every session on every request when `save_accessed_time` is on). That is
///   Beaker's behaviour between its own requests too.
/// - A touch rewrites the value with a new `_accessed_time` (Beaker has no separate
///   expiry); the version is unchanged, as the data is.
/// - No user index ([`StoreError::Unsupported`]): Beaker keeps none.
/// - Keys are the raw session ids, as in Beaker: whoever can read the backend can use
///   every live session. Values are as protected as Beaker makes them (encrypted with
///   `encrypt_key`, otherwise readable).
#[derive(Clone)]
pub struct BeakerStore {
    backend: Arc<dyn Backend>,
    value: Arc<BeakerStored>,
    timeout: Duration,
    max_record: usize,
}

impl fmt::Debug for BeakerStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BeakerStore")
            .field("backend", &self.backend)
            .field("value", &self.value)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl BeakerStore {
    fn with_backend(backend: Arc<dyn Backend>, value: BeakerStored, timeout: Duration) -> Self {
        Self {
            backend,
            value: Arc::new(value),
            timeout,
            max_record: 1 << 20,
        }
    }

    /// The largest session data accepted, in bytes of JSON (default 1 MiB, also the
    /// largest Beaker value read).
    #[must_use]
    pub const fn with_max_record_size(mut self, bytes: usize) -> Self {
        self.max_record = bytes;
        self
    }

    /// The id a store key stands for: the session id's 32 hex digits. A key that is not a
    /// raw id (a keyed hash, from a configuration without Beaker ids) is refused.
    fn id(key: &StoreKey) -> Result<String, StoreError> {
        let bytes = key.to_bytes();
        if bytes[16..].iter().any(|b| *b != 0) {
            return Err(StoreError::Misconfigured(
                "BeakerStore keeps sessions under Beaker's raw ids: configure the sessions with SessionConfig::with_beaker_ids".into(),
            ));
        }
        Ok(base16ct::lower::encode_string(&bytes[..16]))
    }

    /// The session in `found`, if it reads; `None` for a value this store cannot read.
    fn read(&self, found: &Found, id: &str, now: OffsetDateTime) -> Option<BeakerCookie> {
        if found.value.len() > self.max_record.saturating_mul(2) {
            return None;
        }
        self.value.decode(&found.value, id, now).ok()
    }

    /// When a session read here expires: Beaker's `_accessed_time + timeout`.
    fn expires(&self, session: &BeakerCookie) -> OffsetDateTime {
        from_unix(session.accessed_time) + self.timeout
    }

    /// Whether `session` is one at `now`: not expired, and not emptied (Beaker's logout
    /// saves the emptied dict, which Beaker then reads as a new session).
    fn live(&self, session: &BeakerCookie, now: OffsetDateTime) -> bool {
        !session.data.is_empty() && now < self.expires(session)
    }

    /// How long the backend keeps a value written with this expiry.
    fn keep(expires: OffsetDateTime, now: OffsetDateTime) -> Duration {
        Duration::try_from(expires - now).unwrap_or(Duration::ZERO) + GRACE
    }

    /// `session` with `data` and an access time that makes it expire at `expires`.
    fn written(
        &self,
        mut session: BeakerCookie,
        data: Option<Map<String, Value>>,
        expires: OffsetDateTime,
    ) -> BeakerCookie {
        if let Some(data) = data {
            session.data = data;
        }
        session.accessed_time = unix_f64(expires - self.timeout);
        session
    }

    /// The live session under `id` and the bytes it was read from; [`StoreError::Gone`]
    /// when there is none (absent, expired, emptied, or not readable here).
    async fn live_record(
        &self,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<(Found, BeakerCookie), StoreError> {
        let found = self.backend.get(id).await?.ok_or(StoreError::Gone)?;
        let session = self
            .read(&found, id, now)
            .filter(|s| self.live(s, now))
            .ok_or(StoreError::Gone)?;
        Ok((found, session))
    }

    fn encode(&self, session: &BeakerCookie) -> Result<Vec<u8>, StoreError> {
        self.value.encode(session).map_err(|e| {
            StoreError::Unavailable(format!("writing a Beaker session value: {e}").into())
        })
    }

    fn map(&self, data: &[u8]) -> Result<Map<String, Value>, StoreError> {
        check_size(data, self.max_record)?;
        serde_json::from_slice(data).map_err(|_| StoreError::Corrupt)
    }
}

/// The version of a session's data: a fingerprint (SHA-256 over the data with every
/// object's keys in order, whatever order the map keeps them in), never 0.
fn fingerprint(data: &Map<String, Value>) -> Version {
    fn feed(hash: &mut sha2::Sha256, value: &Value) {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                hash.update(b"{");
                for key in keys {
                    feed(hash, &Value::String(key.clone()));
                    feed(hash, &map[key]);
                }
                hash.update(b"}");
            }
            Value::Array(items) => {
                hash.update(b"[");
                items.iter().for_each(|item| feed(hash, item));
                hash.update(b"]");
            }
            scalar => {
                hash.update(scalar.to_string().as_bytes());
                hash.update(b",");
            }
        }
    }
    let mut hash = sha2::Sha256::new();
    feed(&mut hash, &Value::Object(data.clone()));
    let digest = hash.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    Version(u64::from_be_bytes(first).max(1))
}

fn from_unix(secs: f64) -> OffsetDateTime {
    #[allow(
        clippy::cast_possible_truncation,
        reason = "nanoseconds of a finite time"
    )]
    let nanos = if secs.is_finite() {
        (secs * 1e9) as i128
    } else {
        0
    };
    OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn unix_f64(t: OffsetDateTime) -> f64 {
    #[allow(clippy::cast_precision_loss, reason = "Beaker keeps float seconds")]
    let secs = t.unix_timestamp_nanos() as f64 / 1e9;
    secs
}

fn contended() -> StoreError {
    StoreError::Unavailable(
        "the Beaker session value kept changing between reading and writing it".into(),
    )
}

impl SessionStore for BeakerStore {
    async fn load(
        &self,
        key: &StoreKey,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        let id = Self::id(key)?;
        let Some(found) = self.backend.get(&id).await? else {
            return Ok(None);
        };
        let Some(session) = self.read(&found, &id, now) else {
            // Not readable here (a pickled class, another key): handed on as it is, so the
            // session layer starts a new session and the Python side keeps its own.
            return Ok(Some(Record::new(
                found.value,
                now + self.timeout,
                Version::FIRST,
            )));
        };
        if !self.live(&session, now) {
            return Ok(None);
        }
        let expires = self.expires(&session);
        let data = serde_json::to_vec(&session.data).map_err(|_| StoreError::Corrupt)?;
        Ok(Some(Record::new(data, expires, fingerprint(&session.data))))
    }

    async fn create(
        &self,
        key: &StoreKey,
        data: &[u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Version, StoreError> {
        let id = Self::id(key)?;
        let map = self.map(data)?;
        let version = fingerprint(&map);
        let mut fresh = BeakerCookie::new(Map::new(), now);
        fresh.id.clone_from(&id);
        let value = self.encode(&self.written(fresh, Some(map), expires))?;
        for _ in 0..RETRIES {
            let found = self.backend.get(&id).await?;
            if let Some(found) = &found
                && self
                    .read(found, &id, now)
                    .is_none_or(|s| self.live(&s, now))
            {
                // Live, or unreadable here (then it is the Python side's, never replaced).
                return Err(StoreError::Duplicate);
            }
            let expected = found.as_ref().map(|f| f.raw.as_slice());
            let keep = Self::keep(expires, now);
            if self.backend.swap(&id, expected, Some(&value), keep).await? {
                return Ok(version);
            }
        }
        Err(contended())
    }

    async fn save(
        &self,
        key: &StoreKey,
        expected: Version,
        data: &[u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Version, StoreError> {
        let id = Self::id(key)?;
        let map = self.map(data)?;
        let version = fingerprint(&map);
        let mut map = Some(map);
        for _ in 0..RETRIES {
            // Unreadable now (the Python side stored what JSON cannot hold): gone for this
            // request, whose changes are dropped rather than written over it.
            let (found, session) = self.live_record(&id, now).await?;
            if fingerprint(&session.data) != expected {
                return Err(StoreError::Conflict);
            }
            let written = self.written(session, map.clone(), expires);
            let value = self.encode(&written)?;
            let keep = Self::keep(expires, now);
            if self
                .backend
                .swap(&id, Some(&found.raw), Some(&value), keep)
                .await?
            {
                return Ok(version);
            }
            // Changed since read: look again (a touch leaves the version as it was).
            map = Some(written.data);
        }
        Err(contended())
    }

    async fn touch(
        &self,
        key: &StoreKey,
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let id = Self::id(key)?;
        for _ in 0..RETRIES {
            let (found, session) = self.live_record(&id, now).await?;
            let current = self.expires(&session);
            if current >= expires {
                return Ok(());
            }
            let value = self.encode(&self.written(session, None, expires))?;
            let keep = Self::keep(expires, now);
            if self
                .backend
                .swap(&id, Some(&found.raw), Some(&value), keep)
                .await?
            {
                return Ok(());
            }
        }
        Err(contended())
    }

    async fn rename(
        &self,
        from: &StoreKey,
        to: &StoreKey,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let (from, to) = (Self::id(from)?, Self::id(to)?);
        for _ in 0..RETRIES {
            let (found, session) = self.live_record(&from, now).await?;
            let expires = self.expires(&session);
            let target = self.backend.get(&to).await?;
            if let Some(target) = &target
                && self
                    .read(target, &to, now)
                    .is_none_or(|s| self.live(&s, now))
            {
                return Err(StoreError::Duplicate);
            }
            // The value does not name its id (the namespace does): it moves as it is.
            let keep = Self::keep(expires, now);
            let to_raw = target.as_ref().map(|t| t.raw.as_slice());
            if self
                .backend
                .relocate(&from, &found.raw, &to, to_raw, &found.value, keep)
                .await?
            {
                return Ok(());
            }
        }
        Err(contended())
    }

    async fn delete(&self, key: &StoreKey, now: OffsetDateTime) -> Result<bool, StoreError> {
        let id = Self::id(key)?;
        for _ in 0..RETRIES {
            let Some(found) = self.backend.get(&id).await? else {
                return Ok(false);
            };
            let live = self
                .read(&found, &id, now)
                .is_some_and(|s| self.live(&s, now));
            if self
                .backend
                .swap(&id, Some(&found.raw), None, Duration::ZERO)
                .await?
            {
                return Ok(live);
            }
        }
        Err(contended())
    }

    async fn sweep(&self, _now: OffsetDateTime, _max: usize) -> Result<usize, StoreError> {
        // The Beaker application owns its sessions' housekeeping (Redis expires them).
        Ok(0)
    }
}
