//! Error types, one per failure domain.
//!
//! Key errors happen at start-up, when keys are loaded; encode and decode errors happen per
//! request. No error ever carries key material, and [`DecodeError::Invalid`] says nothing
//! about *why* authentication failed, so that it cannot serve as an oracle.

use std::fmt;

use crate::wire::format::Mode;
use crate::wire::key::KeyId;
use crate::wire::stamp::Deadline;

/// What to tell someone whose key was refused.
pub(crate) const KEYGEN_ADVICE: &str = "generate one with `cookie-session keygen`";

/// The same advice wherever a cookie name is refused.
pub(crate) const INVALID_NAME: &str =
    "cookie name must be a non-empty RFC 6265 token (no spaces, controls or ()<>@,;:\\\"/[]?={})";

/// A key could not be built, or a key ring could not be assembled.
///
/// `Debug` prints the message (what `main` shows for an error it returns with `?`).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The key has fewer than [`MIN_KEY_LEN`](crate::wire::key::MIN_KEY_LEN) bytes.
    TooShort {
        /// The length of the key that was given, in bytes.
        len: usize,
    },
    /// The key is a well-known placeholder secret ("secret", "changeme", "keyboard cat", ...).
    WellKnown,
    /// The key is one repeated byte, a short repeating pattern, or uses very few distinct bytes.
    LowEntropy,
    /// The key text is not base64 (RFC 4648 §4 or §5, padded or not).
    NotBase64,
    /// The key text after `hex:` is not an even number of hex digits.
    NotHex,
    /// The operating system's random source failed while generating a key.
    Random,
    /// Two keys of a ring have the same id: the same key was added twice (or, with
    /// probability about 2^-32 per pair, two keys' ids collide).
    DuplicateKeyId(KeyId),
    /// A key ring needs at least one key.
    EmptyRing,
    /// A Beaker key is empty.
    Empty,
    /// The key text begins or ends with whitespace, typically the newline of a key file.
    SurroundingWhitespace,
    /// A Beaker encryption setup needs ASCII keys (Beaker encodes them as ASCII).
    NotAscii,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { len } => write!(
                f,
                "key is {len} bytes but at least {} bytes of random data are required; {KEYGEN_ADVICE}",
                crate::wire::key::MIN_KEY_LEN
            ),
            Self::WellKnown => write!(
                f,
                "key is a well-known placeholder secret that attackers try first; {KEYGEN_ADVICE}"
            ),
            Self::LowEntropy => write!(
                f,
                "key repeats a short pattern or uses very few distinct bytes, so it is not random; {KEYGEN_ADVICE}"
            ),
            Self::NotBase64 => write!(
                f,
                "key text is not base64 (base64url or standard, padded or not; for hex digits write hex:...); {KEYGEN_ADVICE}"
            ),
            Self::NotHex => write!(
                f,
                "key text after hex: is not an even number of hex digits; {KEYGEN_ADVICE}"
            ),
            Self::Random => write!(f, "the operating system's random source failed"),
            Self::DuplicateKeyId(id) => write!(
                f,
                "two keys in the key ring have the id {id}: remove the duplicate key (or, if the keys differ, replace one)"
            ),
            Self::EmptyRing => write!(f, "a key ring needs at least one key"),
            Self::Empty => write!(f, "key is empty"),
            Self::SurroundingWhitespace => write!(
                f,
                "key text begins or ends with whitespace (a key file read with its newline?); trim it, or {KEYGEN_ADVICE}"
            ),
            Self::NotAscii => write!(
                f,
                "beaker encrypts only with ASCII keys; use the exact keys of the Beaker application"
            ),
        }
    }
}

impl std::error::Error for KeyError {}

impl fmt::Debug for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_chain(f, "KeyError", self)
    }
}

/// A value could not be encoded into a cookie. Nothing was emitted.
#[derive(Debug)]
#[non_exhaustive]
pub enum EncodeError {
    /// The cookie would be larger than the configured limit; browsers silently drop such
    /// cookies and keep the previous one, so it is refused here instead.
    TooLarge {
        /// `name.len() + value.len()` of the cookie that would have been sent (summed over
        /// its cookies when the configuration splits sessions across several).
        size: usize,
        /// The configured limit: per cookie, or for all of a split session's cookies.
        limit: usize,
    },
    /// The value's JSON is larger than the configured maximum session size (which bounds
    /// what a compressed cookie may inflate to, so a larger one could not be read back).
    SessionTooLarge {
        /// The JSON's length in bytes.
        size: usize,
        /// The configured maximum session size.
        limit: usize,
    },
    /// The value's JSON nests deeper than the configured limit, so it could not be decoded
    /// again.
    TooDeep {
        /// The configured nesting limit.
        limit: usize,
    },
    /// The session would make a token parameter ([`Session::token`](crate::Session::token))
    /// larger than the limit of one cookie value: a token is one value and is never split.
    TokenTooLarge {
        /// The token's size in bytes (counted as a cookie would be: name + value).
        size: usize,
        /// The limit ([`SessionConfig::with_max_size`](crate::SessionConfig::with_max_size)).
        limit: usize,
    },
    /// The value could not be serialized as JSON.
    Serialize(JsonError),
    /// The cookie name is empty or has characters outside an RFC 6265 token.
    InvalidName,
    /// A time is before 1970 or after the year 9999.
    InvalidTime,
    /// The session reached its absolute lifetime during the request: it cannot be renewed,
    /// only replaced by a new session.
    LifetimeOver,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { size, limit } => write!(
                f,
                "cookie would be {size} bytes (name + value) but the limit is {limit}; store less in the session, enable compression or chunking, or keep it server-side"
            ),
            Self::TokenTooLarge { size, limit } => write!(
                f,
                "the session's token would be {size} bytes but a token holds at most {limit} (one cookie's limit: a token is never split); store less in the session, or keep it server-side, where the token is only the signed id"
            ),
            Self::SessionTooLarge { size, limit } => write!(
                f,
                "session data is {size} bytes of JSON, over the configured maximum session size of {limit}"
            ),
            Self::TooDeep { limit } => write!(
                f,
                "session data nests deeper than {limit} levels of arrays and objects"
            ),
            Self::Serialize(_) => write!(f, "session data could not be serialized as JSON"),
            Self::InvalidName => f.write_str(INVALID_NAME),
            Self::InvalidTime => write!(f, "time is before 1970 or after the year 9999"),
            Self::LifetimeOver => write!(
                f,
                "session reached its absolute lifetime and cannot be renewed; start a new session"
            ),
        }
    }
}

impl std::error::Error for EncodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Serialize(e) => Some(e),
            _ => None,
        }
    }
}

/// A cookie value was rejected.
///
/// Only [`Invalid`](Self::Invalid) concerns authenticity, and it is deliberately
/// detail-free. The structural variants depend only on bytes the sender chose, so they
/// reveal nothing secret. [`Expired`](Self::Expired), [`IssuedInFuture`](Self::IssuedInFuture),
/// [`TooDeep`](Self::TooDeep) and [`Payload`](Self::Payload) are only ever reported for a
/// cookie that passed authentication.
#[derive(Debug)]
#[non_exhaustive]
pub enum DecodeError {
    /// `name.len() + value.len()` exceeds the configured limit; nothing else was looked at.
    TooLarge {
        /// The size of the cookie that was received.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// Not a cookie of this format: not canonical base64url, or too short for its header.
    Malformed,
    /// The format byte names a version this build does not know.
    UnsupportedVersion(u8),
    /// The cookie is in the other mode (signed where encrypted is configured, or vice versa).
    WrongMode {
        /// The mode the cookie was issued in.
        found: Mode,
        /// The mode this codec is configured for.
        expected: Mode,
    },
    /// The cookie names a key id that is not in the key ring (a retired or foreign key).
    UnknownKey(KeyId),
    /// Authentication failed: the cookie was altered, forged, issued under another key with
    /// the same id, or issued for another cookie name.
    Invalid,
    /// The cookie is authentic but one of its deadlines has passed.
    Expired(Deadline),
    /// The cookie is authentic but was issued further in the future than the allowed clock
    /// skew.
    IssuedInFuture,
    /// The cookie is authentic but its JSON nests deeper than the configured limit.
    TooDeep {
        /// The configured nesting limit.
        limit: usize,
    },
    /// The cookie is authentic but its JSON does not deserialize into the requested type
    /// (for a session map: the payload is not a JSON object).
    Payload(JsonError),
    /// The cookie name is empty or has characters outside an RFC 6265 token.
    InvalidName,
    /// The session is split across `count` cookies and the one at `position` (1-based;
    /// cookie `name.position`) did not come with the request: the session is not read in
    /// part.
    MissingChunk {
        /// The first missing piece.
        position: usize,
        /// How many pieces the first cookie announces.
        count: usize,
    },
    /// The cookie announces more pieces than the configuration accepts.
    TooManyChunks {
        /// How many pieces the first cookie announces.
        count: usize,
        /// The configured maximum number of cookies.
        limit: usize,
    },
    /// The cookie is authentic and compressed, and inflates to more than the configured
    /// maximum session size; inflation stopped there.
    SessionTooLarge {
        /// The configured maximum session size.
        limit: usize,
    },
    /// The cookie is authentic and marked compressed, but its payload is not one complete
    /// raw deflate stream (a bug in the issuer, which held the key).
    CorruptCompression,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { size, limit } => write!(
                f,
                "cookie is {size} bytes (name + value), over the limit of {limit}"
            ),
            Self::Malformed => write!(
                f,
                "cookie value is not in the cookie-session format (bad base64url or too short)"
            ),
            Self::UnsupportedVersion(v) => {
                write!(f, "cookie format byte {v:#04x} is not a known version")
            }
            Self::WrongMode { found, expected } => write!(
                f,
                "cookie is {found} but this codec expects {expected} cookies"
            ),
            Self::UnknownKey(id) => write!(
                f,
                "cookie was issued under key id {id}, which is not in the key ring"
            ),
            Self::Invalid => write!(f, "cookie failed authentication"),
            Self::Expired(deadline) => write!(f, "cookie has expired ({deadline})"),
            Self::IssuedInFuture => write!(
                f,
                "cookie was issued in the future, beyond the allowed clock skew; check the server clocks"
            ),
            Self::TooDeep { limit } => write!(
                f,
                "cookie data nests deeper than {limit} levels of arrays and objects"
            ),
            Self::Payload(_) => write!(
                f,
                "cookie data does not deserialize into the requested type"
            ),
            Self::InvalidName => f.write_str(INVALID_NAME),
            Self::MissingChunk { position, count } => write!(
                f,
                "session is split across {count} cookies and piece {position} did not come with the request"
            ),
            Self::TooManyChunks { count, limit } => write!(
                f,
                "cookie announces {count} pieces but at most {limit} are accepted"
            ),
            Self::SessionTooLarge { limit } => write!(
                f,
                "compressed cookie data inflates to more than the maximum session size of {limit} bytes"
            ),
            Self::CorruptCompression => write!(
                f,
                "cookie data is marked compressed but is not a valid raw deflate stream"
            ),
        }
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Payload(e) => Some(e),
            _ => None,
        }
    }
}

/// `Debug` for the errors an application's start-up returns with `?`: `main` prints what
/// it returns with `Debug` (`Error: ...`), so this is the message and its causes on one
/// line, not a dump of the variants and a driver's internals.
pub(crate) fn debug_chain(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    error: &(dyn std::error::Error + 'static),
) -> fmt::Result {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        // Some messages already include their cause's.
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = cause.source();
    }
    write!(f, "{name}: {text}")
}

/// A JSON conversion failed: what `serde_json` reported, **without the data**.
///
/// serde_json's messages quote the value they stumbled on (`invalid type: string "alice",
/// expected u64`), and session values must never reach logs through an error chain. This
/// keeps what helps to fix the code (the kind of problem, what type was expected, the
/// position) and drops the value: the example becomes `invalid type: string, expected
/// u64`. A custom message from a `Serialize`/`Deserialize` implementation is withheld
/// entirely unless it has one of serde's standard shapes.
#[derive(Clone, PartialEq, Eq)]
pub struct JsonError {
    message: Box<str>,
    data: bool,
    line: usize,
    column: usize,
}

impl JsonError {
    /// Redacts a serde_json error.
    pub(crate) fn redact(error: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        let data = error.classify() == Category::Data;
        let text = error.to_string();
        // serde_json appends the position when it knows it; it is kept in fields instead.
        let text = match text.rfind(" at line ") {
            Some(at) if error.line() != 0 => &text[..at],
            _ => text.as_str(),
        };
        // Syntax, end-of-input and I/O messages are fixed texts of serde_json's (they never
        // quote the input); only data errors can carry values.
        let message = if data {
            redact_data_message(text)
        } else {
            text.to_owned()
        };
        Self {
            message: message.into(),
            data,
            line: error.line(),
            column: error.column(),
        }
    }

    /// A message of this crate's own, which never contains data.
    pub(crate) fn own(message: impl Into<Box<str>>) -> Self {
        Self {
            message: message.into(),
            data: true,
            line: 0,
            column: 0,
        }
    }

    /// Whether the JSON was well-formed but did not fit the type (as opposed to a syntax
    /// error or truncated input).
    #[must_use]
    pub fn is_data(&self) -> bool {
        self.data
    }

    /// The 1-based line of the error in the JSON text, or 0 if there is no position (as when
    /// serializing).
    #[must_use]
    pub fn line(&self) -> usize {
        self.line
    }

    /// The 1-based column of the error, or 0 if there is no position.
    #[must_use]
    pub fn column(&self) -> usize {
        self.column
    }
}

/// Keeps the shape of serde's standard data errors and drops the values they quote.
fn redact_data_message(text: &str) -> String {
    // "invalid type: string \"alice\", expected u64": keep the words naming the kind of
    // value (letters and spaces up to the quoted value), and the `expected` part, which
    // comes from the type's own description. It is the last ", expected " in the text: a
    // quoted value comes before it.
    let expected = text
        .rfind(", expected ")
        .map(|at| &text[at + 2..])
        .filter(|e| !e.contains(['"', '\n']));
    for prefix in ["invalid type: ", "invalid value: "] {
        if let (Some(rest), Some(expected)) = (text.strip_prefix(prefix), expected) {
            let kind = rest
                .split(|c: char| !(c.is_ascii_alphabetic() || c == ' '))
                .next()
                .unwrap_or_default()
                .trim();
            return format!("{prefix}{kind}, {expected}");
        }
    }
    for prefix in [
        "invalid length",
        "unknown variant",
        "unknown field",
        "missing field",
        "duplicate field",
    ] {
        if text.starts_with(prefix) {
            return match expected {
                Some(expected) => format!("{prefix}, {expected}"),
                None => prefix.to_owned(),
            };
        }
    }
    "the data does not fit the type (details withheld: they may quote session data)".to_owned()
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if self.line != 0 {
            write!(f, " at line {} column {}", self.line, self.column)?;
        }
        Ok(())
    }
}

impl fmt::Debug for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonError")
            .field("message", &self.message)
            .field("line", &self.line)
            .field("column", &self.column)
            .finish()
    }
}

impl std::error::Error for JsonError {}

impl From<serde_json::Error> for JsonError {
    fn from(error: serde_json::Error) -> Self {
        Self::redact(&error)
    }
}
