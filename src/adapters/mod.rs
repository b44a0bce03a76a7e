//! The adapters: the only code that knows a web framework (`http`, tower/axum).

#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "tower")]
pub mod tower;
