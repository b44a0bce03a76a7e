//! The seam for cookie formats other than this crate's own: the session layer reads a
//! session from such a cookie, and writes it back in that format while the configuration
//! asks for it, without knowing anything of the format. Beaker's (feature `beaker`,
//! `beaker.rs` here) is the one there is; it plugs in through [`LegacyFormat`] and knows
//! nothing of the session layer.

#[cfg(feature = "beaker")]
pub mod beaker;
#[cfg(feature = "pickle")]
pub mod pickle;
#[cfg(feature = "turbogears")]
pub mod turbogears;

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::wire::error::{DecodeError, EncodeError};
use crate::wire::map::LazyMap;
use crate::wire::stamp::{SessionId, Stamp};

/// A cookie's `Domain` (`None`: host-only) and `Path`, when the cookie lives somewhere else
/// than the configuration writes and must be removed there too.
pub(crate) type Stray = Option<(Option<String>, String)>;

/// Where the configuration writes the session cookie, and its deadlines.
#[cfg_attr(
    not(feature = "beaker"),
    allow(dead_code, reason = "read by the formats behind the seam")
)]
pub(crate) struct Place<'a> {
    pub(crate) name: &'a str,
    pub(crate) domain: Option<&'a str>,
    pub(crate) path: &'a str,
    pub(crate) idle: Duration,
    pub(crate) lifetime: Duration,
}

/// A session read from a cookie of another format.
pub(crate) struct LegacySession {
    pub(crate) stamp: Stamp,
    pub(crate) data: LazyMap,
    /// What the format needs to write the session back as it was (opaque here).
    pub(crate) state: Arc<dyn Any + Send + Sync>,
    pub(crate) stray: Stray,
}

/// Another cookie format.
pub(crate) trait LegacyFormat: Send + Sync {
    /// Reads `value`, applying the configured deadlines. On failure, the error and (for an
    /// authentic cookie past a deadline) where that cookie lives.
    fn open(
        &self,
        value: &str,
        now: OffsetDateTime,
        place: &Place<'_>,
    ) -> Result<LegacySession, (DecodeError, Stray)>;

    /// Whether sessions are written back in this format (rather than the native one).
    fn writes(&self) -> bool;

    /// Whether the cookie is a foreign application's server-side session id, whose store
    /// keeps the record under the raw id (Beaker's backends): the store key is then the id
    /// itself, not a keyed hash of it.
    fn keys_by_id(&self) -> bool {
        false
    }

    /// With [`keys_by_id`](Self::keys_by_id): the store key of the session `id`, as the
    /// foreign application keys it. `loaded` is the state `open` returned for this session
    /// (`None` for a new or regenerated one). The default: the id's 16 bytes, then zeros.
    fn raw_key(&self, id: SessionId, loaded: Option<&(dyn Any + Send + Sync)>) -> [u8; 32] {
        let _ = loaded;
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(&id.to_bytes());
        key
    }

    /// The cookie value for `data` of the session `id`. `loaded` is the state of the
    /// session as it was read (`None` for a new or regenerated one); `relocate` asks that
    /// the format's own idea of where the cookie lives become `place`.
    fn encode(
        &self,
        data: &LazyMap,
        id: SessionId,
        loaded: Option<&(dyn Any + Send + Sync)>,
        now: OffsetDateTime,
        place: &Place<'_>,
        relocate: bool,
    ) -> Result<String, EncodeError>;
}
