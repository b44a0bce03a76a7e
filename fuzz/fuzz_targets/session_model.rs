//! The session layer's model (`tests/model`, also run by proptest in
//! `tests/session_model.rs`), driven from arbitrary bytes: the first byte picks the
//! configuration, the rest are the requests.
#![no_main]

use cookie_session::Mode;
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/model/mod.rs"]
mod model;

/// Bit 0: the mode; bit 1: compression; bits 2-4: 1 to 8 cookies; bit 5: a Beaker cookie
/// first; bits 6-7 both set: server-side.
fn kind(byte: u8) -> model::Kind {
    let mode = if byte & 1 == 0 {
        Mode::Signed
    } else {
        Mode::Encrypted
    };
    if byte & 0xc0 == 0xc0 {
        return model::Kind::ServerSide { mode };
    }
    model::Kind::Cookie {
        mode,
        compress: byte & 2 != 0,
        cookies: usize::from((byte >> 2) & 7) + 1,
        beaker: byte & 0x20 != 0,
    }
}

fuzz_target!(|input: (u8, Vec<model::Op>)| {
    let (config, ops) = input;
    // Long enough for any sequence the proptest finds; bounded so each run stays quick.
    model::run_model(kind(config), &ops[..ops.len().min(48)]);
});
