//! Arbitrary JSON maps encode and decode losslessly in both modes, or fail with the typed
//! too-large error; nothing else.
#![no_main]

use cookie_session::{EncodeError, SessionMap, Stamp};
use cookie_session_fuzz::{CODECS, Json, NAME, map, now};
use libfuzzer_sys::fuzz_target;
use std::time::Duration;

fuzz_target!(|entries: Vec<(String, Json)>| {
    let data = map(&entries);
    let stamp = Stamp::new(
        now(),
        Duration::from_secs(1200),
        Duration::from_secs(86_400),
    )
    .expect("valid times");
    for codec in CODECS.iter() {
        match codec.encode(NAME, &data, &stamp) {
            Ok(value) => {
                assert!(NAME.len() + value.len() <= codec.max_size());
                let opened = codec
                    .decode::<SessionMap>(NAME, &value, now())
                    .expect("what encodes decodes");
                assert_eq!(opened.value, data);
                assert_eq!(opened.stamp, stamp);
            }
            Err(EncodeError::TooLarge { size, limit }) => assert!(size > limit),
            Err(other) => panic!("unexpected encode error: {other:?}"),
        }
    }
});
