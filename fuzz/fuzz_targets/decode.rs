//! Arbitrary bytes as a cookie value, in both modes: decoding never panics, and whatever
//! decodes re-encodes and decodes to the same value and stamp.
#![no_main]

use cookie_session::inspect;
use cookie_session_fuzz::{CODECS, NAME, now};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = inspect(text);
    for codec in CODECS.iter() {
        let Ok(opened) = codec.decode::<Value>(NAME, text, now()) else {
            continue;
        };
        let again = codec
            .encode(NAME, &opened.value, &opened.stamp)
            .expect("a decoded value re-encodes");
        let reopened = codec
            .decode::<Value>(NAME, &again, now())
            .expect("a re-encoded value decodes");
        assert_eq!(reopened.value, opened.value);
        assert_eq!(reopened.stamp, opened.stamp);
    }
});
