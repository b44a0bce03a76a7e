//! Visit events: what happened to server-side sessions, for an application's own
//! bookkeeping (TurboGears' visit plug-ins, modernised): a login record, an audit log,
//! "signed in on 3 devices".
//!
//! An observer is called after each store operation has committed, never before and never
//! for one that failed, with the session's [`crate::store::StoreKey`]: never its
//! id, so events can be logged as they are. Set it with
//! [`SessionConfig::with_observer`](crate::SessionConfig::with_observer) (request-time
//! events and "log out everywhere") and [`Sweeper::with_observer`](crate::store::Sweeper)
//! (expiries).

use std::sync::Arc;

use crate::session::config::SessionConfig;
use crate::stores::StoreKey;

/// Something that happened to a server-side session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// A new session was stored.
    Created {
        /// Where.
        key: StoreKey,
    },
    /// A session moved to a new store key: `regenerate()` (at login), or its cookie
    /// re-issued under a newer key.
    Regenerated {
        /// Where it was.
        old: StoreKey,
        /// Where it is now.
        new: StoreKey,
    },
    /// A session was deleted.
    Deleted {
        /// Where it was.
        key: StoreKey,
        /// Why.
        reason: DeleteReason,
    },
    /// A session was linked to a user ([`Session::attach_user`](crate::Session::attach_user)).
    UserAttached {
        /// The session.
        key: StoreKey,
        /// The application's user key.
        user: String,
    },
    /// The sweeper removed expired sessions (reported per batch).
    Expired {
        /// How many.
        count: usize,
    },
}

/// Why a session was deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeleteReason {
    /// `delete()`: a logout.
    Logout,
    /// The handler removed every key: nothing is left to keep.
    Emptied,
    /// The request outlived the session's absolute lifetime.
    LifetimeEnded,
    /// "Log out everywhere" for its user.
    LogoutEverywhere,
}

/// Receives [`SessionEvent`]s. Called on the request's task after the store answered: keep
/// it quick (hand slow work to a channel), and do not panic (the request would fail).
pub trait SessionObserver: Send + Sync + 'static {
    /// One event.
    fn observe(&self, event: &SessionEvent);
}

impl<F: Fn(&SessionEvent) + Send + Sync + 'static> SessionObserver for F {
    fn observe(&self, event: &SessionEvent) {
        self(event);
    }
}

/// An observer as configuration holds it.
pub(crate) type Observer = Arc<dyn SessionObserver>;

/// Calls `observer`, if there is one.
pub(crate) fn notify(observer: Option<&Observer>, event: impl FnOnce() -> SessionEvent) {
    if let Some(observer) = observer {
        observer.observe(&event());
    }
}

impl SessionConfig {
    /// Server-side sessions: calls `observer` after each committed store operation
    /// (created, regenerated, deleted and why, user attached; see [`crate::events`]).
    /// Off by default.
    ///
    /// ```
    /// # use cookie_session::{Key, KeyRing, Mode, SessionConfig};
    /// use cookie_session::events::SessionEvent;
    /// let config = SessionConfig::new(Mode::Signed, KeyRing::new(Key::generate()?))
    ///     .with_observer(|event: &SessionEvent| eprintln!("session event: {event:?}"));
    /// # Ok::<(), cookie_session::KeyError>(())
    /// ```
    #[must_use]
    pub fn with_observer(mut self, observer: impl SessionObserver) -> Self {
        let observer: Observer = Arc::new(observer);
        self.observer = Some(Arc::new(observer));
        self
    }
}

/// The observer `config` was given, if any.
pub(crate) fn observer(config: &SessionConfig) -> Option<&Observer> {
    config.observer.as_deref()?.downcast_ref()
}
