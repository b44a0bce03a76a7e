//! [`SessionHandle`]: a request's session shared between a middleware and its handlers,
//! with methods that lock only for the length of the call.
//!
//! There is no guard to hold: a handler cannot keep the session locked across an `.await`
//! (no lock outlives a method call), and a helper that takes the handle can use it while
//! the caller also does. Several operations that must see one consistent session go in one
//! [`with`](SessionHandle::with) closure; the closure is synchronous and the borrow it gets
//! cannot escape it:
//!
//! ```compile_fail
//! # use cookie_session::{Key, KeyRing, Mode, SessionConfig, SessionHandle};
//! # let sessions = SessionConfig::new(Mode::Signed, KeyRing::new(Key::generate()?)).build()?;
//! # let handle = SessionHandle::new(sessions.load([], cookie_session::time::OffsetDateTime::now_utc()));
//! let session = handle.with(|s| s)?; // the `&mut Session` cannot leave the closure
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The handle knows nothing of where the data lives: an adapter prepares the [`Session`]
//! (for server-side sessions, after its one asynchronous store read) and hands it over with
//! [`SessionHandle::new`]; everything after that is synchronous.

use std::cell::RefCell;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use time::OffsetDateTime;

use crate::server::Begun;
use crate::session::error::SessionError;
use crate::session::flash::Flash;
use crate::session::{Decision, LoadOutcome, Session};
use crate::stores::DynStore;
use crate::wire::stamp::Persistence;
use crate::wire::stamp::SessionId;

/// A request's session, cheap to clone and shareable with the handler's helpers.
///
/// Every method locks the session for the length of the call only. All return
/// [`SessionError::Finished`] once the response has been produced, so `?` works for them
/// all (under the `axum` feature, [`SessionError`] is an `IntoResponse`).
///
/// ```
/// use cookie_session::{Key, KeyRing, Mode, SessionConfig, SessionHandle};
/// use cookie_session::time::OffsetDateTime;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let sessions = SessionConfig::new(Mode::Signed, KeyRing::new(Key::generate()?)).build()?;
/// let now = OffsetDateTime::now_utc();
///
/// // A handler, written against the handle, tested without a server.
/// fn count(session: &SessionHandle) -> Result<u64, cookie_session::SessionError> {
///     let visits = session.get::<u64>("visits")?.unwrap_or(0) + 1;
///     session.insert("visits", &visits)?;
///     Ok(visits)
/// }
/// let handle = SessionHandle::new(sessions.load([], now));
/// assert_eq!(count(&handle)?, 1);
/// assert_eq!(count(&handle)?, 2);
/// let decision = handle.finish(now)?;
/// assert!(decision.set_cookie().is_some());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SessionHandle(Arc<Shared>);

/// What the clones of a handle share.
struct Shared {
    slot: Mutex<Option<Session>>,
    /// Server-side: where the data lives, and whether it has been read yet.
    store: Option<Arc<dyn DynStore>>,
    loaded: Mutex<bool>,
    /// The store was down and the session is served empty and read-only.
    degraded: std::sync::atomic::AtomicBool,
}

thread_local! {
    /// The handles whose `with` closure is running on this thread, to refuse re-entry
    /// (which would deadlock on the mutex) with an error instead.
    static IN_USE: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// Marks a handle as in use on this thread until dropped (also on unwinding).
struct InUse(usize);

impl InUse {
    fn enter(id: usize) -> Result<Self, SessionError> {
        IN_USE.with_borrow_mut(|held| {
            if held.contains(&id) {
                Err(SessionError::InUse)
            } else {
                held.push(id);
                Ok(Self(id))
            }
        })
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        IN_USE.with_borrow_mut(|held| held.retain(|&id| id != self.0));
    }
}

impl SessionHandle {
    /// A handle over `session`: what a middleware gives its handlers, and what a unit test
    /// of a handler builds directly.
    #[must_use]
    pub fn new(session: Session) -> Self {
        Self(Arc::new(Shared {
            slot: Mutex::new(Some(session)),
            store: None,
            loaded: Mutex::new(true),
            degraded: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// A handle over a server-side session (from
    /// [`Sessions::load_server_side`](crate::Sessions::load_server_side)) whose data is in
    /// `store`: [`load`](Self::load) reads it (the axum extractor does that), after which the
    /// handle works as any other.
    #[must_use]
    pub fn server_side(session: Session, store: Arc<dyn DynStore>) -> Self {
        Self(Arc::new(Shared {
            slot: Mutex::new(Some(session)),
            store: Some(store),
            loaded: Mutex::new(false),
            degraded: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// Server-side: reads the session's record from the store, once (later calls return at
    /// once); a request without an authentic cookie reads nothing. Cookie sessions are
    /// always loaded.
    ///
    /// # Errors
    /// [`SessionError::Stored`] if the store fails (answer `503`: the visitor's cookie must
    /// stay); [`SessionError::Finished`] after the response.
    pub async fn load(&self) -> Result<(), SessionError> {
        let Some(store) = &self.0.store else {
            return Ok(());
        };
        if *self.0.loaded.lock().unwrap_or_else(PoisonError::into_inner) {
            return Ok(());
        }
        let (key, now) = self.locked(|s| (s.store_key(), s.now))?;
        // The lock is not held across the read.
        let record = match key {
            Some(key) => store
                .load_boxed(&key, now)
                .await
                .map_err(SessionError::Stored)?,
            None => None,
        };
        let mut loaded = self.0.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        if !*loaded {
            let mut slot = self.0.slot.lock().unwrap_or_else(PoisonError::into_inner);
            slot.as_mut()
                .ok_or(SessionError::Finished)?
                .attach(record)?;
            *loaded = true;
        }
        Ok(())
    }

    /// Like [`load`](Self::load), but when the store is down the session is served empty
    /// and read-only instead of failing: reads see no data, and a request that changes
    /// anything fails at [`commit`](Self::commit) (nothing is written, the cookie stays).
    /// Returns whether the store was down.
    ///
    /// # Errors
    /// [`SessionError::Finished`] after the response.
    pub async fn load_or_degrade(&self) -> Result<bool, SessionError> {
        match self.load().await {
            Ok(()) => Ok(false),
            Err(SessionError::Stored(error)) => {
                crate::diagnostics::store_down_degraded(&error);
                self.0
                    .degraded
                    .store(true, std::sync::atomic::Ordering::Release);
                *self.0.loaded.lock().unwrap_or_else(PoisonError::into_inner) = true;
                Ok(true)
            }
            Err(other) => Err(other),
        }
    }

    /// Whether the session can be used: a server-side one only once loaded.
    fn ready(&self) -> bool {
        *self.0.loaded.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the session, locked for the length of the call: for several operations
    /// that must see one consistent session.
    ///
    /// ```
    /// # use cookie_session::{Key, KeyRing, Mode, SessionConfig, SessionHandle};
    /// # let sessions = SessionConfig::new(Mode::Signed, KeyRing::new(Key::generate()?)).build()?;
    /// # let handle = SessionHandle::new(sessions.load([], cookie_session::time::OffsetDateTime::now_utc()));
    /// handle.with(|session| -> Result<(), cookie_session::SessionError> {
    ///     session.regenerate()?;
    ///     session.insert("user_id", &42)?;
    ///     Ok(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`SessionError::Finished`] after the response was produced;
    /// [`SessionError::InUse`] if called (on this handle) from inside its own `with`
    /// closure, which would otherwise deadlock.
    pub fn with<R>(&self, f: impl FnOnce(&mut Session) -> R) -> Result<R, SessionError> {
        if !self.ready() {
            return Err(SessionError::NotLoaded);
        }
        self.locked(f)
    }

    /// `f` on the session under the lock, loaded or not.
    fn locked<R>(&self, f: impl FnOnce(&mut Session) -> R) -> Result<R, SessionError> {
        let _in_use = InUse::enter(Arc::as_ptr(&self.0).addr())?;
        // A panic in an earlier closure poisons the mutex; the session itself is still a
        // consistent value (every mutation is a single step), so carry on.
        let mut slot = self.0.slot.lock().unwrap_or_else(PoisonError::into_inner);
        let session = slot.as_mut().ok_or(SessionError::Finished)?;
        Ok(f(session))
    }

    /// The value under `key` as `T`; see [`Session::get`].
    ///
    /// # Errors
    /// As [`Session::get`], and as [`with`](Self::with).
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        self.with(|s| s.get(key))?
    }

    /// Stores `value` under `key`; see [`Session::insert`].
    ///
    /// # Errors
    /// As [`Session::insert`], and as [`with`](Self::with).
    pub fn insert<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), SessionError> {
        self.with(|s| s.insert(key, value))?
    }

    /// Changes the value under `key` in place as a `T`; see [`Session::update`].
    ///
    /// # Errors
    /// As [`Session::update`], and as [`with`](Self::with).
    pub fn update<T, F>(&self, key: &str, change: F) -> Result<crate::Updated, SessionError>
    where
        T: Serialize + DeserializeOwned + 'static,
        F: Fn(&mut T) + Send + Sync + 'static,
    {
        self.with(|s| s.update(key, change))?
    }

    /// Changes the value under `key` in place as a `T`, from `T::default()` when it is
    /// missing; see [`Session::update_or_default`].
    ///
    /// # Errors
    /// As [`Session::update`], and as [`with`](Self::with).
    pub fn update_or_default<T, F>(&self, key: &str, change: F) -> Result<(), SessionError>
    where
        T: Serialize + DeserializeOwned + Default + 'static,
        F: Fn(&mut T) + Send + Sync + 'static,
    {
        self.with(|s| s.update_or_default(key, change))?
    }

    /// Removes `key`, returning its value; see [`Session::remove`].
    ///
    /// # Errors
    /// As [`with`](Self::with).
    pub fn remove(&self, key: &str) -> Result<Option<Value>, SessionError> {
        self.with(|s| s.remove(key))
    }

    /// Whether `key` is present.
    ///
    /// # Errors
    /// As [`with`](Self::with).
    pub fn contains_key(&self, key: &str) -> Result<bool, SessionError> {
        self.with(|s| s.contains_key(key))
    }

    /// The number of keys.
    ///
    /// # Errors
    /// As [`with`](Self::with).
    pub fn len(&self) -> Result<usize, SessionError> {
        self.with(|s| s.len())
    }

    /// Whether the session has no keys.
    ///
    /// # Errors
    /// As [`with`](Self::with).
    pub fn is_empty(&self) -> Result<bool, SessionError> {
        self.with(|s| s.is_empty())
    }

    /// The keys, in order.
    ///
    /// # Errors
    /// As [`with`](Self::with).
    pub fn keys(&self) -> Result<Vec<String>, SessionError> {
        self.with(|s| s.keys().map(str::to_owned).collect())
    }

    /// Removes every key; see [`Session::clear`].
    ///
    /// # Errors
    /// As [`with`](Self::with).
    pub fn clear(&self) -> Result<(), SessionError> {
        self.with(Session::clear)
    }

    /// Ends the session (logout); see [`Session::delete`].
    ///
    /// # Errors
    /// As [`with`](Self::with).
    pub fn delete(&self) -> Result<(), SessionError> {
        self.with(Session::delete)
    }

    /// Gives the session a new id, keeping its data (login); see [`Session::regenerate`].
    ///
    /// # Errors
    /// As [`Session::regenerate`], and as [`with`](Self::with).
    pub fn regenerate(&self) -> Result<(), SessionError> {
        self.with(Session::regenerate)?
    }

    /// The value that carries this session in links and forms, for clients without
    /// cookies; see [`Session::token`].
    ///
    /// # Errors
    /// As [`Session::token`], and as [`with`](Self::with).
    pub fn token(&self) -> Result<Option<String>, SessionError> {
        self.with(Session::token)?
    }

    /// Explicit save mode: commits the current data; see [`Session::save`].
    ///
    /// # Errors
    /// As [`with`](Self::with).
    pub fn save(&self) -> Result<(), SessionError> {
        self.with(Session::save)
    }

    /// Whether this session's cookie outlives the browser ("remember me"); see
    /// [`Session::set_persistence`].
    ///
    /// # Errors
    /// As [`with`](Self::with).
    pub fn set_persistence(&self, persistence: Persistence) -> Result<(), SessionError> {
        self.with(|s| s.set_persistence(persistence))
    }

    /// Adds a one-shot message for the next page; see [`Session::flash`].
    ///
    /// # Errors
    /// As [`Session::flash`], and as [`with`](Self::with).
    pub fn flash(&self, level: &str, message: &str) -> Result<(), SessionError> {
        self.with(|s| s.flash(level, message))?
    }

    /// Takes the messages flashed by earlier requests; see [`Session::take_flashes`].
    ///
    /// # Errors
    /// As [`with`](Self::with).
    pub fn take_flashes(&self) -> Result<Vec<Flash>, SessionError> {
        self.with(Session::take_flashes)
    }

    /// The session id, if it has one; see [`Session::id`].
    ///
    /// # Errors
    /// As [`with`](Self::with).
    pub fn id(&self) -> Result<Option<SessionId>, SessionError> {
        self.with(|s| s.id())
    }

    /// What loading found; see [`Session::outcome`].
    ///
    /// # Errors
    /// As [`with`](Self::with).
    pub fn outcome(&self) -> Result<LoadOutcome, SessionError> {
        self.with(|s| s.outcome())
    }

    /// Finishes the session ([`Session::finish`]) and retires the handle: every later call,
    /// through any clone, is [`SessionError::Finished`]. Middleware calls this after the
    /// handler; a unit test calls it to see the response headers.
    ///
    /// # Errors
    /// As [`Session::finish`]; [`SessionError::Finished`] if it was already finished;
    /// [`SessionError::InUse`] from inside [`with`](Self::with).
    pub fn finish(&self, now: OffsetDateTime) -> Result<Decision, SessionError> {
        self.take()?.ok_or(SessionError::Finished)?.finish(now)
    }

    /// Finishes the session and retires the handle, as [`finish`](Self::finish) does, for
    /// either kind of session: a server-side one is written to its store
    /// ([`server::commit`](crate::server::commit)); one that was never loaded sends nothing.
    ///
    /// # Errors
    /// As [`finish`](Self::finish) and [`server::commit`](crate::server::commit).
    pub async fn commit(&self, now: OffsetDateTime) -> Result<Decision, SessionError> {
        match self.begin_commit(now)? {
            Begun::Done(decision) => Ok(decision),
            Begun::Store(pending) => {
                let store = self.0.store.as_ref().ok_or(SessionError::NotServerSide)?;
                pending.finish(&**store, now).await
            }
        }
    }

    /// [`commit`](Self::commit) as far as it goes without awaiting the store: adapters
    /// then allocate the store's future only for requests that write.
    pub(crate) fn begin_commit(&self, now: OffsetDateTime) -> Result<Begun, SessionError> {
        let session = self.take()?.ok_or(SessionError::Finished)?;
        match &self.0.store {
            None => session.finish(now).map(Begun::Done),
            // Never loaded: nothing to write, but a token the request brought still needs
            // its headers (as a cookie session's untouched request gets them).
            Some(_) if !self.ready() => {
                let (brought_token, token_issued) = session.token_headers();
                Ok(Begun::Done(
                    Decision::untouched().with_token_headers(brought_token, token_issued),
                ))
            }
            Some(_) if self.0.degraded.load(std::sync::atomic::Ordering::Acquire) => {
                crate::server::commit_degraded(&session).map(Begun::Done)
            }
            Some(_) => crate::server::begin(session, now),
        }
    }

    /// [`Session::attach_user`]: links this session to `user` when the response is
    /// committed.
    ///
    /// # Errors
    /// As [`Session::attach_user`]; [`SessionError::Finished`] after the response.
    pub fn attach_user(&self, user: &str) -> Result<(), SessionError> {
        self.with(|s| s.attach_user(user))?
    }

    /// "Log out everywhere" ([`server::log_out_user`](crate::server::log_out_user)) on
    /// this session's store: ends every session of `user`, except this one when
    /// `keep_this_session`; returns how many ended.
    ///
    /// # Errors
    /// [`SessionError::NotServerSide`] for a cookie session; [`SessionError::Stored`] if
    /// the store fails or keeps no user index.
    pub async fn log_out_user(
        &self,
        user: &str,
        keep_this_session: bool,
    ) -> Result<usize, SessionError> {
        let store = self.0.store.clone().ok_or(SessionError::NotServerSide)?;
        // This session's own record must be known before the others are deleted.
        self.load().await?;
        let (sessions, keep, now) = self.locked(|s| {
            let keep = keep_this_session
                .then(|| crate::server::backing::record(s).map(|r| r.key))
                .flatten();
            (s.sessions.clone(), keep, s.now)
        })?;
        crate::server::log_out_user(&sessions, &*store, user, keep.as_ref(), now).await
    }

    /// Takes the session out, if it is still there.
    pub(crate) fn take(&self) -> Result<Option<Session>, SessionError> {
        let _in_use = InUse::enter(Arc::as_ptr(&self.0).addr())?;
        Ok(self
            .0
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take())
    }
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionHandle").finish_non_exhaustive()
    }
}
