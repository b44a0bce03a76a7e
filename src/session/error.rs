//! The errors of the session layer: a configuration that cannot be built, and a session
//! operation that failed.

use std::fmt;

use crate::wire::error::{EncodeError, INVALID_NAME, JsonError, debug_chain};

/// A [`SessionConfig`](crate::SessionConfig) cannot be built: it would produce cookies that
/// browsers reject or that weaken the session. These happen at start-up.
///
/// `Debug` prints the message (what `main` shows for an error it returns with `?`).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The cookie name is empty or has characters outside an RFC 6265 token.
    InvalidName,
    /// A `__Secure-` or `__Host-` cookie must be `Secure`; browsers silently reject it
    /// otherwise.
    PrefixRequiresSecure {
        /// The prefix of the configured name.
        prefix: &'static str,
    },
    /// A `__Host-` cookie must have `Path=/`.
    HostPrefixRequiresRootPath,
    /// A `__Host-` cookie must not have a `Domain`.
    HostPrefixForbidsDomain,
    /// `SameSite=None` requires `Secure`; browsers reject it otherwise.
    SameSiteNoneRequiresSecure,
    /// `Partitioned` (CHIPS) requires `Secure`.
    PartitionedRequiresSecure,
    /// An attribute value is longer than the 1024 bytes browsers accept.
    AttributeTooLong {
        /// `"Path"` or `"Domain"`.
        attribute: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// An attribute value has characters a cookie attribute cannot carry (`;`, controls,
    /// non-ASCII), or a path does not start with `/`.
    InvalidAttribute {
        /// `"Path"` or `"Domain"`.
        attribute: &'static str,
    },
    /// The renewal threshold of [`TouchPolicy::Renew`](crate::TouchPolicy::Renew) must be
    /// 1 to 100 percent of the idle timeout.
    InvalidRenewThreshold(u8),
    /// The idle timeout and the absolute lifetime must be at least one second.
    ZeroDuration,
    /// Compression was asked for in encrypted mode without accepting that it makes the
    /// cookie's length reveal the data's redundancy.
    CompressionRevealsLength,
    /// The maximum number of cookies per session is not between 1 and
    /// [`MAX_CHUNKS`](crate::MAX_CHUNKS).
    InvalidMaxCookies(usize),
    /// The token parameter's name is not a plain form-field name.
    InvalidTokenParameter,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidName => f.write_str(INVALID_NAME),
            Self::PrefixRequiresSecure { prefix } => write!(
                f,
                "a {prefix} cookie must be Secure; use a name without the prefix for plain-HTTP development"
            ),
            Self::HostPrefixRequiresRootPath => {
                write!(
                    f,
                    "a __Host- cookie must have Path=/; use a __Secure- name to scope the path"
                )
            }
            Self::HostPrefixForbidsDomain => {
                write!(
                    f,
                    "a __Host- cookie cannot have a Domain; use a __Secure- name to share it with subdomains"
                )
            }
            Self::SameSiteNoneRequiresSecure => write!(f, "SameSite=None requires Secure"),
            Self::PartitionedRequiresSecure => write!(f, "Partitioned requires Secure"),
            Self::AttributeTooLong { attribute, len } => write!(
                f,
                "the {attribute} attribute is {len} bytes; browsers ignore attribute values over 1024 bytes"
            ),
            Self::InvalidAttribute { attribute } => write!(
                f,
                "the {attribute} attribute has characters a cookie attribute cannot carry (or a path not starting with /)"
            ),
            Self::InvalidRenewThreshold(p) => write!(
                f,
                "renewal threshold {p}% is not between 1% and 100% of the idle timeout"
            ),
            Self::ZeroDuration => {
                write!(f, "idle timeout and lifetime must be at least one second")
            }
            Self::CompressionRevealsLength => write!(
                f,
                "compression in encrypted mode makes the cookie's length reveal how compressible the data is (CRIME/BREACH); use `with_compression_leaking_length` if no attacker-chosen value shares a session with a secret, or leave compression off"
            ),
            Self::InvalidMaxCookies(n) => write!(
                f,
                "a session can be split across 1 to {} cookies, not {n}",
                crate::MAX_CHUNKS
            ),
            Self::InvalidTokenParameter => write!(
                f,
                "the token parameter's name must be 1 to 64 letters, digits, `_`, `-` or `.` (e.g. `tg_visit`)"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_chain(f, "ConfigError", self)
    }
}

impl fmt::Debug for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_chain(f, "SessionError", self)
    }
}

/// A session operation failed.
///
/// `Debug` prints the message and its causes on one line.
#[non_exhaustive]
pub enum SessionError {
    /// A value could not be converted to or from JSON as the requested type.
    Value {
        /// The session key.
        key: String,
        /// What went wrong, without the value itself.
        source: JsonError,
    },
    /// The session could not be encoded into a cookie at `finish` (typically: too large).
    /// No header was produced; the browser keeps its previous cookie, so the previous
    /// session state stays in effect.
    Encode(EncodeError),
    /// A [`SessionHandle`](crate::SessionHandle) was used after the response was produced
    /// (by a task that outlived its request, for example).
    Finished,
    /// A server-side session was used before its record was read: await
    /// [`SessionHandle::load`](crate::SessionHandle::load) first (the axum extractor does).
    NotLoaded,
    /// A server-side session is written with [`server::commit`](crate::server::commit),
    /// which talks to its store, not with `finish`.
    ServerSide,
    /// Something only server-side sessions can do (a user index) was asked of a cookie
    /// session.
    NotServerSide,
    /// A server-side session's store failed, or refused the data (see the
    /// [`StoreError`](crate::store::StoreError)). Nothing was sent: the browser keeps its
    /// cookie; answer `503 Service Unavailable` (the tower layer does).
    Stored(crate::stores::StoreError),
    /// A [`SessionHandle`](crate::SessionHandle) was used inside its own
    /// [`with`](crate::SessionHandle::with) closure on the same thread, which would
    /// deadlock: use the `&mut Session` the closure received instead.
    InUse,
    /// [`Session::token`](crate::Session::token) was asked for, but the configuration names
    /// no token parameter, so no request could bring the value back.
    NoTokenParameter,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Value { key, .. } => write!(
                f,
                "session value {key:?} does not convert to or from the requested type"
            ),
            Self::Encode(_) => write!(f, "session could not be saved into its cookie"),
            Self::Stored(_) => write!(f, "the session store failed"),
            Self::NotLoaded => write!(
                f,
                "the server-side session was used before it was loaded; await SessionHandle::load first"
            ),
            Self::ServerSide => write!(
                f,
                "a server-side session is saved with server::commit, not Session::finish"
            ),
            Self::Finished => write!(
                f,
                "the response was already produced; the session can no longer be used"
            ),
            Self::NotServerSide => write!(
                f,
                "linking sessions to users needs server-side sessions (a store with a user index); for cookie sessions use SessionConfig::with_revocation"
            ),
            Self::InUse => write!(
                f,
                "the session is in use by an enclosing `SessionHandle::with` on this thread; use the `&mut Session` that closure received"
            ),
            Self::NoTokenParameter => write!(
                f,
                "a session token was asked for, but no token parameter is configured (SessionConfig::with_token_parameter)"
            ),
        }
    }
}

impl std::error::Error for SessionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Value { source, .. } => Some(source),
            Self::Encode(e) => Some(e),
            Self::Stored(e) => Some(e),
            Self::Finished
            | Self::InUse
            | Self::NotLoaded
            | Self::ServerSide
            | Self::NotServerSide
            | Self::NoTokenParameter => None,
        }
    }
}

impl From<EncodeError> for SessionError {
    fn from(e: EncodeError) -> Self {
        Self::Encode(e)
    }
}
