//! What a cookie says about its session besides the data: a random session id, when the
//! cookie was issued, and when it stops being valid.
//!
//! All three times travel inside the authenticated part of the cookie. The browser's
//! `Max-Age`/`Expires` only decide when the browser forgets the cookie; they are never
//! trusted when it comes back.
//!
//! **Boundary rule:** a deadline is the first second at which the cookie is no longer
//! valid. At `now == deadline - 1` it is accepted; at `now == deadline` it has expired.

use std::fmt;
use std::time::Duration;

use rand::RngExt as _;
use time::OffsetDateTime;

use crate::wire::error::EncodeError;

/// A random 128-bit session id.
///
/// It stays the same when a session is re-issued (renewed, changed, moved to a new key)
/// and changes when the session is regenerated, e.g. at login. Use it for logs, revocation
/// lists and server-side storage. Displayed as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub(crate) [u8; 16]);

impl SessionId {
    /// A new id from a cryptographically secure generator (ChaCha12, seeded and reseeded
    /// from the operating system).
    #[must_use]
    pub fn generate() -> Self {
        Self(rand::rng().random())
    }

    /// The id's 16 bytes, as they appear in a cookie.
    #[must_use]
    pub const fn to_bytes(self) -> [u8; 16] {
        self.0
    }

    /// An id from its 16 bytes, e.g. read back from a store.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }
}

impl std::str::FromStr for SessionId {
    type Err = InvalidSessionId;

    /// Parses the 32 hex digits that `Display` prints (either case), such as a Beaker `_id`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 16];
        if text.len() != 32 || !text.is_ascii() {
            return Err(InvalidSessionId);
        }
        for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| InvalidSessionId)?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| InvalidSessionId)?;
        }
        Ok(Self(bytes))
    }
}

/// Text that is not 32 hex digits was parsed as a [`SessionId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidSessionId;

impl fmt::Display for InvalidSessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a session id is 32 hex digits")
    }
}

impl std::error::Error for InvalidSessionId {}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut hex = [0u8; 32];
        f.write_str(base16ct::lower::encode_str(&self.0, &mut hex).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

/// Whether the browser keeps the cookie after it closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Persistence {
    /// No `Max-Age`/`Expires`: the browser drops the cookie when it closes (TurboGears'
    /// default). The server-side deadlines apply either way.
    BrowserSession,
    /// `Max-Age` and `Expires` derived from the cookie's authenticated idle deadline,
    /// capped at 400 days (TurboGears' `visit.cookie.permanent`).
    Persistent,
}

/// Which deadline a cookie missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Deadline {
    /// The session was not re-issued within the idle timeout (TurboGears' `visit.timeout`).
    Idle,
    /// The session reached its absolute lifetime, however active it was.
    Absolute,
}

impl fmt::Display for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Idle => "idle timeout",
            Self::Absolute => "absolute lifetime",
        })
    }
}

/// A session's id and validity window, as carried in its cookie.
///
/// Times are whole UNIX seconds. The idle deadline never lies after the absolute one.
///
/// ```
/// use std::time::Duration;
/// use cookie_session::Stamp;
/// use time::OffsetDateTime;
///
/// let now = OffsetDateTime::from_unix_timestamp(1_767_225_600)?;
/// let stamp = Stamp::new(now, Duration::from_secs(20 * 60), Duration::from_secs(14 * 86_400))?;
/// assert_eq!(stamp.idle_deadline(), now + Duration::from_secs(20 * 60));
///
/// // Ten minutes later the visitor is active again: same id, same absolute deadline.
/// let later = now + Duration::from_secs(600);
/// let renewed = stamp.renewed(later, Duration::from_secs(20 * 60))?;
/// assert_eq!(renewed.id(), stamp.id());
/// assert_eq!(renewed.absolute_deadline(), stamp.absolute_deadline());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub(crate) id: SessionId,
    pub(crate) issued_at: u64,
    pub(crate) idle_deadline: u64,
    pub(crate) absolute_deadline: u64,
    /// The session's own choice of cookie persistence ("remember me"); `None`: the
    /// configuration decides. Authenticated with the times (format version 2).
    pub(crate) persistence: Option<Persistence>,
}

impl Stamp {
    /// A new session with a fresh id, issued at `now`, valid until `now + lifetime` at the
    /// latest and until `now + idle` unless re-issued before then. An `idle` of at least
    /// `lifetime` means no idle timeout.
    ///
    /// Deadlines saturate at 9999-12-31T23:59:59Z, so a `Duration::MAX` idle timeout or
    /// lifetime means "as late as can be represented", never an error.
    ///
    /// # Errors
    /// [`EncodeError::InvalidTime`] if `now` is before 1970 or after the year 9999.
    pub fn new(
        now: OffsetDateTime,
        idle: Duration,
        lifetime: Duration,
    ) -> Result<Self, EncodeError> {
        let issued_at = unix(now)?;
        let absolute_deadline = later(issued_at, lifetime);
        Ok(Self::with_times(
            SessionId::generate(),
            issued_at,
            idle,
            absolute_deadline,
        ))
    }

    /// The same session re-issued at `now`: same id and absolute deadline, a fresh idle
    /// deadline (capped by the absolute one). Renewal never moves the absolute deadline.
    ///
    /// # Errors
    /// [`EncodeError::InvalidTime`] as for [`new`](Self::new);
    /// [`EncodeError::LifetimeOver`] if `now` is at or past the absolute deadline: such a
    /// session can only be replaced by a new one.
    pub fn renewed(&self, now: OffsetDateTime, idle: Duration) -> Result<Self, EncodeError> {
        let now = unix(now)?;
        if now >= self.absolute_deadline {
            return Err(EncodeError::LifetimeOver);
        }
        Ok(Self {
            persistence: self.persistence,
            ..Self::with_times(self.id, now, idle, self.absolute_deadline)
        })
    }

    /// The same validity window under a new session id, for regenerating the id at login
    /// (against session fixation) without changing the session's lifetime.
    #[must_use]
    pub fn regenerated(&self) -> Self {
        Self {
            id: SessionId::generate(),
            ..*self
        }
    }

    /// Callers guarantee `issued_at <= absolute_deadline <= MAX_UNIX`.
    fn with_times(id: SessionId, issued_at: u64, idle: Duration, absolute_deadline: u64) -> Self {
        let idle_deadline = later(issued_at, idle).min(absolute_deadline);
        Self {
            id,
            issued_at,
            idle_deadline,
            absolute_deadline,
            persistence: None,
        }
    }

    /// The same stamp with this session's own persistence ("remember me"), which overrides
    /// the configuration's for this session's cookies; `None` leaves it to the
    /// configuration. It survives renewals.
    #[must_use]
    pub const fn with_persistence(self, persistence: Option<Persistence>) -> Self {
        Self {
            persistence,
            ..self
        }
    }

    /// The session's own persistence, if it chose one; see
    /// [`with_persistence`](Self::with_persistence).
    #[must_use]
    pub const fn persistence(&self) -> Option<Persistence> {
        self.persistence
    }

    /// The session id.
    #[must_use]
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// When this cookie was issued.
    #[must_use]
    pub fn issued_at(&self) -> OffsetDateTime {
        datetime(self.issued_at)
    }

    /// The first second at which the cookie is invalid unless re-issued before.
    #[must_use]
    pub fn idle_deadline(&self) -> OffsetDateTime {
        datetime(self.idle_deadline)
    }

    /// The first second at which the session is invalid, however active it was.
    #[must_use]
    pub fn absolute_deadline(&self) -> OffsetDateTime {
        datetime(self.absolute_deadline)
    }

    /// Seconds from `now` until the cookie expires (the earlier deadline), 0 if it has: the
    /// browser's `Max-Age` should never exceed this.
    #[must_use]
    pub fn remaining(&self, now: OffsetDateTime) -> Duration {
        let now = u64::try_from(now.unix_timestamp()).unwrap_or(0);
        Duration::from_secs(self.idle_deadline.saturating_sub(now))
    }

    /// A stamp for a session read from a legacy (Beaker) cookie, which carries only its
    /// creation and last-access times: issued at the last access, idle `idle` after it, and
    /// at the latest `lifetime` after creation. The absolute deadline comes from the
    /// creation time alone, so re-writing the cookie (which moves the access time) never
    /// extends it; an access time past it yields a stamp that [`check`](Self::check)s as
    /// expired.
    #[cfg(feature = "beaker")]
    pub(crate) fn legacy(
        id: SessionId,
        created: f64,
        accessed: f64,
        idle: Duration,
        lifetime: Duration,
    ) -> Self {
        // Float seconds to whole seconds; negative, non-finite or huge values are clamped.
        #[allow(
            clippy::cast_possible_truncation,
            reason = "dropping the fraction is the point"
        )]
        let secs = |t: f64| {
            if t.is_finite() && t > 0.0 {
                (t as u64).min(MAX_UNIX)
            } else {
                0
            }
        };
        let absolute_deadline = later(secs(created), lifetime);
        let issued_at = secs(accessed).min(absolute_deadline);
        Self::with_times(id, issued_at, idle, absolute_deadline)
    }

    /// Checks the deadlines at `now` (UNIX seconds) under the boundary rule of this module.
    pub(crate) fn check(&self, now: u64) -> Result<(), Deadline> {
        if now >= self.absolute_deadline {
            Err(Deadline::Absolute)
        } else if now >= self.idle_deadline {
            Err(Deadline::Idle)
        } else {
            Ok(())
        }
    }

    /// Whether the times are ones [`Stamp::new`] could have produced.
    pub(crate) fn is_consistent(&self) -> bool {
        self.issued_at <= self.idle_deadline
            && self.idle_deadline <= self.absolute_deadline
            && self.absolute_deadline <= MAX_UNIX
    }
}

/// 9999-12-31T23:59:59Z, the last second `time` represents by default.
const MAX_UNIX: u64 = 253_402_300_799;

pub(crate) fn unix(t: OffsetDateTime) -> Result<u64, EncodeError> {
    u64::try_from(t.unix_timestamp())
        .ok()
        .filter(|&s| s <= MAX_UNIX)
        .ok_or(EncodeError::InvalidTime)
}

/// `t + d`, saturating at the last representable second.
fn later(t: u64, d: Duration) -> u64 {
    t.saturating_add(d.as_secs()).min(MAX_UNIX)
}

/// Every stored time is checked against `MAX_UNIX` on the way in, so the conversion holds.
fn datetime(secs: u64) -> OffsetDateTime {
    i64::try_from(secs)
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
