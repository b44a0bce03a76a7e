//! The compressed and chunked decode paths: arbitrary bytes cut at `\n` into up to five
//! pieces (`sid`, `sid.2`, ...). Decoding never panics, through the codec and through a
//! session; whatever decodes re-encodes and decodes to the same value and stamp; a session
//! never comes out partly read.
#![no_main]

use cookie_session::LoadOutcome;
use cookie_session_fuzz::{NAME, PIECE_CODECS, PIECE_SESSIONS, now};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let pieces: Vec<&str> = text.splitn(5, '\n').collect();
    for codec in PIECE_CODECS.iter() {
        let Ok(opened) = codec.decode_chunks::<Value>(NAME, &pieces, now()) else {
            continue;
        };
        let again = codec
            .encode_chunks(NAME, &opened.value, &opened.stamp)
            .expect("a decoded value re-encodes");
        let again: Vec<&str> = again.iter().map(String::as_str).collect();
        let reopened = codec
            .decode_chunks::<Value>(NAME, &again, now())
            .expect("a re-encoded value decodes");
        assert_eq!(reopened.value, opened.value);
        assert_eq!(reopened.stamp, opened.stamp);
    }
    let header = pieces
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{}={p}", cookie_session::chunk_name(NAME, i + 1)))
        .collect::<Vec<_>>()
        .join("; ");
    for sessions in PIECE_SESSIONS.iter() {
        let session = sessions.load([header.as_str()], now());
        match session.outcome() {
            LoadOutcome::Loaded | LoadOutcome::LoadedOlderKey => {}
            _ => assert!(session.is_empty(), "a rejected session is empty"),
        }
        let _ = session.finish(now());
    }
});
