//! Beaker's `ext:redis` backend (`beaker.ext.redisnm`): the session value of id `ID` is the
//! key `beaker_cache:ID:session`, holding `pickle.dumps(value)` of the session's text, with
//! `SETEX timeout + 120`. Beaker's own lock key (`beaker_lock:...`) only serializes Beaker's
//! requests with each other and guards nothing here: this side's writes are scripts that
//! compare the exact bytes read.

use std::time::Duration;

use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{Backend, BeakerStore, Found};
use crate::legacy::beaker::BeakerStored;
use crate::legacy::pickle::{Limits, text_from_pickle, text_to_pickle};
use crate::stores::{BoxFuture, StoreError};

/// `KEYS[1]`: the key. `ARGV`: "1" if a value is expected, the expected bytes, "1" to
/// write (else delete), the new bytes, seconds to keep.
const SWAP: &str = r"
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
elseif current then
  return 0
end
if ARGV[3] == '1' then
  redis.call('SET', KEYS[1], ARGV[4], 'EX', ARGV[5])
else
  redis.call('DEL', KEYS[1])
end
return 1
";

/// `KEYS`: from, to. `ARGV`: from's bytes, "1" if to holds a value, to's bytes, the new
/// bytes for to, seconds to keep.
const RELOCATE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local target = redis.call('GET', KEYS[2])
if ARGV[2] == '1' then
  if target ~= ARGV[3] then return 0 end
elseif target then
  return 0
end
redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[5])
redis.call('DEL', KEYS[1])
return 1
";

struct Redis {
    connection: ConnectionManager,
    swap: Script,
    relocate: Script,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ext:redis")
    }
}

fn unavailable(error: redis::RedisError) -> StoreError {
    StoreError::Unavailable(Box::new(error))
}

/// Beaker's key for the session value of `id`.
fn key(id: &str) -> String {
    format!("beaker_cache:{id}:session")
}

fn seconds(keep: Duration) -> u64 {
    keep.as_secs().max(1)
}

impl BeakerStore {
    /// Sessions in the Redis (or Valkey) a Beaker application with `session.type =
    /// ext:redis` and `session.url = url` uses, in `value`'s format, expiring after
    /// `timeout` (`session.timeout`) without access.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), cookie_session::store::StoreError> {
    /// use std::time::Duration;
    /// use cookie_session::beaker::{BeakerSerializer, BeakerStored};
    /// use cookie_session::store::BeakerStore;
    /// let store = BeakerStore::redis(
    ///     "redis://127.0.0.1:6379/",
    ///     BeakerStored::new(BeakerSerializer::Pickle),
    ///     Duration::from_secs(1200),
    /// )
    /// .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if Redis cannot be reached.
    pub async fn redis(
        url: &str,
        value: BeakerStored,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let limit = Duration::from_secs(5);
        // Each command is bounded (a store that is down answers `Unavailable`, never hangs).
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(limit))
            .set_response_timeout(Some(limit))
            .set_number_of_retries(1);
        let connection =
            tokio::time::timeout(limit, ConnectionManager::new_with_config(client, config))
                .await
                .map_err(|_| StoreError::Unavailable("Redis did not answer within 5 s".into()))?
                .map_err(unavailable)?;
        let backend = Redis {
            connection,
            swap: Script::new(SWAP),
            relocate: Script::new(RELOCATE),
        };
        Ok(Self::with_backend(
            std::sync::Arc::new(backend),
            value,
            timeout,
        ))
    }
}

fn unwrap(raw: Vec<u8>) -> Found {
    // A value that is not a pickled str is not Beaker's: handed on as unreadable.
    let value = text_from_pickle(&raw, &Limits::default())
        .map(String::into_bytes)
        .unwrap_or_default();
    Found { value, raw }
}

fn wrap(value: &[u8]) -> Result<Vec<u8>, StoreError> {
    let text = std::str::from_utf8(value).map_err(|_| StoreError::Corrupt)?;
    text_to_pickle(text).map_err(|e| StoreError::Unavailable(Box::new(e)))
}

impl Backend for Redis {
    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Found>, StoreError>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let raw: Option<Vec<u8>> = redis::cmd("GET")
                .arg(key(id))
                .query_async(&mut connection)
                .await
                .map_err(unavailable)?;
            Ok(raw.map(unwrap))
        })
    }

    fn swap<'a>(
        &'a self,
        id: &'a str,
        expected: Option<&'a [u8]>,
        new: Option<&'a [u8]>,
        keep: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let new = new.map(wrap).transpose()?;
            let mut connection = self.connection.clone();
            let done: i64 = self
                .swap
                .key(key(id))
                .arg(if expected.is_some() { "1" } else { "0" })
                .arg(expected.unwrap_or_default())
                .arg(if new.is_some() { "1" } else { "0" })
                .arg(new.unwrap_or_default())
                .arg(seconds(keep))
                .invoke_async(&mut connection)
                .await
                .map_err(unavailable)?;
            Ok(done == 1)
        })
    }

    fn relocate<'a>(
        &'a self,
        from: &'a str,
        from_raw: &'a [u8],
        to: &'a str,
        to_raw: Option<&'a [u8]>,
        value: &'a [u8],
        keep: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let new = wrap(value)?;
            let mut connection = self.connection.clone();
            let done: i64 = self
                .relocate
                .key(key(from))
                .key(key(to))
                .arg(from_raw)
                .arg(if to_raw.is_some() { "1" } else { "0" })
                .arg(to_raw.unwrap_or_default())
                .arg(new)
                .arg(seconds(keep))
                .invoke_async(&mut connection)
                .await
                .map_err(unavailable)?;
            Ok(done == 1)
        })
    }
}
