//! Fixtures shared by the fuzz targets: one key ring, one frozen clock, one session
//! configuration, and an `Arbitrary` JSON value. Fixed so that seed cookies in
//! `corpus/` stay valid and every run is reproducible.

use std::sync::LazyLock;

use arbitrary::Arbitrary;
use cookie_session::time::OffsetDateTime;
use cookie_session::{Codec, Key, KeyRing, Mode, SessionConfig, Sessions};
use serde_json::{Map, Number, Value};

/// The cookie name every target uses.
pub const NAME: &str = "sid";

/// 2026-01-01T00:00:00Z.
pub const NOW: i64 = 1_767_225_600;

pub fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(NOW).expect("a fixed, valid time")
}

fn key(seed: u8) -> Key {
    let bytes: Vec<u8> = (0u8..32)
        .map(|i| i.wrapping_mul(37).wrapping_add(seed))
        .collect();
    Key::from_bytes(&bytes).expect("a fixed, valid key")
}

/// Current key 1, older key 2: decoding can take either path.
pub fn ring() -> KeyRing {
    KeyRing::new(key(1))
        .with_older(key(2))
        .expect("distinct keys")
}

/// A signed and an encrypted codec under [`ring`].
pub static CODECS: LazyLock<[Codec; 2]> = LazyLock::new(|| {
    [
        Codec::new(Mode::Signed, ring()),
        Codec::new(Mode::Encrypted, ring()),
    ]
});

/// Codecs that compress (in encrypted mode too) and split values across up to four
/// cookies, for the `pieces` target.
pub static PIECE_CODECS: LazyLock<[Codec; 2]> = LazyLock::new(|| {
    [Mode::Signed, Mode::Encrypted].map(|mode| {
        Codec::new(mode, ring())
            .with_compression_leaking_length()
            .with_max_cookies(4)
            .with_max_total_size(16_384)
    })
});

/// Sessions configured like [`PIECE_CODECS`].
pub static PIECE_SESSIONS: LazyLock<[Sessions; 2]> = LazyLock::new(|| {
    [Mode::Signed, Mode::Encrypted].map(|mode| {
        SessionConfig::new(mode, ring())
            .with_name(NAME)
            .with_compression_leaking_length()
            .with_max_cookies(4)
            .with_max_total_size(16_384)
            .build()
            .expect("a valid configuration")
    })
});

/// Sessions in both modes: default attributes plus Domain and Partitioned (so removals
/// have every attribute to match), a token source, on-change touch.
pub static SESSIONS: LazyLock<[Sessions; 2]> = LazyLock::new(|| {
    [Mode::Signed, Mode::Encrypted].map(|mode| {
        SessionConfig::new(mode, ring())
            .with_name(NAME)
            .with_domain("example.com")
            .with_partitioned(true)
            .with_token_parameter("sid")
            .build()
            .expect("a valid configuration")
    })
});

/// The cookie values the forgery target starts from (written by `examples/make_seeds.rs`).
pub fn forgery_originals() -> [&'static str; 2] {
    [
        include_str!("../corpus/forgery/signed").trim(),
        include_str!("../corpus/forgery/encrypted").trim(),
    ]
}

/// JSON-ish structure for `arbitrary`.
#[derive(Debug, Arbitrary)]
pub enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

/// Nesting below this stays under the codec's default depth limit of 32.
const MAX_DEPTH: usize = 30;

impl Json {
    /// The value, with non-finite floats as `null` and nesting cut at `MAX_DEPTH`.
    pub fn to_value(&self) -> Value {
        self.at_depth(1)
    }

    fn at_depth(&self, depth: usize) -> Value {
        let nested = depth < MAX_DEPTH;
        match self {
            Self::Null => Value::Null,
            Self::Bool(b) => Value::Bool(*b),
            Self::Int(n) => Value::from(*n),
            Self::Uint(n) => Value::from(*n),
            Self::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Self::Str(s) => Value::String(s.clone()),
            Self::Array(items) if nested => items.iter().map(|j| j.at_depth(depth + 1)).collect(),
            Self::Object(entries) if nested => Value::Object(
                entries
                    .iter()
                    .map(|(k, j)| (k.clone(), j.at_depth(depth + 1)))
                    .collect(),
            ),
            Self::Array(_) | Self::Object(_) => Value::Null,
        }
    }
}

/// A session map from arbitrary entries.
pub fn map(entries: &[(String, Json)]) -> Map<String, Value> {
    entries
        .iter()
        .map(|(k, j)| (k.clone(), j.to_value()))
        .collect()
}
