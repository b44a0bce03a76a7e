#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod codec;
mod error;
mod format;
mod json;
mod key;
mod stamp;

pub use codec::{Codec, DEFAULT_CLOCK_SKEW, DEFAULT_MAX_DEPTH, DEFAULT_MAX_SIZE, Opened};
pub use error::{DecodeError, EncodeError, KeyError};
pub use format::{Inspection, Mode, inspect};
pub use key::{Key, KeyAge, KeyId, KeyRing, MIN_KEY_LEN};
pub use stamp::{Deadline, SessionId, Stamp};

// The README's examples use these crates through the public API; re-exporting `time`
// lets users name `OffsetDateTime` without a version mismatch.
pub use time;
