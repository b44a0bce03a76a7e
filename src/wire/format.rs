//! The wire format, versions 1 and 2: byte layout, parsing, and inspection without a key.
//!
//! FORMAT.md is the normative description; in short, a cookie value is the unpadded
//! base64url encoding of
//!
//! ```text
//! signed:    [0x03 | key id 4 | session id 16 | iat 8 | idle 8 | abs 8 | flags 1 | JSON       | HMAC 32]
//! encrypted: [0x04 | key id 4 | session id 16 | iat 8 | idle 8 | abs 8 | flags 1 | nonce 24 | ciphertext | tag 16]
//! ```
//!
//! and everything but the tag is authenticated together with the cookie name:
//! `AD = u16_be(len(name)) || name || header`. Version 1 (`0x01`/`0x02`) is the same
//! without the flags byte; it is still read, and no longer written.

use std::fmt;

use crate::wire::error::DecodeError;
use crate::wire::key::KeyId;
use crate::wire::stamp::{Persistence, SessionId, Stamp};

/// How a cookie protects its data. The mode is the cookie's first byte, and each mode has
/// its own derived key, so a cookie of one mode can never be accepted as the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mode {
    /// HMAC-SHA256: tamper-proof, but the JSON data is **readable by the client** (it is
    /// only base64url-encoded). Do not put secrets in a signed session.
    Signed,
    /// XAES-256-GCM: tamper-proof and confidential. The metadata header (key id, session
    /// id, times) stays readable; the data does not.
    Encrypted,
}

impl Mode {
    /// The format byte that starts a cookie of this mode, as written today (version 2).
    pub(crate) const fn format_byte(self) -> u8 {
        match self {
            Self::Signed => FORMAT_V2_SIGNED,
            Self::Encrypted => FORMAT_V2_ENCRYPTED,
        }
    }

    /// The bytes between the header and the payload (the nonce), and after it (the tag).
    pub(crate) const fn overhead(self) -> (usize, usize) {
        match self {
            Self::Signed => (0, SIGNED_TAG_LEN),
            Self::Encrypted => (NONCE_LEN, GCM_TAG_LEN),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Signed => "signed",
            Self::Encrypted => "encrypted",
        })
    }
}

pub(crate) const FORMAT_V1_SIGNED: u8 = 0x01;
pub(crate) const FORMAT_V1_ENCRYPTED: u8 = 0x02;
pub(crate) const FORMAT_V2_SIGNED: u8 = 0x03;
pub(crate) const FORMAT_V2_ENCRYPTED: u8 = 0x04;

/// Version 1: format 1 + key id 4 + session id 16 + three u64 times 24.
pub(crate) const HEADER_V1_LEN: usize = 45;
/// Version 2: version 1's header and a flags byte.
pub(crate) const HEADER_LEN: usize = 46;

/// Flags (version 2): the session chose its own persistence...
const FLAG_PERSISTENCE_SET: u8 = 0x01;
/// ...and it is a persistent cookie (only with `FLAG_PERSISTENCE_SET`).
const FLAG_PERSISTENT: u8 = 0x02;
/// The payload is raw deflate of the JSON, not the JSON itself.
const FLAG_COMPRESSED: u8 = 0x04;
/// Bits 3-5: the number of cookies the value is split across, minus one.
const CHUNKS_SHIFT: u32 = 3;
const CHUNKS_MASK: u8 = 0x38;
/// Bits 6-7 are unassigned and must be zero.
const FLAGS_RESERVED: u8 = 0xc0;
/// The most cookies one session value can be split across (three bits of the flags).
pub const MAX_CHUNKS: usize = 8;
/// The offset of the flags byte in a version-2 envelope.
pub(crate) const FLAGS_AT: usize = HEADER_LEN - 1;
pub(crate) const NONCE_LEN: usize = crate::wire::xaes::NONCE_LEN;
pub(crate) const SIGNED_TAG_LEN: usize = 32;
pub(crate) const GCM_TAG_LEN: usize = crate::wire::xaes::TAG_LEN;

/// The parsed fixed-size header of a cookie.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub(crate) version: u8,
    pub(crate) mode: Mode,
    pub(crate) key_id: KeyId,
    pub(crate) stamp: Stamp,
    /// The payload is compressed (version 2 flag).
    pub(crate) compressed: bool,
    /// How many cookies the value is split across, 1 to [`MAX_CHUNKS`].
    pub(crate) chunks: usize,
}

impl Header {
    /// A header as written today (version 2).
    pub(crate) const fn current(mode: Mode, key_id: KeyId, stamp: Stamp) -> Self {
        Self {
            version: 2,
            mode,
            key_id,
            stamp,
            compressed: false,
            chunks: 1,
        }
    }

    /// The flags byte of version 2.
    fn flags(&self) -> u8 {
        let persistence = match self.stamp.persistence {
            None => 0,
            Some(Persistence::BrowserSession) => FLAG_PERSISTENCE_SET,
            Some(Persistence::Persistent) => FLAG_PERSISTENCE_SET | FLAG_PERSISTENT,
        };
        let compressed = if self.compressed { FLAG_COMPRESSED } else { 0 };
        let chunks = u8::try_from(self.chunks.clamp(1, MAX_CHUNKS) - 1).unwrap_or(0);
        persistence | compressed | (chunks << CHUNKS_SHIFT)
    }

    /// Its length in bytes: 45 (version 1) or 46 (version 2).
    pub(crate) const fn len(&self) -> usize {
        if self.version == 1 {
            HEADER_V1_LEN
        } else {
            HEADER_LEN
        }
    }

    /// Appends the 46 header bytes of version 2.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.push(self.mode.format_byte());
        out.extend_from_slice(&self.key_id.0);
        out.extend_from_slice(&self.stamp.id.0);
        out.extend_from_slice(&self.stamp.issued_at.to_be_bytes());
        out.extend_from_slice(&self.stamp.idle_deadline.to_be_bytes());
        out.extend_from_slice(&self.stamp.absolute_deadline.to_be_bytes());
        out.push(self.flags());
    }

    /// Rewrites the flags byte of the version-2 header at the start of `envelope` (after
    /// compressing, and once the number of chunks is known).
    pub(crate) fn rewrite_flags(&self, envelope: &mut [u8]) {
        if let Some(flags) = envelope.get_mut(FLAGS_AT) {
            *flags = self.flags();
        }
    }

    /// Parses the header of `envelope` and checks that the envelope is long enough for its
    /// mode (header, nonce and tag; the payload may be empty here).
    pub(crate) fn parse(envelope: &[u8]) -> Result<Self, DecodeError> {
        let (version, mode) = match envelope.first() {
            Some(&FORMAT_V1_SIGNED) => (1, Mode::Signed),
            Some(&FORMAT_V1_ENCRYPTED) => (1, Mode::Encrypted),
            Some(&FORMAT_V2_SIGNED) => (2, Mode::Signed),
            Some(&FORMAT_V2_ENCRYPTED) => (2, Mode::Encrypted),
            Some(&other) => return Err(DecodeError::UnsupportedVersion(other)),
            None => return Err(DecodeError::Malformed),
        };
        let header_len = if version == 1 {
            HEADER_V1_LEN
        } else {
            HEADER_LEN
        };
        let (nonce, tag) = mode.overhead();
        if envelope.len() < header_len + nonce + tag {
            return Err(DecodeError::Malformed);
        }
        let mut fields = Reader(envelope.get(1..header_len).ok_or(DecodeError::Malformed)?);
        let key_id = KeyId(fields.array()?);
        let id = SessionId(fields.array()?);
        let issued_at = u64::from_be_bytes(fields.array()?);
        let idle_deadline = u64::from_be_bytes(fields.array()?);
        let absolute_deadline = u64::from_be_bytes(fields.array()?);
        let flags = if version == 1 {
            0
        } else {
            fields.array::<1>()?[0]
        };
        // Unknown flag bits are not ignored: a later version that needs one gets a new
        // format byte or a flag an old decoder refuses, never a silent misreading.
        if flags & FLAGS_RESERVED != 0 {
            return Err(DecodeError::Malformed);
        }
        let persistence = match flags & (FLAG_PERSISTENCE_SET | FLAG_PERSISTENT) {
            0 => None,
            FLAG_PERSISTENCE_SET => Some(Persistence::BrowserSession),
            both if both == FLAG_PERSISTENCE_SET | FLAG_PERSISTENT => Some(Persistence::Persistent),
            _ => return Err(DecodeError::Malformed),
        };
        Ok(Self {
            version,
            mode,
            key_id,
            compressed: flags & FLAG_COMPRESSED != 0,
            chunks: usize::from((flags & CHUNKS_MASK) >> CHUNKS_SHIFT) + 1,
            stamp: Stamp {
                id,
                issued_at,
                idle_deadline,
                absolute_deadline,
                persistence,
            },
        })
    }
}

/// Reads fixed-size fields off the front of a slice.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(DecodeError::Malformed)?;
        self.0 = rest;
        Ok(*head)
    }
}

/// Appends the cookie-name prefix of the associated data: `u16_be(len(name)) || name`.
/// The header follows it directly in the same buffer, so `AD` is one contiguous slice.
///
/// The caller has checked that `name` is a token of at most `u16::MAX` bytes.
pub(crate) fn write_name_prefix(out: &mut Vec<u8>, name: &str) {
    let len = u16::try_from(name.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(name.as_bytes());
}

/// Whether `name` can be a session cookie name: a non-empty RFC 6265 token of at most
/// `u16::MAX` bytes (visible ASCII without separators), as [`SessionConfig::build`] and the
/// codec require.
///
/// ```
/// assert!(cookie_session::is_valid_name("__Host-session"));
/// assert!(!cookie_session::is_valid_name("my session"));
/// ```
///
/// [`SessionConfig::build`]: crate::SessionConfig::build
#[must_use]
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= usize::from(u16::MAX)
        && name.bytes().all(|b| TOKEN_BYTES[usize::from(b)])
}

/// [`is_token_byte`] for every byte, looked up: the name is checked on every encode and
/// decode, and a table costs a third of the comparisons' instructions.
static TOKEN_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b: u8 = 0;
    loop {
        table[b as usize] = is_token_byte(b);
        if b == u8::MAX {
            break table;
        }
        b += 1;
    }
};

/// Visible ASCII except RFC 6265's separators.
const fn is_token_byte(b: u8) -> bool {
    b.is_ascii_graphic()
        && !matches!(
            b,
            b'(' | b')'
                | b'<'
                | b'>'
                | b'@'
                | b','
                | b';'
                | b':'
                | b'\\'
                | b'"'
                | b'/'
                | b'['
                | b']'
                | b'?'
                | b'='
                | b'{'
                | b'}'
        )
}

/// The name of the cookie that carries piece `position` (1-based) of a value split across
/// several cookies: `name` itself for the first, then `name.2`, `name.3`, ...
///
/// ```
/// assert_eq!(cookie_session::chunk_name("session", 1), "session");
/// assert_eq!(cookie_session::chunk_name("session", 3), "session.3");
/// ```
#[must_use]
pub fn chunk_name(name: &str, position: usize) -> String {
    if position <= 1 {
        name.to_owned()
    } else {
        format!("{name}.{position}")
    }
}

/// The length of [`chunk_name`] without building it.
pub(crate) const fn chunk_name_len(name_len: usize, position: usize) -> usize {
    if position <= 1 {
        name_len
    } else {
        // Positions are at most `MAX_CHUNKS` (8): one digit.
        name_len + 2
    }
}

/// How many base64url characters piece `position` carries when the cookie limit is
/// `max_size` (name + value): as many as fit, rounded down to a multiple of 4 so that
/// every piece but the last decodes on its own. Zero if the name alone leaves no room.
pub(crate) const fn chunk_capacity(name_len: usize, position: usize, max_size: usize) -> usize {
    max_size.saturating_sub(chunk_name_len(name_len, position)) / 4 * 4
}

/// The length of the unpadded base64url text for `n` bytes.
pub(crate) const fn encoded_len(n: usize) -> usize {
    // 4 characters per 3 bytes; a final 1 or 2 bytes take 2 or 3 characters (no padding).
    let tail = match n % 3 {
        0 => 0,
        1 => 2,
        _ => 3,
    };
    n / 3 * 4 + tail
}

/// Decodes strict base64url (no padding, no `+`/`/`, no whitespace, zero trailing bits),
/// appending to `out`.
pub(crate) fn decode_base64(text: &str, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    base64_simd::URL_SAFE_NO_PAD
        .decode_append(text, out)
        .map_err(|_| DecodeError::Malformed)
}

/// What a cookie's header says, read **without a key and without verification**.
///
/// Anyone holding a cookie can read this much; it is what `cookie-session inspect` shows.
/// Nothing here is authenticated: use [`Codec::decode`](crate::Codec::decode) for that.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Inspection {
    /// The wire-format version (1 or 2).
    pub version: u8,
    /// The session's own persistence choice, if its cookie carries one (version 2).
    pub persistence: Option<Persistence>,
    /// The cookie's mode.
    pub mode: Mode,
    /// The id of the key the cookie claims to be issued under.
    pub key_id: KeyId,
    /// The claimed session id.
    pub session_id: SessionId,
    /// The claimed issue time, UNIX seconds.
    pub issued_at: u64,
    /// The claimed idle deadline, UNIX seconds.
    pub idle_deadline: u64,
    /// The claimed absolute deadline, UNIX seconds.
    pub absolute_deadline: u64,
    /// Whether the payload is compressed (raw deflate of the JSON).
    pub compressed: bool,
    /// How many cookies the value claims to be split across (1: not chunked). Only the
    /// first is inspected.
    pub chunks: usize,
    /// For a signed cookie that is not split, the payload bytes (JSON if the cookie is
    /// genuine, raw deflate of it if [`compressed`](Self::compressed)); `None` for an
    /// encrypted or a split one.
    pub payload: Option<Vec<u8>>,
}

/// Reads a cookie value's header (and a signed cookie's payload) without a key.
///
/// ```
/// # use std::time::Duration;
/// # use cookie_session::{Codec, Key, KeyRing, Mode, Stamp, inspect};
/// # let codec = Codec::new(Mode::Signed, KeyRing::new(Key::generate()?));
/// # let stamp = Stamp::new(time::OffsetDateTime::now_utc(), Duration::from_secs(1200), Duration::from_secs(86_400))?;
/// let value = codec.encode("session", &serde_json::json!({"user": 7}), &stamp)?;
/// let seen = inspect(&value)?;
/// assert_eq!(seen.mode, Mode::Signed);
/// assert_eq!(seen.payload.as_deref(), Some(&b"{\"user\":7}"[..])); // signed data is readable!
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`DecodeError::Malformed`] for text that is not canonical base64url or too short,
/// [`DecodeError::UnsupportedVersion`] for an unknown format byte.
pub fn inspect(value: &str) -> Result<Inspection, DecodeError> {
    let mut envelope = Vec::new();
    decode_base64(value, &mut envelope)?;
    let header = Header::parse(&envelope)?;
    let payload = match header.mode {
        Mode::Signed if header.chunks == 1 => envelope
            .get(header.len()..envelope.len().saturating_sub(SIGNED_TAG_LEN))
            .map(<[u8]>::to_vec),
        _ => None,
    };
    let stamp = header.stamp;
    Ok(Inspection {
        version: header.version,
        persistence: stamp.persistence,
        mode: header.mode,
        key_id: header.key_id,
        session_id: stamp.id,
        issued_at: stamp.issued_at,
        idle_deadline: stamp.idle_deadline,
        absolute_deadline: stamp.absolute_deadline,
        compressed: header.compressed,
        chunks: header.chunks,
        payload,
    })
}

/// Browsers ignore attribute values longer than this (RFC 6265bis).
pub(crate) const MAX_ATTRIBUTE_LEN: usize = 1024;

/// A non-empty attribute value of visible ASCII other than `;`, at most 1024 bytes.
pub(crate) fn is_valid_attribute(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_ATTRIBUTE_LEN
        && value.bytes().all(|b| b.is_ascii_graphic() && b != b';')
}
