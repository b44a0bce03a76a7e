//! Beaker 1.x cookie sessions as TurboGears 2 writes them (the `beaker` feature), for
//! sharing a visitor's session with a Beaker-based application during a migration.
//!
//! Verified against the real Beaker 1.14.1 (`tests/beaker/harness.py`). The format, with
//! TurboGears' `session.data_serializer = json`:
//!
//! ```text
//! payload      = JSON object: the user's keys + _domain, _path, _id, _creation_time, _accessed_time
//! z            = zlib(payload)
//! signed part  = base64(z)                                           (signed only)
//!              | nonce24 || base64(AES-256(PBKDF2-SHA1(encrypt_key, validate_key || nonce24, 1), z))
//! cookie value = hex(HMAC-SHA1(validate_key, signed part)) || signed part
//! ```
//!
//! where `nonce24` is the standard base64 of 16 random bytes, and AES is GCM laid out as
//! `iv 12 | tag 16 | ciphertext` (Beaker's `cryptography` backend) or CTR with a 128-bit
//! counter from 0 and no tag (its `pycryptodome` backend).
//!
//! **This is a legacy scheme**: SHA-1, a one-iteration KDF, and no expiry unless a
//! `timeout` is set. Use it only while migrating; see SECURITY.md.

use std::fmt;
use std::io::{Read as _, Write as _};
use std::sync::Arc;
use std::time::Duration;

use aes_gcm::aead::{AeadInOut as _, KeyInit as _};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ctr::cipher::{KeyIvInit as _, StreamCipher as _};
use hmac::{Hmac, Mac as _};
use rand::RngExt as _;
use serde_json::{Map, Value};
use sha1::Sha1;
use subtle::ConstantTimeEq as _;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::legacy::{LegacyFormat, LegacySession, Place, Stray};
use crate::wire::error::{DecodeError, EncodeError, KeyError};
use crate::wire::json;
use crate::wire::map::LazyMap;
use crate::wire::stamp::{Deadline, SessionId, Stamp};

mod ids;
#[cfg(feature = "pickle")]
mod stored;
pub use ids::BeakerIds;
pub(crate) use ids::seam as id_seam;
#[cfg(feature = "pickle")]
pub use stored::{BeakerSerializer, BeakerStored, StoredError};

/// A session's data: a JSON object.
type SessionMap = Map<String, Value>;

/// Beaker refuses to store a signed part longer than this (`Cookie value is too long`).
const BEAKER_MAX_SIGNED_PART: usize = 4064;
/// Beaker re-serializes a loaded cookie with a new `_accessed_time` on its next request,
/// which can change the compressed size slightly; leave room so it never overflows there.
const SIZE_MARGIN: usize = 64;
/// The hex HMAC-SHA1 in front of the signed part.
const SIGNATURE_LEN: usize = 40;
/// The base64 text of Beaker's 16-byte nonce (`encrypt_nonce_bits = 128`).
const NONCE_TEXT_LEN: usize = 24;
/// What a cookie's zlib stream may inflate to: far above any 4 KiB cookie's data, far below
/// a decompression bomb.
const MAX_INFLATED: u64 = 256 * 1024;
/// The browser's limit on `name + value`.
const BROWSER_MAX: usize = 4096;

/// Beaker's internal keys, kept out of the user's map.
const INTERNAL_KEYS: [&str; 5] = [
    "_domain",
    "_path",
    "_id",
    "_creation_time",
    "_accessed_time",
];

/// What a session configured with [`SessionConfig::with_beaker`](crate::SessionConfig::with_beaker) writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BeakerMigration {
    /// Read Beaker and native cookies, write native ones: each visitor moves to the native
    /// format on their next response (which always re-issues a Beaker cookie). The Beaker
    /// application can no longer read a migrated visitor's session.
    UpgradeToNative,
    /// Read both, write Beaker: while the Beaker application still serves some routes and
    /// must read the session too.
    KeepBeaker,
}

/// Which AES mode an encrypting Beaker uses: it depends on the crypto library installed
/// next to it, so ask the Beaker application's operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BeakerCipher {
    /// AES-256-GCM (`iv | tag | ciphertext`): Beaker with the `cryptography` package, the
    /// usual case.
    Gcm,
    /// AES-256-CTR without a tag: Beaker with only `pycryptodome`. Integrity rests on the
    /// outer HMAC-SHA1 alone.
    Ctr,
}

/// The keys and settings of a Beaker cookie session (`session.validate_key`,
/// `session.encrypt_key`, `session.timeout`).
///
/// ```
/// use cookie_session::beaker::{BeakerCookie, BeakerFormat};
/// use cookie_session::time::OffsetDateTime;
/// use serde_json::json;
///
/// let beaker = BeakerFormat::signed("8f0c6a52-5b1e-4f43-9a7e-2d3c4b5a6f70")?;
/// let now = OffsetDateTime::now_utc();
/// let data = json!({"user": "alice"}).as_object().cloned().unwrap_or_default();
/// let value = beaker.encode("myproject", &BeakerCookie::new(data, now))?;
/// let cookie = beaker.decode(&value, now)?;
/// assert_eq!(cookie.data["user"], "alice");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct BeakerFormat {
    validate_key: Zeroizing<Vec<u8>>,
    encryption: Option<(Zeroizing<Vec<u8>>, BeakerCipher)>,
    timeout: Option<Duration>,
}

impl BeakerFormat {
    /// Signed, not encrypted: TurboGears' quickstart (`session.validate_key` only). The
    /// data is readable by anyone holding the cookie.
    ///
    /// # Errors
    /// [`KeyError::Empty`] for an empty key (Beaker refuses to run without one).
    pub fn signed(validate_key: &str) -> Result<Self, KeyError> {
        if validate_key.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(Self {
            validate_key: Zeroizing::new(validate_key.as_bytes().to_vec()),
            encryption: None,
            timeout: None,
        })
    }

    /// Signed and encrypted (`session.encrypt_key` set), with the AES mode of the Beaker
    /// application's crypto backend.
    ///
    /// # Errors
    /// [`KeyError::Empty`] for an empty key, [`KeyError::NotAscii`] for a non-ASCII one
    /// (Beaker itself fails on every save with such keys).
    pub fn encrypted(
        validate_key: &str,
        encrypt_key: &str,
        cipher: BeakerCipher,
    ) -> Result<Self, KeyError> {
        if encrypt_key.is_empty() {
            return Err(KeyError::Empty);
        }
        if !validate_key.is_ascii() || !encrypt_key.is_ascii() {
            return Err(KeyError::NotAscii);
        }
        let mut format = Self::signed(validate_key)?;
        format.encryption = Some((Zeroizing::new(encrypt_key.as_bytes().to_vec()), cipher));
        Ok(format)
    }

    /// Beaker's `session.timeout`: a cookie whose `_accessed_time` is more than `timeout`
    /// before `now` has expired (exactly `timeout` is still valid). Without it, as in a
    /// TurboGears quickstart, Beaker cookies never expire.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The configured timeout.
    #[must_use]
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Verifies and decodes a Beaker cookie value at `now`.
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] for a bad signature or (GCM) tag; [`DecodeError::Malformed`]
    /// for bad base64, zlib or JSON, or data inflating beyond 256 KiB;
    /// [`DecodeError::Payload`] if the JSON is not an object; [`DecodeError::TooDeep`] for
    /// nesting beyond 32; [`DecodeError::Expired`] past the timeout.
    pub fn decode(&self, value: &str, now: OffsetDateTime) -> Result<BeakerCookie, DecodeError> {
        let value = value.trim_matches('"');
        if value.len() > BROWSER_MAX {
            return Err(DecodeError::TooLarge {
                size: value.len(),
                limit: BROWSER_MAX,
            });
        }
        let (signature, signed_part) =
            match (value.get(..SIGNATURE_LEN), value.get(SIGNATURE_LEN..)) {
                (Some(s), Some(rest)) => (s, rest),
                _ => return Err(DecodeError::Malformed),
            };
        let expected = self.sign(signed_part);
        if !bool::from(expected.as_bytes().ct_eq(signature.as_bytes())) {
            return Err(DecodeError::Invalid);
        }
        let compressed = match &self.encryption {
            None => STANDARD
                .decode(signed_part)
                .map_err(|_| DecodeError::Malformed)?,
            Some((encrypt_key, cipher)) => {
                let (nonce, body) = match (
                    signed_part.get(..NONCE_TEXT_LEN),
                    signed_part.get(NONCE_TEXT_LEN..),
                ) {
                    (Some(n), Some(b)) => (n, b),
                    _ => return Err(DecodeError::Malformed),
                };
                let mut body = STANDARD.decode(body).map_err(|_| DecodeError::Malformed)?;
                let key = self.derive(encrypt_key, nonce);
                decrypt(*cipher, &key, &mut body)?
            }
        };
        let cookie = BeakerCookie::from_payload(json_payload(&compressed)?, now);
        if let Some(timeout) = self.timeout
            && unix_f64(now) - cookie.accessed_time > timeout.as_secs_f64()
        {
            return Err(DecodeError::Expired(Deadline::Idle));
        }
        Ok(cookie)
    }

    /// Encodes `cookie` as Beaker would save it for the cookie `name`.
    ///
    /// # Errors
    /// [`EncodeError::TooLarge`] when Beaker (signed part over 4064 characters, less a
    /// 64-character margin for its own re-save) or a browser (`name + value` over 4096)
    /// would refuse the cookie; [`EncodeError::Serialize`] if the data is not JSON.
    pub fn encode(&self, name: &str, cookie: &BeakerCookie) -> Result<String, EncodeError> {
        let json =
            serde_json::to_vec(&cookie.payload()).map_err(|e| EncodeError::Serialize(e.into()))?;
        let compressed = deflate(&json);
        let signed_part = match &self.encryption {
            None => STANDARD.encode(&compressed),
            Some((encrypt_key, cipher)) => {
                let nonce = STANDARD.encode(rand::rng().random::<[u8; 16]>());
                let key = self.derive(encrypt_key, &nonce);
                let body = encrypt(*cipher, &key, compressed);
                format!("{nonce}{}", STANDARD.encode(body))
            }
        };
        let limit =
            BROWSER_MAX.min(name.len() + SIGNATURE_LEN + BEAKER_MAX_SIGNED_PART - SIZE_MARGIN);
        let size = name.len() + SIGNATURE_LEN + signed_part.len();
        if size > limit {
            return Err(EncodeError::TooLarge { size, limit });
        }
        Ok(format!("{}{signed_part}", self.sign(&signed_part)))
    }

    /// Lowercase hex HMAC-SHA1 of the signed part's text, keyed with the validate key.
    fn sign(&self, signed_part: &str) -> String {
        sign(&self.validate_key, signed_part)
    }

    fn derive(&self, encrypt_key: &[u8], nonce: &str) -> Zeroizing<[u8; 32]> {
        derive(&self.validate_key, encrypt_key, nonce)
    }
}

/// PBKDF2-HMAC-SHA1(encrypt_key, validate_key || nonce text, 1 iteration, 32 bytes).
fn derive(validate_key: &[u8], encrypt_key: &[u8], nonce: &str) -> Zeroizing<[u8; 32]> {
    let mut salt = Zeroizing::new(validate_key.to_vec());
    salt.extend_from_slice(nonce.as_bytes());
    let mut key = Zeroizing::new([0u8; 32]);
    pbkdf2::pbkdf2_hmac::<Sha1>(encrypt_key, &salt, 1, key.as_mut_slice());
    key
}

/// Beaker's JSON serializer's output (zlib of the JSON text) as a map, bounded.
fn json_payload(compressed: &[u8]) -> Result<Map<String, Value>, DecodeError> {
    let payload = inflate(compressed)?;
    if !json::depth_within(&payload, crate::wire::codec::DEFAULT_MAX_DEPTH) {
        return Err(DecodeError::TooDeep {
            limit: crate::wire::codec::DEFAULT_MAX_DEPTH,
        });
    }
    serde_json::from_slice(&payload).map_err(|e| {
        if e.is_data() {
            DecodeError::Payload(e.into())
        } else {
            DecodeError::Malformed
        }
    })
}

impl fmt::Debug for BeakerFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BeakerFormat")
            .field(
                "encryption",
                &self.encryption.as_ref().map(|(_, cipher)| cipher),
            )
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// `iv 12 | tag 16 | ciphertext` (GCM) or the bare ciphertext (CTR) → the zlib stream.
fn decrypt(
    cipher: BeakerCipher,
    key: &[u8; 32],
    body: &mut Vec<u8>,
) -> Result<Vec<u8>, DecodeError> {
    match cipher {
        BeakerCipher::Gcm => {
            if body.len() < 28 {
                return Err(DecodeError::Malformed);
            }
            let (head, ciphertext) = body.split_at_mut(28);
            let (iv, tag) = head.split_at(12);
            let gcm = aes_gcm::Aes256Gcm::new(key.into());
            let nonce = aes_gcm::Nonce::try_from(iv).map_err(|_| DecodeError::Malformed)?;
            let tag = aes_gcm::Tag::try_from(tag).map_err(|_| DecodeError::Malformed)?;
            gcm.decrypt_inout_detached(&nonce, b"", ciphertext.into(), &tag)
                .map_err(|_| DecodeError::Invalid)?;
            Ok(ciphertext.to_vec())
        }
        BeakerCipher::Ctr => {
            let mut ctr = ctr::Ctr128BE::<aes::Aes256>::new(key.into(), &[0u8; 16].into());
            ctr.apply_keystream(body);
            Ok(std::mem::take(body))
        }
    }
}

fn encrypt(cipher: BeakerCipher, key: &[u8; 32], mut plaintext: Vec<u8>) -> Vec<u8> {
    match cipher {
        BeakerCipher::Gcm => {
            let iv: [u8; 12] = rand::rng().random();
            let gcm = aes_gcm::Aes256Gcm::new(key.into());
            let tag = gcm
                .encrypt_inout_detached(&iv.into(), b"", plaintext.as_mut_slice().into())
                .unwrap_or_else(|_| unreachable!("a cookie is far below GCM's 64 GiB limit"));
            [&iv[..], &tag[..], &plaintext[..]].concat()
        }
        BeakerCipher::Ctr => {
            let mut ctr = ctr::Ctr128BE::<aes::Aes256>::new(key.into(), &[0u8; 16].into());
            ctr.apply_keystream(&mut plaintext);
            plaintext
        }
    }
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(data);
    encoder.finish().unwrap_or_default()
}

/// Inflates a zlib stream (with its header, as Beaker writes it), at most `MAX_INFLATED`.
fn inflate(data: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(data)
        .take(MAX_INFLATED + 1)
        .read_to_end(&mut out)
        .map_err(|_| DecodeError::Malformed)?;
    if out.len() as u64 > MAX_INFLATED {
        return Err(DecodeError::Malformed);
    }
    Ok(out)
}

fn unix_f64(t: OffsetDateTime) -> f64 {
    (t.unix_timestamp_nanos() as f64) / 1e9
}

/// A Beaker session: the user's keys, and Beaker's internal keys kept aside so that they
/// are preserved when the session is written back.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BeakerCookie {
    /// The user's keys (everything but Beaker's internal keys).
    pub data: SessionMap,
    /// `_id`: 32 lowercase hex characters.
    pub id: String,
    /// `_creation_time`, UNIX seconds.
    pub creation_time: f64,
    /// `_accessed_time`, UNIX seconds: what Beaker's timeout is measured from.
    pub accessed_time: f64,
    /// `_domain`: Beaker takes the cookie's `Domain` attribute from here.
    pub domain: Option<String>,
    /// `_path`: Beaker takes the cookie's `Path` attribute from here.
    pub path: String,
}

impl BeakerCookie {
    /// A new Beaker session holding `data`, created at `now`, with a random `_id`.
    #[must_use]
    pub fn new(data: SessionMap, now: OffsetDateTime) -> Self {
        let id: [u8; 16] = rand::rng().random();
        let now = unix_f64(now);
        Self {
            data,
            id: base16ct::lower::encode_string(&id),
            creation_time: now,
            accessed_time: now,
            domain: None,
            path: "/".to_owned(),
        }
    }

    /// The session id: `_id` itself when it is 32 hex digits, as Beaker writes it;
    /// otherwise one derived from it with SHA-256, so that the same Beaker session always
    /// has the same id (and a revocation check can match it).
    #[must_use]
    pub fn session_id(&self) -> SessionId {
        self.id.parse().unwrap_or_else(|_| {
            use sha2::Digest as _;
            let digest = sha2::Sha256::new()
                .chain_update(b"cookie-session beaker _id\0")
                .chain_update(self.id.as_bytes())
                .finalize();
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(&digest[..16]);
            SessionId::from_bytes(bytes)
        })
    }

    /// The same session, accessed at `now` (what Beaker's "touch" writes).
    #[must_use]
    pub fn touched(&self, now: OffsetDateTime) -> Self {
        Self {
            accessed_time: unix_f64(now),
            ..self.clone()
        }
    }

    /// Splits Beaker's payload; missing internal keys are filled in as Beaker does.
    fn from_payload(mut map: Map<String, Value>, now: OffsetDateTime) -> Self {
        let fresh = Self::new(SessionMap::new(), now);
        let time = |v: Option<Value>, default: f64| v.and_then(|v| v.as_f64()).unwrap_or(default);
        let creation_time = time(map.remove("_creation_time"), fresh.creation_time);
        let accessed_time = time(map.remove("_accessed_time"), fresh.accessed_time);
        let id = match map.remove("_id") {
            Some(Value::String(id)) => id,
            _ => fresh.id,
        };
        let domain = match map.remove("_domain") {
            Some(Value::String(d)) => Some(d),
            _ => None,
        };
        let path = match map.remove("_path") {
            Some(Value::String(p)) => p,
            _ => fresh.path,
        };
        debug_assert!(INTERNAL_KEYS.iter().all(|k| !map.contains_key(*k)));
        Self {
            data: map,
            id,
            creation_time,
            accessed_time,
            domain,
            path,
        }
    }

    fn payload(&self) -> Map<String, Value> {
        let mut map = self.data.clone();
        map.insert(
            "_domain".into(),
            self.domain.clone().map_or(Value::Null, Value::String),
        );
        map.insert("_path".into(), Value::String(self.path.clone()));
        map.insert("_id".into(), Value::String(self.id.clone()));
        map.insert("_creation_time".into(), float(self.creation_time));
        map.insert("_accessed_time".into(), float(self.accessed_time));
        map
    }
}

fn float(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// `hex(HMAC-SHA1(key, text))`: Beaker's signature, on cookies and on ids alike.
fn sign(key: &[u8], text: &str) -> String {
    let mut mac = <Hmac<Sha1> as hmac::KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(text.as_bytes());
    base16ct::lower::encode_string(&mac.finalize().into_bytes())
}

/// Beaker as a format behind the session layer's seam.
pub(crate) fn seam(format: BeakerFormat, migration: BeakerMigration) -> Arc<dyn LegacyFormat> {
    Arc::new(Beaker { format, migration })
}

/// Beaker through the session layer's seam for other formats.
struct Beaker {
    format: BeakerFormat,
    migration: BeakerMigration,
}

impl LegacyFormat for Beaker {
    fn open(
        &self,
        value: &str,
        now: OffsetDateTime,
        place: &Place<'_>,
    ) -> Result<LegacySession, (DecodeError, Stray)> {
        let cookie = self.format.decode(value, now).map_err(|e| (e, None))?;
        let stray = stray_location(place, &cookie);
        let stamp = Stamp::legacy(
            cookie.session_id(),
            cookie.creation_time,
            cookie.accessed_time,
            place.idle,
            place.lifetime,
        );
        // The configured deadlines hold for Beaker sessions exactly as for native ones.
        let unix_now = crate::wire::stamp::unix(now).unwrap_or(u64::MAX);
        if let Err(deadline) = stamp.check(unix_now) {
            return Err((DecodeError::Expired(deadline), stray));
        }
        let data = LazyMap::from_map(&cookie.data).map_err(|e| (e, stray.clone()))?;
        Ok(LegacySession {
            stamp,
            data,
            state: std::sync::Arc::new(cookie),
            stray,
        })
    }

    fn writes(&self) -> bool {
        self.migration == BeakerMigration::KeepBeaker
    }

    fn encode(
        &self,
        data: &LazyMap,
        id: SessionId,
        loaded: Option<&(dyn std::any::Any + Send + Sync)>,
        now: OffsetDateTime,
        place: &Place<'_>,
        relocate: bool,
    ) -> Result<String, EncodeError> {
        let mut cookie = match loaded.and_then(|state| state.downcast_ref::<BeakerCookie>()) {
            // Beaker's internal keys are kept; the loaded `_id` as it was, even if it is
            // not 32 hex digits (its session id is then derived from it, stably).
            Some(loaded) => loaded.touched(now),
            None => {
                let mut fresh = BeakerCookie::new(SessionMap::new(), now);
                fresh.id = id.to_string();
                fresh
            }
        };
        // Beaker writes its cookie where `_domain`/`_path` say: make that where this
        // configuration writes, so that both applications keep one cookie.
        if relocate {
            cookie.domain = place.domain.map(str::to_owned);
            cookie.path = place.path.to_owned();
        }
        cookie.data = data
            .to_map()
            .map_err(|e| EncodeError::Serialize(e.into()))?;
        self.format.encode(place.name, &cookie)
    }
}

/// Where a Beaker cookie is stored (its `_domain`/`_path`, from which Beaker takes the
/// attributes), if that differs from where this configuration writes and is a location a
/// `Set-Cookie` can name.
fn stray_location(place: &Place<'_>, cookie: &BeakerCookie) -> Stray {
    let domain = cookie.domain.as_deref().filter(|d| !d.is_empty());
    let same_domain = match (domain, place.domain) {
        (None, None) => true,
        (Some(a), Some(b)) => same_domain(a, b),
        _ => false,
    };
    if same_domain && cookie.path == place.path {
        return None;
    }
    // Authenticated, but still text that goes into a header: no attribute injection.
    let valid = crate::wire::format::is_valid_attribute(&cookie.path)
        && cookie.path.starts_with('/')
        && domain.is_none_or(crate::wire::format::is_valid_attribute);
    valid.then(|| (domain.map(str::to_owned), cookie.path.clone()))
}

/// Browsers ignore a leading dot and compare domains case-insensitively.
fn same_domain(a: &str, b: &str) -> bool {
    a.trim_start_matches('.')
        .eq_ignore_ascii_case(b.trim_start_matches('.'))
}
