//! Forgery: starting from one valid cookie per mode (the corpus seeds), the fuzzer mutates
//! it, as text or, with a leading 0x00 byte, as the raw envelope bytes. Any mutated value
//! that still decodes must be exactly an original; any other success is a forgery.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cookie_session_fuzz::{CODECS, NAME, forgery_originals, now};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let text = match data.split_first() {
        Some((0, envelope)) => URL_SAFE_NO_PAD.encode(envelope),
        _ => match std::str::from_utf8(data) {
            Ok(text) => text.to_owned(),
            Err(_) => return,
        },
    };
    let originals = forgery_originals();
    for codec in CODECS.iter() {
        if codec.decode::<Value>(NAME, &text, now()).is_ok() {
            assert!(
                originals.contains(&text.as_str()),
                "forgery accepted: {text}"
            );
        }
    }
});
