//! Sessions in memcached (feature `memcached`): see [`MemcachedStore`].
//!
//! The client is this module's own: the text protocol's six commands this store needs
//! (`gets`, `add`, `cas`, `set`, `delete`) over tokio, with a small pool that drops a
//! connection at its first error. The maintained Rust clients did not fit: `memcache`
//! is blocking and checks every pooled connection with an extra `version` round trip
//! before each command (it only notices broken connections that way), and
//! `async-memcached` has no `gets`/`cas`.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

use super::deadline::Deadlines;
use super::{Record, SessionStore, StoreError, StoreKey, Version, check_size, datetime};

/// Sessions in memcached (feature `memcached`), shared by every instance of an
/// application.
///
/// A record is one item under `prefix` + the store key in hex; its value is the version
/// and the expiry (8 bytes each, big-endian) followed by the data. Expiry is decided on the
/// caller's `now`, like every store; memcached also drops the item at the expiry by its own
/// clock, always given as an absolute UNIX time (memcached reads a relative time over 30
/// days as a timestamp), so there is nothing to sweep. Keep the clocks in sync.
///
/// - create is `add` (a live item is left alone; an expired one still cached is replaced
///   with `cas`);
/// - save and touch are `gets` then `cas` on memcached's own CAS value, so of two
///   concurrent writers exactly one wins (a touch that lost to another touch retries);
/// - rename first marks the old item moved with `cas` (from then on it is gone for every
///   other request), then `add`s the new one and deletes the old: a concurrent save of the
///   old id cannot be lost, and an occupied target restores the old item.
///
/// memcached evicts items under memory pressure: a session can end early when the cache
/// is full. Use it where that is acceptable, or size the cache for the sessions.
///
/// ```no_run
/// use cookie_session::store::MemcachedStore;
/// let store = MemcachedStore::new("127.0.0.1:11211").with_prefix("myapp:");
/// ```
#[derive(Clone)]
pub struct MemcachedStore {
    inner: Arc<Inner>,
    prefix: Arc<str>,
    max_record: usize,
    deadlines: Arc<Deadlines>,
}

struct Inner {
    address: String,
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for MemcachedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemcachedStore")
            .field("address", &self.inner.address)
            .field("prefix", &self.prefix)
            .field("max_record", &self.max_record)
            .finish_non_exhaustive()
    }
}

/// The bytes before the data in an item: version, expiry.
const HEADER: usize = 16;
/// How often a write retries after losing a `cas` race that did not change the version.
const RETRIES: usize = 8;
/// At most this many idle connections are kept.
const MAX_IDLE: usize = 16;

fn unavailable(why: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StoreError {
    StoreError::Unavailable(why.into())
}

/// One item as read by `gets`.
struct Item {
    version: u64,
    expires: i64,
    data: Vec<u8>,
    cas: u64,
}

impl Item {
    fn live(&self, now: i64) -> bool {
        self.expires > now
    }
}

fn encode(version: u64, expires: i64, data: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(HEADER + data.len());
    value.extend_from_slice(&version.to_be_bytes());
    value.extend_from_slice(&expires.to_be_bytes());
    value.extend_from_slice(data);
    value
}

/// memcached's expiration for a record expiring at `expires`: always absolute (a value
/// under 30 days would be read as relative); past the protocol's 32-bit range, 0 (never):
/// the expiry in the value still ends the session.
pub(crate) fn exptime(expires: i64) -> u32 {
    u32::try_from(expires.max(2_592_001)).unwrap_or(0)
}

/// An item as memcached holds it (for a client whose format is another's).
pub(crate) struct RawItem {
    /// The client's flags (python-memcached: 16 for `str`, 0 for `bytes`).
    #[cfg_attr(
        not(all(feature = "beaker", feature = "pickle")),
        allow(dead_code, reason = "read by BeakerStore's memcached backend")
    )]
    pub(crate) flags: u32,
    pub(crate) value: Vec<u8>,
    pub(crate) cas: u64,
}

/// What a storage command answered.
#[derive(Debug, PartialEq, Eq)]
#[allow(clippy::enum_variant_names, reason = "memcached's own words")]
pub(crate) enum Reply {
    Stored,
    NotStored,
    Exists,
    NotFound,
}

/// One connection to the server.
pub(crate) struct Connection {
    stream: BufReader<TcpStream>,
    /// Taken from the pool (opened for an earlier operation).
    reused: bool,
    /// The server answered at least one line of this operation.
    answered: bool,
}

impl Connection {
    async fn line(&mut self) -> Result<String, StoreError> {
        let mut line = Vec::new();
        // A reply line is short; a server sending more is not one we understand.
        let read = (&mut self.stream)
            .take(1024)
            .read_until(b'\n', &mut line)
            .await
            .map_err(unavailable)?;
        if read == 0 || !line.ends_with(b"\r\n") {
            return Err(unavailable(
                "memcached closed the connection or sent a bad line",
            ));
        }
        self.answered = true;
        line.truncate(line.len() - 2);
        String::from_utf8(line).map_err(|_| unavailable("memcached sent a line that is not text"))
    }

    /// `gets key`: the item and its CAS value, if any (`limit`: the largest value this
    /// store writes, so a value announced larger is refused before it is read).
    async fn gets(&mut self, key: &str, limit: usize) -> Result<Option<Item>, StoreError> {
        let Some(raw) = self.gets_raw(key, limit).await? else {
            return Ok(None);
        };
        // An item not in this store's format (written by something else) is absent.
        let Some((header, data)) = raw.value.split_first_chunk::<HEADER>() else {
            return Ok(None);
        };
        let (version, expires) = header.split_at(8);
        Ok(Some(Item {
            version: u64::from_be_bytes(version.try_into().unwrap_or_default()),
            expires: i64::from_be_bytes(expires.try_into().unwrap_or_default()),
            data: data.to_vec(),
            cas: raw.cas,
        }))
    }

    /// `gets key` as memcached holds it: flags, value, CAS value.
    pub(crate) async fn gets_raw(
        &mut self,
        key: &str,
        limit: usize,
    ) -> Result<Option<RawItem>, StoreError> {
        self.stream
            .get_mut()
            .write_all(format!("gets {key}\r\n").as_bytes())
            .await
            .map_err(unavailable)?;
        let line = self.line().await?;
        if line == "END" {
            return Ok(None);
        }
        // VALUE <key> <flags> <bytes> <cas>
        let fields: Vec<&str> = line.split(' ').collect();
        let (flags, len, cas) = match fields.as_slice() {
            ["VALUE", k, flags, len, cas] if *k == key => (
                flags
                    .parse::<u32>()
                    .map_err(|_| unavailable(line.clone()))?,
                len.parse::<usize>()
                    .map_err(|_| unavailable(line.clone()))?,
                cas.parse::<u64>().map_err(|_| unavailable(line.clone()))?,
            ),
            _ => {
                return Err(unavailable(format!(
                    "memcached answered gets with {line:?}"
                )));
            }
        };
        if len > limit {
            return Err(unavailable(
                "memcached holds an item larger than this store writes",
            ));
        }
        let mut value = vec![0; len + 2];
        self.stream
            .read_exact(&mut value)
            .await
            .map_err(unavailable)?;
        if !value.ends_with(b"\r\n") || self.line().await? != "END" {
            return Err(unavailable("memcached's gets reply is malformed"));
        }
        value.truncate(len);
        Ok(Some(RawItem { flags, value, cas }))
    }

    /// A storage command (`add`, `set`, or `cas` with `cas`).
    async fn store(
        &mut self,
        command: &str,
        key: &str,
        value: &[u8],
        exptime: u32,
        cas: Option<u64>,
    ) -> Result<Reply, StoreError> {
        self.store_flagged(command, key, 0, value, exptime, cas)
            .await
    }

    /// A storage command with the item's client flags (another client's type tag).
    pub(crate) async fn store_flagged(
        &mut self,
        command: &str,
        key: &str,
        flags: u32,
        value: &[u8],
        exptime: u32,
        cas: Option<u64>,
    ) -> Result<Reply, StoreError> {
        let mut request = match cas {
            Some(cas) => format!(
                "{command} {key} {flags} {exptime} {} {cas}\r\n",
                value.len()
            ),
            None => format!("{command} {key} {flags} {exptime} {}\r\n", value.len()),
        }
        .into_bytes();
        request.extend_from_slice(value);
        request.extend_from_slice(b"\r\n");
        self.stream
            .get_mut()
            .write_all(&request)
            .await
            .map_err(unavailable)?;
        match self.line().await?.as_str() {
            "STORED" => Ok(Reply::Stored),
            "NOT_STORED" => Ok(Reply::NotStored),
            "EXISTS" => Ok(Reply::Exists),
            "NOT_FOUND" => Ok(Reply::NotFound),
            other => Err(unavailable(format!(
                "memcached answered {command} with {other:?}"
            ))),
        }
    }

    /// Deletes `key` only if its CAS value is still `cas` (the meta command `md`, memcached
    /// 1.6): whether it did.
    #[cfg_attr(
        not(all(feature = "beaker", feature = "pickle")),
        allow(dead_code, reason = "BeakerStore's memcached backend deletes this way")
    )]
    pub(crate) async fn delete_if(&mut self, key: &str, cas: u64) -> Result<bool, StoreError> {
        self.stream
            .get_mut()
            .write_all(format!("md {key} C{cas}\r\n").as_bytes())
            .await
            .map_err(unavailable)?;
        match self.line().await?.as_str() {
            "HD" => Ok(true),
            "NF" | "EX" => Ok(false),
            other => Err(unavailable(format!(
                "memcached answered md with {other:?} (meta commands need memcached 1.6)"
            ))),
        }
    }

    /// `delete key`: whether there was an item.
    async fn delete(&mut self, key: &str) -> Result<bool, StoreError> {
        self.stream
            .get_mut()
            .write_all(format!("delete {key}\r\n").as_bytes())
            .await
            .map_err(unavailable)?;
        match self.line().await?.as_str() {
            "DELETED" => Ok(true),
            "NOT_FOUND" => Ok(false),
            other => Err(unavailable(format!(
                "memcached answered delete with {other:?}"
            ))),
        }
    }
}

impl MemcachedStore {
    /// A store on the memcached server at `address` (`host:port`), keys under
    /// `cookie-session:`. Connects on first use; an unreachable server is
    /// [`StoreError::Unavailable`] then, and later calls reconnect.
    #[must_use]
    pub fn new(address: &str) -> Self {
        Self {
            inner: Arc::new(Inner {
                address: address.to_owned(),
                idle: Mutex::new(Vec::new()),
            }),
            prefix: Arc::from("cookie-session:"),
            max_record: 512 * 1024,
            deadlines: Arc::new(Deadlines::new(Duration::from_secs(5))),
        }
    }

    /// Keys under `prefix` (printable ASCII, no spaces; with the 64-digit key at most 250
    /// bytes, memcached's limit).
    #[must_use]
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.prefix = Arc::from(prefix);
        self
    }

    /// The largest record's data; larger is [`StoreError::TooLarge`]. Default 512 KiB
    /// (memcached's default item limit is 1 MiB, key and overhead included).
    #[must_use]
    pub const fn with_max_record_size(mut self, bytes: usize) -> Self {
        self.max_record = bytes;
        self
    }

    /// How long one operation may take before it is [`StoreError::Unavailable`].
    /// Default 5 s. Operations that start close together share one timer, so one may end
    /// up to a tenth of `timeout` sooner.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.deadlines = Arc::new(Deadlines::new(timeout));
        self
    }

    fn key(&self, key: &StoreKey) -> Result<String, StoreError> {
        let key = format!("{}{key}", self.prefix);
        if key.len() > 250 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(unavailable(
                "the key prefix makes keys memcached refuses (over 250 bytes, or spaces)",
            ));
        }
        Ok(key)
    }

    /// Runs `op` on a pooled connection within the timeout; the connection goes back to
    /// the pool only if the operation did not fail on it.
    ///
    /// A pooled connection that fails before the server answered anything of `op` was
    /// broken before `op` began (the server restarted, or closed it): nothing of `op`
    /// reached a server that applied it. Its idle siblings date from the same time and
    /// are retired with it, and `op` runs once more on a fresh connection, so after an
    /// outage one request per pooled connection does not have to fail to find it.
    pub(crate) async fn with<T, F>(&self, op: impl Fn(Connection) -> F) -> Result<T, StoreError>
    where
        F: Future<Output = (Connection, Result<T, StoreError>)>,
    {
        let run = async {
            let idle = self
                .inner
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let connection = match idle {
                Some(connection) => connection,
                None => self.connect().await?,
            };
            let (mut connection, mut result) = op(connection).await;
            if matches!(result, Err(StoreError::Unavailable(_)))
                && connection.reused
                && !connection.answered
            {
                self.inner
                    .idle
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clear();
                (connection, result) = op(self.connect().await?).await;
            }
            if !matches!(result, Err(StoreError::Unavailable(_))) {
                connection.reused = true;
                connection.answered = false;
                let mut idle = self
                    .inner
                    .idle
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if idle.len() < MAX_IDLE {
                    idle.push(connection);
                }
            }
            result
        };
        // A timed-out operation's connection is dropped with its future.
        self.deadlines.bound(run).await.unwrap_or_else(|| {
            Err(unavailable(format!(
                "memcached did not answer within {:?}",
                self.deadlines.timeout()
            )))
        })
    }

    async fn connect(&self) -> Result<Connection, StoreError> {
        let stream = TcpStream::connect(&self.inner.address)
            .await
            .map_err(unavailable)?;
        stream.set_nodelay(true).map_err(unavailable)?;
        Ok(Connection {
            stream: BufReader::new(stream),
            reused: false,
            answered: false,
        })
    }

    fn limit(&self) -> usize {
        self.max_record + HEADER
    }
}

impl SessionStore for MemcachedStore {
    fn load(
        &self,
        key: &StoreKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send {
        let key = self.key(key);
        let (now, limit) = (now.unix_timestamp(), self.limit());
        async move {
            let key = &key?;
            let item = self
                .with(move |mut c| async move {
                    let r = c.gets(key, limit).await;
                    (c, r)
                })
                .await?;
            match item {
                Some(item) if item.live(now) => Ok(Some(Record::new(
                    item.data,
                    datetime(item.expires)?,
                    Version(item.version),
                ))),
                _ => Ok(None),
            }
        }
    }

    fn create(
        &self,
        key: &StoreKey,
        data: &[u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Version, StoreError>> + Send {
        let key = self.key(key);
        let checked = check_size(data, self.max_record);
        let (expires, now, limit) = (expires.unix_timestamp(), now.unix_timestamp(), self.limit());
        async move {
            checked?;
            let key = &key?;
            let value = &encode(Version::FIRST.0, expires, data);
            self.with(move |mut c| async move {
                let result = async {
                    for _ in 0..RETRIES {
                        match c.store("add", key, value, exptime(expires), None).await? {
                            Reply::Stored => return Ok(Version::FIRST),
                            _ => match c.gets(key, limit).await? {
                                Some(item) if item.live(now) => return Err(StoreError::Duplicate),
                                // An expired item memcached still holds: take it over.
                                Some(item) => {
                                    let r = c
                                        .store("cas", key, value, exptime(expires), Some(item.cas))
                                        .await?;
                                    if r == Reply::Stored {
                                        return Ok(Version::FIRST);
                                    }
                                }
                                None => {}
                            },
                        }
                    }
                    Err(StoreError::Duplicate)
                }
                .await;
                (c, result)
            })
            .await
        }
    }

    fn save(
        &self,
        key: &StoreKey,
        expected: Version,
        data: &[u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Version, StoreError>> + Send {
        let key = self.key(key);
        let checked = check_size(data, self.max_record);
        let (expires, now, limit) = (expires.unix_timestamp(), now.unix_timestamp(), self.limit());
        async move {
            checked?;
            let key = &key?;
            let next = expected.next();
            let value = &encode(next.0, expires, data);
            self.with(move |mut c| async move {
                let result = async {
                    for _ in 0..RETRIES {
                        let item = match c.gets(key, limit).await? {
                            Some(item) if item.live(now) => item,
                            _ => return Err(StoreError::Gone),
                        };
                        if item.version != expected.0 {
                            return Err(StoreError::Conflict);
                        }
                        match c
                            .store("cas", key, value, exptime(expires), Some(item.cas))
                            .await?
                        {
                            Reply::Stored => return Ok(next),
                            // Changed since the `gets` (a touch, or a save: look again).
                            Reply::Exists => {}
                            Reply::NotFound | Reply::NotStored => return Err(StoreError::Gone),
                        }
                    }
                    Err(StoreError::Conflict)
                }
                .await;
                (c, result)
            })
            .await
        }
    }

    fn touch(
        &self,
        key: &StoreKey,
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let key = self.key(key);
        let (expires, now, limit) = (expires.unix_timestamp(), now.unix_timestamp(), self.limit());
        async move {
            let key = &key?;
            self.with(move |mut c| async move {
                let result = async {
                    for _ in 0..RETRIES {
                        let item = match c.gets(key, limit).await? {
                            Some(item) if item.live(now) => item,
                            _ => return Err(StoreError::Gone),
                        };
                        if expires <= item.expires {
                            return Ok(());
                        }
                        let value = encode(item.version, expires, &item.data);
                        match c
                            .store("cas", key, &value, exptime(expires), Some(item.cas))
                            .await?
                        {
                            Reply::Stored => return Ok(()),
                            Reply::Exists => {}
                            Reply::NotFound | Reply::NotStored => return Err(StoreError::Gone),
                        }
                    }
                    Err(unavailable(
                        "memcached: the item kept changing during a touch",
                    ))
                }
                .await;
                (c, result)
            })
            .await
        }
    }

    fn rename(
        &self,
        from: &StoreKey,
        to: &StoreKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let (from, to) = (self.key(from), self.key(to));
        let (now, limit) = (now.unix_timestamp(), self.limit());
        async move {
            let (from, to) = (&from?, &to?);
            self.with(move |mut c| async move {
                let result = async {
                    for _ in 0..RETRIES {
                        let item = match c.gets(from, limit).await? {
                            Some(item) if item.live(now) => item,
                            _ => return Err(StoreError::Gone),
                        };
                        if from == to {
                            return Ok(());
                        }
                        if c.gets(to, limit).await?.is_some_and(|t| t.live(now)) {
                            return Err(StoreError::Duplicate);
                        }
                        // Moved: expired as of the epoch, so every other request finds it
                        // gone, and only this one may write it back.
                        let moved = encode(item.version, 0, &[]);
                        match c
                            .store("cas", from, &moved, exptime(item.expires), Some(item.cas))
                            .await?
                        {
                            Reply::Stored => {}
                            Reply::Exists => continue,
                            Reply::NotFound | Reply::NotStored => return Err(StoreError::Gone),
                        }
                        let value = encode(item.version, item.expires, &item.data);
                        let placed = match c
                            .store("add", to, &value, exptime(item.expires), None)
                            .await?
                        {
                            Reply::Stored => true,
                            _ => match c.gets(to, limit).await? {
                                Some(t) if !t.live(now) => {
                                    c.store("cas", to, &value, exptime(item.expires), Some(t.cas))
                                        .await?
                                        == Reply::Stored
                                }
                                _ => false,
                            },
                        };
                        if !placed {
                            c.store("set", from, &value, exptime(item.expires), None)
                                .await?;
                            return Err(StoreError::Duplicate);
                        }
                        c.delete(from).await?;
                        return Ok(());
                    }
                    Err(StoreError::Conflict)
                }
                .await;
                (c, result)
            })
            .await
        }
    }

    fn delete(
        &self,
        key: &StoreKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let key = self.key(key);
        let (now, limit) = (now.unix_timestamp(), self.limit());
        async move {
            let key = &key?;
            self.with(move |mut c| async move {
                let result = async {
                    let live = c.gets(key, limit).await?.is_some_and(|i| i.live(now));
                    c.delete(key).await?;
                    Ok(live)
                }
                .await;
                (c, result)
            })
            .await
        }
    }

    /// memcached drops expired items itself: nothing to sweep.
    fn sweep(
        &self,
        _now: OffsetDateTime,
        _max: usize,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send {
        std::future::ready(Ok(0))
    }
}
