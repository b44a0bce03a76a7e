//! What the crate does to JSON text beyond serde_json: bounding its nesting before it is
//! parsed, and reading a session object in one pass without building its values.

mod depth;
mod object;
mod swar;

pub(crate) use depth::depth_within;
pub(crate) use object::scan_object;
