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

use crate::wire::compression::{self, InflateError};
use crate::wire::error::{DecodeError, EncodeError};
use crate::wire::format::{self, GCM_TAG_LEN, Header, MAX_CHUNKS, Mode};
use crate::wire::json;
use crate::wire::key::{KeyAge, KeyId, KeyRing, Prepared};
use crate::wire::stamp::Stamp;

/// The default limit on `name.len() + value.len()`: the RFC 6265bis limit that Chromium
/// and Firefox enforce by silently dropping larger cookies.
pub const DEFAULT_MAX_SIZE: usize = 4096;

/// The default limit on JSON nesting (a flat object is 1).
pub const DEFAULT_MAX_DEPTH: usize = 32;

/// The default limit on all of a split session's cookies together (`name + value` summed):
/// web servers commonly refuse a request header line over 8 KiB (nginx, Apache) or all
/// headers over 8 KiB (Tomcat), and the `Cookie` header also carries the site's other
/// cookies, so 2 KiB of that is left to them.
pub const DEFAULT_MAX_TOTAL_SIZE: usize = 6 * 1024;

/// The default maximum session size: the most bytes of JSON a session may hold, and so
/// the most a compressed cookie may inflate to.
pub const DEFAULT_MAX_SESSION_SIZE: usize = 64 * 1024;

/// The default tolerance for a cookie issued slightly in the future by a server whose
/// clock runs ahead.
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(60);

thread_local! {
    /// Per-thread working buffer for encode and decode: after the first few cookies, neither
    /// allocates for its intermediate bytes (only the returned value or map allocates).
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// The second buffer of a compressed cookie: the deflate stream when encoding, the
    /// inflated JSON when decoding.
    static SECOND: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A buffer that is kept per thread but not grown without bound by one huge cookie.
const SCRATCH_KEEP: usize = 64 * 1024;

/// Runs `f` with the thread's empty scratch buffer. Re-entrant use (a `Serialize` impl that
/// itself encodes a cookie) gets a fresh buffer instead of a panic. The buffer holds the
/// last cookie's bytes until the next use: the session data, not key material.
fn with_scratch<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    with_buffer(&SCRATCH, f)
}

fn with_buffer<R>(
    buffer: &'static std::thread::LocalKey<RefCell<Vec<u8>>>,
    f: impl FnOnce(&mut Vec<u8>) -> R,
) -> R {
    buffer.with(|cell| match cell.try_borrow_mut() {
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
    compression: Compression,
    max_cookies: usize,
    max_total: usize,
    max_session: usize,
}

/// When the codec compresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    Off,
    /// In signed mode only: there the JSON is readable anyway, so its compressed length
    /// reveals nothing new.
    SignedOnly,
    /// In both modes: in encrypted mode the cookie's length then depends on the data's
    /// redundancy (see SECURITY.md).
    LeakingLength,
}

/// A cookie value split into the pieces that go into the cookies `name`, `name.2`, ...
/// (see [`chunk_name`](crate::chunk_name)); a value that fits one cookie is one piece.
pub(crate) struct Pieces {
    text: String,
    /// Where each piece ends in `text`.
    ends: [usize; MAX_CHUNKS],
    count: usize,
}

impl Pieces {
    /// A value that is one piece (another format's, which is never split).
    pub(crate) fn single(text: String) -> Self {
        Self {
            ends: [text.len(); MAX_CHUNKS],
            text,
            count: 1,
        }
    }

    /// The pieces in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        let mut start = 0;
        self.ends[..self.count].iter().map(move |&end| {
            let piece = self.text.get(start..end).unwrap_or_default();
            start = end;
            piece
        })
    }

    /// The whole value, when it is one piece.
    fn into_single(self) -> Option<String> {
        (self.count == 1).then_some(self.text)
    }
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
            compression: Compression::Off,
            max_cookies: 1,
            max_total: DEFAULT_MAX_TOTAL_SIZE,
            max_session: DEFAULT_MAX_SESSION_SIZE,
        }
    }

    /// Compresses the JSON (raw deflate) when that makes the cookie smaller, **in signed
    /// mode**, where the data is readable anyway. In encrypted mode this alone compresses
    /// nothing: see [`with_compression_leaking_length`](Self::with_compression_leaking_length).
    /// Compressed cookies are always read, whatever this setting, up to the
    /// [maximum session size](Self::with_max_session_size).
    #[must_use]
    pub const fn with_compression(mut self) -> Self {
        self.compression = Compression::SignedOnly;
        self
    }

    /// Compresses in both modes, **accepting that in encrypted mode the cookie's length
    /// reveals how compressible the data is**. When a session holds both a secret and data
    /// an attacker can choose (a search term, a form field echoed into the session), the
    /// attacker can learn the secret a few bytes at a time by watching the cookie's length
    /// change (the CRIME/BREACH attacks on compressed TLS and HTTP). Use it only when no
    /// attacker-influenced value shares a session with a secret. SECURITY.md has the
    /// details.
    #[must_use]
    pub const fn with_compression_leaking_length(mut self) -> Self {
        self.compression = Compression::LeakingLength;
        self
    }

    /// Splits a value too large for one cookie across up to `cookies` cookies (`name`,
    /// `name.2`, ... [`chunk_name`](crate::chunk_name)), 1 to [`MAX_CHUNKS`]; default 1 (no
    /// splitting). Their count and order are authenticated with the value, so pieces cannot
    /// be dropped, reordered, repeated or mixed between sessions. Applies to
    /// [`encode_chunks`](Self::encode_chunks) and [`decode_chunks`](Self::decode_chunks).
    #[must_use]
    pub const fn with_max_cookies(mut self, cookies: usize) -> Self {
        self.max_cookies = if cookies < 1 {
            1
        } else if cookies > MAX_CHUNKS {
            MAX_CHUNKS
        } else {
            cookies
        };
        self
    }

    /// Limits all of a split value's cookies together (`name + value` summed). Default
    /// [`DEFAULT_MAX_TOTAL_SIZE`].
    #[must_use]
    pub const fn with_max_total_size(mut self, bytes: usize) -> Self {
        self.max_total = bytes;
        self
    }

    /// Limits the session's JSON: encoding refuses more, and a compressed cookie stops
    /// inflating there. Default [`DEFAULT_MAX_SESSION_SIZE`].
    #[must_use]
    pub const fn with_max_session_size(mut self, bytes: usize) -> Self {
        self.max_session = bytes;
        self
    }

    /// The most cookies one value may be split across.
    #[must_use]
    pub const fn max_cookies(&self) -> usize {
        self.max_cookies
    }

    /// Whether this codec compresses what it encodes.
    const fn compresses(&self) -> bool {
        match self.compression {
            Compression::Off => false,
            Compression::SignedOnly => matches!(self.mode, Mode::Signed),
            Compression::LeakingLength => true,
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
        let pieces = self.encode_with_nonce(name, write_json, stamp, 1, |nonce| {
            rand::rng().fill_bytes(nonce);
        })?;
        Ok(pieces.into_single().unwrap_or_default())
    }

    /// Encodes `value` like [`encode`](Self::encode), split across as many cookies as it
    /// needs, up to [`with_max_cookies`](Self::with_max_cookies): the first piece is the
    /// value of cookie `name`, piece `i` (from 2) that of [`chunk_name(name,
    /// i)`](crate::chunk_name). A value that fits one cookie is one piece, exactly what
    /// `encode` returns.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use cookie_session::{Codec, Key, KeyRing, Mode, Stamp, chunk_name};
    /// # let now = cookie_session::time::OffsetDateTime::now_utc();
    /// # let stamp = Stamp::new(now, Duration::from_secs(1200), Duration::from_secs(86_400))?;
    /// let codec = Codec::new(Mode::Encrypted, KeyRing::new(Key::generate()?))
    ///     .with_max_cookies(3)
    ///     .with_max_total_size(12_000);
    /// let big = serde_json::json!({ "notes": "x".repeat(6000) });
    /// let pieces = codec.encode_chunks("session", &big, &stamp)?;
    /// assert_eq!(pieces.len(), 2); // `session` and `session.2`
    /// assert!(pieces.iter().enumerate().all(|(i, p)| chunk_name("session", i + 1).len() + p.len() <= 4096));
    ///
    /// let values: Vec<&str> = pieces.iter().map(String::as_str).collect();
    /// let opened = codec.decode_chunks::<serde_json::Value>("session", &values, now)?;
    /// assert_eq!(opened.value, big);
    /// // Missing, reordered or foreign pieces are refused.
    /// assert!(codec.decode_chunks::<serde_json::Value>("session", &values[..1], now).is_err());
    /// assert!(codec.decode_chunks::<serde_json::Value>("session", &[values[1], values[0]], now).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`encode`](Self::encode); [`EncodeError::TooLarge`] when the value needs more
    /// cookies than allowed or more bytes than the total limit.
    pub fn encode_chunks<T: Serialize + ?Sized>(
        &self,
        name: &str,
        value: &T,
        stamp: &Stamp,
    ) -> Result<Vec<String>, EncodeError> {
        let pieces = self.encode_pieces(name, stamp, |buf| serde_json::to_writer(buf, value))?;
        Ok(pieces.iter().map(str::to_owned).collect())
    }

    /// [`encode_chunks`](Self::encode_chunks) with the JSON written by `write_json`.
    pub(crate) fn encode_pieces(
        &self,
        name: &str,
        stamp: &Stamp,
        write_json: impl FnOnce(&mut Vec<u8>) -> serde_json::Result<()>,
    ) -> Result<Pieces, EncodeError> {
        self.encode_with_nonce(name, write_json, stamp, self.max_cookies, |nonce| {
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
        max_cookies: usize,
        fill_nonce: impl FnOnce(&mut [u8]),
    ) -> Result<Pieces, EncodeError> {
        if !format::is_valid_name(name) {
            return Err(EncodeError::InvalidName);
        }
        with_scratch(|buf| self.encode_into(buf, name, write_json, stamp, max_cookies, fill_nonce))
    }

    fn encode_into(
        &self,
        buf: &mut Vec<u8>,
        name: &str,
        write_json: impl FnOnce(&mut Vec<u8>) -> serde_json::Result<()>,
        stamp: &Stamp,
        max_cookies: usize,
        fill_nonce: impl FnOnce(&mut [u8]),
    ) -> Result<Pieces, EncodeError> {
        let key = self.ring.current();
        let (nonce_len, tag_len) = self.mode.overhead();

        // [name prefix | header | nonce | payload | tag]; the base64url text covers all but
        // the name prefix, and `AD = name prefix | header` is one contiguous slice.
        format::write_name_prefix(buf, name);
        let prefix_len = buf.len();
        let mut header = Header::current(self.mode, key.id, *stamp);
        header.write(buf);
        let ad_len = buf.len();
        buf.resize(ad_len + nonce_len, 0);
        fill_nonce(&mut buf[ad_len..]);
        let payload_at = buf.len();
        write_json(&mut *buf).map_err(|e| EncodeError::Serialize(e.into()))?;

        let json_len = buf.len() - payload_at;
        if json_len > self.max_session {
            return Err(EncodeError::SessionTooLarge {
                size: json_len,
                limit: self.max_session,
            });
        }
        if !json::depth_within(&buf[payload_at..], self.max_depth) {
            return Err(EncodeError::TooDeep {
                limit: self.max_depth,
            });
        }
        if self.compresses() {
            header.compressed = with_buffer(&SECOND, |packed| {
                let smaller = compression::compress(&buf[payload_at..], packed);
                if smaller {
                    buf.truncate(payload_at);
                    buf.extend_from_slice(packed);
                }
                smaller
            });
        }

        // Refuse before doing any crypto; the sizes are exact, not estimates.
        let value_len = format::encoded_len(buf.len() - prefix_len + tag_len);
        let (ends, count) = self.split(name.len(), value_len, max_cookies)?;
        header.chunks = count;
        header.rewrite_flags(&mut buf[prefix_len..]);

        match self.mode {
            Mode::Signed => {
                let tag = key.mac.clone().chain_update(&*buf).finalize().into_bytes();
                buf.extend_from_slice(&tag);
            }
            Mode::Encrypted => {
                let (ad_and_nonce, plaintext) = buf.split_at_mut(payload_at);
                let (ad, nonce) = ad_and_nonce.split_at(ad_len);
                let tag = seal(key, nonce, ad, plaintext).ok_or(EncodeError::SessionTooLarge {
                    size: plaintext.len(),
                    limit: self.max_session,
                })?;
                buf.extend_from_slice(&tag);
            }
        }

        let mut text = String::with_capacity(value_len);
        base64_simd::URL_SAFE_NO_PAD.encode_append(&buf[prefix_len..], &mut text);
        debug_assert_eq!(text.len(), value_len);
        Ok(Pieces { text, ends, count })
    }

    /// Where the pieces of a `value_len`-character value end, filling each cookie in turn
    /// (the last may be filled to the byte, the others to a multiple of 4 characters: see
    /// [`format::chunk_capacity`]), and how many there are.
    fn split(
        &self,
        name_len: usize,
        value_len: usize,
        max_cookies: usize,
    ) -> Result<([usize; MAX_CHUNKS], usize), EncodeError> {
        let mut ends = [value_len; MAX_CHUNKS];
        let one = name_len.saturating_add(value_len);
        if max_cookies <= 1 || one <= self.max_size {
            return if one <= self.max_size {
                Ok((ends, 1))
            } else {
                Err(EncodeError::TooLarge {
                    size: one,
                    limit: self.max_size,
                })
            };
        }
        let (mut end, mut size, mut count) = (0, value_len, 0);
        while end < value_len {
            let position = count + 1;
            let name = format::chunk_name_len(name_len, position);
            let capacity = format::chunk_capacity(name_len, position, self.max_size);
            if capacity == 0 {
                // The name leaves no room for a value.
                return Err(EncodeError::TooLarge {
                    size: one,
                    limit: self.max_size,
                });
            }
            end = if value_len - end <= self.max_size - name {
                value_len
            } else {
                end + capacity
            };
            size += name;
            if let Some(slot) = ends.get_mut(count) {
                *slot = end;
            }
            count += 1;
        }
        if count > max_cookies {
            return Err(EncodeError::TooLarge {
                size,
                limit: self
                    .max_size
                    .saturating_mul(max_cookies)
                    .min(self.max_total),
            });
        }
        if size > self.max_total {
            return Err(EncodeError::TooLarge {
                size,
                limit: self.max_total,
            });
        }
        Ok((ends, count))
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

    /// Decodes a value split across several cookies: `values[0]` from cookie `name`, then
    /// `values[i - 1]` from [`chunk_name(name, i)`](crate::chunk_name). Exactly the pieces
    /// the first one announces are read (surplus ones, left over from a larger session, are
    /// ignored); all of them are authenticated as one value. A value that is not split
    /// needs only `values[0]`. See [`encode_chunks`](Self::encode_chunks).
    ///
    /// # Errors
    /// As [`decode`](Self::decode), and before authentication
    /// [`DecodeError::TooManyChunks`] or [`DecodeError::MissingChunk`] when the first piece
    /// announces more pieces than allowed or than were given.
    pub fn decode_chunks<T: DeserializeOwned>(
        &self,
        name: &str,
        values: &[&str],
        now: OffsetDateTime,
    ) -> Result<Opened<T>, DecodeError> {
        self.decode_pieces(name, values, now, |json, max_depth| {
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
        self.decode_pieces(name, &[value], now, read_json)
    }

    /// [`decode_chunks`](Self::decode_chunks) with the authentic JSON handed to `read_json`.
    pub(crate) fn decode_pieces<T>(
        &self,
        name: &str,
        pieces: &[&str],
        now: OffsetDateTime,
        read_json: impl FnOnce(&[u8], usize) -> Result<T, DecodeError>,
    ) -> Result<Opened<T>, DecodeError> {
        let first = pieces.first().copied().unwrap_or_default();
        let size = name.len().saturating_add(first.len());
        if size > self.max_size {
            return Err(DecodeError::TooLarge {
                size,
                limit: self.max_size,
            });
        }
        if !format::is_valid_name(name) {
            return Err(DecodeError::InvalidName);
        }
        with_scratch(|buf| self.decode_from(buf, name, pieces, now, read_json))
    }

    fn decode_from<T>(
        &self,
        buf: &mut Vec<u8>,
        name: &str,
        pieces: &[&str],
        now: OffsetDateTime,
        read_json: impl FnOnce(&[u8], usize) -> Result<T, DecodeError>,
    ) -> Result<Opened<T>, DecodeError> {
        format::write_name_prefix(buf, name);
        let prefix_len = buf.len();
        let first = pieces.first().copied().unwrap_or_default();
        format::decode_base64(first, buf)?;
        let header = Header::parse(&buf[prefix_len..])?;
        if header.mode != self.mode {
            return Err(DecodeError::WrongMode {
                found: header.mode,
                expected: self.mode,
            });
        }
        if header.chunks > 1 {
            self.append_pieces(buf, name.len(), pieces, header.chunks)?;
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
        let payload = &buf[payload_at..tag_at];
        let value = if header.compressed {
            with_buffer(&SECOND, |json| {
                compression::inflate(payload, json, self.max_session).map_err(|e| match e {
                    InflateError::TooLarge => DecodeError::SessionTooLarge {
                        limit: self.max_session,
                    },
                    InflateError::Corrupt => DecodeError::CorruptCompression,
                })?;
                read_json(json, self.max_depth)
            })?
        } else {
            read_json(payload, self.max_depth)?
        };
        Ok(Opened {
            value,
            stamp,
            key_id: header.key_id,
            key_age,
        })
    }

    /// Checks the further pieces of a value split across `count` cookies, with the same
    /// limits [`split`](Self::split) keeps, and appends their bytes to `buf`.
    fn append_pieces(
        &self,
        buf: &mut Vec<u8>,
        name_len: usize,
        pieces: &[&str],
        count: usize,
    ) -> Result<(), DecodeError> {
        if count > self.max_cookies {
            return Err(DecodeError::TooManyChunks {
                count,
                limit: self.max_cookies,
            });
        }
        if pieces.len() < count {
            return Err(DecodeError::MissingChunk {
                position: pieces.len() + 1,
                count,
            });
        }
        let mut total = 0usize;
        for (index, piece) in pieces[..count].iter().enumerate() {
            let position = index + 1;
            let size = format::chunk_name_len(name_len, position).saturating_add(piece.len());
            total = total.saturating_add(size);
            if size > self.max_size || total > self.max_total {
                return Err(DecodeError::TooLarge {
                    size: if size > self.max_size { size } else { total },
                    limit: if size > self.max_size {
                        self.max_size
                    } else {
                        self.max_total
                    },
                });
            }
            // Every piece but the last is a whole number of base64 quanta, so each decodes
            // on its own (the first already has).
            if position < count && piece.len() % 4 != 0 {
                return Err(DecodeError::Malformed);
            }
            if position > 1 {
                format::decode_base64(piece, buf)?;
            }
        }
        Ok(())
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
            serde_json::from_str(include_str!("../../tests/vectors/v2.json")).unwrap();
        let mut checked = 0;
        for v in file["vectors"].as_array().unwrap() {
            // Compressed vectors are only read: any valid deflate stream is a correct
            // encoding, and Python's zlib and zlib-rs need not pick the same one.
            if v["mode"] != "encrypted" || v["expect"] != "ok" || v["compressed"] == true {
                continue;
            }
            let ring = KeyRing::new(Key::from_base64url(v["key"].as_str().unwrap()).unwrap());
            let max_cookies = v["max_cookies"]
                .as_u64()
                .map_or(1, |n| usize::try_from(n).unwrap());
            let codec = Codec::new(Mode::Encrypted, ring)
                .with_max_cookies(max_cookies)
                .with_max_total_size(
                    v["max_total"]
                        .as_u64()
                        .map_or(DEFAULT_MAX_TOTAL_SIZE, |n| usize::try_from(n).unwrap()),
                );
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
            let pieces = codec
                .encode_with_nonce(
                    v["cookie_name"].as_str().unwrap(),
                    |buf| serde_json::to_writer(buf, &payload),
                    &stamp,
                    max_cookies,
                    |n: &mut [u8]| n.copy_from_slice(&nonce),
                )
                .unwrap();
            let pieces: Vec<&str> = pieces.iter().collect();
            let expected: Vec<&str> = match v["values"].as_array() {
                Some(values) => values.iter().map(|p| p.as_str().unwrap()).collect(),
                None => vec![v["value"].as_str().unwrap()],
            };
            assert_eq!(pieces, expected, "vector {}", v["name"]);
            checked += 1;
        }
        assert!(checked >= 5, "expected encrypted vectors, found {checked}");
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
