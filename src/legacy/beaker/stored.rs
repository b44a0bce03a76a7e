//! Beaker's server-side session value (features `beaker` and `pickle`): what Beaker 1.x's
//! `Session.save` keeps under the namespace key `session`, in every backend (`file`,
//! `ext:memcached`, `ext:database`, `ext:redis`), before the backend stores it.
//!
//! ```text
//! dict       = the user's keys + _domain, _path, _creation_time, _accessed_time   (no _id)
//! serialized = pickle.dumps(dict, 2)                   (data_serializer = pickle, Beaker's default)
//!            | zlib(JSON of dict)                      (data_serializer = json)
//! value      = base64(serialized)                                       (no encrypt_key)
//!            | nonce24 || base64(AES-256(PBKDF2-SHA1(encrypt_key, validate_key || nonce24, 1), serialized))
//! ```
//!
//! The session id is not in the value: it is the namespace the backend keys the value by.
//! Nothing signs the value (the store is trusted as far as Beaker goes); with GCM the tag
//! authenticates it, with CTR nothing does. A pickled value goes through
//! [`pickle`](crate::pickle)'s walk, so a class reference or a call in it is refused.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngExt as _;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::{BeakerCipher, BeakerCookie, NONCE_TEXT_LEN, decrypt, deflate, derive, encrypt};
use crate::legacy::pickle::{Limits, PickleError, from_pickle, to_pickle};
use crate::wire::error::{DecodeError, KeyError};

/// How the Beaker application serializes sessions (`session.data_serializer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BeakerSerializer {
    /// `pickle` (Beaker's default): a pickled dict, read only when it holds plain values.
    Pickle,
    /// `json` (TurboGears' quickstarts): zlib-compressed JSON.
    Json,
}

/// Why a stored Beaker value was not read or written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoredError {
    /// Not Beaker's layout: bad base64, a missing nonce, a bad zlib stream.
    Malformed,
    /// The GCM tag does not verify: another key, or the value was changed.
    Invalid,
    /// The pickle was refused or is malformed (see [`PickleError`]).
    Pickle(PickleError),
    /// The JSON is not a session map, or nests too deep.
    Json(String),
}

impl fmt::Display for StoredError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed => f.write_str("not a Beaker session value (base64, nonce or zlib)"),
            Self::Invalid => f.write_str(
                "the Beaker session value does not verify: check encrypt_key and validate_key",
            ),
            Self::Pickle(e) => write!(f, "Beaker session value: {e}"),
            Self::Json(why) => write!(f, "Beaker session value: {why}"),
        }
    }
}

impl std::error::Error for StoredError {}

impl From<DecodeError> for StoredError {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::Invalid => Self::Invalid,
            DecodeError::Malformed => Self::Malformed,
            other => Self::Json(other.to_string()),
        }
    }
}

/// Reads and writes the value Beaker keeps for a server-side session.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use cookie_session::beaker::{BeakerCookie, BeakerSerializer, BeakerStored};
/// use cookie_session::time::OffsetDateTime;
/// let stored = BeakerStored::new(BeakerSerializer::Pickle);
/// let now = OffsetDateTime::from_unix_timestamp(1_767_225_600)?;
/// let data = serde_json::json!({"user": "ada"}).as_object().cloned().unwrap_or_default();
/// let session = BeakerCookie::new(data, now);
/// let value = stored.encode(&session)?;
/// let back = stored.decode(&value, &session.id, now)?;
/// assert_eq!(back.data, session.data);
/// # Ok(()) }
/// ```
pub struct BeakerStored {
    serializer: BeakerSerializer,
    encryption: Option<Encryption>,
}

/// `session.validate_key`, `session.encrypt_key` and the AES mode.
struct Encryption {
    validate_key: Zeroizing<Vec<u8>>,
    encrypt_key: Zeroizing<Vec<u8>>,
    cipher: BeakerCipher,
}

impl fmt::Debug for BeakerStored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BeakerStored")
            .field("serializer", &self.serializer)
            .field("cipher", &self.encryption.as_ref().map(|e| e.cipher))
            .finish_non_exhaustive()
    }
}

impl BeakerStored {
    /// Values without `session.encrypt_key`: base64 of the serialized dict.
    #[must_use]
    pub const fn new(serializer: BeakerSerializer) -> Self {
        Self {
            serializer,
            encryption: None,
        }
    }

    /// Values with `session.encrypt_key` (and `session.validate_key`, which salts the key),
    /// in the AES mode of the Beaker application's crypto backend.
    ///
    /// # Errors
    /// [`KeyError::Empty`] for an empty key, [`KeyError::NotAscii`] for a non-ASCII one (as
    /// [`BeakerFormat::encrypted`](super::BeakerFormat::encrypted)).
    pub fn encrypted(
        serializer: BeakerSerializer,
        validate_key: &str,
        encrypt_key: &str,
        cipher: BeakerCipher,
    ) -> Result<Self, KeyError> {
        if validate_key.is_empty() || encrypt_key.is_empty() {
            return Err(KeyError::Empty);
        }
        if !validate_key.is_ascii() || !encrypt_key.is_ascii() {
            return Err(KeyError::NotAscii);
        }
        Ok(Self {
            serializer,
            encryption: Some(Encryption {
                validate_key: Zeroizing::new(validate_key.as_bytes().to_vec()),
                encrypt_key: Zeroizing::new(encrypt_key.as_bytes().to_vec()),
                cipher,
            }),
        })
    }

    /// The session Beaker stored as `value` for the session `id` (the namespace); `now`
    /// fills in a missing `_creation_time` or `_accessed_time`, as Beaker does. Expiry is
    /// the caller's: Beaker's rule is `now - accessed_time > timeout`.
    ///
    /// # Errors
    /// [`StoredError`]: not Beaker's layout, a tag that does not verify, a refused or
    /// malformed pickle, or JSON that is not a session map.
    pub fn decode(
        &self,
        value: &[u8],
        id: &str,
        now: OffsetDateTime,
    ) -> Result<BeakerCookie, StoredError> {
        let serialized = match &self.encryption {
            None => STANDARD.decode(value).map_err(|_| StoredError::Malformed)?,
            Some(encryption) => {
                let (nonce, body) = match (value.get(..NONCE_TEXT_LEN), value.get(NONCE_TEXT_LEN..))
                {
                    (Some(n), Some(b)) => (n, b),
                    _ => return Err(StoredError::Malformed),
                };
                let nonce = std::str::from_utf8(nonce).map_err(|_| StoredError::Malformed)?;
                let mut body = STANDARD.decode(body).map_err(|_| StoredError::Malformed)?;
                let key = derive(&encryption.validate_key, &encryption.encrypt_key, nonce);
                decrypt(encryption.cipher, &key, &mut body)?
            }
        };
        let map = match self.serializer {
            BeakerSerializer::Pickle => {
                from_pickle(&serialized, &Limits::default()).map_err(StoredError::Pickle)?
            }
            BeakerSerializer::Json => super::json_payload(&serialized)?,
        };
        let mut session = BeakerCookie::from_payload(map, now);
        id.clone_into(&mut session.id);
        Ok(session)
    }

    /// The value Beaker would store for `session`.
    ///
    /// # Errors
    /// [`StoredError::Pickle`] if the pickle encoder fails (it does not for a JSON map).
    pub fn encode(&self, session: &BeakerCookie) -> Result<Vec<u8>, StoredError> {
        let serialized = match self.serializer {
            BeakerSerializer::Pickle => to_pickle(&dict(session)).map_err(StoredError::Pickle)?,
            BeakerSerializer::Json => {
                deflate(&serde_json::to_vec(&dict(session)).unwrap_or_default())
            }
        };
        Ok(match &self.encryption {
            None => STANDARD.encode(serialized).into_bytes(),
            Some(encryption) => {
                let nonce = STANDARD.encode(rand::rng().random::<[u8; 16]>());
                let key = derive(&encryption.validate_key, &encryption.encrypt_key, &nonce);
                let body = encrypt(encryption.cipher, &key, serialized);
                format!("{nonce}{}", STANDARD.encode(body)).into_bytes()
            }
        })
    }
}

/// The dict Beaker keeps server-side: the cookie payload without `_id` (the id is the
/// namespace).
fn dict(session: &BeakerCookie) -> Map<String, Value> {
    let mut map = session.payload();
    map.remove("_id");
    map
}
