// Link targets for the README's reference links, defined before the README so that in
// rustdoc they win over the README's own file links (the first definition of a reference
// counts), which work on GitHub and crates.io but not here.
#![doc = "[security-md]: crate::manual::security\n[format-md]: crate::manual::format\n[rotation-md]: crate::manual::key_rotation\n"]
#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "beaker")]
#[cfg_attr(docsrs, doc(cfg(feature = "beaker")))]
pub mod beaker;
mod codec;
mod compression;
mod config;
mod cookie_header;
mod diagnostics;
mod error;
pub mod events;
mod flash;
mod format;
mod handle;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
mod json;
mod key;
mod legacy;
mod map;
mod replay;
pub mod server;
mod session;
mod stamp;
pub mod store;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower;
mod turns;
mod xaes;

/// The design documents, part of the API documentation: nothing to call here.
pub mod manual {
    /// SECURITY.md: threat model, limits, key handling, what each feature adds.
    pub mod security {
        #![doc = include_str!("../SECURITY.md")]
    }
    /// FORMAT.md: the wire format byte by byte, with known-answer vectors.
    pub mod format {
        #![doc = include_str!("../FORMAT.md")]
    }
    /// The key-rotation runbook for several instances (also in the README).
    pub mod key_rotation {
        #![doc = include_str!("../docs/key-rotation.md")]
    }
}

/// Entry points for the fuzz targets (`cargo fuzz` builds with `--cfg fuzzing`); not API.
#[cfg(fuzzing)]
#[doc(hidden)]
#[allow(missing_docs)]
pub mod fuzzing {
    pub fn json_scan(data: &[u8]) {
        crate::map::check_against_serde_json(data);
    }
}

pub use codec::{
    Codec, DEFAULT_CLOCK_SKEW, DEFAULT_MAX_DEPTH, DEFAULT_MAX_SESSION_SIZE, DEFAULT_MAX_SIZE,
    DEFAULT_MAX_TOTAL_SIZE, Opened,
};
pub use config::{
    ConflictPolicy, DEFAULT_MAX_FORM_SIZE, Revocable, RevocationCheck, SameSite, SaveMode,
    SessionConfig, TokenOrder, TouchPolicy,
};
pub use error::{ConfigError, DecodeError, EncodeError, JsonError, KeyError, SessionError};
pub use flash::{FLASH_KEY, Flash};
pub use format::{Inspection, MAX_CHUNKS, Mode, chunk_name, inspect, is_valid_name};
pub use handle::SessionHandle;
pub use key::{Key, KeyAge, KeyId, KeyRing, MIN_KEY_LEN};
pub use session::{CookieAction, Decision, LoadOutcome, Session, SessionMap, Sessions, Updated};
pub use stamp::{Deadline, InvalidSessionId, Persistence, SessionId, Stamp};

// The README's examples use these crates through the public API; re-exporting `time`
// lets users name `OffsetDateTime` without a version mismatch.
pub use time;
