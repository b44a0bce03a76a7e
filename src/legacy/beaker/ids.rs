//! Beaker's server-side session cookie (feature `beaker`): it carries only the session id,
//! `uuid4().hex`, plain or (with `session.secret`) signed as `SignedCookie` does:
//!
//! ```text
//! value = id                                             (no secret)
//!       | hex(HMAC-SHA1(secret, id)) || id               (session.secret set)
//! ```
//!
//! The data lives in Beaker's backend under the id itself, so a store shared with the
//! Beaker application is keyed by the raw id, not by a keyed hash of it as this crate's own
//! stores are (see SECURITY.md, "Sharing server-side sessions with Beaker").

use std::fmt;
use std::sync::Arc;

use subtle::ConstantTimeEq as _;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::sign;
use crate::legacy::{LegacyFormat, LegacySession, Place, Stray};
use crate::wire::error::{DecodeError, EncodeError, KeyError};
use crate::wire::map::LazyMap;
use crate::wire::stamp::{SessionId, Stamp};

/// The hex HMAC-SHA1 in front of the id.
const SIGNATURE_LEN: usize = 40;
/// `uuid4().hex`.
const ID_LEN: usize = 32;

/// Beaker's id cookie for server-side sessions (`session.type` = `file`, `ext:redis`, ...),
/// plain or signed with `session.secret`. Give it to
/// [`SessionConfig::with_beaker_ids`](crate::SessionConfig::with_beaker_ids), together with
/// a store in Beaker's layout.
///
/// ```
/// use cookie_session::beaker::BeakerIds;
/// use cookie_session::SessionId;
///
/// let ids = BeakerIds::signed("a secret shared with the Beaker app")?;
/// let id = SessionId::generate();
/// let value = ids.encode(id);
/// assert_eq!(value.len(), 72); // 40 hex digits of HMAC-SHA1, then the 32-digit id
/// assert_eq!(ids.decode(&value)?, id);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct BeakerIds {
    secret: Option<Arc<Zeroizing<Vec<u8>>>>,
}

impl fmt::Debug for BeakerIds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BeakerIds")
            .field("signed", &self.secret.is_some())
            .finish()
    }
}

impl BeakerIds {
    /// The id as it is, Beaker without `session.secret`. Anyone who learns an id (a log, a
    /// shared computer) can use it, as with Beaker itself; prefer [`signed`](Self::signed).
    #[must_use]
    pub const fn plain() -> Self {
        Self { secret: None }
    }

    /// The id signed with `session.secret` (Beaker's `SignedCookie`).
    ///
    /// # Errors
    /// [`KeyError::Empty`] for an empty secret (Beaker then writes plain ids).
    pub fn signed(secret: &str) -> Result<Self, KeyError> {
        if secret.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(Self {
            secret: Some(Arc::new(Zeroizing::new(secret.as_bytes().to_vec()))),
        })
    }

    /// The session id in a cookie value Beaker wrote (or [`encode`](Self::encode) did).
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] when the signature does not verify;
    /// [`DecodeError::Malformed`] when the id is not 32 lowercase hex digits (Beaker
    /// writes nothing else; another id could not be a store key here).
    pub fn decode(&self, value: &str) -> Result<SessionId, DecodeError> {
        let value = value.trim_matches('"');
        let id = match &self.secret {
            None => value,
            Some(secret) => {
                let (signature, id) = match (value.get(..SIGNATURE_LEN), value.get(SIGNATURE_LEN..))
                {
                    (Some(s), Some(id)) => (s, id),
                    _ => return Err(DecodeError::Malformed),
                };
                let expected = sign(secret, id);
                if !bool::from(expected.as_bytes().ct_eq(signature.as_bytes())) {
                    return Err(DecodeError::Invalid);
                }
                id
            }
        };
        let lowercase_hex = id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if id.len() != ID_LEN || !lowercase_hex {
            return Err(DecodeError::Malformed);
        }
        id.parse().map_err(|_| DecodeError::Malformed)
    }

    /// The cookie value for `id`.
    #[must_use]
    pub fn encode(&self, id: SessionId) -> String {
        let id = id.to_string();
        match &self.secret {
            None => id,
            Some(secret) => format!("{}{id}", sign(secret, &id)),
        }
    }
}

/// The id cookie through the session layer's seam.
pub(crate) fn seam(ids: BeakerIds) -> Arc<dyn LegacyFormat> {
    Arc::new(ids)
}

impl LegacyFormat for BeakerIds {
    fn open(
        &self,
        value: &str,
        now: OffsetDateTime,
        place: &Place<'_>,
    ) -> Result<LegacySession, (DecodeError, Stray)> {
        let id = self.decode(value).map_err(|e| (e, None))?;
        // The cookie holds no times: idleness is the record's (Beaker's `_accessed_time`
        // and timeout), so the stamp only carries the id.
        let stamp = Stamp::new(now, place.lifetime, place.lifetime).map_err(|_| {
            (
                DecodeError::Expired(crate::wire::stamp::Deadline::Absolute),
                None,
            )
        })?;
        Ok(LegacySession {
            stamp: Stamp { id, ..stamp },
            data: LazyMap::default(),
            state: Arc::new(()),
            stray: None,
        })
    }

    fn writes(&self) -> bool {
        true
    }

    fn keys_by_id(&self) -> bool {
        true
    }

    fn encode(
        &self,
        _data: &LazyMap,
        id: SessionId,
        _loaded: Option<&(dyn std::any::Any + Send + Sync)>,
        _now: OffsetDateTime,
        _place: &Place<'_>,
        _relocate: bool,
    ) -> Result<String, EncodeError> {
        Ok(BeakerIds::encode(self, id))
    }
}
