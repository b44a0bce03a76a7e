//! The adapters: the only code that knows a web framework (`http`, tower/axum, actix-web).
//! What they share (the request's lifecycle, the header merge) is written once here.

#[cfg(feature = "actix")]
pub mod actix;
#[cfg(feature = "http")]
pub(crate) mod headers;
#[cfg(feature = "http")]
pub mod http;
#[cfg(any(feature = "tower", feature = "actix"))]
pub(crate) mod lifecycle;
#[cfg(feature = "tower")]
pub mod tower;
