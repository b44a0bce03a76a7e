//! The wire format and its cryptography: keys and the key ring, stamps, the envelope, the
//! codec, XAES-256-GCM, compression, the JSON scanner and the lazily parsed map. Like
//! cookie-rs's `secure/`, the security boundary is this folder. It knows nothing of
//! sessions, stores, servers, frameworks or Beaker (ARCHITECTURE.md).

pub(crate) mod codec;
pub(crate) mod compression;
pub(crate) mod error;
pub(crate) mod format;
pub(crate) mod json;
pub(crate) mod key;
pub(crate) mod map;
pub(crate) mod stamp;
pub(crate) mod xaes;
