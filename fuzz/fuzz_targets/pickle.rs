//! Arbitrary bytes as a pickled session (Beaker's and TurboGears' server-side records): the
//! reader refuses or reads, never panics, never allocates what a length field asks for
//! past the input, and a map it reads writes and reads back unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cookie_session::fuzzing::pickle(data));
