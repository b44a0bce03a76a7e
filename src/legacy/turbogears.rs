//! TurboGears 1's visit cookie (feature `turbogears`): `tg-visit` carries the visit key, 40
//! lowercase hex digits (160 bits), unsigned, and the visit table keeps the visit, its
//! pickled session data and (in `visit_identity`) its user under that key.
//!
//! A session id here is 128 bits, so a visit key is carried as the session id (its first 16
//! bytes) and, in the state read with the cookie, the whole key. Keys made here are the
//! session id followed by 4 bytes derived from it (SHA-256), so they are 160 bits as
//! TurboGears expects, with the id's 128 random bits.

use std::any::Any;
use std::sync::Arc;

use sha2::Digest as _;
use time::OffsetDateTime;

use crate::legacy::{LegacyFormat, LegacySession, Place, Stray};
use crate::wire::error::{DecodeError, EncodeError};
use crate::wire::map::LazyMap;
use crate::wire::stamp::{Deadline, SessionId, Stamp};

/// A visit key's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct VisitKey([u8; 20]);

/// TurboGears 1's visit cookie, for server-side sessions shared with a TurboGears
/// application's visit table. Give it to
/// [`SessionConfig::with_turbogears_visits`](crate::SessionConfig::with_turbogears_visits)
/// with a [`VisitStore`](crate::store::VisitStore).
#[derive(Debug, Clone, Copy, Default)]
pub struct TurboGearsVisits;

impl TurboGearsVisits {
    /// The visit key in a cookie value: 40 lowercase hex digits (TurboGears writes nothing
    /// else), or `None`.
    fn decode(value: &str) -> Option<VisitKey> {
        let value = value.trim_matches('"');
        let lowercase_hex = value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if value.len() != 40 || !lowercase_hex {
            return None;
        }
        let mut key = [0u8; 20];
        base16ct::lower::decode(value, &mut key).ok()?;
        Some(VisitKey(key))
    }

    /// The visit key of the session `id`: the one read with its cookie, or one made for it.
    fn key(id: SessionId, loaded: Option<&(dyn Any + Send + Sync)>) -> VisitKey {
        if let Some(read) = loaded.and_then(|state| state.downcast_ref::<VisitKey>())
            && read.0[..16] == id.to_bytes()
        {
            return *read;
        }
        let mut key = [0u8; 20];
        key[..16].copy_from_slice(&id.to_bytes());
        let tail = sha2::Sha256::new()
            .chain_update(b"cookie-session turbogears visit key\0")
            .chain_update(id.to_bytes())
            .finalize();
        key[16..].copy_from_slice(&tail[..4]);
        VisitKey(key)
    }
}

/// The visit cookie through the session layer's seam.
pub(crate) fn seam() -> Arc<dyn LegacyFormat> {
    Arc::new(TurboGearsVisits)
}

impl LegacyFormat for TurboGearsVisits {
    fn open(
        &self,
        value: &str,
        now: OffsetDateTime,
        place: &Place<'_>,
    ) -> Result<LegacySession, (DecodeError, Stray)> {
        let key = Self::decode(value).ok_or((DecodeError::Malformed, None))?;
        let mut id = [0u8; 16];
        id.copy_from_slice(&key.0[..16]);
        // The cookie holds no times: the visit's `expiry` column is the deadline.
        let stamp = Stamp::new(now, place.lifetime, place.lifetime)
            .map_err(|_| (DecodeError::Expired(Deadline::Absolute), None))?;
        Ok(LegacySession {
            stamp: Stamp {
                id: SessionId::from_bytes(id),
                ..stamp
            },
            data: LazyMap::default(),
            state: Arc::new(key),
            stray: None,
        })
    }

    fn writes(&self) -> bool {
        true
    }

    fn keys_by_id(&self) -> bool {
        true
    }

    fn raw_key(&self, id: SessionId, loaded: Option<&(dyn Any + Send + Sync)>) -> [u8; 32] {
        let mut key = [0u8; 32];
        key[..20].copy_from_slice(&Self::key(id, loaded).0);
        key
    }

    fn encode(
        &self,
        _data: &LazyMap,
        id: SessionId,
        loaded: Option<&(dyn Any + Send + Sync)>,
        _now: OffsetDateTime,
        _place: &Place<'_>,
        _relocate: bool,
    ) -> Result<String, EncodeError> {
        Ok(base16ct::lower::encode_string(&Self::key(id, loaded).0))
    }
}
