//! Arbitrary bytes as a session's JSON text: the one-pass scanner that loads a session
//! accepts exactly what serde_json accepts as an object, finds the same keys, and records
//! each value as exactly one JSON value (see `check_against_serde_json` in src/map.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cookie_session::fuzzing::json_scan(data));
