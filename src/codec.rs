//! Turning a value into a cookie value and back: the pure core of the crate.
//!
//! [`Codec::encode`] and [`Codec::decode`] take the cookie name and, for decoding, the
//! current time as arguments; there is no hidden clock. The order of checks on decode is
//! fixed: size, base64, format byte and mode, key id, authentication, and only then the
//! deadlines and the JSON, so nothing about an unauthenticated cookie's contents is ever
//! reported.

use std::cell::RefCell;
use std::fmt;
use std::time::Duration;

use hmac::Mac as _;
use rand::Rng as _;
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use crate::error::{DecodeError, EncodeError};
use crate::format::{self, GCM_TAG_LEN, Header, Mode};
use crate::json;
use crate::key::{KeyAge, KeyId, KeyRing, Prepared};
use crate::stamp::Stamp;

/// The default limit on `name.len() + value.len()`: the RFC 6265bis limit that Chromium
/// and Firefox enforce by silently dropping larger cookies.
pub const DEFAULT_MAX_SIZE: usize = 4096;

/// The default limit on JSON nesting (a flat object is 1).
pub const DEFAULT_MAX_DEPTH: usize = 32;

/// The default tolerance for a cookie issued slightly in the future by a server whose
/// clock runs ahead.
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(60);

thread_local! {
    /// Per-thread working buffer for encode and decode: after the first few cookies, neither
    /// allocates for its intermediate bytes (only the returned value or map allocates).
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A buffer that is kept per thread but not grown without bound by one huge cookie.
const SCRATCH_KEEP: usize = 64 * 1024;

/// Runs `f` with the thread's empty scratch buffer. Re-entrant use (a `Serialize` impl that
/// itself encodes a cookie) gets a fresh buffer instead of a panic. The buffer holds the
/// last cookie's bytes until the next use: the session data, not key material.
fn with_scratch<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            let result = f(&mut buf);
            if buf.capacity() > SCRATCH_KEEP {
                *buf = Vec::new();
            }
            result
        }
        Err(_) => f(&mut Vec::with_capacity(1024)),
    })
}

/// Encodes values into cookie values and decodes them back, under one [`Mode`] and
/// [`KeyRing`].
///
/// ```
/// use std::time::Duration;
/// use cookie_session::{Codec, Key, KeyRing, Mode, Stamp};
/// use serde_json::{Map, Value, json};
/// use time::OffsetDateTime;
///
/// let codec = Codec::new(Mode::Encrypted, KeyRing::new(Key::generate()?));
/// let now = OffsetDateTime::now_utc();
/// let stamp = Stamp::new(now, Duration::from_secs(20 * 60), Duration::from_secs(14 * 86_400))?;
///
/// let value = codec.encode("session", &json!({"user_id": 42}), &stamp)?;
/// let opened = codec.decode::<Map<String, Value>>("session", &value, now)?;
/// assert_eq!(opened.value["user_id"], 42);
/// assert_eq!(opened.stamp, stamp);
///
/// // The same value presented as another cookie fails authentication.
/// assert!(codec.decode::<Map<String, Value>>("admin", &value, now).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Codec {
    mode: Mode,
    ring: KeyRing,
    max_size: usize,
    max_depth: usize,
    clock_skew: Duration,
}

/// A decoded cookie: the value and what the cookie said about it, all authenticated.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Opened<T> {
    /// The decoded value.
    pub value: T,
    /// The session id and validity window.
    pub stamp: Stamp,
    /// The id of the key that authenticated the cookie.
    pub key_id: KeyId,
    /// Whether that key is the ring's current key or an older one.
    pub key_age: KeyAge,
}

impl<T> Opened<T> {
    /// True when the cookie was opened with an older key of the ring: re-issue it under the
    /// current key so that the older key can be retired.
    #[must_use]
    pub fn opened_with_older_key(&self) -> bool {
        self.key_age == KeyAge::Older
    }
}

impl Codec {
    /// A codec with the default limits: [`DEFAULT_MAX_SIZE`], [`DEFAULT_MAX_DEPTH`] and
    /// [`DEFAULT_CLOCK_SKEW`].
    #[must_use]
    pub fn new(mode: Mode, ring: KeyRing) -> Self {
        Self {
            mode,
            ring,
            max_size: DEFAULT_MAX_SIZE,
            max_depth: DEFAULT_MAX_DEPTH,
            clock_skew: DEFAULT_CLOCK_SKEW,
        }
    }

    /// Limits `name.len() + value.len()` of encoded and decoded cookies. Default 4096, the
    /// most that current browsers store; raising it produces cookies browsers drop, so only
    /// lower it (e.g. to leave room for other cookies under the request-header limit).
    #[must_use]
    pub const fn with_max_size(mut self, bytes: usize) -> Self {
        self.max_size = bytes;
        self
    }

    /// Limits how deeply the JSON may nest arrays and objects. Default 32; the check runs
    /// before parsing, so deep input costs no recursion.
    #[must_use]
    pub const fn with_max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth;
        self
    }

    /// How far in the future a cookie's issue time may lie (servers' clocks differ).
    /// Default 60 seconds; a larger value lets a cookie outlive its idle timeout by as much.
    #[must_use]
    pub const fn with_clock_skew(mut self, skew: Duration) -> Self {
        self.clock_skew = skew;
        self
    }

    /// The mode this codec encodes and accepts.
    #[must_use]
    pub const fn mode(&self) -> Mode {
        self.mode
    }

    /// The key ring.
    #[must_use]
    pub const fn key_ring(&self) -> &KeyRing {
        &self.ring
    }

    /// The limit on `name.len() + value.len()`.
    #[must_use]
    pub const fn max_size(&self) -> usize {
        self.max_size
    }

    /// The limit on JSON nesting.
    #[must_use]
    pub const fn max_depth(&self) -> usize {
        self.max_depth
    }

    /// Encodes `value` as JSON into a cookie value for the cookie `name`, under the ring's
    /// current key. The result contains only base64url characters.
    ///
    /// # Errors
    /// [`EncodeError::InvalidName`] if `name` is not an RFC 6265 token,
    /// [`EncodeError::Serialize`] if `value` cannot be serialized as JSON,
    /// [`EncodeError::TooLarge`] if `name.len()` plus the value's length would exceed the
    /// size limit, and [`EncodeError::TooDeep`] if the JSON nests deeper than the depth
    /// limit. Nothing is returned on error.
    pub fn encode<T: Serialize + ?Sized>(
        &self,
        name: &str,
        value: &T,
        stamp: &Stamp,
    ) -> Result<String, EncodeError> {
        self.encode_json(name, stamp, |buf| serde_json::to_writer(buf, value))
    }

    /// [`encode`](Self::encode) with the JSON written by `write_json` (the session map
    /// writes its unchanged values as their loaded text).
    pub(crate) fn encode_json(
        &self,
        name: &str,
        stamp: &Stamp,
        write_json: impl FnOnce(&mut Vec<u8>) -> serde_json::Result<()>,
    ) -> Result<String, EncodeError> {
        self.encode_with_nonce(name, write_json, stamp, |nonce| {
            rand::rng().fill_bytes(nonce);
        })
    }

    /// [`encode`](Self::encode) with the nonce chosen by `fill_nonce`. Private: a caller
    /// choosing nonces could repeat one. The known-answer tests use it to reproduce vectors.
    fn encode_with_nonce(
        &self,
        name: &str,
        write_json: impl FnOnce(&mut Vec<u8>) -> serde_json::Result<()>,
        stamp: &Stamp,
        fill_nonce: impl FnOnce(&mut [u8]),
    ) -> Result<String, EncodeError> {
        if !format::is_valid_name(name) {
            return Err(EncodeError::InvalidName);
        }
        with_scratch(|buf| self.encode_into(buf, name, write_json, stamp, fill_nonce))
    }

    fn encode_into(
        &self,
        buf: &mut Vec<u8>,
        name: &str,
        write_json: impl FnOnce(&mut Vec<u8>) -> serde_json::Result<()>,
        stamp: &Stamp,
        fill_nonce: impl FnOnce(&mut [u8]),
    ) -> Result<String, EncodeError> {
        let key = self.ring.current();
        let (nonce_len, tag_len) = self.mode.overhead();

        // [name prefix | header | nonce | JSON | tag]; the base64url text covers all but
        // the name prefix, and `AD = name prefix | header` is one contiguous slice.
        format::write_name_prefix(buf, name);
        let prefix_len = buf.len();
        Header::current(self.mode, key.id, *stamp).write(buf);
        let ad_len = buf.len();
        buf.resize(ad_len + nonce_len, 0);
        fill_nonce(&mut buf[ad_len..]);
        let payload_at = buf.len();
        write_json(&mut *buf).map_err(|e| EncodeError::Serialize(e.into()))?;

        // Refuse before doing any crypto; the size is exact, not an estimate.
        let value_len = format::encoded_len(buf.len() - prefix_len + tag_len);
        let size = name.len().saturating_add(value_len);
        if size > self.max_size {
            return Err(EncodeError::TooLarge {
                size,
                limit: self.max_size,
            });
        }
        if !json::depth_within(&buf[payload_at..], self.max_depth) {
            return Err(EncodeError::TooDeep {
                limit: self.max_depth,
            });
        }

        match self.mode {
            Mode::Signed => {
                let tag = key.mac.clone().chain_update(&*buf).finalize().into_bytes();
                buf.extend_from_slice(&tag);
            }
            Mode::Encrypted => {
                let (ad_and_nonce, plaintext) = buf.split_at_mut(payload_at);
                let (ad, nonce) = ad_and_nonce.split_at(ad_len);
                let tag = seal(key, nonce, ad, plaintext).ok_or(EncodeError::TooLarge {
                    size,
                    limit: self.max_size,
                })?;
                buf.extend_from_slice(&tag);
            }
        }

        let mut out = String::with_capacity(value_len);
        base64_simd::URL_SAFE_NO_PAD.encode_append(&buf[prefix_len..], &mut out);
        debug_assert_eq!(out.len(), value_len);
        Ok(out)
    }

    /// Decodes and authenticates the cookie value `value` of the cookie `name` at time
    /// `now`, and deserializes its JSON as `T` (a session map is
    /// `serde_json::Map<String, serde_json::Value>`).
    ///
    /// # Errors
    /// In the order checked: [`DecodeError::TooLarge`], [`DecodeError::InvalidName`],
    /// [`DecodeError::Malformed`], [`DecodeError::UnsupportedVersion`],
    /// [`DecodeError::WrongMode`], [`DecodeError::UnknownKey`], [`DecodeError::Invalid`]
    /// (authentication failed), then, for an authentic cookie,
    /// [`DecodeError::IssuedInFuture`], [`DecodeError::Expired`], [`DecodeError::TooDeep`]
    /// and [`DecodeError::Payload`].
    pub fn decode<T: DeserializeOwned>(
        &self,
        name: &str,
        value: &str,
        now: OffsetDateTime,
    ) -> Result<Opened<T>, DecodeError> {
        self.decode_json(name, value, now, |json, max_depth| {
            if !json::depth_within(json, max_depth) {
                return Err(DecodeError::TooDeep { limit: max_depth });
            }
            serde_json::from_slice(json).map_err(|e| DecodeError::Payload(e.into()))
        })
    }

    /// [`decode`](Self::decode) with the authentic JSON and the depth limit handed to
    /// `read_json`, which must enforce the limit.
    pub(crate) fn decode_json<T>(
        &self,
        name: &str,
        value: &str,
        now: OffsetDateTime,
        read_json: impl FnOnce(&[u8], usize) -> Result<T, DecodeError>,
    ) -> Result<Opened<T>, DecodeError> {
        let size = name.len().saturating_add(value.len());
        if size > self.max_size {
            return Err(DecodeError::TooLarge {
                size,
                limit: self.max_size,
            });
        }
        if !format::is_valid_name(name) {
            return Err(DecodeError::InvalidName);
        }
        with_scratch(|buf| self.decode_from(buf, name, value, now, read_json))
    }

    fn decode_from<T>(
        &self,
        buf: &mut Vec<u8>,
        name: &str,
        value: &str,
        now: OffsetDateTime,
        read_json: impl FnOnce(&[u8], usize) -> Result<T, DecodeError>,
    ) -> Result<Opened<T>, DecodeError> {
        format::write_name_prefix(buf, name);
        let prefix_len = buf.len();
        format::decode_base64(value, buf)?;
        let header = Header::parse(&buf[prefix_len..])?;
        if header.mode != self.mode {
            return Err(DecodeError::WrongMode {
                found: header.mode,
                expected: self.mode,
            });
        }
        let (key, key_age) = self
            .ring
            .find(header.key_id)
            .ok_or(DecodeError::UnknownKey(header.key_id))?;

        // `Header::parse` checked that the envelope holds header, nonce and tag.
        let (nonce_len, tag_len) = self.mode.overhead();
        let ad_len = prefix_len + header.len();
        let payload_at = ad_len + nonce_len;
        let tag_at = buf.len() - tag_len;
        match self.mode {
            Mode::Signed => {
                let (message, tag) = buf.split_at(tag_at);
                // `verify_slice` compares in constant time and requires the full 32 bytes.
                key.mac
                    .clone()
                    .chain_update(message)
                    .verify_slice(tag)
                    .map_err(|_| DecodeError::Invalid)?;
            }
            Mode::Encrypted => {
                let (ad_and_nonce, sealed) = buf.split_at_mut(payload_at);
                let (ad, nonce) = ad_and_nonce.split_at(ad_len);
                let (ciphertext, tag) = sealed.split_at_mut(sealed.len() - GCM_TAG_LEN);
                open(key, nonce, ad, ciphertext, tag).ok_or(DecodeError::Invalid)?;
            }
        }

        // Authentic from here on.
        let stamp = header.stamp;
        if !stamp.is_consistent() {
            return Err(DecodeError::Malformed);
        }
        let now = u64::try_from(now.unix_timestamp()).unwrap_or(0);
        if stamp.issued_at > now.saturating_add(self.clock_skew.as_secs()) {
            return Err(DecodeError::IssuedInFuture);
        }
        stamp.check(now).map_err(DecodeError::Expired)?;
        let value = read_json(&buf[payload_at..tag_at], self.max_depth)?;
        Ok(Opened {
            value,
            stamp,
            key_id: header.key_id,
            key_age,
        })
    }
}

/// Encrypts `plaintext` in place; `None` only if it exceeds XAES-256-GCM's 64 GiB limit.
fn seal(
    key: &Prepared,
    nonce: &[u8],
    ad: &[u8],
    plaintext: &mut [u8],
) -> Option<[u8; GCM_TAG_LEN]> {
    key.cipher.seal(nonce.try_into().ok()?, ad, plaintext)
}

/// Decrypts `ciphertext` in place if `tag` authenticates it; `None` otherwise.
fn open(key: &Prepared, nonce: &[u8], ad: &[u8], ciphertext: &mut [u8], tag: &[u8]) -> Option<()> {
    key.cipher
        .open(nonce.try_into().ok()?, ad, ciphertext, tag.try_into().ok()?)
}

impl fmt::Debug for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Codec")
            .field("mode", &self.mode)
            .field("ring", &self.ring)
            .field("max_size", &self.max_size)
            .field("max_depth", &self.max_depth)
            .field("clock_skew", &self.clock_skew)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    //! Known-answer vectors for encrypted mode need a chosen nonce, which only this
    //! module can inject; signed mode is deterministic and is checked from `tests/`.

    use super::*;
    use crate::Key;

    #[test]
    fn encrypted_vectors_reproduce_exactly() {
        // Version 2 is what is written; version 1 vectors are only read (tests/vectors.rs).
        let file: serde_json::Value =
            serde_json::from_str(include_str!("../tests/vectors/v2.json")).unwrap();
        let mut checked = 0;
        for v in file["vectors"].as_array().unwrap() {
            if v["mode"] != "encrypted" || v["expect"] != "ok" {
                continue;
            }
            let ring = KeyRing::new(Key::from_base64url(v["key"].as_str().unwrap()).unwrap());
            let codec = Codec::new(Mode::Encrypted, ring);
            let stamp = Stamp {
                id: crate::SessionId(hex(v["session_id"].as_str().unwrap()).try_into().unwrap()),
                issued_at: v["issued_at"].as_u64().unwrap(),
                idle_deadline: v["idle_deadline"].as_u64().unwrap(),
                absolute_deadline: v["absolute_deadline"].as_u64().unwrap(),
                persistence: match v["persistence"].as_str() {
                    None => None,
                    Some("persistent") => Some(crate::Persistence::Persistent),
                    Some(_) => Some(crate::Persistence::BrowserSession),
                },
            };
            let payload: serde_json::Value =
                serde_json::from_str(v["payload"].as_str().unwrap()).unwrap();
            let nonce = hex(v["nonce"].as_str().unwrap());
            let value = codec
                .encode_with_nonce(
                    v["cookie_name"].as_str().unwrap(),
                    |buf| serde_json::to_writer(buf, &payload),
                    &stamp,
                    |n| n.copy_from_slice(&nonce),
                )
                .unwrap();
            assert_eq!(value, v["value"].as_str().unwrap(), "vector {}", v["name"]);
            checked += 1;
        }
        assert!(checked >= 4, "expected encrypted vectors, found {checked}");
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
