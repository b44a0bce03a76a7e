// Link targets for the README's reference links, defined before the README so that in
// rustdoc they win over the README's own file links (the first definition of a reference
// counts), which work on GitHub and crates.io but not here.
#![doc = "[security-md]: crate::manual::security\n[format-md]: crate::manual::format\n[rotation-md]: crate::manual::key_rotation\n"]
#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

// The parts, lowest first (ARCHITECTURE.md says what each may import, and why).
mod adapters;
mod diagnostics;
mod legacy;
pub mod server;
mod session;
mod stores;
mod wire;

#[cfg(feature = "actix")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
pub use adapters::actix;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub use adapters::http;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use adapters::tower;
#[cfg(feature = "beaker")]
#[cfg_attr(docsrs, doc(cfg(feature = "beaker")))]
pub use legacy::beaker;
#[cfg(feature = "pickle")]
#[cfg_attr(docsrs, doc(cfg(feature = "pickle")))]
pub use legacy::pickle;
#[cfg(feature = "turbogears")]
#[cfg_attr(docsrs, doc(cfg(feature = "turbogears")))]
pub use legacy::turbogears;
pub use server::events;

pub mod store {
    //! Server-side session storage: the [`SessionStore`] trait every backend implements, the
    //! types it speaks in, and the backends of this crate ([`MemoryStore`]).
    //!
    //! A store holds opaque bytes under a [`StoreKey`] with an absolute expiry and a
    //! [`Version`] for compare-and-set. It knows nothing of sessions, cookies or JSON, and no
    //! clock: every operation that depends on time takes `now`, so a test needs no sleeps and
    //! every backend agrees on the boundary (a record whose `expires` is `now` has expired, the
    //! same rule as cookie deadlines).
    //!
    //! The trait is async with return-position `impl Future` (no `async-trait`); [`DynStore`]
    //! is its boxed, object-safe form for type erasure (`Arc<dyn DynStore>` is itself a
    //! `SessionStore`). The conformance suite (feature `store-testing`,
    //! [`store_conformance!`](crate::store_conformance)) checks any implementation, ours or a
    //! third party's, against the semantics documented on each method.

    pub use crate::server::sweeper::{Sweeper, SweeperStats};
    pub use crate::stores::*;
}

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
        crate::wire::map::check_against_serde_json(data);
    }

    #[cfg(feature = "pickle")]
    pub fn pickle(data: &[u8]) {
        crate::legacy::pickle::fuzz(data);
    }
}

pub use server::handle::SessionHandle;
pub use session::config::{
    ConflictPolicy, DEFAULT_MAX_FORM_SIZE, Revocable, RevocationCheck, SameSite, SaveMode,
    SessionConfig, TokenOrder, TouchPolicy,
};
pub use session::error::{ConfigError, SessionError};
pub use session::flash::{FLASH_KEY, Flash};
pub use session::{CookieAction, Decision, LoadOutcome, Session, SessionMap, Sessions, Updated};
pub use wire::codec::{
    Codec, DEFAULT_CLOCK_SKEW, DEFAULT_MAX_DEPTH, DEFAULT_MAX_SESSION_SIZE, DEFAULT_MAX_SIZE,
    DEFAULT_MAX_TOTAL_SIZE, Opened,
};
pub use wire::error::{DecodeError, EncodeError, JsonError, KeyError};
pub use wire::format::{Inspection, MAX_CHUNKS, Mode, chunk_name, inspect, is_valid_name};
pub use wire::key::{Key, KeyAge, KeyId, KeyRing, MIN_KEY_LEN};
pub use wire::stamp::{Deadline, InvalidSessionId, Persistence, SessionId, Stamp};

// The README's examples use these crates through the public API; re-exporting `time`
// lets users name `OffsetDateTime` without a version mismatch.
pub use time;
