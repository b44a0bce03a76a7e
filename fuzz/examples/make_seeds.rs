//! Writes the seed corpora: genuine cookies for the fixed key ring, the known-answer
//! vectors' values, and headers around them. Run from `fuzz/`:
//! `cargo run --example make_seeds`. The forgery originals are kept as they are once
//! written (encrypted cookies have random nonces, and the target compares against them).

use std::fs;
use std::path::Path;
use std::time::Duration;

use cookie_session::Stamp;
use cookie_session_fuzz::{CODECS, NAME, now};
use serde_json::json;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new("corpus").join(target);
    fs::create_dir_all(&dir).expect("corpus dir");
    fs::write(dir.join(name), bytes).expect("seed file");
}

fn main() {
    let stamp = Stamp::new(
        now() - Duration::from_secs(100),
        Duration::from_secs(1200),
        Duration::from_secs(86_400),
    )
    .expect("valid times");
    let data = json!({"user_id": 1234567, "csrf": "q3Vb9XkL2mWn7Rt5", "roles": ["user", "editor"], "n": 1.5});
    for (codec, mode) in CODECS.iter().zip(["signed", "encrypted"]) {
        let value = codec.encode(NAME, &data, &stamp).expect("encodes");
        write("decode", mode, value.as_bytes());
        write(
            "cookie_header",
            mode,
            format!("theme=dark; {NAME}={value}; x=1").as_bytes(),
        );
        let forgery = Path::new("corpus/forgery").join(mode);
        if fs::read_to_string(&forgery).map_or(true, |s| s.trim().is_empty()) {
            write("forgery", mode, value.as_bytes());
        }
        let envelope =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &value)
                .expect("b64");
        write(
            "forgery",
            &format!("{mode}-envelope"),
            &[&[0u8][..], &envelope].concat(),
        );
    }
    // A value split across three cookies, compressed in part, for the `pieces` target.
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let noise: String = (0..9000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[(x % 36) as usize])
        })
        .collect();
    let big = json!({"notes": noise, "pad": "ab".repeat(400), "user_id": 7});
    for (codec, mode) in cookie_session_fuzz::PIECE_CODECS
        .iter()
        .zip(["signed", "encrypted"])
    {
        let pieces = codec.encode_chunks(NAME, &big, &stamp).expect("encodes");
        assert!(pieces.len() > 1, "the seed is split");
        write("pieces", mode, pieces.join("\n").as_bytes());
    }
    let vectors: serde_json::Value =
        serde_json::from_str(include_str!("../../tests/vectors/v1.json")).expect("vectors");
    for (i, v) in vectors["vectors"]
        .as_array()
        .expect("list")
        .iter()
        .enumerate()
    {
        write(
            "decode",
            &format!("vector-{i}"),
            v["value"].as_str().expect("value").as_bytes(),
        );
    }
}
