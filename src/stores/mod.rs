//! The store part (public as `cookie_session::store`, which adds the server part's
//! `Sweeper`): the trait, its types and error, the conformance suite and the backends.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use time::OffsetDateTime;

#[cfg(all(
    feature = "beaker",
    feature = "pickle",
    any(
        feature = "redis",
        feature = "files",
        feature = "memcached",
        feature = "postgres"
    )
))]
mod beaker;
#[cfg(any(feature = "postgres", feature = "redis", feature = "memcached"))]
mod deadline;
#[cfg(feature = "files")]
mod files;
#[cfg(feature = "memcached")]
mod memcached;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(any(feature = "sqlite", feature = "files"))]
mod private;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(feature = "turbogears")]
mod visit;
#[cfg(any(feature = "sqlite", feature = "files"))]
mod worker;

#[cfg(feature = "store-testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "store-testing")))]
pub mod conformance;

#[cfg(all(
    feature = "beaker",
    feature = "pickle",
    any(
        feature = "redis",
        feature = "files",
        feature = "memcached",
        feature = "postgres"
    )
))]
#[cfg_attr(
    docsrs,
    doc(cfg(all(
        feature = "beaker",
        feature = "pickle",
        any(
            feature = "redis",
            feature = "files",
            feature = "memcached",
            feature = "postgres"
        )
    )))
)]
pub use beaker::BeakerStore;
#[cfg(feature = "files")]
#[cfg_attr(docsrs, doc(cfg(feature = "files")))]
pub use files::FileStore;
#[cfg(feature = "memcached")]
#[cfg_attr(docsrs, doc(cfg(feature = "memcached")))]
pub use memcached::MemcachedStore;
pub use memory::{MemoryStore, WhenFull};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::{PostgresStore, PostgresTable};
#[cfg(all(feature = "redis", feature = "store-testing"))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "redis", feature = "store-testing"))))]
pub use redis::ClusterStep;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::RedisStore;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::SqliteStore;
#[cfg(feature = "turbogears")]
#[cfg_attr(docsrs, doc(cfg(feature = "turbogears")))]
pub use visit::VisitStore;

/// Where a session's record lives: a keyed hash of the session id, never the id itself, so
/// a leaked store dump or a log of store keys yields no usable cookie.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreKey(pub(crate) [u8; 32]);

impl StoreKey {
    /// A key from its 32 bytes (as read back from a store, or in tests).
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Its 32 bytes.
    #[must_use]
    pub const fn to_bytes(self) -> [u8; 32] {
        self.0
    }

    /// A key from hex digits, the inverse of its `Display` (as text-keyed backends store
    /// it): 64 digits, or fewer (an even number) for a backend that keeps a prefix of the
    /// key, whose remaining bytes are then zero. `None` for anything else.
    ///
    /// ```
    /// use cookie_session::store::StoreKey;
    /// let key = StoreKey::from_bytes([0xab; 32]);
    /// assert_eq!(StoreKey::from_hex(&key.to_string()), Some(key));
    /// assert_eq!(StoreKey::from_hex("abc"), None);
    /// ```
    #[must_use]
    pub fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() > 64 || !hex.len().is_multiple_of(2) {
            return None;
        }
        let mut key = [0u8; 32];
        for (byte, pair) in key.iter_mut().zip(hex.as_bytes().chunks(2)) {
            *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
        }
        Some(Self(key))
    }
}

impl fmt::Display for StoreKey {
    /// 64 lowercase hex digits: the form text-keyed backends store.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut hex = [0u8; 64];
        f.write_str(base16ct::lower::encode_str(&self.0, &mut hex).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreKey({self})")
    }
}

/// A record's version: 1 when created, one more on every successful save. Compare-and-set
/// on it is what keeps two concurrent requests from losing each other's update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version(pub u64);

impl Version {
    /// The version of a freshly created record.
    pub const FIRST: Self = Self(1);

    /// The version after one more save.
    #[must_use]
    pub const fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }
}

/// What a store holds for one session.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Record {
    /// The session data, exactly as written.
    pub data: Vec<u8>,
    /// The first second at which the record is no longer valid.
    pub expires: OffsetDateTime,
    /// The version, for [`SessionStore::save`].
    pub version: Version,
}

impl Record {
    /// A record of these parts.
    #[must_use]
    pub fn new(data: Vec<u8>, expires: OffsetDateTime, version: Version) -> Self {
        Self {
            data,
            expires,
            version,
        }
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The data is session data: only its size is shown.
        f.debug_struct("Record")
            .field("data", &format_args!("<{} bytes>", self.data.len()))
            .field("expires", &self.expires)
            .field("version", &self.version)
            .finish()
    }
}

/// A store operation failed. "No such session" is never an error: [`SessionStore::load`]
/// answers it with `Ok(None)`, so an unreachable backend can never pass for a logged-out
/// visitor.
#[non_exhaustive]
pub enum StoreError {
    /// `create` or `rename` found a live record under the key.
    Duplicate,
    /// `save` was given a version that is no longer current: another request saved first.
    Conflict,
    /// The record was deleted or has expired: nothing was written or recreated.
    Gone,
    /// The data is larger than the store accepts.
    TooLarge {
        /// The size of the data, in bytes.
        size: usize,
        /// The store's limit.
        limit: usize,
    },
    /// The store is full and configured to refuse new sessions rather than evict.
    Full,
    /// A record is not session data (not a JSON object within the nesting limit): written
    /// by something else, or damaged.
    Corrupt,
    /// The store keeps no user index ([`SessionStore::set_user`] and the calls after it).
    Unsupported,
    /// A user key is empty or longer than [`MAX_USER_KEY`] bytes.
    InvalidUser,
    /// The backend could not be reached or failed; the operation may or may not have been
    /// applied only where the backend says so (see each backend).
    Unavailable(Box<dyn std::error::Error + Send + Sync>),
    /// The store is set up in a way it cannot safely work with (a table without a column
    /// the store needs, a directory another user owns or may write): retrying will not help;
    /// the message says what to fix.
    Misconfigured(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Duplicate => f.write_str("a live session record already has this key"),
            Self::Conflict => f.write_str(
                "the session record was saved by another request since it was loaded",
            ),
            Self::Gone => f.write_str("the session record was deleted or has expired"),
            Self::TooLarge { size, limit } => write!(
                f,
                "session data is {size} bytes, over the store's limit of {limit}; store less in the session"
            ),
            Self::Full => f.write_str(
                "the session store is full and refuses new sessions; raise its limits or let it evict",
            ),
            Self::Corrupt => f.write_str(
                "a stored session record is not a JSON object (damaged, or written by something else)",
            ),
            Self::Unsupported => f.write_str(
                "this session store keeps no user index; use MemoryStore, SqliteStore, PostgresStore or RedisStore, or revoke cookie sessions with SessionConfig::with_revocation",
            ),
            Self::InvalidUser => write!(
                f,
                "a user key must be 1 to {MAX_USER_KEY} bytes; use the user's stable id"
            ),
            Self::Unavailable(_) => f.write_str("the session store is unavailable"),
            Self::Misconfigured(what) => write!(f, "the session store is misconfigured: {what}"),
        }
    }
}

/// The message and its causes on one line (what `main` prints for an error it returns).
impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::wire::error::debug_chain(f, "StoreError", self)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Unavailable(e) => Some(&**e),
            _ => None,
        }
    }
}

/// `TooLarge` for data over a store's `limit`.
pub(crate) fn check_size(data: &[u8], limit: usize) -> Result<(), StoreError> {
    if data.len() > limit {
        return Err(StoreError::TooLarge {
            size: data.len(),
            limit,
        });
    }
    Ok(())
}

/// A name a backend puts into its statements unquoted (a table, a column, a key prefix):
/// letters, digits and `_`, not starting with a digit.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) fn is_identifier(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A stored expiry (UNIX seconds) as a time.
#[cfg_attr(
    not(any(
        feature = "sqlite",
        feature = "postgres",
        feature = "redis",
        feature = "files",
        feature = "memcached"
    )),
    allow(dead_code)
)]
pub(crate) fn datetime(secs: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp(secs).map_err(|e| {
        StoreError::Unavailable(format!("a stored expiry is out of range: {e}").into())
    })
}

/// Runs a future to completion on the current thread, parking it while the future waits:
/// for a cron job or a command-line tool that calls a store once (a server uses its own
/// runtime). The store's futures need no particular runtime.
///
/// ```
/// use cookie_session::store::{MemoryStore, Sweeper, block_on};
/// let removed = block_on(Sweeper::new().sweep_once(&MemoryStore::new(), time::OffsetDateTime::now_utc()))?;
/// assert_eq!(removed, 0);
/// # Ok::<(), cookie_session::store::StoreError>(())
/// ```
pub fn block_on<F: Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}

/// A future returned by [`DynStore`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where server-side sessions live.
///
/// Implementations must give exactly these semantics (the conformance suite checks each):
///
/// - A record is *live* while `now < expires`. An expired record behaves as absent for
///   every operation, before and after any sweep.
/// - Every operation is atomic with respect to the others on the same key: of two
///   concurrent `create`s of one key, or two `save`s with the same expected version,
///   exactly one succeeds.
/// - Failures of the backend are [`StoreError::Unavailable`], never "absent".
pub trait SessionStore: Send + Sync + 'static {
    /// The live record under `key`, or `None`.
    fn load(
        &self,
        key: &StoreKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send;

    /// Inserts a new record at [`Version::FIRST`]. A live record under `key` is
    /// [`StoreError::Duplicate`] and stays untouched; an expired one is replaced.
    fn create(
        &self,
        key: &StoreKey,
        data: &[u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Version, StoreError>> + Send;

    /// Replaces the data and expiry of the live record under `key` if its version is
    /// `expected`, and returns the next version. Another version: [`StoreError::Conflict`],
    /// nothing changes. No live record: [`StoreError::Gone`], nothing is created.
    fn save(
        &self,
        key: &StoreKey,
        expected: Version,
        data: &[u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Version, StoreError>> + Send;

    /// Moves the expiry of the live record under `key` to `expires` if that is later; it
    /// never shortens it and never changes the version. No live record:
    /// [`StoreError::Gone`].
    fn touch(
        &self,
        key: &StoreKey,
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Moves the live record under `from` to `to` (data, expiry and version), atomically:
    /// afterwards `from` is absent. No live record under `from`: [`StoreError::Gone`]. A
    /// live record under `to`: [`StoreError::Duplicate`], nothing moves.
    fn rename(
        &self,
        from: &StoreKey,
        to: &StoreKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes the record under `key`; `true` if a live one was there. Idempotent.
    fn delete(
        &self,
        key: &StoreKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Removes at most `max` expired records and returns how many it removed; live records
    /// are never touched. A caller drains by repeating until fewer than `max` come back.
    /// Backends whose engine expires records itself return `Ok(0)`.
    fn sweep(
        &self,
        now: OffsetDateTime,
        max: usize,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Links the live record under `key` to `user` (replacing any earlier link). The link
    /// follows the record through `save`, `touch` and `rename`, and ends with it (delete,
    /// expiry, sweep). No live record: [`StoreError::Gone`]. A store without a user index
    /// (the default): [`StoreError::Unsupported`].
    fn set_user(
        &self,
        key: &StoreKey,
        user: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = (key, user, now);
        std::future::ready(Err(StoreError::Unsupported))
    }

    /// Which store this is, for the commits of one record that take turns within a process
    /// (so that a reload settles a conflict): by default this value's address. A handle on
    /// a store that lives elsewhere (an `Arc`) names that store, so that every handle on one
    /// store (two layers, two frameworks) shares the turns. Implement it only for such a
    /// handle.
    fn identity(&self) -> usize {
        std::ptr::from_ref(self).cast::<()>().addr()
    }

    /// The keys of `user`'s live records, in no particular order.
    fn sessions_of(
        &self,
        user: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<StoreKey>, StoreError>> + Send {
        let _ = (user, now);
        std::future::ready(Err(StoreError::Unsupported))
    }

    /// Deletes every record of `user` but `except`, and returns the keys of the live ones
    /// it deleted: "log out everywhere".
    fn delete_sessions_of(
        &self,
        user: &str,
        except: Option<&StoreKey>,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<StoreKey>, StoreError>> + Send {
        let _ = (user, except, now);
        std::future::ready(Err(StoreError::Unsupported))
    }
}

/// The longest user key a store accepts, in bytes.
pub const MAX_USER_KEY: usize = 256;

/// `InvalidUser` for a user key that is empty or too long.
pub(crate) fn check_user(user: &str) -> Result<(), StoreError> {
    if user.is_empty() || user.len() > MAX_USER_KEY {
        return Err(StoreError::InvalidUser);
    }
    Ok(())
}

/// The object-safe form of [`SessionStore`], implemented for every store: use
/// `Arc<dyn DynStore>` where the store's type must not appear (it is a `SessionStore`
/// itself).
pub trait DynStore: Send + Sync + 'static {
    /// [`SessionStore::load`].
    fn load_boxed<'a>(
        &'a self,
        key: &'a StoreKey,
        now: OffsetDateTime,
    ) -> BoxFuture<'a, Result<Option<Record>, StoreError>>;
    /// [`SessionStore::create`].
    fn create_boxed<'a>(
        &'a self,
        key: &'a StoreKey,
        data: &'a [u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> BoxFuture<'a, Result<Version, StoreError>>;
    /// [`SessionStore::save`].
    fn save_boxed<'a>(
        &'a self,
        key: &'a StoreKey,
        expected: Version,
        data: &'a [u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> BoxFuture<'a, Result<Version, StoreError>>;
    /// [`SessionStore::touch`].
    fn touch_boxed<'a>(
        &'a self,
        key: &'a StoreKey,
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    /// [`SessionStore::rename`].
    fn rename_boxed<'a>(
        &'a self,
        from: &'a StoreKey,
        to: &'a StoreKey,
        now: OffsetDateTime,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    /// [`SessionStore::delete`].
    fn delete_boxed<'a>(
        &'a self,
        key: &'a StoreKey,
        now: OffsetDateTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;
    /// [`SessionStore::sweep`].
    fn sweep_boxed(
        &self,
        now: OffsetDateTime,
        max: usize,
    ) -> BoxFuture<'_, Result<usize, StoreError>>;
    /// [`SessionStore::set_user`].
    fn set_user_boxed<'a>(
        &'a self,
        key: &'a StoreKey,
        user: &'a str,
        now: OffsetDateTime,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    /// [`SessionStore::sessions_of`].
    fn sessions_of_boxed<'a>(
        &'a self,
        user: &'a str,
        now: OffsetDateTime,
    ) -> BoxFuture<'a, Result<Vec<StoreKey>, StoreError>>;
    /// [`SessionStore::identity`].
    fn identity_dyn(&self) -> usize;
    /// [`SessionStore::delete_sessions_of`].
    fn delete_sessions_of_boxed<'a>(
        &'a self,
        user: &'a str,
        except: Option<&'a StoreKey>,
        now: OffsetDateTime,
    ) -> BoxFuture<'a, Result<Vec<StoreKey>, StoreError>>;
}

impl<S: SessionStore> DynStore for S {
    fn identity_dyn(&self) -> usize {
        self.identity()
    }
    fn load_boxed<'a>(
        &'a self,
        key: &'a StoreKey,
        now: OffsetDateTime,
    ) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        Box::pin(self.load(key, now))
    }
    fn create_boxed<'a>(
        &'a self,
        key: &'a StoreKey,
        data: &'a [u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> BoxFuture<'a, Result<Version, StoreError>> {
        Box::pin(self.create(key, data, expires, now))
    }
    fn save_boxed<'a>(
        &'a self,
        key: &'a StoreKey,
        expected: Version,
        data: &'a [u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> BoxFuture<'a, Result<Version, StoreError>> {
        Box::pin(self.save(key, expected, data, expires, now))
    }
    fn touch_boxed<'a>(
        &'a self,
        key: &'a StoreKey,
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.touch(key, expires, now))
    }
    fn rename_boxed<'a>(
        &'a self,
        from: &'a StoreKey,
        to: &'a StoreKey,
        now: OffsetDateTime,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.rename(from, to, now))
    }
    fn delete_boxed<'a>(
        &'a self,
        key: &'a StoreKey,
        now: OffsetDateTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(self.delete(key, now))
    }
    fn sweep_boxed(
        &self,
        now: OffsetDateTime,
        max: usize,
    ) -> BoxFuture<'_, Result<usize, StoreError>> {
        Box::pin(self.sweep(now, max))
    }
    fn set_user_boxed<'a>(
        &'a self,
        key: &'a StoreKey,
        user: &'a str,
        now: OffsetDateTime,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.set_user(key, user, now))
    }
    fn sessions_of_boxed<'a>(
        &'a self,
        user: &'a str,
        now: OffsetDateTime,
    ) -> BoxFuture<'a, Result<Vec<StoreKey>, StoreError>> {
        Box::pin(self.sessions_of(user, now))
    }
    fn delete_sessions_of_boxed<'a>(
        &'a self,
        user: &'a str,
        except: Option<&'a StoreKey>,
        now: OffsetDateTime,
    ) -> BoxFuture<'a, Result<Vec<StoreKey>, StoreError>> {
        Box::pin(self.delete_sessions_of(user, except, now))
    }
}

// The boxed futures borrow the store, the key and the data together, a region the opaque
// types of the trait cannot name; so this owns what it needs: a clone of the `Arc`, the
// key (32 bytes, `Copy`) and, for writes, a copy of the data. The calls go through
// `*store` (the trait object's own methods): `store.load_boxed` would pick the blanket
// `DynStore` impl of this very `Arc`, and recurse.
impl SessionStore for Arc<dyn DynStore> {
    fn identity(&self) -> usize {
        (**self).identity_dyn()
    }
    fn load(
        &self,
        key: &StoreKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send {
        let (store, key) = (Arc::clone(self), *key);
        async move { (*store).load_boxed(&key, now).await }
    }
    fn create(
        &self,
        key: &StoreKey,
        data: &[u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Version, StoreError>> + Send {
        let (store, key, data) = (Arc::clone(self), *key, data.to_vec());
        async move { (*store).create_boxed(&key, &data, expires, now).await }
    }
    fn save(
        &self,
        key: &StoreKey,
        expected: Version,
        data: &[u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Version, StoreError>> + Send {
        let (store, key, data) = (Arc::clone(self), *key, data.to_vec());
        async move {
            (*store)
                .save_boxed(&key, expected, &data, expires, now)
                .await
        }
    }
    fn touch(
        &self,
        key: &StoreKey,
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let (store, key) = (Arc::clone(self), *key);
        async move { (*store).touch_boxed(&key, expires, now).await }
    }
    fn rename(
        &self,
        from: &StoreKey,
        to: &StoreKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let (store, from, to) = (Arc::clone(self), *from, *to);
        async move { (*store).rename_boxed(&from, &to, now).await }
    }
    fn delete(
        &self,
        key: &StoreKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let (store, key) = (Arc::clone(self), *key);
        async move { (*store).delete_boxed(&key, now).await }
    }
    fn sweep(
        &self,
        now: OffsetDateTime,
        max: usize,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send {
        let store = Arc::clone(self);
        async move { (*store).sweep_boxed(now, max).await }
    }
    fn set_user(
        &self,
        key: &StoreKey,
        user: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let (store, key, user) = (Arc::clone(self), *key, user.to_owned());
        async move { (*store).set_user_boxed(&key, &user, now).await }
    }
    fn sessions_of(
        &self,
        user: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<StoreKey>, StoreError>> + Send {
        let (store, user) = (Arc::clone(self), user.to_owned());
        async move { (*store).sessions_of_boxed(&user, now).await }
    }
    fn delete_sessions_of(
        &self,
        user: &str,
        except: Option<&StoreKey>,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<StoreKey>, StoreError>> + Send {
        let (store, user, except) = (Arc::clone(self), user.to_owned(), except.copied());
        async move {
            (*store)
                .delete_sessions_of_boxed(&user, except.as_ref(), now)
                .await
        }
    }
}

/// A shared store is a store: the same one can serve the session layer and the sweeper.
impl<S: SessionStore> SessionStore for Arc<S> {
    fn identity(&self) -> usize {
        (**self).identity()
    }
    fn load(
        &self,
        key: &StoreKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send {
        (**self).load(key, now)
    }
    fn create(
        &self,
        key: &StoreKey,
        data: &[u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Version, StoreError>> + Send {
        (**self).create(key, data, expires, now)
    }
    fn save(
        &self,
        key: &StoreKey,
        expected: Version,
        data: &[u8],
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Version, StoreError>> + Send {
        (**self).save(key, expected, data, expires, now)
    }
    fn touch(
        &self,
        key: &StoreKey,
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).touch(key, expires, now)
    }
    fn rename(
        &self,
        from: &StoreKey,
        to: &StoreKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).rename(from, to, now)
    }
    fn delete(
        &self,
        key: &StoreKey,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).delete(key, now)
    }
    fn sweep(
        &self,
        now: OffsetDateTime,
        max: usize,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send {
        (**self).sweep(now, max)
    }
    fn set_user(
        &self,
        key: &StoreKey,
        user: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).set_user(key, user, now)
    }
    fn sessions_of(
        &self,
        user: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<StoreKey>, StoreError>> + Send {
        (**self).sessions_of(user, now)
    }
    fn delete_sessions_of(
        &self,
        user: &str,
        except: Option<&StoreKey>,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<StoreKey>, StoreError>> + Send {
        (**self).delete_sessions_of(user, except, now)
    }
}
